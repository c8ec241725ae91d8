"""Trainer protocol v1 on the wire: pydantic models mirroring `src/core/trainer/protocol.ts`.

Requests are strict (`extra="forbid"`: a misspelt optional field must not fall back to a default);
responses are built by this server, so their models only document what is sent. Field names are
the protocol's camelCase; Python code reads them through the same names.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

PROTOCOL_VERSION = 1
MARKER_NAME = "COMMITTED"

_S3_URI = re.compile(r"^s3://[^/]+/.+")
_SESSION_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_SHA256 = r"^[0-9a-f]{64}$"
_MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,255}$"


class Strict(BaseModel):
    """A request message: unknown fields are errors, and values keep their JSON types (no `"1e-6"`
    for a number, no `true` for 1), as the TypeScript schemas read them."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _reject_null(value: Any, info: ValidationInfo) -> Any:
    # Optional fields may be left out of a message but not sent as null: the TypeScript schemas
    # refuse null too. Python-side round trips (model_dump, then model_validate) keep their None.
    if value is None and info.mode == "json":
        raise PydanticCustomError("not_null", "expected a value, not null (leave the field out instead)")
    return value


def _not_null(*fields: str) -> Any:
    return field_validator(*fields, mode="before")(_reject_null)


class Lenient(BaseModel):
    """A message this side reads but does not own: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")


def _check_s3_uri(value: str) -> str:
    if not _S3_URI.match(value):
        raise ValueError("an S3 URI like s3://bucket/key")
    return value


def _check_checkpoint_uri(value: str) -> str:
    _check_s3_uri(value)
    if value.endswith("/"):
        raise ValueError(
            "a checkpoint URI without a trailing slash, like s3://bucket/checkpoints/run/step-000120"
        )
    return value


StepNumber = Annotated[int, Field(ge=0, strict=True)]
ProtocolVersion = Literal[1]


class ObjectRef(Strict):
    uri: str
    sha256: Annotated[str, Field(pattern=_SHA256)]
    bytes: Annotated[int, Field(ge=0, strict=True)]

    _uri = field_validator("uri")(_check_s3_uri)


class LoraAdapter(Strict):
    kind: Literal["lora"]
    rank: Annotated[int, Field(gt=0, strict=True)]
    alpha: Annotated[float, Field(gt=0)]
    targetModules: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    dropout: Annotated[float, Field(ge=0, lt=1)] | None = None

    _dropout = _not_null("dropout")


class FullAdapter(Strict):
    kind: Literal["full"]


Adapter = Annotated[LoraAdapter | FullAdapter, Field(discriminator="kind")]


class Optimizer(Strict):
    name: Literal["adamw", "adam", "sgd"]
    learningRate: Annotated[float, Field(gt=0)]
    # Not strict as a container, so a Python list is a pair too; the numbers inside stay strict.
    betas: Annotated[
        tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]], Field(strict=False)
    ]
    weightDecay: Annotated[float, Field(ge=0)]
    warmupSteps: Annotated[int, Field(ge=0, strict=True)]
    maxGradNorm: Annotated[float, Field(gt=0)] | None = None

    _max_grad_norm = _not_null("maxGradNorm")


class SessionConfig(Strict):
    baseModel: Annotated[str, Field(min_length=1)]
    adapter: Adapter
    optimizer: Optimizer
    seed: Annotated[int, Field(ge=0, le=2**53 - 1, strict=True)]
    resumeFrom: str | None = None

    _resume = field_validator("resumeFrom")(lambda v: v if v is None else _check_checkpoint_uri(v))
    _resume_not_null = _not_null("resumeFrom")

    def identity(self) -> dict[str, Any]:
        """What must match for two requests to name the same session (and a checkpoint to load)."""
        return self.model_dump(mode="json", exclude_none=True)


class CreateSessionRequest(SessionConfig):
    protocolVersion: ProtocolVersion
    sessionId: Annotated[str, Field(pattern=_SESSION_ID)] | None = None

    _session_id = _not_null("sessionId")

    def config(self) -> SessionConfig:
        return SessionConfig.model_validate(
            self.model_dump(exclude={"protocolVersion", "sessionId"}, exclude_none=True)
        )


class CheckpointInfo(Lenient):
    uri: str
    step: StepNumber | None
    markerUri: str


SessionStatus = Literal["loading", "ready", "busy", "failed"]


class SessionState(Lenient):
    protocolVersion: ProtocolVersion
    sessionId: str
    config: SessionConfig
    status: SessionStatus
    statusMessage: str | None = None
    lastAppliedStep: StepNumber | None
    nextStep: StepNumber
    lastCheckpoint: CheckpointInfo | None


class CreateSessionResponse(Lenient):
    protocolVersion: ProtocolVersion
    created: bool
    session: SessionState


class GrpoLoss(Strict):
    kind: Literal["grpo"]
    klCoefficient: Annotated[float, Field(ge=0)]
    entropyCoefficient: Annotated[float, Field(ge=0)]
    clipRatio: Annotated[float, Field(gt=0)] | None = None
    klEstimator: Literal["low-var-kl", "k1", "k2"] | None = None

    _optional = _not_null("clipRatio", "klEstimator")


class SftLoss(Strict):
    kind: Literal["sft"]


Loss = Annotated[SftLoss | GrpoLoss, Field(discriminator="kind")]


class TrainStepRequest(Strict):
    protocolVersion: ProtocolVersion
    step: StepNumber
    batch: ObjectRef
    loss: Loss
    learningRate: Annotated[float, Field(gt=0)] | None = None

    _learning_rate = _not_null("learningRate")


class TrainStepResponse(Lenient):
    protocolVersion: ProtocolVersion
    step: StepNumber
    applied: bool
    metrics: dict[str, float]

    @field_validator("metrics")
    @classmethod
    def _has_loss(cls, value: dict[str, float]) -> dict[str, float]:
        if "loss" not in value:
            raise ValueError("metrics must include loss")
        return value


class ChatMessage(Strict):
    role: Literal["system", "user", "assistant"]
    content: str


class SftExample(Strict):
    prompt: Annotated[list[ChatMessage], Field(min_length=1)]
    completion: str


class StepAdvantage(Strict):
    end: Annotated[int, Field(gt=0, strict=True)]
    advantage: float


# OpenAI's finish reasons (and vLLM's `abort`): `stop` ended the turn, `length` cut it at the token limit.
FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "function_call", "abort"]


class GrpoExample(Strict):
    prompt: Annotated[list[ChatMessage], Field(min_length=1)]
    completion: str
    advantage: float
    stepAdvantages: Annotated[list[StepAdvantage], Field(min_length=1)] | None = None
    # Optional, so lines written before it still parse (and train the end-of-turn token, as then).
    finishReason: FinishReason | None = None

    _spans = _not_null("stepAdvantages", "finishReason")

    @field_validator("stepAdvantages")
    @classmethod
    def _ends_increase(cls, spans: list[StepAdvantage] | None) -> list[StepAdvantage] | None:
        if spans is not None and any(b.end <= a.end for a, b in zip(spans, spans[1:], strict=False)):
            raise ValueError("step ends must increase")
        return spans


class SaveCheckpointRequest(Strict):
    protocolVersion: ProtocolVersion
    uri: str
    step: StepNumber | None = None
    # An explicit `"step": null` (initial weights) is told from an absent step by `model_fields_set`.
    _uri = field_validator("uri")(_check_checkpoint_uri)


class SaveCheckpointResponse(CheckpointInfo):
    protocolVersion: ProtocolVersion
    created: bool


class MarkerObject(Lenient):
    name: Annotated[str, Field(pattern=r"^[^/].*[^/]$|^[^/]$")]
    sha256: Annotated[str, Field(pattern=_SHA256)]
    bytes: Annotated[int, Field(ge=0)]


class CheckpointMarker(Lenient):
    protocolVersion: ProtocolVersion
    sessionId: Annotated[str, Field(pattern=_SESSION_ID)]
    step: StepNumber | None
    config: SessionConfig
    objects: Annotated[list[MarkerObject], Field(min_length=1)]
    committedAt: str

    @field_validator("committedAt")
    @classmethod
    def _iso(cls, value: str) -> str:
        if not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", value):
            raise ValueError("an ISO 8601 date-time")
        return value


class PublishRequest(Strict):
    protocolVersion: ProtocolVersion
    inferenceBaseURL: Annotated[str, Field(pattern=r"^https?://[^\s/]+.*$")]
    modelName: Annotated[str, Field(pattern=_MODEL_NAME)]
    checkpointUri: str | None = None

    _ckpt = field_validator("checkpointUri")(lambda v: v if v is None else _check_checkpoint_uri(v))
    _ckpt_not_null = _not_null("checkpointUri")


class PublishResponse(Lenient):
    protocolVersion: ProtocolVersion
    modelName: str
    loraPath: str
    checkpointUri: str
    step: StepNumber | None


class DeleteSessionResponse(Lenient):
    protocolVersion: ProtocolVersion
    sessionId: str
    deleted: Literal[True]


ErrorCode = Literal[
    "version-mismatch",
    "invalid-request",
    "unknown-session",
    "step-out-of-order",
    "conflict",
    "checkpoint-not-found",
    "checkpoint-mismatch",
    "publish-failed",
    "internal",
]

# Each code with its HTTP status, as the protocol's error table says.
ERROR_STATUS: dict[str, int] = {
    "version-mismatch": 400,
    "invalid-request": 400,
    "unknown-session": 404,
    "step-out-of-order": 409,
    "conflict": 409,
    "checkpoint-not-found": 404,
    "checkpoint-mismatch": 409,
    "publish-failed": 502,
    "internal": 500,
}


class ErrorDetail(Lenient):
    code: ErrorCode
    message: Annotated[str, Field(min_length=1)]
    details: dict[str, Any] | None = None


class TrainerErrorBody(Lenient):
    protocolVersion: Annotated[int, Field(gt=0)]
    error: ErrorDetail


class ProtocolError(Exception):
    """Raised anywhere in the trainer; the HTTP layer turns it into the protocol's error body."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        assert code in ERROR_STATUS, code
        self.code = code
        self.message = message
        self.details = details

    @property
    def status(self) -> int:
        return ERROR_STATUS[self.code]

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"protocolVersion": PROTOCOL_VERSION, "error": error}


