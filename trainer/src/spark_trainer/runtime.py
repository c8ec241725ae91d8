"""The trainer's compute side: every session's model, adapter and optimiser, on one or many ranks.

INTERFACE STUB — to be implemented. The HTTP server (server.py) calls these methods on rank 0 only;
under torchrun, ranks > 0 run `follow()`, which executes each command rank 0 broadcasts, so every
method here is a collective: rank 0 broadcasts the command and its arguments, all ranks run it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .protocol import GrpoExample, Loss, SessionConfig, SftExample


class Runtime:
    def __init__(self, models: dict[str, Path], *, device: str | None = None, micro_batch_tokens: int = 4096) -> None:
        """`models`: base-model name (as `SessionConfig.baseModel` names it) -> local model folder.
        `device`: None picks cuda when present (bf16), else cpu (fp32)."""
        raise NotImplementedError

    def open(self, session_id: str, config: SessionConfig, resume: tuple[Path, dict[str, Any]] | None = None) -> None:
        """Loads the base model, sets up the adapter and optimiser. `resume`: a local folder holding a
        verified checkpoint's files and the `engine` part of its trainer-state.json (as `save` returned it)."""
        raise NotImplementedError

    def train_step(
        self,
        session_id: str,
        step: int,
        examples: list[SftExample] | list[GrpoExample],
        loss: Loss,
        learning_rate: float | None,
    ) -> dict[str, float]:
        """One forward-backward over the batch (micro-batched by token budget) and one optimiser
        step. `learning_rate` overrides the warm-up schedule. Returns the metrics (always `loss`)."""
        raise NotImplementedError

    def save(self, session_id: str, directory: Path) -> dict[str, Any]:
        """Writes the weights (PEFT adapter layout, or the model's safetensors for `full`) and
        `optimizer.safetensors` into `directory` (rank 0 writes; all ranks take part). Returns the
        engine state (scheduler position, RNG) that goes into trainer-state.json under `engine`."""
        raise NotImplementedError

    def close(self, session_id: str) -> None:
        raise NotImplementedError

    def follow(self) -> None:
        """Ranks > 0: run rank 0's commands until it shuts down."""
        raise NotImplementedError

    def shutdown(self) -> None:
        raise NotImplementedError
