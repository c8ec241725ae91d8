"""`make-world-models DIR [--seed S] [--size ci|default]`: the neural world's models, built here.

Two models, one per role, sharing one tokenizer:
- `DIR/policy/`: the generator. It learns to solve (SPARK's policy format) and, from a small share
  of its text, the PRM-CoT format: it is the base that stage 2 fine-tunes into a PRM (as in the
  paper, where PRMs start from the generator's base), and a weak judge before that.
- `DIR/verifier/`: the stage-1 verifier: the policy's weights, then a budget of its own on
  verifications alone, with more of the solutions wrong and its verdict tokens weighed up. Solving
  and verifying in one small model made it call every step correct (balanced accuracy 0.50), and a
  verifier from scratch copied the stated result into its recomputation (`docs/neural-world.md`).

Each is a transformers folder (safetensors, tokenizer, chat template) that `serve` and
`serve-model` load as they are. `DIR/world.json` records the problem distribution, the budgets
and the accuracies measured on held-out problems. The build is cached by a content hash of its
inputs: the exported text, the budgets, the seed and this package's code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerFast

from ..tiny_model import chatml_tokenizer
from .measure import greedy_answers, policy_accuracy, verifier_accuracy
from .pretrain import Budget, Shape, encode_examples, new_model, pretrain, read_jsonl
from .tokenizer import train_world_tokenizer

REPO = Path(__file__).resolve().parents[4]


@dataclass(frozen=True)
class WorldSize:
    """Everything a size fixes: the problems (None: the world's defaults), the text, shapes and budgets."""

    problems: dict[str, int] | None
    policy_examples: int
    verifier_examples: int
    heldout: int
    vocab: int
    policy_shape: Shape
    policy_budget: Budget
    verifier_shape: Shape
    verifier_budget: Budget
    # Loss weights of the verifier's verdict tokens (correct, incorrect): most steps are correct, and
    # a small model learns to call every step correct before it learns to compare
    # (docs/neural-world.md); weighing "incorrect" up keeps its errors on both sides.
    verdict_weights: tuple[float, float] = (2.0, 8.0)
    # Share of the verifier's solutions that hold an error.
    error_share: float = 0.5


SIZES: dict[str, WorldSize] = {
    # ≤ 3 minutes on 2 cores, and still signal (policy ≥ 10%, verifier balanced ≥ 0.6): an easier
    # world (4 operations, values ≤ 50), recorded in world.json like any other.
    "ci": WorldSize(
        problems={"minOps": 4, "maxOps": 4, "maxValue": 50, "maxAddend": 15, "maxStart": 20},
        policy_examples=10_000,
        verifier_examples=10_000,
        heldout=100,
        vocab=1024,
        policy_shape=Shape(hidden=128, layers=3, heads=4, kv_heads=2, intermediate=384),
        policy_budget=Budget(steps=600, batch=16, lr=3e-3),
        verifier_shape=Shape(hidden=128, layers=3, heads=4, kv_heads=2, intermediate=384),
        verifier_budget=Budget(steps=400, batch=16, lr=2e-3, warmup=20),
        error_share=0.65,
    ),
    # ≤ 30 minutes on 2 cores: the world's own distribution (4-5 operations, values ≤ 99), a deeper
    # model and five times the CI budget.
    "default": WorldSize(
        problems=None,
        policy_examples=50_000,
        verifier_examples=30_000,
        heldout=300,
        vocab=1024,
        policy_shape=Shape(hidden=128, layers=4, heads=4, kv_heads=2, intermediate=384),
        policy_budget=Budget(steps=2400, batch=16, lr=3e-3, warmup=100),
        verifier_shape=Shape(hidden=128, layers=4, heads=4, kv_heads=2, intermediate=384),
        verifier_budget=Budget(steps=1200, batch=16, lr=2e-3, warmup=50),
        error_share=0.65,
    ),
}

# Longest answers the measurements let a model write (a 5-step solution is ~60 tokens).
MAX_SOLUTION_TOKENS = 120
MAX_VERIFICATION_TOKENS = 320

# What changes the models besides the text and the budgets: the training and measuring code, and
# the recipe in this file (bump BUILD_RECIPE when `make_world_models` trains differently; editing one
# size here does not invalidate the other sizes' caches).
_SOURCES = [Path(__file__).parent / f for f in ("pretrain.py", "measure.py", "tokenizer.py")]
BUILD_RECIPE = 1


def log(message: str) -> None:
    print(f"[world] {message}", file=sys.stderr, flush=True)


def export_text(out: Path, seed: int, size: WorldSize, problems: dict[str, Any] | None) -> None:
    """The world's text from the TypeScript side (one problem generator, the project's prompts)."""
    tsx = REPO / "node_modules" / ".bin" / "tsx"
    if not tsx.exists():
        raise SystemExit(
            f"{tsx} is missing: run `npm run setup` first (the world's text is rendered by TypeScript)"
        )
    args = [
        str(tsx), str(REPO / "sandbox" / "neural" / "export.ts"), "--out", str(out), "--seed", str(seed),
        "--policy", str(size.policy_examples), "--verifier", str(size.verifier_examples),
        "--heldout", str(size.heldout),
        "--error-share", str(size.error_share),
    ]  # fmt: skip
    if problems:
        args += ["--problems", json.dumps(problems)]
    subprocess.run(args, check=True, cwd=REPO)


def content_hash(text_dir: Path, seed: int, size_name: str, size: WorldSize, threads: int) -> str:
    digest = hashlib.sha256()
    recipe = {
        "seed": seed,
        "size": size_name,
        "budgets": asdict(size),
        "threads": threads,
        "recipe": BUILD_RECIPE,
    }
    digest.update(json.dumps(recipe).encode())
    for path in sorted(text_dir.glob("*")) + _SOURCES:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(torch.__version__.encode())
    return digest.hexdigest()


def cached(directory: Path, key: str) -> dict[str, Any] | None:
    """The world already in `directory` when it was built from the same inputs."""
    try:
        world = json.loads((directory / "world.json").read_text())
    except (OSError, ValueError):
        return None
    complete = all((directory / m / "config.json").is_file() for m in ("policy", "verifier"))
    return world if complete and world.get("contentHash") == key else None


def _corpus(rows: list[dict[str, Any]]) -> list[str]:
    return [
        "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in r["messages"])
        + f"<|im_start|>assistant\n{r['completion']}<|im_end|>"
        for r in rows
    ]


def verdict_weights(tokenizer: PreTrainedTokenizerFast, weights: tuple[float, float]) -> dict[int, float]:
    """Loss weights of the tokens that hold a step's verdict (the world's tokenizer merges each label
    into one token): `weights` = (correct, incorrect)."""
    found: dict[int, float] = {}
    for token, i in tokenizer.get_vocab().items():
        text = tokenizer.convert_tokens_to_string([token])
        if "step is incorrect" in text:
            found[i] = weights[1]
        elif "step is correct" in text:
            found[i] = weights[0]
    return found


def make_tokenizer(text_dir: Path, vocab: int) -> PreTrainedTokenizerFast:
    sample = [
        *read_jsonl(text_dir / "policy-train.jsonl")[:3000],
        *read_jsonl(text_dir / "verifier-train.jsonl")[:3000],
    ]
    return chatml_tokenizer(train_world_tokenizer(_corpus(sample), vocab), model_max_length=1024)


def make_world_models(
    directory: Path | str,
    seed: int = 0,
    size_name: str = "default",
    problems: dict[str, Any] | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Builds (or finds cached) the world in `directory`; returns `world.json`'s content."""
    if size_name not in SIZES:
        raise SystemExit(f"--size: expected one of {', '.join(SIZES)}, got {size_name!r}")
    size = SIZES[size_name]
    out = Path(directory)
    threads = threads or min(2, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="spark-world-text-") as tmp:
        text_dir = Path(tmp)
        export_text(text_dir, seed, size, problems or size.problems)
        key = content_hash(text_dir, seed, size_name, size, threads)
        found = cached(out, key)
        if found is not None:
            log(f"{out} already holds this world (content hash {key[:12]}): nothing to build")
            return found
        exported = json.loads((text_dir / "export.json").read_text())
        log(
            f"text exported ({exported['counts']}) in {time.perf_counter() - started:.0f}s; "
            "training the tokenizer"
        )
        tokenizer = make_tokenizer(text_dir, size.vocab)
        building = out.with_name(out.name + f".building-{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        world: dict[str, Any] = {
            "seed": seed,
            "size": size_name,
            "problems": exported["problems"],
            "text": {k: exported[k] for k in ("prmShare", "errorShare", "counts")},
            "threads": threads,
            "torch": torch.__version__,
        }
        for role, shape, budget, text in (
            ("policy", size.policy_shape, size.policy_budget, "policy-train.jsonl"),
            ("verifier", size.verifier_shape, size.verifier_budget, "verifier-train.jsonl"),
        ):
            examples = encode_examples(tokenizer, read_jsonl(text_dir / text))
            model = new_model(tokenizer, shape, seed)
            if role == "verifier" and shape == size.policy_shape:
                # A curriculum: the verifier starts from the policy, which can already calculate, and
                # learns to judge. From scratch, it copies the stated result into its recomputation.
                model.load_state_dict(world["_policy_model"].state_dict())
            params = sum(p.numel() for p in model.parameters())
            log(f"{role}: {params / 1e6:.2f} M parameters, {len(examples)} examples, {budget.steps} steps")
            weights = verdict_weights(tokenizer, size.verdict_weights) if role == "verifier" else None
            stats = pretrain(
                model,
                examples,
                budget,
                seed,
                tokenizer.pad_token_id,
                lambda m, r=role: log(f"{r} {m}"),
                weights,
            )
            model.save_pretrained(building / role, safe_serialization=True)
            tokenizer.save_pretrained(building / role)
            world[role] = {"parameters": params, "shape": asdict(shape), "budget": asdict(budget), **stats}
            world[f"_{role}_model"] = model
        world.update(measure(world.pop("_policy_model"), world.pop("_verifier_model"), tokenizer, text_dir))
        world["buildSeconds"] = round(time.perf_counter() - started, 1)
        world["contentHash"] = key
        (building / "world.json").write_text(json.dumps(world, indent=2) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        building.rename(out)
    log(
        f"built in {world['buildSeconds']:.0f}s: policy accuracy {world['policyAccuracy']:.3f}, "
        f"verifier balanced accuracy {world['verifierBalancedAccuracy']:.3f} "
        f"(step accuracy {world['verifierStepAccuracy']:.3f})"
    )
    return world


def measure(policy: Any, verifier: Any, tokenizer: PreTrainedTokenizerFast, text_dir: Path) -> dict[str, Any]:
    """The world's accuracies on held-out problems (greedy, as `world.json` reports them)."""
    problems = read_jsonl(text_dir / "heldout-problems.jsonl")
    answers = greedy_answers(policy, tokenizer, [p["messages"] for p in problems], MAX_SOLUTION_TOKENS)
    judged = read_jsonl(text_dir / "heldout-verify.jsonl")
    verifications = greedy_answers(
        verifier, tokenizer, [j["messages"] for j in judged], MAX_VERIFICATION_TOKENS
    )
    verifier = verifier_accuracy(verifications, [j["labels"] for j in judged])
    as_prm = read_jsonl(text_dir / "heldout-prm.jsonl")
    prm_base = verifier_accuracy(
        greedy_answers(policy, tokenizer, [j["messages"] for j in as_prm], MAX_VERIFICATION_TOKENS),
        [j["labels"] for j in as_prm],
    )
    return {
        "policyAccuracy": policy_accuracy(answers, [float(p["answer"]) for p in problems]),
        "verifierStepAccuracy": verifier["stepAccuracy"],
        "verifierBalancedAccuracy": verifier["balancedAccuracy"],
        "verifierSteps": verifier,
        "policyAsPrm": prm_base,
        "heldout": {"problems": len(problems), "judgedSolutions": len(judged)},
        "samples": {"policy": answers[:3], "verifier": verifications[:2]},
    }
