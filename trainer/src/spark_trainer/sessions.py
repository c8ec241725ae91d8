"""The session registry and the protocol's rules: idempotency, step order, checkpoints, publish.

Sessions live in memory, as on any GPU box: a killed trainer forgets them, and the control plane
recreates them from the last committed checkpoint. Requests of one session run one at a time (an
asyncio lock per session, taken in arrival order); the heavy work runs off the event loop, so
`GET /v1/sessions/{id}` answers at once with `busy` or `loading`. Runtime calls share one thread:
under torchrun every one of them is a collective that all ranks must run in the same order.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx

from . import checkpoints, publish
from .checkpoints import AppliedStep, TrainerState
from .protocol import (
    PROTOCOL_VERSION,
    CheckpointInfo,
    CheckpointMarker,
    CreateSessionRequest,
    GrpoExample,
    Loss,
    ProtocolError,
    PublishRequest,
    PublishResponse,
    SaveCheckpointRequest,
    SaveCheckpointResponse,
    SessionConfig,
    SessionState,
    SessionStatus,
    SftExample,
    TrainStepRequest,
    TrainStepResponse,
    parse_line,
)
from .s3 import ObjectNotFound, ObjectStore

T = TypeVar("T")
log = logging.getLogger("spark_trainer.sessions")

# Sessions idle this long are closed: a run that went away must not hold GPU memory for ever, and
# one that comes back is recreated from its last checkpoint (`--session-idle-timeout`).
DEFAULT_IDLE_TIMEOUT_S = 6 * 3600.0


class Engine(Protocol):
    """What the session layer needs of `runtime.Runtime` (tests may wrap it)."""

    def open(
        self, session_id: str, config: SessionConfig, resume: tuple[Path, dict[str, Any]] | None = None
    ) -> None: ...

    def train_step(
        self,
        session_id: str,
        step: int,
        examples: list[SftExample] | list[GrpoExample],
        loss: Loss,
        learning_rate: float | None,
    ) -> dict[str, float]: ...

    def save(self, session_id: str, directory: Path) -> dict[str, Any]: ...

    def close(self, session_id: str) -> None: ...


@dataclass
class Session:
    id: str
    config: SessionConfig
    status: SessionStatus = "loading"
    status_message: str | None = None
    log: list[AppliedStep] = field(default_factory=list)
    last_checkpoint: CheckpointInfo | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # time.monotonic() at the end of its last request: idle sessions are evicted after a while.
    last_used: float = field(default_factory=time.monotonic)

    @property
    def last_applied(self) -> int | None:
        return self.log[-1].step if self.log else None

    @property
    def next_step(self) -> int:
        last = self.last_applied
        return 0 if last is None else last + 1

    def state(self) -> SessionState:
        return SessionState(
            protocolVersion=PROTOCOL_VERSION,
            sessionId=self.id,
            config=self.config,
            status=self.status,
            statusMessage=self.status_message,
            lastAppliedStep=self.last_applied,
            nextStep=self.next_step,
            lastCheckpoint=self.last_checkpoint,
        )


class Sessions:
    def __init__(
        self,
        engine: Engine,
        store: ObjectStore,
        models: Mapping[str, Path],
        publish_dir: Path,
        *,
        scratch_dir: Path | None = None,
        inference_api_key: str | None = None,
        idle_timeout_s: float | None = DEFAULT_IDLE_TIMEOUT_S,
    ) -> None:
        """`idle_timeout_s`: a session no request touched for this long is closed and its memory
        freed (None: never); its next request answers `unknown-session`, and the control plane
        creates it again from its last checkpoint."""
        self._idle_timeout_s = idle_timeout_s
        self._evictor: asyncio.Task[None] | None = None
        self._engine = engine
        self._store = store
        self._models = dict(models)
        self._publish_dir = publish_dir
        self._scratch_dir = scratch_dir
        self._sessions: dict[str, Session] = {}
        self._compute = ThreadPoolExecutor(max_workers=1, thread_name_prefix="runtime")
        # Publishing calls the inference server's LoRA endpoints; one started with an API key
        # (vLLM's --api-key) wants it on those too.
        auth = {"Authorization": f"Bearer {inference_api_key}"} if inference_api_key else {}
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=10.0), headers=auth)

    @property
    def model_names(self) -> list[str]:
        return sorted(self._models)

    def count(self) -> int:
        return len(self._sessions)

    @property
    def failure(self) -> str | None:
        """Why the compute side can no longer run anything (its ranks are out of step), or None."""
        return getattr(self._engine, "failure", None)

    def start(self) -> None:
        """Starts evicting idle sessions (call from the running event loop)."""
        if self._idle_timeout_s is not None and self._evictor is None:
            self._evictor = asyncio.get_running_loop().create_task(self._evict_idle_forever())

    async def aclose(self) -> None:
        if self._evictor is not None:
            self._evictor.cancel()
        await self._http.aclose()
        self._compute.shutdown(wait=True)

    async def _evict_idle_forever(self) -> None:
        assert self._idle_timeout_s is not None
        every = min(60.0, max(self._idle_timeout_s / 4, 0.05))
        while True:
            await asyncio.sleep(every)
            try:
                await self.evict_idle()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("evicting idle sessions failed")

    async def evict_idle(self, now: float | None = None) -> list[str]:
        """Closes every session idle for longer than the idle timeout; returns their IDs. A
        session with a request running or waiting is not idle (its lock is held)."""
        if self._idle_timeout_s is None:
            return []
        now = time.monotonic() if now is None else now
        evicted = []
        for session in list(self._sessions.values()):
            if session.lock.locked() or now - session.last_used <= self._idle_timeout_s:
                continue
            async with session.lock:
                gone = self._sessions.get(session.id) is not session
                if gone or now - session.last_used <= self._idle_timeout_s:
                    continue
                await self._close(session)
                log.info("session %s: evicted after %.0f s idle", session.id, now - session.last_used)
                evicted.append(session.id)
        return evicted

    async def _close(self, session: Session) -> None:
        """Drops the session and frees its model (the caller holds its lock)."""
        del self._sessions[session.id]
        if session.status != "failed":  # a failed session's model is already freed
            await self._run_engine(self._engine.close, session.id)

    # -- DELETE /v1/sessions/{id} -------------------------------------------------------------

    async def delete(self, session_id: str) -> None:
        """Closes the session and frees its memory; afterwards it is `unknown-session`. Waits for
        the session's running request, as every request of a session does."""
        session = self._session(session_id)
        async with session.lock:
            if self._sessions.get(session_id) is not session:
                raise ProtocolError("unknown-session", f"no session '{session_id}' on this trainer")
            await self._close(session)
        log.info("session %s: deleted", session_id)

    # -- helpers ------------------------------------------------------------------------------

    async def _run_engine(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._compute, fn, *args)

    @asynccontextmanager
    async def _using(self, session: Session) -> AsyncIterator[None]:
        """The session's lock for one request; the session counts as used until it ends."""
        async with session.lock:
            try:
                yield
            finally:
                session.last_used = time.monotonic()

    def _scratch(self) -> tempfile.TemporaryDirectory[str]:
        return tempfile.TemporaryDirectory(prefix="spark-trainer-", dir=self._scratch_dir)

    def _session(self, session_id: str) -> Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise ProtocolError(
                "unknown-session",
                f"no session '{session_id}' on this trainer (it may have restarted): "
                "create it again, resuming from its last checkpoint",
            )
        return session

    @staticmethod
    def _usable(session: Session) -> None:
        # A failed session's weights are in an unknown state: the way on is a new session from the
        # last checkpoint, which is what the control plane does on `unknown-session`.
        if session.status == "failed":
            raise ProtocolError(
                "unknown-session",
                f"session '{session.id}' failed ({session.status_message}): "
                "create it again, resuming from its last checkpoint",
            )

    async def _fail(self, session: Session, message: str) -> None:
        log.error("session %s failed: %s", session.id, message)
        session.status = "failed"
        session.status_message = message
        try:
            await self._run_engine(self._engine.close, session.id)
        except Exception:  # noqa: BLE001 - freeing memory is best effort; the session is gone either way
            pass

    # -- POST /v1/sessions --------------------------------------------------------------------

    async def create(self, request: CreateSessionRequest) -> tuple[SessionState, bool]:
        """Idempotent by sessionId: the same config returns the session (`created: false`) once
        its loading is done; another config is `conflict`. A failed session is replaced."""
        config = request.config()
        session_id = request.sessionId or f"session-{uuid.uuid4().hex[:16]}"
        while True:
            existing = self._sessions.get(session_id)
            if existing is None:
                break
            if existing.status == "failed":
                del self._sessions[session_id]
                break
            if existing.config.identity() != config.identity():
                raise ProtocolError(
                    "conflict",
                    f"session '{session_id}' exists with another config; "
                    "use another sessionId or the same config",
                )
            async with existing.lock:
                if self._sessions.get(session_id) is existing and existing.status != "failed":
                    return existing.state(), False
            # Its loading failed (and it was dropped) or it failed since: create it afresh.

        if config.baseModel not in self._models:
            raise ProtocolError(
                "invalid-request",
                f"baseModel: this trainer serves {', '.join(self.model_names) or 'no models'}; "
                f"got '{config.baseModel}' (start it with --model NAME=DIR)",
            )
        session = Session(id=session_id, config=config)
        self._sessions[session_id] = session
        async with self._using(session):
            try:
                await self._load(session)
            except BaseException:
                del self._sessions[session_id]
                raise
            session.status = "ready"
        log.info(
            "session %s: created on %s (resumed from %s)", session_id, config.baseModel, config.resumeFrom
        )
        return session.state(), True

    async def _load(self, session: Session) -> None:
        config = session.config
        if config.resumeFrom is None:
            await self._run_engine(self._engine.open, session.id, config, None)
            return
        uri = config.resumeFrom
        marker, _ = await asyncio.to_thread(checkpoints.require_marker, self._store, uri, "resumeFrom")
        checkpoints.check_compatible(marker, config, uri, "resumeFrom")
        with self._scratch() as scratch:
            directory = Path(scratch)
            await asyncio.to_thread(checkpoints.download, self._store, uri, marker, directory)
            state = checkpoints.read_state(directory, uri)
            checkpoints.check_optimizer(marker, state.engine, config, uri)
            await self._run_engine(self._engine.open, session.id, config, (directory, state.engine))
        session.log = list(state.log)
        session.last_checkpoint = checkpoints.info(uri, marker.step)

    # -- GET /v1/sessions/{id} ----------------------------------------------------------------

    def get(self, session_id: str) -> SessionState:
        session = self._session(session_id)
        session.last_used = time.monotonic()  # a control plane that still asks still wants it
        return session.state()

    # -- POST /v1/sessions/{id}/steps ---------------------------------------------------------

    async def train_step(self, session_id: str, request: TrainStepRequest) -> TrainStepResponse:
        session = self._session(session_id)
        async with self._using(session):
            self._usable(session)
            done = next((s for s in session.log if s.step == request.step), None)
            if done is not None:
                if done.batchSha256 != request.batch.sha256:
                    raise ProtocolError(
                        "conflict",
                        f"step {request.step} was applied with batch sha256 {done.batchSha256}, "
                        f"not {request.batch.sha256}",
                        {"step": request.step},
                    )
                return TrainStepResponse(
                    protocolVersion=PROTOCOL_VERSION, step=request.step, applied=False, metrics=done.metrics
                )
            expected = session.next_step
            if request.step > expected:
                raise ProtocolError(
                    "step-out-of-order",
                    f"step {request.step} is ahead of the next step {expected} of session {session.id}",
                    {"expectedStep": expected, "receivedStep": request.step},
                )
            if request.step < expected:
                # Only a checkpoint from elsewhere could lack its own history; never guess its metrics.
                raise ProtocolError(
                    "conflict", f"step {request.step} was applied before this session's step log begins"
                )
            session.status = "busy"
            started = time.monotonic()
            try:
                examples = await asyncio.to_thread(self._read_batch, request)
                try:
                    metrics = await self._run_engine(
                        self._engine.train_step,
                        session.id,
                        request.step,
                        examples,
                        request.loss,
                        request.learningRate,
                    )
                except ProtocolError:
                    raise
                except Exception as err:
                    await self._fail(session, f"step {request.step} failed: {err!r}")
                    raise ProtocolError("internal", f"step {request.step} failed: {err!r}") from err
                metrics = _finite(metrics)
                if "loss" not in metrics:
                    message = f"step {request.step} gave a non-finite loss: training diverged"
                    await self._fail(session, message)
                    raise ProtocolError("internal", message)
            finally:
                if session.status == "busy":
                    session.status = "ready"
            session.log.append(
                AppliedStep(step=request.step, batchSha256=request.batch.sha256, metrics=metrics)
            )
            seconds = time.monotonic() - started
            log.info(
                "session %s: step %d in %.2fs, loss %.4g", session.id, request.step, seconds, metrics["loss"]
            )
            return TrainStepResponse(
                protocolVersion=PROTOCOL_VERSION, step=request.step, applied=True, metrics=metrics
            )

    def _read_batch(self, request: TrainStepRequest) -> list[SftExample] | list[GrpoExample]:
        """The batch's examples, after checking it is the object the request names."""
        batch = request.batch
        try:
            data = self._store.get_bytes(batch.uri)
        except ObjectNotFound:
            raise ProtocolError("invalid-request", f"batch.uri: no object at {batch.uri}") from None
        sha256 = hashlib.sha256(data).hexdigest()
        if sha256 != batch.sha256 or len(data) != batch.bytes:
            raise ProtocolError(
                "invalid-request",
                f"batch: {batch.uri} has sha256 {sha256} and {len(data)} bytes, "
                f"not sha256 {batch.sha256} and {batch.bytes} bytes as the request says",
            )
        model = SftExample if request.loss.kind == "sft" else GrpoExample
        examples: list[Any] = []
        for number, line in enumerate(data.split(b"\n"), start=1):
            if line.strip():
                examples.append(parse_line(model, line, number))
        if not examples:
            raise ProtocolError("invalid-request", f"batch: {batch.uri} holds no examples")
        return examples

    # -- POST /v1/sessions/{id}/checkpoints ---------------------------------------------------

    async def save_checkpoint(
        self, session_id: str, request: SaveCheckpointRequest
    ) -> SaveCheckpointResponse:
        session = self._session(session_id)
        async with self._using(session):
            self._usable(session)
            last = session.last_applied
            # `"step": null` (initial weights) is a claim too; only an absent step is no claim.
            if "step" in request.model_fields_set and request.step != last:
                raise ProtocolError(
                    "step-out-of-order",
                    f"step: the last applied step of session '{session.id}' is "
                    f"{'none' if last is None else last}, not {request.step}",
                    {"expectedStep": last, "receivedStep": request.step},
                )
            session.status = "busy"
            try:
                created = await self._save(session, request.uri, last)
            finally:
                session.status = "ready"
            session.last_checkpoint = checkpoints.info(request.uri, last)
            log.info(
                "session %s: checkpoint of step %s at %s (created: %s)",
                session.id,
                last,
                request.uri,
                created,
            )
            return SaveCheckpointResponse(
                protocolVersion=PROTOCOL_VERSION,
                uri=request.uri,
                step=last,
                markerUri=checkpoints.marker_uri(request.uri),
                created=created,
            )

    async def _save(self, session: Session, uri: str, last: int | None) -> bool:
        found = await asyncio.to_thread(checkpoints.read_marker, self._store, uri, "uri")
        if found is not None:
            self._same_checkpoint(session, uri, found[0], last)
            return False
        with self._scratch() as scratch:
            directory = Path(scratch)
            try:
                engine = await self._run_engine(self._engine.save, session.id, directory)
            except ProtocolError:
                raise
            except Exception as err:
                # Weights that cannot be saved (non-finite ones) are in an unknown state: the way
                # on is the last committed checkpoint, as after a failed step.
                await self._fail(session, f"checkpoint at {uri} failed: {err!r}")
                raise ProtocolError("internal", f"checkpoint at {uri} failed: {err!r}") from err
            state = TrainerState(sessionId=session.id, step=last, log=session.log, engine=engine)
            checkpoints.write_state(directory, state)
            try:
                await asyncio.to_thread(
                    checkpoints.commit, self._store, uri, directory, session.id, last, session.config
                )
            except checkpoints.AlreadyCommitted:
                # Someone committed it between our check and our marker: the same rule decides.
                marker, _ = await asyncio.to_thread(checkpoints.require_marker, self._store, uri, "uri")
                self._same_checkpoint(session, uri, marker, last)
                return False
        return True

    @staticmethod
    def _same_checkpoint(session: Session, uri: str, marker: CheckpointMarker, last: int | None) -> None:
        """Idempotent by URI: a committed checkpoint of this session at its last applied step is
        this save; anything else there is `conflict` (a committed checkpoint is never modified)."""
        if marker.sessionId != session.id or marker.step != last:
            held = "none" if marker.step is None else marker.step
            raise ProtocolError(
                "conflict",
                f"uri: {uri} already holds another checkpoint (step {held} of session '{marker.sessionId}')",
            )

    # -- POST /v1/sessions/{id}/publish -------------------------------------------------------

    async def publish(self, session_id: str, request: PublishRequest) -> PublishResponse:
        session = self._session(session_id)
        async with self._using(session):
            self._usable(session)
            if session.config.adapter.kind != "lora":
                raise ProtocolError(
                    "invalid-request",
                    f"session '{session.id}' fine-tunes the full model, which an inference server cannot "
                    "hot-load as an adapter; serve a checkpoint's weights as a model instead",
                )
            uri = request.checkpointUri or (session.last_checkpoint.uri if session.last_checkpoint else None)
            if uri is None:
                raise ProtocolError(
                    "checkpoint-not-found",
                    f"checkpointUri: session '{session.id}' has saved no checkpoint yet; "
                    "save one first or name one",
                )
            session.status = "busy"
            try:
                marker, digest = await asyncio.to_thread(
                    checkpoints.require_marker, self._store, uri, "checkpointUri"
                )
                checkpoints.check_compatible(marker, session.config, uri, "checkpointUri")
                folder = await asyncio.to_thread(
                    publish.stage_adapter,
                    self._store,
                    uri,
                    marker,
                    digest,
                    self._publish_dir,
                    request.modelName,
                )
                await publish.load_adapter(
                    self._http, request.inferenceBaseURL, request.modelName, str(folder)
                )
            finally:
                session.status = "ready"
            log.info("session %s: published %s as %s from %s", session.id, uri, request.modelName, folder)
            return PublishResponse(
                protocolVersion=PROTOCOL_VERSION,
                modelName=request.modelName,
                loraPath=str(folder),
                checkpointUri=uri,
                step=marker.step,
            )


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    # JSON has no NaN or infinity (and the control plane's schema refuses them): such values are left out.
    return {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
