"""Batches and configs the compute-side tests share (also imported by their worker scripts)."""

from __future__ import annotations

from typing import Any

from spark_trainer.protocol import GrpoExample, GrpoLoss, SessionConfig, SftExample, SftLoss

SFT = SftLoss(kind="sft")
GRPO = GrpoLoss(kind="grpo", klCoefficient=0.05, entropyCoefficient=0.01, klEstimator="low-var-kl")


def session_config(
    *, adapter: dict[str, Any] | None = None, optimizer: dict[str, Any] | None = None, seed: int = 5
) -> SessionConfig:
    return SessionConfig.model_validate(
        {
            "baseModel": "tiny",
            "adapter": adapter
            or {"kind": "lora", "rank": 4, "alpha": 8, "targetModules": ["q_proj", "v_proj", "up_proj"]},
            "optimizer": optimizer
            or {
                "name": "adamw",
                "learningRate": 5e-3,
                "betas": [0.9, 0.99],
                "weightDecay": 0.01,
                "warmupSteps": 3,
                "maxGradNorm": 1.0,
            },
            "seed": seed,
        }
    )


def sft_batch(step: int, size: int = 6) -> list[SftExample]:
    """Examples of different lengths, so micro-batches and rank slices are uneven."""
    out = []
    for i in range(size):
        a, b = 3 + step + i, 7 * i + 2
        out.append(
            SftExample.model_validate(
                {
                    "prompt": [
                        {
                            "role": "user",
                            "content": f"Natalia has {a} clips and buys {b} more." + " How many?" * (i % 3),
                        }
                    ],
                    "completion": f"Step 1: {a} + {b} = {a + b}.\n#### {a + b}",
                }
            )
        )
    return out


def grpo_batch(step: int, size: int = 6) -> list[GrpoExample]:
    out = []
    for i, example in enumerate(sft_batch(step, size)):
        line: dict[str, Any] = {**example.model_dump(), "advantage": 1.0 if i % 2 == 0 else -0.5}
        if i % 3 == 0:
            line["stepAdvantages"] = [{"end": 8, "advantage": -1.0}, {"end": 14, "advantage": 0.5}]
        out.append(GrpoExample.model_validate(line))
    return out


def batch_for(step: int) -> tuple[list[SftExample] | list[GrpoExample], SftLoss | GrpoLoss]:
    """Steps alternate SFT and GRPO, so a run exercises both losses."""
    return (sft_batch(step), SFT) if step % 2 == 0 else (grpo_batch(step), GRPO)
