"""Many ranks: one SPMD program under `torchrun`, rank 0 leading.

Rank 0 serves HTTP and broadcasts each command (a picklable tuple) over a gloo group, so
commands travel the same way on CPU and GPU; tensors use the default group (NCCL on GPU, gloo on
CPU). Models are sharded with FSDP2 (`fully_shard` per decoder layer, then the root), which also
runs on CPU with gloo; `SPARK_TRAINER_SHARDING=ddp` picks DistributedDataParallel instead
(replicated weights, all-reduced gradients) for models FSDP2 does not handle.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

COMMAND_TIMEOUT = timedelta(days=365)


@dataclass
class DistContext:
    rank: int
    world: int
    device: torch.device
    commands: Any = None  # the gloo process group for commands (None with one rank)

    @property
    def leader(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistContext:
    """One rank unless started by torchrun (`WORLD_SIZE` > 1); then joins the process group and,
    on GPU, takes the local rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(rank=0, world=1, device=device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    # Ranks > 0 wait on the command group for as long as the server sits idle.
    commands = dist.new_group(backend="gloo", timeout=COMMAND_TIMEOUT)
    return DistContext(rank=dist.get_rank(), world=dist.get_world_size(), device=device, commands=commands)


def broadcast_command(ctx: DistContext, command: Any = None) -> Any:
    """Rank 0 sends `command`; every rank returns it."""
    if ctx.world == 1:
        return command
    box = [command]
    dist.broadcast_object_list(box, src=0, group=ctx.commands)
    return box[0]


class AgreedFailure(ValueError):
    """Raised alike on every rank after they agreed on it over the command group: the ranks are
    still in step, so the process group stays usable and the trainer goes on. Any other error in a
    command may have left a rank inside a collective, which ends the trainer (see `Runtime`)."""


def agree(ctx: DistContext, error: str | None) -> str | None:
    """Every rank says whether its part failed; all return the lowest failing rank's message.
    On the gloo command group, so it costs no model collective and never waits on NCCL."""
    if ctx.world == 1:
        return error
    errors: list[str | None] = [None] * ctx.world
    dist.all_gather_object(errors, error, group=ctx.commands)
    return next((e for e in errors if e is not None), None)


def all_reduce(ctx: DistContext, values: list[float], op: str = "sum") -> list[float]:
    """Element-wise sum (or max) over ranks, in fp64 so token counts stay exact."""
    if ctx.world == 1:
        return [float(v) for v in values]
    tensor = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return tensor.tolist()


def step_seed(seed: int, step: int, rank: int) -> int:
    """The RNG seed of one step on one rank (dropout): a function of (seed, step, rank) only,
    so a resumed session draws exactly what an uninterrupted one would. (With dropout, N ranks
    draw other masks than one rank does: their results agree only without dropout.)"""
    digest = hashlib.sha256(f"spark-trainer:{seed}:{step}:{rank}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def sharding_mode() -> str:
    mode = os.environ.get("SPARK_TRAINER_SHARDING", "fsdp")
    if mode not in ("fsdp", "ddp"):
        raise ValueError(f"SPARK_TRAINER_SHARDING={mode!r}: fsdp or ddp")
    return mode


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The model's decoder layers: transformers names their classes in `_no_split_modules`."""
    names: set[str] = set()
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or [])
    return [m for m in model.modules() if type(m).__name__ in names]


def shard(
    model: nn.Module, ctx: DistContext, *, trainable: bool = True, mixed_precision: bool = False
) -> nn.Module:
    """FSDP2 per decoder layer and at the root (the same object, now sharded), or DDP.
    `mixed_precision`: bf16 parameters for compute, fp32 gradient reduction (FSDP2 only)."""
    if ctx.world == 1:
        return model
    if sharding_mode() == "ddp":
        if not trainable:
            return model  # a frozen reference is only read: replicas need no wrapper
        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(ctx.device.type, (ctx.world,))
    extra: dict[str, Any] = {}
    if mixed_precision:
        extra["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, **extra)
    fully_shard(model, mesh=mesh, **extra)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The module DDP wraps (FSDP2 shards in place, so its model is its own)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def gradient_sync(model: nn.Module, sync: bool) -> AbstractContextManager[Any]:
    """DDP: all-reduce gradients only after the last micro-batch. FSDP2 reduce-scatters after
    each one (its sharded gradients accumulate; keeping full ones would cost the memory that
    sharding saves)."""
    if isinstance(model, nn.parallel.DistributedDataParallel) and not sync:
        return model.no_sync()
    return nullcontext()


def broadcast_parameters(model: nn.Module, ctx: DistContext) -> None:
    """Every rank takes rank 0's values of the trainable parameters (before sharding)."""
    if ctx.world == 1:
        return
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                dist.broadcast(param.data, src=0)


def loads_on_rank0(model_dir: Path, ctx: DistContext) -> bool:
    """Whether a session's model is built on the meta device and filled from rank 0: FSDP2 on
    several ranks, for a transformers folder (a GGUF file has no config to build from)."""
    from .models import gguf_file

    return ctx.world > 1 and sharding_mode() == "fsdp" and gguf_file(model_dir) is None


def rank0_into_shards(
    model: nn.Module,
    source: nn.Module | None,
    ctx: DistContext,
    *,
    trainable: bool,
    mixed_precision: bool = False,
) -> nn.Module:
    """`model` (built on the meta device, alike on every rank) sharded with FSDP2, allocated
    shard by shard on this rank's device, and filled with `source`'s values (rank 0's model in
    host memory; None elsewhere) by broadcast: no rank ever holds the whole model on its device.

    `mixed_precision`: FSDP2 gathers the parameters in bf16 for compute and reduces gradients in
    fp32, so a full fine-tune keeps only its fp32 shards (no second full-size copy)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    if not trainable:
        model.requires_grad_(False).eval()
    shard(model, ctx, trainable=trainable, mixed_precision=mixed_precision)
    model.to_empty(device=ctx.device)
    full = source.state_dict() if source is not None else {}
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    set_model_state_dict(model, full, options=options)
    # Buffers left out of the state dict (rotary frequencies) are computed at init, which the
    # meta device skipped: rank 0's values, to every rank.
    kept = set(model.state_dict())
    mine = dict(source.named_buffers()) if source is not None else {}
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name in kept:
                continue
            if ctx.leader:
                buffer.copy_(mine[name])
            dist.broadcast(buffer, src=0)
    if trainable:
        model.train()
    return model


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """transformers' activation checkpointing per decoder layer (non-reentrant: works with FSDP2
    and with frozen inputs under LoRA)."""
    target = unwrap(model)
    kwargs = {"use_reentrant": False}
    # transformers 5 renames it (the old name still works there, with a warning).
    if hasattr(target, "activation_checkpointing_enable"):
        target.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)  # type: ignore[operator]
    elif hasattr(target, "gradient_checkpointing_enable"):
        target.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)  # type: ignore[operator]
    else:
        raise ValueError("--gradient-checkpointing: this model does not support it")
