"""What the server tests share: a real S3 (versitygw on a free port, in a temporary folder), a
trainer server in a thread, and a stand-in for vLLM's LoRA endpoints. conftest.py imports the
fixtures, so every test module sees one S3 per run."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from spark_trainer.local_s3 import free_port, local_s3
from spark_trainer.s3 import ObjectStore, S3Config
from spark_trainer.server import create_app
from spark_trainer.sessions import DEFAULT_IDLE_TIMEOUT_S, Engine, Sessions

BUCKET = "spark"


@pytest.fixture(scope="session")
def s3_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Config]:
    try:
        with local_s3(tmp_path_factory.mktemp("s3")) as config:
            ObjectStore(config).ensure_bucket(BUCKET)
            yield config
    except FileNotFoundError as missing:
        pytest.fail(str(missing))


@pytest.fixture(scope="session")
def store(s3_config: S3Config) -> ObjectStore:
    return ObjectStore(s3_config)


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of this test's own, so tests never see each other's objects."""
    return f"tests/{request.node.name}-{time.monotonic_ns()}"


def put_batch(store: ObjectStore, key: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Uploads a JSONL batch and returns its ObjectRef as the protocol sends it."""
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    uri = f"s3://{BUCKET}/{key}"
    store.put(uri, body, content_type="application/x-ndjson")
    return {"uri": uri, "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}


class Trainer:
    """A trainer server in a thread, on a free port; `restart` drops every session, as a killed
    process does, and starts a new registry on the same store."""

    def __init__(
        self,
        make_engine: Any,
        store: ObjectStore,
        models: dict[str, Path],
        publish_dir: Path,
        inference_api_key: str | None = None,
        idle_timeout_s: float | None = DEFAULT_IDLE_TIMEOUT_S,
    ) -> None:
        self._inference_api_key = inference_api_key
        self._idle_timeout_s = idle_timeout_s
        self._make_engine = make_engine
        self._store = store
        self._models = models
        self._publish_dir = publish_dir
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self.engine: Engine | None = None
        self.url = ""
        self.http = httpx.Client(timeout=120)

    def start(self) -> Trainer:
        self.engine = self._make_engine()
        sessions = Sessions(
            self.engine,
            self._store,
            self._models,
            self._publish_dir,
            inference_api_key=self._inference_api_key,
            idle_timeout_s=self._idle_timeout_s,
        )
        self.sessions = sessions
        port = free_port()
        self._server = uvicorn.Server(
            uvicorn.Config(
                create_app(sessions), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
            )
        )
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve()), daemon=True)  # type: ignore[union-attr]
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the trainer server did not start"
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
        self._server = None
        shutdown = getattr(self.engine, "shutdown", None)
        if shutdown is not None:
            shutdown()

    def restart(self) -> Trainer:
        self.stop()
        return self.start()

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(f"{self.url}{path}", json=body)

    def get(self, path: str) -> httpx.Response:
        return self.http.get(f"{self.url}{path}")


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["protocolVersion"] == 1, body
    return dict(body["error"])


class FakeInference:
    """vLLM's runtime LoRA endpoints, recording each call; `fail_load` makes loading answer 500;
    with `api_key`, calls without `Authorization: Bearer <api_key>` get 401, as vLLM's --api-key does."""

    def __init__(self, api_key: str | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.loaded: dict[str, str] = {}
        self.fail_load = False
        app = FastAPI()

        if api_key is not None:

            @app.middleware("http")
            async def require_key(request: Request, call_next: Any) -> Any:
                if request.headers.get("authorization") != f"Bearer {api_key}":
                    return JSONResponse({"error": "Unauthorized"}, status_code=401)
                return await call_next(request)

        @app.post("/v1/unload_lora_adapter")
        async def unload(request: Request) -> JSONResponse:
            body = await request.json()
            self.calls.append(("unload", body))
            if self.loaded.pop(body["lora_name"], None) is None:
                return JSONResponse({"error": {"message": f"{body['lora_name']} not found"}}, status_code=404)
            return JSONResponse({})

        @app.post("/v1/load_lora_adapter")
        async def load(request: Request) -> JSONResponse:
            body = await request.json()
            self.calls.append(("load", body))
            if self.fail_load:
                return JSONResponse({"error": {"message": "out of memory"}}, status_code=500)
            if body["lora_name"] in self.loaded:
                return JSONResponse({"error": {"message": "already loaded"}}, status_code=400)
            self.loaded[body["lora_name"]] = body["lora_path"]
            return JSONResponse({})

        port = free_port()
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}/v1"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@pytest.fixture
def inference() -> Iterator[FakeInference]:
    server = FakeInference()
    yield server
    server.stop()
