"""The HTTP side of trainer protocol v1: parse, dispatch to the session registry, answer.

Bodies are read raw and parsed here (not by FastAPI's own validation) so that the version is
checked before the schema and every error has the protocol's body.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from .protocol import (
    PROTOCOL_VERSION,
    CreateSessionRequest,
    CreateSessionResponse,
    ProtocolError,
    PublishRequest,
    SaveCheckpointRequest,
    TrainStepRequest,
    parse_message,
    to_wire,
    version_mismatch,
)
from .sessions import Sessions

log = logging.getLogger("spark_trainer.server")

_VERSIONED = re.compile(r"^/v(\d+)(?:/|$)")


def create_app(sessions: Sessions) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sessions.start()
        yield
        await sessions.aclose()

    app = FastAPI(title="spark-trainer", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    @app.exception_handler(ProtocolError)
    async def protocol_error(_: Request, err: ProtocolError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status)

    # A middleware, not an exception handler: Starlette re-raises after a catch-all handler has
    # answered, and the server then resets the connection, so the client might never read the 500.
    @app.middleware("http")
    async def internal_error(request: Request, call_next: Any) -> Response:
        try:
            response: Response = await call_next(request)
            return response
        except Exception as err:
            log.exception("%s %s failed", request.method, request.url.path)
            return _error(ProtocolError("internal", f"internal error: {err!r}"))

    @app.get("/health")
    async def health() -> JSONResponse:
        # 503 once the ranks are out of step (a rank died mid-step): a probe restarts the trainer.
        failure = sessions.failure
        body: dict[str, object] = {
            "protocolVersion": PROTOCOL_VERSION,
            "status": "ok" if failure is None else "failed",
            "sessions": sessions.count(),
            "models": sessions.model_names,
        }
        if failure is not None:
            body["error"] = failure
        return _json(body, 200 if failure is None else 503)

    @app.post("/v1/sessions")
    async def create_session(request: Request) -> JSONResponse:
        body = parse_message(CreateSessionRequest, await request.body())
        state, created = await sessions.create(body)
        response = CreateSessionResponse(protocolVersion=PROTOCOL_VERSION, created=created, session=state)
        return _json(response, 201 if created else 200)

    @app.get("/v1/sessions/{session_id}")
    async def get_session(session_id: str) -> JSONResponse:
        return _json(sessions.get(session_id))

    @app.delete("/v1/sessions/{session_id}")
    async def delete_session(session_id: str) -> JSONResponse:
        await sessions.delete(session_id)
        return _json({"protocolVersion": PROTOCOL_VERSION, "sessionId": session_id, "deleted": True})

    @app.post("/v1/sessions/{session_id}/steps")
    async def train_step(session_id: str, request: Request) -> JSONResponse:
        body = parse_message(TrainStepRequest, await request.body())
        return _json(await sessions.train_step(session_id, body))

    @app.post("/v1/sessions/{session_id}/checkpoints")
    async def save_checkpoint(session_id: str, request: Request) -> JSONResponse:
        body = parse_message(SaveCheckpointRequest, await request.body())
        return _json(await sessions.save_checkpoint(session_id, body))

    @app.post("/v1/sessions/{session_id}/publish")
    async def publish(session_id: str, request: Request) -> JSONResponse:
        body = parse_message(PublishRequest, await request.body())
        return _json(await sessions.publish(session_id, body))

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    async def elsewhere(path: str, request: Request) -> JSONResponse:
        # Another version's paths read as a version mismatch, not as a missing route.
        versioned = _VERSIONED.match(f"/{path}")
        if versioned and int(versioned.group(1)) != PROTOCOL_VERSION:
            raise version_mismatch(
                f"this trainer speaks protocol version {PROTOCOL_VERSION}, "
                f"the path asks for version {versioned.group(1)}",
                int(versioned.group(1)),
            )
        raise ProtocolError("invalid-request", f"no route for {request.method} /{path}")

    return app


def _json(body: BaseModel | dict[str, object], status: int = 200) -> JSONResponse:
    content = to_wire(body) if isinstance(body, BaseModel) else body
    return JSONResponse(content, status_code=status)


def _error(err: ProtocolError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status)