SCHEMAS: dict[str, type[BaseModel]] = {
    "CreateSessionRequest": CreateSessionRequest,
    "CreateSessionResponse": CreateSessionResponse,
    "TrainStepRequest": TrainStepRequest,
    "TrainStepResponse": TrainStepResponse,
    "SaveCheckpointRequest": SaveCheckpointRequest,
    "SaveCheckpointResponse": SaveCheckpointResponse,
    "CheckpointMarker": CheckpointMarker,
    "PublishRequest": PublishRequest,
    "PublishResponse": PublishResponse,
    "DeleteSessionResponse": DeleteSessionResponse,
    "SessionState": SessionState,
    "SftExample": SftExample,
    "GrpoExample": GrpoExample,
    "TrainerErrorBody": TrainerErrorBody,
}


# ---------------------------------------------------------------------------------------------
# Checks every request goes through, as `parseProtocolMessage` in the TypeScript schema module.


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    names = {str: "string", bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)


M = TypeVar("M", bound=BaseModel)


def check_protocol_version(body: Any) -> str | None:
    """None when `body` carries this side's version, else a message naming both versions. Runs
    before the schema, so a version skew reads as such rather than as a pile of field errors."""
    ours = f"this side speaks trainer protocol version {PROTOCOL_VERSION}"
    if not isinstance(body, dict):
        got = _json_type(body)
        return f"expected a JSON object with protocolVersion {PROTOCOL_VERSION}, got {got}; {ours}"
    if "protocolVersion" not in body:
        return f"message has no protocolVersion; {ours}"
    theirs = body["protocolVersion"]
    # JSON's 1.0 is JavaScript's 1; a boolean is not a version.
    if not isinstance(theirs, bool) and isinstance(theirs, int | float) and theirs == PROTOCOL_VERSION:
        return None
    return (
        f"trainer protocol version mismatch: the message is version {json.dumps(theirs)}, {ours}; "
        "run a control plane and trainer server that speak the same version"
    )


