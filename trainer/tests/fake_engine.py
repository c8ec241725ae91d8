"""A stand-in for the runtime in tests of the protocol's rules (idempotency, order, checkpoints,
publish), which do not depend on what a step computes. It keeps one number per session that every
step changes, saves it as a checkpoint's files would be, and can be held at a gate or made to fail."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from spark_trainer.protocol import GrpoExample, Loss, SessionConfig, SftExample


class FakeEngine:
    def __init__(self) -> None:
        self.weights: dict[str, float] = {}
        self.steps: dict[str, int] = {}
        self.opened: list[tuple[str, int | None]] = []
        # Set `gate` to a cleared Event to hold the next steps (or opens) until it is set.
        self.gate: threading.Event | None = None
        self.open_gate: threading.Event | None = None
        self.entered = threading.Event()
        self.fail_next: Exception | None = None
        self.loss: float | None = None

    def open(
        self, session_id: str, config: SessionConfig, resume: tuple[Path, dict[str, Any]] | None = None
    ) -> None:
        if self.open_gate is not None:
            self.entered.set()
            self.open_gate.wait(30)
        self.weights[session_id] = 1.0
        self.steps[session_id] = 0
        if resume is not None:
            directory, engine = resume
            self.weights[session_id] = json.loads((directory / "adapter_model.safetensors").read_text())["w"]
            self.steps[session_id] = int(engine["steps"])
        self.opened.append((session_id, self.steps[session_id]))

    def train_step(
        self,
        session_id: str,
        step: int,
        examples: list[SftExample] | list[GrpoExample],
        loss: Loss,
        learning_rate: float | None,
    ) -> dict[str, float]:
        if self.gate is not None:
            self.entered.set()
            self.gate.wait(30)
        if self.fail_next is not None:
            err, self.fail_next = self.fail_next, None
            raise err
        self.weights[session_id] = self.weights[session_id] * 0.5 + len(examples)
        self.steps[session_id] += 1
        value = self.loss if self.loss is not None else self.weights[session_id]
        return {"loss": value, "examples": len(examples), "learningRate": learning_rate or 0.001}

    def save(self, session_id: str, directory: Path) -> dict[str, Any]:
        (directory / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
        (directory / "adapter_model.safetensors").write_text(json.dumps({"w": self.weights[session_id]}))
        (directory / "optimizer.safetensors").write_text(json.dumps({"m": 0}))
        return {"steps": self.steps[session_id]}

    def close(self, session_id: str) -> None:
        self.weights.pop(session_id, None)
