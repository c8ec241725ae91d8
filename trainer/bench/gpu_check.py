"""The reference trainer's checks that need a GPU (issue 21, item 8), on one GPU in a few minutes.

Run by `trainer/gpu-check.sh` with the system python3 (torch, transformers, peft, safetensors and
pydantic; not the project's venv) and `PYTHONPATH=trainer/src`. Nothing is downloaded: the model is
a random-initialised Qwen2.5-0.5B-shaped Qwen2 written from a config here, with the tiny model's
locally trained tokenizer. `--device cpu --shape tiny` runs every check that does not need CUDA on
the tiny model, so the script is tried before it meets a GPU.

Checks (each prints one line; the process exits 1 when one fails; `results.json` holds the figures):
  dtypes        LoRA: base bf16, adapter fp32, Adam state fp32; full: fp32 weights, bf16 reference
  kl-step0      KL to the base is 0 at step 0 (LoRA B starts at 0)
  finite        loss and gradient norm finite
  cpu-vs-gpu    CPU fp32 vs GPU bf16: loss, gradient norm, and the weight change of one SGD step
  inf-grad      an Inf injected into one gradient: step skipped (skipped: 1), weights unchanged
  memory        max_memory_allocated of one GRPO step on one micro-batch of 4,096 tokens (LoRA and
                full, with and without gradient checkpointing)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from spark_trainer.distributed import DistContext
from spark_trainer.engine import Engine
from spark_trainer.protocol import GrpoExample, GrpoLoss, SessionConfig, SftExample, SftLoss
from spark_trainer.tiny_model import make_tiny_model

# Qwen2.5-0.5B's shape (its config.json), random weights.
QWEN25_05B = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}
LORA = {"kind": "lora", "rank": 16, "alpha": 32, "targetModules": ["all-linear"]}
SFT = SftLoss(kind="sft")
GRPO = GrpoLoss(kind="grpo", klCoefficient=0.001, entropyCoefficient=0.0)


def config(adapter: dict[str, Any], optimizer: str = "adamw", lr: float = 1e-4) -> SessionConfig:
    return SessionConfig.model_validate(
        {
            "baseModel": "check",
            "adapter": adapter,
            "optimizer": {
                "name": optimizer,
                "learningRate": lr,
                "betas": [0.9, 0.999],
                "weightDecay": 0.0,
                "warmupSteps": 0,
            },
            "seed": 11,
        }
    )


def write_model(out: Path, shape: str) -> Path:
    """The model folder: the tiny model itself, or a 0.5B-shaped random Qwen2 with its tokenizer."""
    tiny = make_tiny_model(out / "tiny", seed=0)
    if shape == "tiny":
        return tiny
    from transformers import Qwen2Config, Qwen2ForCausalLM

    folder = out / "qwen2.5-0.5b-shape"
    if (folder / "config.json").is_file():
        return folder
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen2ForCausalLM(Qwen2Config(**QWEN25_05B))
    model.to(torch.bfloat16).save_pretrained(folder, safe_serialization=True)
    for name in os.listdir(tiny):
        if "token" in name or name.endswith(".jinja"):
            shutil.copy(tiny / name, folder / name)
    del model
    return folder


def sft_lines(count: int, words: int) -> list[SftExample]:
    return [
        SftExample.model_validate(
            {
                "prompt": [{"role": "user", "content": f"Natalia sold {i + 41} clips in April. " * words}],
                "completion": f"Step 1: {i + 41} / 2 = {(i + 41) / 2}. " * max(1, words // 2),
            }
        )
        for i in range(count)
    ]


def grpo_lines(count: int, words: int) -> list[GrpoExample]:
    return [
        GrpoExample.model_validate({**line.model_dump(), "advantage": 1.0 if i % 2 == 0 else -1.0})
        for i, line in enumerate(sft_lines(count, words))
    ]


def one_line_of(engine: Engine, tokens: int) -> tuple[list[GrpoExample], int]:
    """One GRPO line of at most `tokens` tokens in all and more than 95% of them (a quarter of the
    text completion), and its length."""
    words = 8.0
    for _ in range(20):
        count = max(1, int(words))
        line = GrpoExample.model_validate(
            {
                "prompt": [{"role": "user", "content": "Natalia sold 48 clips in April. " * (3 * count)}],
                "completion": "Step 1: 48 / 2 = 24. " * count,
                "advantage": 1.0,
            }
        )
        length = len(engine._encode(line, GRPO).input_ids)
        if 0.95 * tokens < length <= tokens:
            return [line], length
        words = words * tokens / length * (0.99 if length > tokens else 1.0)
    return [line], length


def trainable(engine: Engine) -> dict[str, torch.Tensor]:
    named = engine.model.named_parameters()
    return {n: p.detach().float().cpu().clone() for n, p in named if p.requires_grad}


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


class Checks:
    def __init__(self) -> None:
        self.results: dict[str, Any] = {}
        self.failed: list[str] = []

    def record(self, name: str, ok: bool, **figures: Any) -> None:
        self.results[name] = {"ok": ok, **figures}
        if not ok:
            self.failed.append(name)
        shown = ", ".join(f"{k}={v}" for k, v in figures.items())
        print(f"[gpu-check] {'ok  ' if ok else 'FAIL'} {name}: {shown}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--shape", choices=["qwen2.5-0.5b", "tiny"], default="qwen2.5-0.5b")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "trainer/.gpu-check")))
    parser.add_argument("--tolerance", type=float, default=2e-2, help="relative, CPU fp32 vs GPU bf16")
    parser.add_argument("--memory-tokens", type=int, default=4096)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("[gpu-check] --device cuda: no working CUDA GPU here", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    device = torch.device(args.device)
    ctx = DistContext(rank=0, world=1, device=device)
    cpu = DistContext(rank=0, world=1, device=torch.device("cpu"))
    checks = Checks()
    started = time.monotonic()
    model_dir = write_model(args.out / "models", args.shape)
    checks.results["setup"] = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "torch": torch.__version__,
        "shape": args.shape,
        "modelSeconds": round(time.monotonic() - started, 1),
    }
    print(f"[gpu-check] model ready in {time.monotonic() - started:.0f} s: {model_dir}", flush=True)
    on_gpu = args.device == "cuda"

    # dtypes, KL at step 0, finite loss and gradient norm (LoRA, AdamW).
    lora = Engine(model_dir, config(LORA), ctx, 4096)
    first = lora.train_step(0, grpo_lines(4, 6), GRPO, None)
    base = {str(p.dtype) for n, p in lora.model.named_parameters() if not p.requires_grad}
    adapter = {str(p.dtype) for n, p in lora.model.named_parameters() if p.requires_grad}
    adam = {str(v.dtype) for s in lora.optimizer.state.values() for k, v in s.items() if k != "step"}
    want_base = "torch.bfloat16" if on_gpu else "torch.float32"
    checks.record(
        "dtypes-lora",
        base == {want_base} and adapter == {"torch.float32"} and adam == {"torch.float32"},
        base=sorted(base),
        adapter=sorted(adapter),
        adamState=sorted(adam),
    )
    checks.record("kl-step0", abs(first["kl"]) < 1e-6, kl=first["kl"])
    checks.record(
        "finite",
        math.isfinite(first["loss"]) and math.isfinite(first["gradNorm"]),
        loss=first["loss"],
        gradNorm=first["gradNorm"],
    )

    # D1 on this device: an Inf in one gradient skips the update.
    before = trainable(lora)
    hook = lora.params[0].register_hook(lambda grad: torch.full_like(grad, float("inf")))
    poisoned = lora.train_step(1, grpo_lines(4, 6), GRPO, None)
    hook.remove()
    after = trainable(lora)
    unchanged = all(torch.equal(before[n], after[n]) for n in before)
    finite = all(bool(torch.isfinite(t).all()) for t in after.values())
    checks.record(
        "inf-grad",
        poisoned.get("skipped") == 1.0 and unchanged and finite,
        skipped=poisoned.get("skipped"),
        weightsUnchanged=unchanged,
        allFinite=finite,
    )
    del lora
    if on_gpu:
        torch.cuda.empty_cache()

    full = Engine(model_dir, config({"kind": "full"}), ctx, 4096)
    weights = {str(p.dtype) for p in full.model.parameters()}
    reference = {str(p.dtype) for p in full.reference.parameters()} if full.reference is not None else set()
    checks.record(
        "dtypes-full",
        weights == {"torch.float32"} and reference == {want_base},
        weights=sorted(weights),
        reference=sorted(reference),
    )
    del full
    if on_gpu:
        torch.cuda.empty_cache()

    # CPU fp32 vs this device (bf16: a LoRA's base, a full fine-tune's autocast): one SGD step on
    # the same lines; LoRA's second step, since its first moves only B (A's gradient is 0 at B = 0).
    lines = sft_lines(2, 10)
    for kind, adapter_spec, steps in (("full", {"kind": "full"}, 1), ("lora", LORA, 2)):
        spec = config(adapter_spec, optimizer="sgd", lr=1e-2)
        figures: dict[str, dict[str, float]] = {}
        for name, where in (("cpu", cpu), ("device", ctx)):
            engine = Engine(model_dir, spec, where, 4096)
            for step in range(steps - 1):
                engine.train_step(step, lines, SFT, None)
            start = trainable(engine)
            metrics = engine.train_step(steps - 1, lines, SFT, None)
            end = trainable(engine)
            change = math.sqrt(sum(float((end[n] - start[n]).double().square().sum()) for n in start))
            figures[name] = {"loss": metrics["loss"], "gradNorm": metrics["gradNorm"], "weightChange": change}
            del engine
        agree = {k: rel(figures["device"][k], figures["cpu"][k]) for k in figures["cpu"]}
        checks.record(
            f"cpu-vs-device-{kind}",
            all(v <= args.tolerance for v in agree.values()),
            relative={k: round(v, 5) for k, v in agree.items()},
            cpu=figures["cpu"],
            device=figures["device"],
        )

    # Peak memory of one GRPO step on one micro-batch of --memory-tokens tokens.
    if on_gpu:
        memory: dict[str, float] = {}
        for name, adapter_spec, checkpointing in (
            ("lora", LORA, False),
            ("lora+checkpointing", LORA, True),
            ("full", {"kind": "full"}, False),
            ("full+checkpointing", {"kind": "full"}, True),
        ):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            engine = Engine(
                model_dir,
                config(adapter_spec),
                ctx,
                args.memory_tokens,
                gradient_checkpointing=checkpointing,
            )
            loaded = torch.cuda.max_memory_allocated()
            line, length = one_line_of(engine, args.memory_tokens)
            torch.cuda.reset_peak_memory_stats()
            metrics = engine.train_step(0, line, GRPO, None)
            memory[name] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
            memory[f"{name}:load"] = round(loaded / 2**30, 3)
            memory[f"{name}:tokens"] = length
            del engine
        checks.record("memory", True, maxMemoryAllocatedGiB=memory)

    checks.results["seconds"] = round(time.monotonic() - started, 1)
    (args.out / "results.json").write_text(json.dumps(checks.results, indent=2))
    print(f"[gpu-check] {'FAILED: ' + ', '.join(checks.failed) if checks.failed else 'all checks passed'}")
    print(f"[gpu-check] {checks.results['seconds']} s; figures in {args.out / 'results.json'}")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