def version_mismatch(message: str, request_version: Any) -> ProtocolError:
    return ProtocolError(
        "version-mismatch", message, {"serverVersion": PROTOCOL_VERSION, "requestVersion": request_version}
    )


def describe_issues(error: ValidationError, data: Any) -> str:
    """One clause per issue, each naming the field by its path (`optimizer.learningrate: unknown field`).

    pydantic puts a tagged union's tag into the path (`adapter.lora.rank`); the path is walked
    along the input, and a step the input does not have (the tag) is left out unless it is last.
    """
    clauses: list[str] = []
    for issue in error.errors(include_url=False):
        loc = list(issue["loc"])
        path: list[str] = []
        node: Any = data
        for i, part in enumerate(loc):
            last = i == len(loc) - 1
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            elif not last:
                continue
            path.append(str(part))
        at = ".".join(path)
        if issue["type"] == "extra_forbidden":
            clauses.append(f"{at}: unknown field")
            continue
        message = issue["msg"].removeprefix("Value error, ")
        if issue["type"] == "missing":
            message = "required field"
        clauses.append(f"{at or '(body)'}: {message}")
    return "; ".join(clauses)


def parse_message(model: type[M], raw: bytes | str) -> M:
    """A request body as `model`, or the protocol's error for it: version first, then the schema."""
    data = _load_json(raw, "the body")
    problem = check_protocol_version(data)
    if problem is not None:
        raise version_mismatch(problem, data.get("protocolVersion") if isinstance(data, dict) else None)
    return _validate(model, raw, data, "")


def parse_line(model: type[M], raw: bytes | str, line: int) -> M:
    """One JSONL line of a batch as `model`; errors name the line (1-based) and the field."""
    return _validate(model, raw, _load_json(raw, f"batch line {line}"), f"batch line {line}: ")


def _load_json(raw: bytes | str, what: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as err:
        raise ProtocolError("invalid-request", f"{what} is not valid JSON: {err}") from None


def _validate(model: type[M], raw: bytes | str, data: Any, where: str) -> M:
    # Validated from the JSON text, not the Python objects, so strict mode means JSON's types
    # (an array is a pair, an integer is a number); `data` only serves to name the fields.
    try:
        return model.model_validate_json(raw)
    except ValidationError as err:
        raise ProtocolError("invalid-request", f"{where}{describe_issues(err, data)}") from None


def to_wire(model: BaseModel) -> dict[str, Any]:
    """A message as JSON values: an optional field left unset is left out (the TypeScript schemas
    refuse null there), while a required nullable one (`lastAppliedStep`, `step`) is sent as null."""
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None and not info.is_required():
            continue
        out[name] = _wire_value(value)
    return out


def _wire_value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return to_wire(value)
    if isinstance(value, list | tuple):
        return [_wire_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _wire_value(v) for k, v in value.items()}
    return value
