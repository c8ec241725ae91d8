"""The trainer as the control plane drives it: the real runtime on the tiny model, S3, a restart in
the middle, and the CLI's own process."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from harness import BUCKET, Trainer, error_of, free_port, put_batch

from spark_trainer.protocol import CheckpointMarker
from spark_trainer.s3 import ObjectStore, S3Config

CONFIG: dict[str, Any] = {
    "baseModel": "tiny",
    "adapter": {"kind": "lora", "rank": 4, "alpha": 8, "targetModules": ["q_proj", "v_proj"]},
    "optimizer": {
        "name": "adamw",
        "learningRate": 5e-3,
        "betas": [0.9, 0.99],
        "weightDecay": 0,
        "warmupSteps": 1,
    },
    "seed": 11,
}
PROMPT = [
    {"role": "user", "content": "Natalia sold 48 clips in April and half as many in May. How many in all?"}
]
SFT_LOSS = {"kind": "sft"}
GRPO_LOSS = {"kind": "grpo", "klCoefficient": 0.01, "entropyCoefficient": 0}


def lines_for(step: int) -> list[dict[str, Any]]:
    """Even steps SFT, odd steps GRPO with step-level advantages (one astral character, which
    JavaScript counts as 2)."""
    completions = [f"Step 1: 48 / 2 = 24.\nStep 2: 48 + 24 = {72 + k}.\n#### {72 + k}" for k in range(3)]
    if step % 2 == 0:
        return [{"prompt": PROMPT, "completion": c} for c in completions]
    return [
        {
            "prompt": PROMPT,
            "completion": "🙂 " + c,
            "advantage": 1.0 - k,
            "stepAdvantages": [{"end": 22, "advantage": 0.5}, {"end": 40, "advantage": -0.25}],
        }
        for k, c in enumerate(completions)
    ]


@pytest.fixture
def model_server(tiny_model_dir: Path) -> Iterator[str]:
    """The development model server on the tiny model, as the trainer publishes to it."""
    from spark_trainer.model_server import create_model_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_model_app({"tiny": tiny_model_dir}, "cpu"), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def real_trainer(store: ObjectStore, tiny_model_dir: Path, tmp_path: Path) -> Iterator[Trainer]:
    from spark_trainer.runtime import Runtime

    models = {"tiny": tiny_model_dir}
    server = Trainer(lambda: Runtime(models, device="cpu"), store, models, tmp_path / "publish").start()
    yield server
    server.stop()


def run_steps(
    trainer: Trainer, session_id: str, store: ObjectStore, prefix: str, steps: range
) -> list[dict[str, Any]]:
    answers = []
    for step in steps:
        batch = put_batch(store, f"{prefix}/batches/step-{step:06d}.jsonl", lines_for(step))
        loss = SFT_LOSS if step % 2 == 0 else GRPO_LOSS
        body = {"protocolVersion": 1, "step": step, "batch": batch, "loss": loss}
        response = trainer.post(f"/v1/sessions/{session_id}/steps", body)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    return answers


def adapter_sha256(store: ObjectStore, uri: str) -> str:
    marker = CheckpointMarker.model_validate_json(store.get_bytes(f"{uri}/COMMITTED"))
    return next(o.sha256 for o in marker.objects if o.name == "adapter_model.safetensors")


def test_a_restart_mid_run_ends_with_the_weights_of_a_run_without_one(
    real_trainer: Trainer, store: ObjectStore, prefix: str, model_server: str
) -> None:
    t = real_trainer
    create = {"protocolVersion": 1, **CONFIG}

    # Uninterrupted: 4 steps, then a checkpoint.
    assert t.post("/v1/sessions", {**create, "sessionId": "straight"}).status_code == 201
    straight = run_steps(t, "straight", store, prefix, range(4))
    assert all(a["applied"] for a in straight)
    assert {"loss", "tokens", "examples", "learningRate", "gradNorm"} <= set(straight[0]["metrics"])
    assert {"kl", "entropy", "clipFraction"} <= set(straight[1]["metrics"])
    final_uri = f"s3://{BUCKET}/{prefix}/ck/straight/step-000003"
    assert t.post(
        "/v1/sessions/straight/checkpoints", {"protocolVersion": 1, "uri": final_uri, "step": 3}
    ).json()["created"]

    # Interrupted: 2 steps, a checkpoint, a restart (every session lost), a resume, 2 more steps.
    assert t.post("/v1/sessions", {**create, "sessionId": "resumed"}).status_code == 201
    run_steps(t, "resumed", store, prefix, range(2))
    half_uri = f"s3://{BUCKET}/{prefix}/ck/resumed/step-000001"
    t.post("/v1/sessions/resumed/checkpoints", {"protocolVersion": 1, "uri": half_uri, "step": 1})
    t.restart()
    missing = t.get("/v1/sessions/resumed")
    assert (missing.status_code, error_of(missing)["code"]) == (404, "unknown-session")
    resumed = t.post("/v1/sessions", {**create, "sessionId": "resumed", "resumeFrom": half_uri})
    assert resumed.status_code == 201, resumed.text
    assert resumed.json()["session"]["nextStep"] == 2
    # Retried steps are answered from the checkpoint's step log, not trained again.
    retried = run_steps(t, "resumed", store, prefix, range(2))
    assert [r["applied"] for r in retried] == [False, False]
    assert [r["metrics"] for r in retried] == [a["metrics"] for a in straight[:2]]
    rest = run_steps(t, "resumed", store, prefix, range(2, 4))
    assert [r["metrics"] for r in rest] == [a["metrics"] for a in straight[2:]]
    resumed_uri = f"s3://{BUCKET}/{prefix}/ck/resumed/step-000003"
    t.post("/v1/sessions/resumed/checkpoints", {"protocolVersion": 1, "uri": resumed_uri, "step": 3})
    assert adapter_sha256(store, resumed_uri) == adapter_sha256(store, final_uri)

    # The published adapter is in the PEFT layout an inference server loads, and serves.
    body = {"protocolVersion": 1, "inferenceBaseURL": model_server, "modelName": "policy-step-000003"}
    published = t.post("/v1/sessions/resumed/publish", body)
    assert published.status_code == 200, published.text
    folder = Path(published.json()["loraPath"])
    adapter = json.loads((folder / "adapter_config.json").read_text())
    assert (adapter["peft_type"], adapter["r"]) == ("LORA", 4)
    assert hashlib.sha256((folder / "adapter_model.safetensors").read_bytes()).hexdigest() == adapter_sha256(
        store, resumed_uri
    )
    chat = {"model": "policy-step-000003", "messages": PROMPT, "max_tokens": 4, "temperature": 0}
    completion = httpx.post(f"{model_server}/chat/completions", json=chat, timeout=60)
    assert completion.status_code == 200, completion.text
    assert completion.json()["model"] == "policy-step-000003"
    # Publishing the name again (a retried publish) unloads and loads it again.
    assert t.post("/v1/sessions/resumed/publish", body).json() == published.json()


def _cli(argv: list[str], env: dict[str, str], stdout: int) -> None:
    """The CLI's `main` in a forked child, its stdout on a pipe: the same process `python -m
    spark_trainer` runs, without paying a fresh import of torch and transformers."""
    os.environ.update(env)
    # pytest has replaced sys.stdout with its capture: the child prints to the pipe instead.
    os.dup2(stdout, 1)
    sys.stdout = open(1, "w", closefd=False)
    from spark_trainer.__main__ import main

    main(argv)


def test_the_cli_serves_the_protocol(s3_config: S3Config, tiny_model_dir: Path, tmp_path: Path) -> None:
    env = {
        "SPARK_S3_ENDPOINT": s3_config.endpoint or "",
        "AWS_ACCESS_KEY_ID": s3_config.access_key_id or "",
        "AWS_SECRET_ACCESS_KEY": s3_config.secret_access_key or "",
    }
    argv = ["serve", "--port", "0", "--model", f"tiny={tiny_model_dir}", "--device", "cpu"]
    argv += ["--publish-dir", str(tmp_path / "publish")]
    read_end, write_end = os.pipe()
    child = multiprocessing.get_context("fork").Process(target=_cli, args=(argv, env, write_end))
    child.start()
    os.close(write_end)
    try:
        with os.fdopen(read_end) as stdout:
            # Never hang the run: a child that prints nothing in time fails the test.
            assert select.select([stdout], [], [], 120)[0], "the trainer did not print its ready line"
            ready = json.loads(stdout.readline())
        assert ready["event"] == "trainer-ready" and ready["models"] == ["tiny"]
        url = ready["url"]
        health = httpx.get(f"{url}/health").json()
        assert health == {"protocolVersion": 1, "status": "ok", "sessions": 0, "models": ["tiny"]}
        created = httpx.post(f"{url}/v1/sessions", json={"protocolVersion": 1, "sessionId": "cli", **CONFIG})
        assert (created.status_code, created.json()["session"]["status"]) == (201, "ready")
    finally:
        # SIGTERM ends it cleanly: running requests finish, the runtime shuts down, exit status 0.
        assert child.pid is not None
        os.kill(child.pid, signal.SIGTERM)
        child.join(timeout=30)
    assert child.exitcode == 0
