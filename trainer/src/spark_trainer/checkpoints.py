"""Checkpoints in object storage: data objects first, `COMMITTED` last (docs/trainer-protocol.md,
"Checkpoint layout"). A prefix without its marker is not a checkpoint, so a save killed halfway
leaves nothing a loader would read, and the retried save simply overwrites the debris.

Every function here blocks (S3 and disk): the session layer runs them in worker threads.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .protocol import (
    MARKER_NAME,
    PROTOCOL_VERSION,
    CheckpointInfo,
    CheckpointMarker,
    ProtocolError,
    SessionConfig,
)
from .s3 import AlreadyExists, ObjectNotFound, ObjectStore

STATE_NAME = "trainer-state.json"


class AppliedStep(BaseModel):
    """One applied step, as the session and its checkpoints remember it to answer retries."""

    model_config = ConfigDict(extra="ignore")

    step: int
    batchSha256: str
    metrics: dict[str, float]


class TrainerState(BaseModel):
    """`trainer-state.json`: the applied-step log (every step since the session began, so a resumed
    session answers retries of any of them) and the runtime's own state (scheduler, RNG)."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["spark.trainer-state"] = "spark.trainer-state"
    version: Literal[1] = 1
    sessionId: str
    step: int | None
    log: list[AppliedStep]
    engine: dict[str, Any]


class AlreadyCommitted(Exception):
    """Another save committed the URI first; the caller decides whether it is the same checkpoint."""


def marker_uri(uri: str) -> str:
    return f"{uri}/{MARKER_NAME}"


def info(uri: str, step: int | None) -> CheckpointInfo:
    return CheckpointInfo(uri=uri, step=step, markerUri=marker_uri(uri))


def read_marker(store: ObjectStore, uri: str, field: str) -> tuple[CheckpointMarker, str] | None:
    """The committed marker at `uri` and the SHA-256 of its bytes (which names this commit), or
    None when there is none. A marker that does not parse is `checkpoint-mismatch`."""
    raw = store.get_bytes_if_exists(marker_uri(uri))
    if raw is None:
        return None
    try:
        marker = CheckpointMarker.model_validate_json(raw)
    except ValidationError as err:
        problem = err.errors(include_url=False)[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise ProtocolError(
            "checkpoint-mismatch",
            f"{field}: {marker_uri(uri)} is not a checkpoint marker ({where}: {problem['msg']})",
        ) from None
    return marker, hashlib.sha256(raw).hexdigest()


def require_marker(store: ObjectStore, uri: str, field: str) -> tuple[CheckpointMarker, str]:
    found = read_marker(store, uri, field)
    if found is None:
        raise ProtocolError(
            "checkpoint-not-found",
            f"{field}: no checkpoint at {uri} ({marker_uri(uri)} does not exist; "
            "a checkpoint without its marker was never committed)",
        )
    return found


def check_compatible(marker: CheckpointMarker, config: SessionConfig, uri: str, field: str) -> None:
    """Refuses a checkpoint of another base model or adapter: its weights would not fit, or would
    silently train something else."""
    differing = [
        f"{name} {json.dumps(theirs)} (this session: {json.dumps(ours)})"
        for name, theirs, ours in (
            ("baseModel", marker.config.baseModel, config.baseModel),
            ("adapter", _dump(marker.config.adapter), _dump(config.adapter)),
        )
        if theirs != ours
    ]
    if differing:
        raise ProtocolError(
            "checkpoint-mismatch", f"{field}: {uri} was saved with another {'; '.join(differing)}"
        )


def check_optimizer(
    marker: CheckpointMarker, engine_state: dict[str, Any], config: SessionConfig, uri: str
) -> None:
    """A resume keeps the checkpoint's optimiser state and takes the new session's hyperparameters
    (learning rate, betas, weight decay, warm-up, clipping); another optimiser cannot take that
    state (Adam's moments mean nothing to SGD), so it is refused, unless no update was made yet."""
    theirs, ours = marker.config.optimizer.name, config.optimizer.name
    if theirs != ours and int(engine_state.get("updatesDone", 0)) > 0:
        raise ProtocolError(
            "checkpoint-mismatch",
            f"optimizer.name: {uri} holds the state of a {theirs} optimiser, this session asks for "
            f"{ours}; resume with {theirs} (its other settings may change) or start from the base model",
        )


def _dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json", exclude_none=True)


def write_state(directory: Path, state: TrainerState) -> None:
    (directory / STATE_NAME).write_text(state.model_dump_json(), encoding="utf-8")


def commit(
    store: ObjectStore, uri: str, directory: Path, session_id: str, step: int | None, config: SessionConfig
) -> CheckpointMarker:
    """Uploads every file under `directory` below `uri`, then writes the marker put-if-absent.
    Raises AlreadyCommitted when a marker appeared meanwhile (it is never replaced)."""
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    objects = []
    for path in files:
        name = path.relative_to(directory).as_posix()
        stored = store.upload(path, f"{uri}/{name}")
        objects.append({"name": name, "sha256": stored.sha256, "bytes": stored.bytes})
    document = {
        "protocolVersion": PROTOCOL_VERSION,
        "sessionId": session_id,
        "step": step,
        "config": _dump(config),
        "objects": objects,
        "committedAt": _now(),
    }
    body = json.dumps(document, indent=2).encode()
    marker = CheckpointMarker.model_validate_json(body)
    try:
        store.put(marker_uri(uri), body, if_absent=True)
    except AlreadyExists:
        raise AlreadyCommitted(uri) from None
    return marker


def download(
    store: ObjectStore, uri: str, marker: CheckpointMarker, directory: Path, names: list[str] | None = None
) -> None:
    """Downloads the marker's objects (or those of `names`) into `directory`, verifying each
    against the marker: a difference is `checkpoint-mismatch`."""
    for obj in marker.objects:
        if names is not None and obj.name not in names:
            continue
        target = directory / obj.name
        if not target.resolve().is_relative_to(directory.resolve()):
            raise ProtocolError(
                "checkpoint-mismatch", f"{marker_uri(uri)} lists an object outside the checkpoint"
            )
        try:
            got = store.download(f"{uri}/{obj.name}", target)
        except ObjectNotFound:
            raise ProtocolError(
                "checkpoint-mismatch",
                f"{uri}/{obj.name} is listed in the marker but missing: the checkpoint is damaged",
            ) from None
        if got.sha256 != obj.sha256 or got.bytes != obj.bytes:
            raise ProtocolError(
                "checkpoint-mismatch",
                f"{uri}/{obj.name} does not match its marker (sha256 {got.sha256}, {got.bytes} bytes; "
                f"the marker says {obj.sha256}, {obj.bytes} bytes): the checkpoint is damaged",
            )


def read_state(directory: Path, uri: str) -> TrainerState:
    path = directory / STATE_NAME
    if not path.is_file():
        raise ProtocolError(
            "checkpoint-mismatch", f"{uri} has no {STATE_NAME}: not a checkpoint of this trainer"
        )
    try:
        return TrainerState.model_validate_json(path.read_bytes())
    except ValidationError as err:
        raise ProtocolError("checkpoint-mismatch", f"{uri}/{STATE_NAME} does not parse: {err}") from None


def _now() -> str:
    # Milliseconds and `Z`, as JavaScript's toISOString writes it (the TypeScript schema reads it).
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
