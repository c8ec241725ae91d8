"""The trainer's compute side: every session's model, adapter and optimiser, on one or many ranks.

The HTTP server (server.py) calls these methods on rank 0 only; under torchrun, ranks > 0 run
`follow()`, which executes each command rank 0 broadcasts, so every method here is a collective:
rank 0 broadcasts the command and its arguments, all ranks run it. Commands are issued under one
lock, because collectives must come in the same order on every rank: sessions take turns.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from .distributed import AgreedFailure, DistContext, broadcast_command, init_distributed
from .engine import Engine
from .models import require_device
from .protocol import GrpoExample, Loss, ProtocolError, SessionConfig, SftExample

log = logging.getLogger(__name__)

SHUTDOWN = "shutdown"


class RankFailed(SystemExit):
    """Ends a rank > 0 whose command failed unagreed (exit status 1): see `Runtime.follow`."""

    def __init__(self, message: str) -> None:
        super().__init__(1)
        self.message = message


class Runtime:
    def __init__(
        self,
        models: dict[str, Path],
        *,
        device: str | None = None,
        micro_batch_tokens: int = 4096,
        gradient_checkpointing: bool = False,
    ) -> None:
        """`models`: base-model name (as `SessionConfig.baseModel` names it) -> local model folder.
        `device`: None picks cuda when present (bf16), else cpu (fp32); `cuda` without a working
        GPU raises ValueError. `gradient_checkpointing`: recompute activations in backward."""
        self.models = {name: Path(path) for name, path in models.items()}
        self.micro_batch_tokens = micro_batch_tokens
        self.gradient_checkpointing = gradient_checkpointing
        self.ctx: DistContext = init_distributed(require_device(device))
        self.engines: dict[str, Engine] = {}
        self._lock = threading.Lock()
        self._closed = False
        # Set when a command failed on some rank in a way the ranks did not agree on: the process
        # group may be poisoned (a rank gone, another inside a collective), so nothing runs any more.
        self.failure: str | None = None

    @property
    def rank(self) -> int:
        return self.ctx.rank

    @property
    def world_size(self) -> int:
        return self.ctx.world

    # ---- rank 0's entry points: broadcast, then run ------------------------------------------

    def open(
        self, session_id: str, config: SessionConfig, resume: tuple[Path, dict[str, Any]] | None = None
    ) -> None:
        """Loads the base model, sets up the adapter and optimiser. `resume`: a local folder holding
        a verified checkpoint's files and the `engine` part of its trainer-state.json (as `save`
        returned it)."""
        if config.baseModel not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            raise ProtocolError(
                "invalid-request",
                f"baseModel: unknown model {config.baseModel!r}; this trainer serves {known}",
            )
        self._command("open", session_id, config, resume)

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
        self._engine(session_id)
        # Checked here, before the broadcast: a rank that failed alone would leave the others
        # waiting in a collective.
        if loss.kind == "grpo" and not all(isinstance(e, GrpoExample) for e in examples):
            raise ProtocolError("invalid-request", "a grpo step needs GRPO lines, each with `advantage`")
        return self._command("train_step", session_id, step, examples, loss, learning_rate)

    def save(self, session_id: str, directory: Path) -> dict[str, Any]:
        """Writes the weights (PEFT adapter layout, or the model's safetensors for `full`) and
        `optimizer.safetensors` into `directory` (rank 0 writes; all ranks take part). Returns the
        engine state (scheduler position, RNG) that goes into trainer-state.json under `engine`."""
        self._engine(session_id)
        return self._command("save", session_id, directory)

    def close(self, session_id: str) -> None:
        if session_id in self.engines:
            self._command("close", session_id)

    def follow(self) -> None:
        """Ranks > 0: run rank 0's commands until it shuts down.

        A failure the ranks agreed on (a bad line, an unreadable checkpoint) leaves them in step,
        and rank 0 reports it. Any other failure may have left this rank's peers inside a model
        collective that it will never join: this rank then ends the process (exit status 1), and
        torchrun ends every other rank at once, rather than NCCL's watchdog after 10 minutes.
        """
        while True:
            name, args = broadcast_command(self.ctx)
            if name == SHUTDOWN:
                self._teardown()
                return
            try:
                self._execute(name, *args)
            except (ProtocolError, AgreedFailure):
                log.warning("rank %d: command %s refused on every rank", self.ctx.rank, name)
            except Exception:
                log.exception("rank %d: command %s failed; ending this rank", self.ctx.rank, name)
                raise RankFailed(f"rank {self.ctx.rank} failed in {name}") from None

    def shutdown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.failure is not None:
                # A broken group's collectives (even the shutdown broadcast) could wait forever;
                # the process ends and torchrun ends the rest.
                self.engines.clear()
                return
            if self.ctx.world > 1 and self.ctx.leader:
                broadcast_command(self.ctx, (SHUTDOWN, ()))
            self._teardown()

    # ---- every rank ------------------------------------------------------------------------

    def _command(self, name: str, *args: Any) -> Any:
        with self._lock:
            if self.failure is not None:
                raise ProtocolError(
                    "internal", f"the trainer's ranks are out of step ({self.failure}): restart it"
                )
            if self._closed:
                raise ProtocolError("internal", "the trainer is shutting down")
            if self.ctx.world == 1:
                return self._execute(name, *args)
            broadcast_command(self.ctx, (name, args))
            try:
                return self._execute(name, *args)
            except (ProtocolError, AgreedFailure):
                raise
            except Exception as err:
                # Another rank failed (its peer connection closed under a collective) or this one
                # did: the process group is unusable. /health reports it, and the server ends.
                self.failure = f"{name} failed on rank {self.ctx.rank}: {err!r}"
                log.error("the trainer's ranks are out of step: %s", self.failure)
                raise

    def _execute(self, name: str, *args: Any) -> Any:
        if name == "open":
            session_id, config, resume = args
            old = self.engines.pop(session_id, None)
            if old is not None:
                old.close()
            self.engines[session_id] = Engine(
                self.models[config.baseModel],
                config,
                self.ctx,
                self.micro_batch_tokens,
                resume,
                gradient_checkpointing=self.gradient_checkpointing,
            )
            return None
        if name == "train_step":
            session_id, step, examples, loss, learning_rate = args
            return self.engines[session_id].train_step(step, examples, loss, learning_rate)
        if name == "save":
            session_id, directory = args
            return self.engines[session_id].save(Path(directory))
        if name == "close":
            (session_id,) = args
            engine = self.engines.pop(session_id, None)
            if engine is not None:
                engine.close()
            return None
        raise ValueError(f"unknown command {name!r}")

    def _engine(self, session_id: str) -> Engine:
        engine = self.engines.get(session_id)
        if engine is None:
            raise ProtocolError("unknown-session", f"no session {session_id!r} in this trainer")
        return engine

    def _teardown(self) -> None:
        for engine in self.engines.values():
            engine.close()
        self.engines.clear()
        if self.ctx.world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
