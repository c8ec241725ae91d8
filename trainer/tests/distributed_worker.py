"""Trains one LoRA and one full session through `Runtime` on however many ranks torchrun gives,
then saves both: `<out>/lora` and `<out>/full`. Run with plain python for one rank.

argv: model_dir out_dir steps micro_batch_tokens [adapter names, comma-separated]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from helpers import batch_for, session_config

from spark_trainer.runtime import Runtime

SGD = {"name": "sgd", "learningRate": 0.5, "betas": [0.9, 0.999], "weightDecay": 0.0, "warmupSteps": 0}
ADAPTERS = {
    "lora": {"kind": "lora", "rank": 4, "alpha": 8, "targetModules": ["q_proj", "v_proj", "up_proj"]},
    "full": {"kind": "full"},
}


def run(
    model_dir: Path,
    out: Path,
    steps: int,
    budget: int,
    names: list[str] | None = None,
    *,
    optimizer: dict[str, Any] | None = SGD,
    resume: tuple[Path, dict[str, Any]] | None = None,
    first_step: int = 0,
) -> None:
    """Steps [first_step, first_step + steps) of each named session, resumed from `resume` if given."""
    runtime = Runtime({"tiny": model_dir}, device="cpu", micro_batch_tokens=budget)
    if runtime.rank > 0:
        runtime.follow()
        return
    try:
        for name in names or list(ADAPTERS):
            runtime.open(name, session_config(adapter=ADAPTERS[name], optimizer=optimizer), resume)
            for step in range(first_step, first_step + steps):
                batch, loss = batch_for(step)
                metrics = runtime.train_step(name, step, batch[:5], loss, None)
                (out / f"{name}-{step}.json").parent.mkdir(parents=True, exist_ok=True)
                (out / f"{name}-{step}.json").write_text(json.dumps(metrics))
            (out / f"{name}-engine.json").write_text(json.dumps(runtime.save(name, out / name)))
            runtime.close(name)
    finally:
        runtime.shutdown()


if __name__ == "__main__":
    names = sys.argv[5].split(",") if len(sys.argv) > 5 else None
    run(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), names)
