"""One session's model, adapter, optimiser and schedule; every rank holds one per session.

Each train step is one forward-backward over the batch (this rank's slice, cut into
micro-batches by token budget, gradients accumulated) and one optimiser step. The loss of every
micro-batch is divided by the global loss-token count, all-reduced before the first forward, so
the step does not depend on how the batch is cut or on how many ranks share it.

The KL reference is the base model: for LoRA the same model inside peft's `disable_adapter()`
(no second copy), for a full fine-tune a frozen copy read in bf16 on GPU. On GPU a LoRA base is
bf16 and its adapter fp32 (peft's default); a full fine-tune keeps fp32 weights and optimiser
state and computes in bf16 under autocast (under FSDP2 its parameters are gathered in bf16).

Under FSDP2 on several ranks no rank materialises the whole model on its device: the model is
built on the meta device, sharded, and filled from rank 0's host copy (`rank0_into_shards`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
from safetensors.torch import load_file
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

from . import losses
from .batching import MicroBatch, collate, empty_micro_batch, micro_batches, rank_slice
from .distributed import (
    AgreedFailure,
    DistContext,
    agree,
    all_reduce,
    broadcast_command,
    broadcast_parameters,
    enable_gradient_checkpointing,
    gradient_sync,
    loads_on_rank0,
    rank0_into_shards,
    shard,
    step_seed,
    unwrap,
)
from .models import default_dtype, load_model, load_tokenizer, meta_model
from .optim_state import load_optimizer_state, save_optimizer_state
from .protocol import GrpoExample, GrpoLoss, Loss, Optimizer, ProtocolError, SessionConfig, SftExample
from .tokens import EncodedExample, encode_example, end_of_turn_id, ended_turn

# The learning tests' negative control (`SPARK_TRAINER_TEST_NEGATE_ADVANTAGES=1`): every GRPO
# advantage is trained with its sign flipped, so a run that still "improves" shows a broken test.
NEGATED_ADVANTAGES_FOR_TESTS = -1.0 if os.environ.get("SPARK_TRAINER_TEST_NEGATE_ADVANTAGES") == "1" else 1.0

# verl's default PPO clip range.
DEFAULT_CLIP_RATIO = 0.2
DEFAULT_KL_ESTIMATOR = "low-var-kl"
OPTIMIZER_FILE = "optimizer.safetensors"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def scheduled_learning_rate(optimizer: Optimizer, updates_done: int) -> float:
    """Linear warm-up over `warmupSteps` updates, then constant (the sandbox trainer's rule)."""
    if optimizer.warmupSteps > 0:
        return optimizer.learningRate * min(1.0, (updates_done + 1) / optimizer.warmupSteps)
    return optimizer.learningRate


def make_optimizer(params: list[torch.nn.Parameter], spec: Optimizer) -> torch.optim.Optimizer:
    """AdamW decays decoupled; Adam adds the decay to the gradient (L2); SGD is plain (no
    momentum: `betas` do not apply), as in the sandbox trainer."""
    if spec.name == "adamw":
        return torch.optim.AdamW(
            params, lr=spec.learningRate, betas=spec.betas, weight_decay=spec.weightDecay
        )
    if spec.name == "adam":
        return torch.optim.Adam(params, lr=spec.learningRate, betas=spec.betas, weight_decay=spec.weightDecay)
    return torch.optim.SGD(params, lr=spec.learningRate, weight_decay=spec.weightDecay)


def lora_config(config: SessionConfig) -> LoraConfig:
    adapter = config.adapter
    assert adapter.kind == "lora"
    # PEFT takes "all-linear" as a plain string, not inside a list.
    targets: str | list[str] = (
        "all-linear" if adapter.targetModules == ["all-linear"] else adapter.targetModules
    )
    return LoraConfig(
        r=adapter.rank,
        lora_alpha=adapter.alpha,
        target_modules=targets,
        lora_dropout=adapter.dropout or 0.0,
        task_type="CAUSAL_LM",
    )


def check_same_optimizer(engine_state: dict[str, Any], name: str) -> None:
    """A resumed session keeps the checkpoint's optimiser state with its own hyperparameters; that
    only makes sense for the same optimiser (Adam's moments mean nothing to SGD, and back)."""
    saved = engine_state.get("optimizer")
    if saved is not None and saved != name and int(engine_state.get("updatesDone", 0)) > 0:
        raise AgreedFailure(
            f"optimizer.name: the checkpoint's optimiser is {saved}, this session's is {name}; "
            f"resume with {saved} (learning rate, betas, weight decay and warm-up may change) "
            "or start a new run"
        )


def non_finite_tensors(tree: dict[str, Any], prefix: str = "") -> list[str]:
    """Names of the tensors in a (nested) state dict that hold an Inf or a NaN."""
    bad: list[str] = []
    for name, value in tree.items():
        if isinstance(value, dict):
            bad += non_finite_tensors(value, prefix=f"{prefix}{name}.")
        elif isinstance(value, torch.Tensor) and value.is_floating_point():
            if not bool(torch.isfinite(value).all()):
                bad.append(f"{prefix}{name}")
    return bad


class Engine:
    def __init__(
        self,
        model_dir: Path,
        config: SessionConfig,
        ctx: DistContext,
        micro_batch_tokens: int,
        resume: tuple[Path, dict[str, Any]] | None = None,
        *,
        gradient_checkpointing: bool = False,
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.micro_batch_tokens = micro_batch_tokens
        self.lora = config.adapter.kind == "lora"
        self.tokenizer = load_tokenizer(model_dir)
        self.eot_id = end_of_turn_id(self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else self.eot_id

        # A full fine-tune keeps fp32 master weights (bf16 cannot hold updates of 1e-6 relative
        # size) and computes in bf16 under autocast on GPU; LoRA trains fp32 adapters on bf16 bases.
        on_gpu = ctx.device.type == "cuda"
        self.compute_dtype = torch.bfloat16 if on_gpu else None
        self.gradient_checkpointing = gradient_checkpointing
        weights_dtype = torch.float32 if not self.lora else default_dtype(ctx.device)
        reference_dtype = torch.bfloat16 if on_gpu else torch.float32
        self.updates_done = int(resume[1].get("updatesDone", 0)) if resume is not None else 0
        if resume is not None:
            check_same_optimizer(resume[1], config.optimizer.name)
        self.reference: torch.nn.Module | None = None
        if loads_on_rank0(model_dir, ctx):
            # FSDP2 on many ranks: no rank puts the whole model on its GPU. Every rank builds the
            # model on the meta device and shards it; rank 0 alone reads the weights into host
            # memory and broadcasts them into the shards (as verl and torchtitan do).
            source = self._build(load_model(model_dir, "cpu", weights_dtype)) if ctx.leader else None
            if not self.lora:
                # The reference is the base model, in bf16 on GPU: read before any checkpoint.
                self.reference = rank0_into_shards(
                    meta_model(model_dir, reference_dtype), source, ctx, trainable=False
                )
            optimizer_state = self._read_checkpoint(source, resume[0]) if resume is not None else None
            self.model = rank0_into_shards(
                self._build(meta_model(model_dir, weights_dtype)),
                source,
                ctx,
                trainable=True,
                mixed_precision=on_gpu and not self.lora,
            )
            del source
        else:
            model = self._build(load_model(model_dir, ctx.device, weights_dtype))
            if not self.lora:
                # Read again in the reference's dtype: a copy of the fp32 weights would first
                # put a second fp32 model on the GPU.
                self.reference = load_model(model_dir, ctx.device, reference_dtype)
                self.reference.requires_grad_(False).eval()
            optimizer_state = self._read_checkpoint(model, resume[0]) if resume is not None else None
            broadcast_parameters(model, ctx)
            model.train()
            self.model = shard(model, ctx)
            if self.reference is not None:
                self.reference = shard(self.reference, ctx, trainable=False)
        if self.reference is not None:
            self.reference.config.use_cache = False  # type: ignore[union-attr]
        if gradient_checkpointing:
            enable_gradient_checkpointing(self.model)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(self.params, config.optimizer)
        if resume is not None and self._has_optimizer_state():
            # torch's load replaces the param groups with the checkpoint's: keep its state (the
            # moments) but this session's hyperparameters, which may change on resume.
            settings = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
            options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=ctx.world > 1)
            set_optimizer_state_dict(
                self.model, self.optimizer, optim_state_dict=optimizer_state or {}, options=options
            )
            for group, mine in zip(self.optimizer.param_groups, settings, strict=True):
                group.update(mine)

    def _build(self, model: torch.nn.Module) -> torch.nn.Module:
        """The base model made into this session's: the LoRA adapter (its random init seeded
        alike on every rank, apart from the step stream), no KV cache."""
        model.config.use_cache = False  # type: ignore[union-attr]
        if not self.lora:
            return model
        devices = [self.ctx.device] if self.ctx.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(step_seed(self.config.seed, -1, 0))
            peft_model = get_peft_model(model, lora_config(self.config))  # type: ignore[arg-type]
        # The name the control plane knows the base by; a local path means nothing elsewhere.
        peft_model.peft_config["default"].base_model_name_or_path = self.config.baseModel
        return peft_model

    # ---- training -------------------------------------------------------------------------

    def train_step(
        self, step: int, examples: Sequence[SftExample | GrpoExample], loss: Loss, learning_rate: float | None
    ) -> dict[str, float]:
        """One forward-backward and one optimiser step. Metrics: `loss` (token-mean over the
        batch), `tokens` (loss tokens: completions plus their end-of-turn tokens), `examples`,
        `learningRate` (the rate used), `gradNorm` (before clipping); GRPO adds the token-means
        `kl` (the chosen estimator), `entropy` and `clipFraction`. A non-finite gradient norm
        skips the optimiser update (weights and optimiser state untouched, gradients zeroed) and
        adds `skipped: 1`; `gradNorm` is then NaN (left out on the wire)."""
        ctx = self.ctx
        torch.manual_seed(step_seed(self.config.seed, step, ctx.rank))  # dropout, exact on resume
        mine = self._prepare(examples, loss)
        groups = micro_batches([len(e.input_ids) for e in mine], self.micro_batch_tokens)
        n_tokens, n_examples = all_reduce(ctx, [sum(e.completion_len for e in mine), len(mine)])
        (n_micro,) = all_reduce(ctx, [len(groups)], op="max")
        # Gradients are averaged over ranks; the loss is already a global mean, so undo that.
        scale = float(ctx.world)
        sums = {"loss": 0.0, "kl": 0.0, "entropy": 0.0, "clipped": 0.0}
        for index in range(int(n_micro)):
            batch = (
                collate([mine[i] for i in groups[index]], self.pad_id, ctx.device)
                if index < len(groups)
                else empty_micro_batch(self.pad_id, ctx.device)
            )
            with gradient_sync(self.model, sync=index == n_micro - 1):
                total, parts = self._micro_batch_loss(batch, loss, int(n_tokens))
                (total * scale).backward()
            for key, value in parts.items():
                sums[key] += value
        grad_norm = self._clip_gradients()
        rate = (
            learning_rate
            if learning_rate is not None
            else scheduled_learning_rate(self.config.optimizer, self.updates_done)
        )
        # An Inf/NaN gradient (a bf16 overflow in backward) would make every weight NaN, and a
        # NaN checkpoint would then be published and resumed from. The norm is global (the same
        # on every rank), so every rank skips alike; the step still counts as applied, reported
        # with `skipped: 1`, so the control plane moves on instead of replaying it forever.
        skipped = not math.isfinite(grad_norm)
        if not skipped:
            for group in self.optimizer.param_groups:
                group["lr"] = rate
            self.optimizer.step()
            # Counts updates, not steps: warm-up and Adam's bias correction see only real updates.
            self.updates_done += 1
        self.optimizer.zero_grad(set_to_none=True)

        keys = list(sums)
        reduced = dict(zip(keys, all_reduce(ctx, [sums[k] for k in keys]), strict=True))
        count = max(n_tokens, 1.0)
        metrics = {
            "loss": reduced["loss"],
            "tokens": n_tokens,
            "examples": n_examples,
            "learningRate": rate,
            "gradNorm": grad_norm,
        }
        if loss.kind == "grpo":
            metrics |= {
                "kl": reduced["kl"] / count,
                "entropy": reduced["entropy"] / count,
                "clipFraction": reduced["clipped"] / count,
            }
        if skipped:
            metrics["skipped"] = 1.0
        return metrics

    @torch.no_grad()
    def completion_log_probs(self, examples: Sequence[SftExample | GrpoExample]) -> list[float]:
        """log π(completion + end-of-turn | prompt) of each example under the current weights
        (one rank: a diagnostic for tests and evaluations, not a collective)."""
        out = []
        for example in examples:
            ended = ended_turn(example.finishReason) if isinstance(example, GrpoExample) else True
            encoded = encode_example(self.tokenizer, example.prompt, example.completion, ended=ended)
            batch = collate([encoded], self.pad_id, self.ctx.device)
            where = batch.loss_mask.bool()
            log_probs = losses.token_log_probs(self._policy_logits(batch)[where], batch.targets[where])
            out.append(float(log_probs.sum().item()))
        return out

    def _prepare(self, examples: Sequence[SftExample | GrpoExample], loss: Loss) -> list[EncodedExample]:
        """This rank's slice, encoded. Each rank encodes only its own examples, so a line that
        cannot be encoded (a chat template that refuses its roles, say) may fail on one rank
        alone: the ranks agree on the outcome before any model collective, and every rank raises
        the same `invalid-request`, instead of the others waiting in NCCL for the one that left."""
        indices = rank_slice(len(examples), self.ctx.rank, self.ctx.world)
        encoded: list[EncodedExample] = []
        error: str | None = None
        for i in indices:
            try:
                encoded.append(self._encode(examples[i], loss))
            except Exception as exc:  # any encoding error is the line's: reported on every rank below
                error = f"batch example {i + 1}: cannot be encoded: {type(exc).__name__}: {exc}"
                break
        error = agree(self.ctx, error)
        if error is not None:
            raise ProtocolError("invalid-request", error)
        return encoded

    def _encode(self, example: SftExample | GrpoExample, loss: Loss) -> EncodedExample:
        if loss.kind == "grpo":
            if not isinstance(example, GrpoExample):
                raise ValueError("a grpo step needs GRPO lines (with `advantage`)")
            sign = NEGATED_ADVANTAGES_FOR_TESTS
            return encode_example(
                self.tokenizer,
                example.prompt,
                example.completion,
                sign * example.advantage,
                [s.model_copy(update={"advantage": sign * s.advantage}) for s in example.stepAdvantages or []]
                or None,
                ended=ended_turn(example.finishReason),
            )
        return encode_example(self.tokenizer, example.prompt, example.completion)

    def _micro_batch_loss(
        self, batch: MicroBatch, loss: Loss, n_tokens: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """This micro-batch's share of the batch's token-mean loss, and its unnormalised sums.

        Only the loss positions' logits are kept ([N, V] rather than [B, T, V]): prompts are
        usually most of the tokens, and a large vocabulary makes each position costly in fp32.
        """
        where = batch.loss_mask.bool()
        targets, weights = batch.targets[where], batch.weights[where]
        every = torch.ones_like(weights)
        logits = self._policy_logits(batch)[where]
        log_probs = losses.token_log_probs(logits, targets)
        if not isinstance(loss, GrpoLoss):
            total = losses.token_sum(losses.cross_entropy(log_probs), every, n_tokens)
            return total, {"loss": total.item()}
        with torch.no_grad():
            ref_log_probs = losses.token_log_probs(self._reference_logits(batch)[where], targets)
        # With a coefficient the entropy is in the loss and needs its graph; else it is only a
        # metric, computed in chunks without one.
        if loss.entropyCoefficient > 0:
            entropy = losses.token_entropy(logits)
        else:
            entropy = losses.token_entropy_chunked(logits.detach())
        parts = losses.grpo_loss(
            log_probs,
            # π_old: this request's own forward before the update (one update per request).
            log_probs.detach(),
            ref_log_probs,
            entropy,
            weights,
            clip_ratio=loss.clipRatio if loss.clipRatio is not None else DEFAULT_CLIP_RATIO,
            kl_coefficient=loss.klCoefficient,
            entropy_coefficient=loss.entropyCoefficient,
            kl_estimator=loss.klEstimator or DEFAULT_KL_ESTIMATOR,
        )
        total = losses.token_sum(parts["loss"], every, n_tokens)
        sums = {k: float(parts[k].detach().sum().item()) for k in ("kl", "entropy", "clipped")}
        return total, {"loss": total.item(), **sums}

    def _autocast(self) -> AbstractContextManager[Any]:
        if self.compute_dtype is None:
            return nullcontext()
        return torch.autocast(self.ctx.device.type, dtype=self.compute_dtype)

    def _policy_logits(self, batch: MicroBatch) -> torch.Tensor:
        """[B, T-1, V]: position t predicts target t."""
        with self._autocast():
            out = self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        return out.logits[:, :-1]

    def _reference_logits(self, batch: MicroBatch) -> torch.Tensor:
        """The base model's logits: the same model with the adapter off (LoRA), else the frozen copy."""
        inputs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        if self.reference is not None:
            with self._autocast():
                return self.reference(**inputs).logits[:, :-1]
        peft_model = unwrap(self.model)
        with peft_model.disable_adapter(), self._autocast():  # type: ignore[operator]
            return peft_model(**inputs).logits[:, :-1]

    def _clip_gradients(self) -> float:
        """The gradients' global L2 norm before clipping; clips to `maxGradNorm` when set."""
        grads = [p.grad for p in self.params if p.grad is not None]
        if not grads:
            return 0.0
        max_norm = self.config.optimizer.maxGradNorm
        if max_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        else:
            norm = torch.nn.utils.get_total_norm(grads)
        full = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
        value = float(full.item())
        return value if math.isfinite(value) else float("nan")

    # ---- state ----------------------------------------------------------------------------

    def save(self, directory: Path) -> dict[str, Any]:
        """Rank 0 writes the weights and `optimizer.safetensors`; every rank gathers its shards."""
        options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=self.lora)
        weights = get_model_state_dict(self.model, options=options)
        optimizer = self._optimizer_state()
        error: str | None = None
        if self.ctx.leader:
            try:
                self._write(directory, weights, optimizer)
            except Exception as exc:  # rank 0's own I/O: every rank learns of it below
                error = f"{type(exc).__name__}: {exc}"
        # The ranks are past every collective of the save, so a failure here is agreed, not fatal.
        error = broadcast_command(self.ctx, error)
        if error is not None:
            raise AgreedFailure(f"checkpoint not saved: {error}")
        return self.engine_state()

    def _write(self, directory: Path, weights: dict[str, Any], optimizer: dict[str, Any]) -> None:
        """Rank 0: the gathered weights and optimiser state into `directory`."""
        # The last guard of "nothing non-finite is ever saved or published": a checkpoint is
        # what the inference server loads and what recovery resumes from.
        bad = non_finite_tensors(weights) + non_finite_tensors(optimizer["state"], prefix="optimizer ")
        if bad:
            raise ValueError(
                f"refusing to save a checkpoint with non-finite values in {', '.join(bad[:3])}"
                + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            )
        directory.mkdir(parents=True, exist_ok=True)
        model = unwrap(self.model)
        if self.lora:
            # save_embedding_layers=False: "auto" would look the base model up on a hub.
            model.save_pretrained(directory, state_dict=weights, save_embedding_layers=False)  # type: ignore[operator]
        else:
            if getattr(model.config, "tie_word_embeddings", False):
                # gathered shards no longer share storage: drop the tied copy, as one rank does
                weights.pop("lm_head.weight", None)
            model.save_pretrained(directory, state_dict=weights, safe_serialization=True)  # type: ignore[operator]
        if self.lora:
            (directory / "README.md").unlink(missing_ok=True)  # peft's model card: not ours
        else:
            self.tokenizer.save_pretrained(directory)  # a full checkpoint is a servable model folder
        save_optimizer_state(optimizer, directory / OPTIMIZER_FILE)

    def engine_state(self) -> dict[str, Any]:
        spec = self.config.optimizer
        return {
            "updatesDone": self.updates_done,
            "scheduler": {
                "kind": "linear-warmup",
                "warmupSteps": spec.warmupSteps,
                "position": self.updates_done,
            },
            # No RNG state to carry: each step reseeds from (seed, step, rank).
            "rng": {"kind": "per-step", "seed": self.config.seed, "derivation": "sha256(seed, step, rank)"},
            "worldSize": self.ctx.world,
            # Read on resume: another optimiser's state cannot be carried over (D3).
            "optimizer": self.config.optimizer.name,
        }

    def _load_weights(self, target: torch.nn.Module, directory: Path) -> None:
        """Rank 0, before sharding: the checkpoint's adapter (or full weights) into the model."""
        if self.lora:
            result = set_peft_model_state_dict(target, load_file(directory / ADAPTER_WEIGHTS))
            unexpected = list(getattr(result, "unexpected_keys", []) or [])
            if unexpected:
                raise ValueError(f"the checkpoint's adapter has weights this model lacks: {unexpected[:3]}")
            return
        state: dict[str, torch.Tensor] = {}
        for path in sorted(directory.glob("model*.safetensors")):
            state.update(load_file(path))
        if not state:
            raise ValueError(f"no model weights (model*.safetensors) in the checkpoint at {directory}")
        missing, unexpected = target.load_state_dict(state, strict=False)
        tied = getattr(target.config, "tie_word_embeddings", False)
        missing = [k for k in missing if not (tied and k.endswith("lm_head.weight"))]
        if missing or unexpected:
            raise ValueError(
                "the checkpoint's weights do not fit the model: "
                f"missing {missing[:3]}, unexpected {unexpected[:3]}"
            )

    def _optimizer_state(self) -> dict[str, Any]:
        """The full optimiser state keyed by parameter name (all ranks take part).

        An optimiser without state (before its first step; SGD without momentum always) is
        written from its param groups: torch's state-dict helpers would first run a zero-gradient
        step to create the state, and that step would count in Adam's bias correction, so saving
        a checkpoint would change the training that follows it.
        """
        if not self.optimizer.state:
            names = {id(p): n for n, p in unwrap(self.model).named_parameters()}
            groups = [
                {
                    **{k: v for k, v in g.items() if k != "params"},
                    "params": [names[id(p)] for p in g["params"]],
                }
                for g in self.optimizer.param_groups
            ]
            return {"state": {}, "param_groups": groups}
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_optimizer_state_dict(self.model, self.optimizer, options=options)

    def _has_optimizer_state(self) -> bool:
        """Whether a checkpoint holds optimiser tensors (the same rule as `_optimizer_state`),
        decided alike on every rank without reading the file."""
        return self.updates_done > 0 and self.config.optimizer.name != "sgd"

    def _read_checkpoint(self, model: torch.nn.Module | None, directory: Path) -> dict[str, Any] | None:
        """Rank 0 loads the weights into the unsharded model and reads the optimiser state; every
        rank learns whether that worked, so a bad checkpoint fails the open on all ranks alike
        instead of leaving the others waiting in a collective."""
        state: dict[str, Any] | None = None
        error: str | None = None
        if self.ctx.leader:
            try:
                assert model is not None
                self._load_weights(model, directory)
                if self._has_optimizer_state():
                    state = load_optimizer_state(directory / OPTIMIZER_FILE)
            except Exception as exc:  # reported on every rank below
                error = f"{type(exc).__name__}: {exc}"
        error = broadcast_command(self.ctx, error)
        if error is not None:
            raise AgreedFailure(f"cannot resume from the checkpoint at {directory}: {error}")
        return state

    def close(self) -> None:
        del self.model, self.optimizer, self.reference, self.params
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
