"""The protocol's rules over HTTP, on the real runtime (the tiny model, on CPU) and a real S3:
idempotency, step order, serialisation, checkpoints that exist only once committed, resume after a
restart, and publish. Every step trains real weights; the only faults injected are a held call (to
watch `busy`, `loading` and requests waiting) and a raised one, both before the real call runs."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from harness import BUCKET, FakeInference, Trainer, error_of, put_batch

from spark_trainer.protocol import CheckpointMarker, GrpoExample, Loss, SessionConfig, SftExample
from spark_trainer.runtime import Runtime
from spark_trainer.s3 import AlreadyExists, ObjectStore

CONFIG: dict[str, Any] = {
    "baseModel": "tiny",
    "adapter": {"kind": "lora", "rank": 4, "alpha": 8, "targetModules": ["q_proj", "v_proj"]},
    "optimizer": {
        "name": "adamw",
        "learningRate": 1e-3,
        "betas": [0.9, 0.999],
        "weightDecay": 0,
        "warmupSteps": 0,
    },
    "seed": 3,
}
SFT_LINE = {"prompt": [{"role": "user", "content": "1 + 1 = ?"}], "completion": "2"}


class FaultyRuntime(Runtime):
    """The real runtime, with faults injected before a call reaches it. `open_gate` / `step_gate`,
    when set to a cleared Event, hold the next opens / steps until the test sets it (`entered` says
    one is held); `fail_next` is raised by the next step instead of running it."""

    def __init__(self, models: dict[str, Path]) -> None:
        super().__init__(models, device="cpu")
        self.open_gate: threading.Event | None = None
        self.step_gate: threading.Event | None = None
        self.entered = threading.Event()
        self.fail_next: Exception | None = None

    def open(
        self, session_id: str, config: SessionConfig, resume: tuple[Path, dict[str, Any]] | None = None
    ) -> None:
        self._hold(self.open_gate)
        super().open(session_id, config, resume)

    def train_step(
        self,
        session_id: str,
        step: int,
        examples: list[SftExample] | list[GrpoExample],
        loss: Loss,
        learning_rate: float | None,
    ) -> dict[str, float]:
        self._hold(self.step_gate)
        if self.fail_next is not None:
            err, self.fail_next = self.fail_next, None
            raise err
        return super().train_step(session_id, step, examples, loss, learning_rate)

    def _hold(self, gate: threading.Event | None) -> None:
        if gate is not None:
            self.entered.set()
            gate.wait(30)


@pytest.fixture
def trainer(store: ObjectStore, tiny_model_dir: Path, tmp_path: Path) -> Iterator[Trainer]:
    # "other" is a second name for the same folder: a checkpoint of one must not resume the other.
    models = {"tiny": tiny_model_dir, "other": tiny_model_dir}
    server = Trainer(lambda: FaultyRuntime(models), store, models, tmp_path / "publish").start()
    yield server
    server.stop()


def runtime(trainer: Trainer) -> FaultyRuntime:
    assert isinstance(trainer.engine, FaultyRuntime)
    return trainer.engine


def updates_done(trainer: Trainer, session_id: str = "run-1") -> int:
    """Optimiser steps the session's weights have taken, as the runtime counts them."""
    return runtime(trainer).engines[session_id].updates_done


def create(trainer: Trainer, session_id: str = "run-1", **overrides: Any) -> httpx.Response:
    return trainer.post(
        "/v1/sessions", {"protocolVersion": 1, "sessionId": session_id, **CONFIG, **overrides}
    )


def step(trainer: Trainer, number: int, batch: dict[str, Any], session_id: str = "run-1") -> httpx.Response:
    body = {"protocolVersion": 1, "step": number, "batch": batch, "loss": {"kind": "sft"}}
    return trainer.post(f"/v1/sessions/{session_id}/steps", body)


def save(trainer: Trainer, uri: str, session_id: str = "run-1", **extra: Any) -> httpx.Response:
    return trainer.post(f"/v1/sessions/{session_id}/checkpoints", {"protocolVersion": 1, "uri": uri, **extra})


def adapter_sha256(store: ObjectStore, uri: str) -> str:
    """The sha256 of a committed checkpoint's adapter_model.safetensors, read from S3."""
    return hashlib.sha256(store.get_bytes(f"{uri}/adapter_model.safetensors")).hexdigest()


def batches(store: ObjectStore, prefix: str, count: int) -> list[dict[str, Any]]:
    return [put_batch(store, f"{prefix}/batch-{i}.jsonl", [SFT_LINE] * (i + 1)) for i in range(count)]


# -- sessions -----------------------------------------------------------------------------------


def test_create_is_idempotent_by_session_id(trainer: Trainer) -> None:
    first = create(trainer)
    assert first.status_code == 201
    assert first.json()["created"] is True
    session = first.json()["session"]
    assert session == {
        "protocolVersion": 1,
        "sessionId": "run-1",
        "config": CONFIG,
        "status": "ready",
        "lastAppliedStep": None,
        "nextStep": 0,
        "lastCheckpoint": None,
    }
    loaded = runtime(trainer).engines["run-1"]
    again = create(trainer)
    assert (again.status_code, again.json()["created"], again.json()["session"]) == (200, False, session)
    assert runtime(trainer).engines["run-1"] is loaded, "the model is not loaded again"
    other = create(trainer, seed=4)
    assert (other.status_code, error_of(other)["code"]) == (409, "conflict")


def test_unknown_model_lists_the_served_ones(trainer: Trainer) -> None:
    response = create(trainer, baseModel="Qwen/Qwen2.5-7B")
    assert response.status_code == 400
    assert error_of(response) == {
        "code": "invalid-request",
        "message": "baseModel: this trainer serves other, tiny; got 'Qwen/Qwen2.5-7B' "
        "(start it with --model NAME=DIR)",
    }


def test_strict_requests_and_the_version_first(trainer: Trainer) -> None:
    typo = create(trainer, optimizer={**CONFIG["optimizer"], "learningrate": 1e-3})
    assert (typo.status_code, error_of(typo)["code"]) == (400, "invalid-request")
    assert error_of(typo)["message"] == "optimizer.learningrate: unknown field"
    newer = trainer.post("/v1/sessions", {"protocolVersion": 2, "sessionId": "x", "newField": 1})
    assert (newer.status_code, error_of(newer)["code"]) == (400, "version-mismatch")
    assert error_of(newer)["details"] == {"serverVersion": 1, "requestVersion": 2}
    path = trainer.get("/v2/sessions/run-1")
    assert (path.status_code, error_of(path)["details"]) == (400, {"serverVersion": 1, "requestVersion": 2})
    not_json = trainer.http.post(f"{trainer.url}/v1/sessions", content=b"{")
    assert (not_json.status_code, error_of(not_json)["code"]) == (400, "invalid-request")
    missing = trainer.get("/v1/sessions/nobody")
    assert (missing.status_code, error_of(missing)["code"]) == (404, "unknown-session")


def test_get_answers_loading_while_a_session_loads(trainer: Trainer) -> None:
    held = runtime(trainer)
    held.open_gate = threading.Event()
    creating = _in_background(lambda: create(trainer))
    assert held.entered.wait(10)
    assert trainer.get("/v1/sessions/run-1").json()["status"] == "loading"
    retried = _in_background(lambda: create(trainer))
    time.sleep(0.2)
    assert not retried.done.is_set(), "a retried create waits for the first one"
    held.open_gate.set()
    assert creating.result().status_code == 201
    assert retried.result().json()["created"] is False
    assert trainer.get("/v1/sessions/run-1").json()["status"] == "ready"
    assert list(held.engines) == ["run-1"]


# -- steps --------------------------------------------------------------------------------------


def test_steps_are_idempotent_and_in_order(trainer: Trainer, store: ObjectStore, prefix: str) -> None:
    b = batches(store, prefix, 3)
    create(trainer)
    first = step(trainer, 0, b[0])
    assert (first.status_code, first.json()["applied"]) == (200, True)
    metrics = first.json()["metrics"]
    assert metrics["examples"] == 1 and "loss" in metrics
    retried = step(trainer, 0, b[0])
    assert retried.json() == {"protocolVersion": 1, "step": 0, "applied": False, "metrics": metrics}
    other = step(trainer, 0, b[1])
    assert (other.status_code, error_of(other)["code"]) == (409, "conflict")
    ahead = step(trainer, 2, b[2])
    assert ahead.status_code == 409
    assert error_of(ahead) == {
        "code": "step-out-of-order",
        "message": "step 2 is ahead of the next step 1 of session run-1",
        "details": {"expectedStep": 1, "receivedStep": 2},
    }
    assert step(trainer, 1, b[1]).json()["applied"] is True
    state = trainer.get("/v1/sessions/run-1").json()
    assert (state["lastAppliedStep"], state["nextStep"]) == (1, 2)
    assert updates_done(trainer) == 2, "the retried and refused steps trained nothing"


def test_the_batch_is_checked_before_training(trainer: Trainer, store: ObjectStore, prefix: str) -> None:
    create(trainer)
    batch = put_batch(store, f"{prefix}/b.jsonl", [SFT_LINE])
    wrong_sha = step(trainer, 0, {**batch, "sha256": "0" * 64})
    assert (wrong_sha.status_code, error_of(wrong_sha)["code"]) == (400, "invalid-request")
    assert "sha256" in error_of(wrong_sha)["message"]
    bad_line = put_batch(
        store, f"{prefix}/bad.jsonl", [SFT_LINE, {"prompt": SFT_LINE["prompt"], "completoin": "2"}]
    )
    response = step(trainer, 0, bad_line)
    assert (
        error_of(response)["message"] == "batch line 2: completion: required field; completoin: unknown field"
    )
    missing = step(trainer, 0, {**batch, "uri": f"s3://{BUCKET}/{prefix}/nothing.jsonl"})
    assert error_of(missing)["code"] == "invalid-request"
    assert trainer.get("/v1/sessions/run-1").json()["nextStep"] == 0
    assert updates_done(trainer) == 0


def test_get_answers_busy_while_a_step_runs_and_requests_wait(
    trainer: Trainer, store: ObjectStore, prefix: str
) -> None:
    b = batches(store, prefix, 2)
    create(trainer)
    held = runtime(trainer)
    held.step_gate = threading.Event()
    running = _in_background(lambda: step(trainer, 0, b[0]))
    assert held.entered.wait(10)
    started = time.monotonic()
    state = trainer.get("/v1/sessions/run-1")
    assert time.monotonic() - started < 2, "GET does not wait for the step"
    assert (state.json()["status"], state.json()["nextStep"]) == ("busy", 0)
    queued = _in_background(lambda: step(trainer, 1, b[1]))
    time.sleep(0.2)
    assert not queued.done.is_set(), "the next step waits for the running one"
    held.step_gate.set()
    assert running.result().json()["applied"] is True
    assert queued.result().json()["applied"] is True, "and then applies in order"
    assert trainer.get("/v1/sessions/run-1").json()["status"] == "ready"
    assert updates_done(trainer) == 2


def test_a_failing_step_fails_the_session_until_it_is_created_again(
    trainer: Trainer, store: ObjectStore, prefix: str
) -> None:
    (b,) = batches(store, prefix, 1)
    create(trainer)
    runtime(trainer).fail_next = RuntimeError("CUDA out of memory")
    response = step(trainer, 0, b)
    assert (response.status_code, error_of(response)["code"]) == (500, "internal")
    state = trainer.get("/v1/sessions/run-1").json()
    assert state["status"] == "failed" and "CUDA out of memory" in state["statusMessage"]
    assert "run-1" not in runtime(trainer).engines, "its model is freed"
    again = step(trainer, 0, b)
    assert (again.status_code, error_of(again)["code"]) == (404, "unknown-session")
    assert create(trainer).json()["created"] is True
    assert step(trainer, 0, b).json()["applied"] is True
    assert updates_done(trainer) == 1


def test_a_non_finite_loss_fails_the_session(trainer: Trainer, store: ObjectStore, prefix: str) -> None:
    # Nothing injected: an advantage of 1e300 overflows float32, and the real GRPO loss is -inf.
    diverged = put_batch(store, f"{prefix}/diverged.jsonl", [{**SFT_LINE, "advantage": 1e300}])
    create(trainer)
    body = {
        "protocolVersion": 1,
        "step": 0,
        "batch": diverged,
        "loss": {"kind": "grpo", "klCoefficient": 0, "entropyCoefficient": 0},
    }
    response = trainer.post("/v1/sessions/run-1/steps", body)
    assert (response.status_code, error_of(response)["code"]) == (500, "internal")
    assert error_of(response)["message"] == "step 0 gave a non-finite loss: training diverged"
    state = trainer.get("/v1/sessions/run-1").json()
    assert (state["status"], state["lastAppliedStep"]) == ("failed", None)
    assert "run-1" not in runtime(trainer).engines


def test_a_non_finite_gradient_is_an_applied_no_op_and_never_saved(
    trainer: Trainer, store: ObjectStore, prefix: str
) -> None:
    b = batches(store, prefix, 2)
    create(trainer)
    assert step(trainer, 0, b[0]).json()["applied"] is True
    uri = f"s3://{BUCKET}/{prefix}/ck/step-000000"
    save(trainer, uri, step=0)
    # An Inf in one gradient of the real model, as a bf16 overflow in backward gives.
    param = runtime(trainer).engines["run-1"].params[0]
    hook = param.register_hook(lambda grad: torch.full_like(grad, float("inf")))
    response = step(trainer, 1, b[1])
    hook.remove()
    body = response.json()
    assert (response.status_code, body["applied"], body["metrics"]["skipped"]) == (200, True, 1)
    assert "gradNorm" not in body["metrics"]  # JSON cannot carry it
    assert updates_done(trainer) == 1, "the optimiser did not step"
    state = trainer.get("/v1/sessions/run-1").json()
    assert (state["status"], state["nextStep"]) == ("ready", 2)
    # The weights are still step 0's: a checkpoint now holds the same adapter bytes.
    again = f"s3://{BUCKET}/{prefix}/ck/step-000001"
    assert save(trainer, again, step=1).json()["created"] is True
    assert adapter_sha256(store, again) == adapter_sha256(store, uri)
    assert step(trainer, 2, b[0]).json()["metrics"].get("skipped") is None


def test_resume_keeps_the_optimiser_state_and_refuses_another_optimiser(
    trainer: Trainer, store: ObjectStore, prefix: str
) -> None:
    b = batches(store, prefix, 3)
    sgd = {**CONFIG["optimizer"], "name": "sgd", "learningRate": 0.1}
    create(trainer, optimizer=sgd)
    for i in range(2):
        step(trainer, i, b[i])
    uri = f"s3://{BUCKET}/{prefix}/ck/step-000001"
    save(trainer, uri, step=1)
    adamw = create(trainer, "run-2", resumeFrom=uri)  # CONFIG's optimiser is AdamW
    assert (adamw.status_code, error_of(adamw)["code"]) == (409, "checkpoint-mismatch")
    assert error_of(adamw)["message"].startswith("optimizer.name: ")
    assert "sgd" in error_of(adamw)["message"]
    other_settings = {**sgd, "learningRate": 0.01, "weightDecay": 0.1}
    changed = create(trainer, "run-3", resumeFrom=uri, optimizer=other_settings)
    assert changed.status_code == 201, changed.text
    group = runtime(trainer).engines["run-3"].optimizer.param_groups[0]
    assert group["weight_decay"] == 0.1
    assert step(trainer, 2, b[2], session_id="run-3").json()["metrics"]["learningRate"] == 0.01


def test_delete_closes_a_session_and_frees_its_model(
    trainer: Trainer, store: ObjectStore, prefix: str
) -> None:
    (b,) = batches(store, prefix, 1)
    create(trainer)
    step(trainer, 0, b)
    deleted = trainer.http.delete(f"{trainer.url}/v1/sessions/run-1")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"protocolVersion": 1, "sessionId": "run-1", "deleted": True}
    assert "run-1" not in runtime(trainer).engines, "its model is freed"
    assert error_of(trainer.get("/v1/sessions/run-1"))["code"] == "unknown-session"
    again = trainer.http.delete(f"{trainer.url}/v1/sessions/run-1")
    assert (again.status_code, error_of(again)["code"]) == (404, "unknown-session")
    assert create(trainer).status_code == 201  # the ID is free again


def test_idle_sessions_are_evicted(store: ObjectStore, tiny_model_dir: Path, tmp_path: Path) -> None:
    models = {"tiny": tiny_model_dir}
    idle = Trainer(lambda: FaultyRuntime(models), store, models, tmp_path / "publish", idle_timeout_s=0.5)
    idle.start()
    try:
        create(idle, "kept")
        create(idle, "left")
        deadline = time.monotonic() + 0.4
        while time.monotonic() < deadline:  # a session that is asked about stays
            assert idle.get("/v1/sessions/kept").status_code == 200
            time.sleep(0.05)
        deadline = time.monotonic() + 20
        while "left" in runtime(idle).engines:
            assert time.monotonic() < deadline, "the idle session was not evicted"
            time.sleep(0.05)
        assert error_of(idle.get("/v1/sessions/left"))["code"] == "unknown-session"
    finally:
        idle.stop()


def test_health_reports_ranks_out_of_step(trainer: Trainer, store: ObjectStore, prefix: str) -> None:
    (b,) = batches(store, prefix, 1)
    create(trainer)
    healthy = trainer.get("/health")
    assert (healthy.status_code, healthy.json()["status"]) == (200, "ok")
    # What Runtime records when a command failed on some rank unagreed (see test_distributed).
    runtime(trainer).failure = "train_step failed on rank 0: RuntimeError('Connection closed by peer')"
    failed = trainer.get("/health")
    assert failed.status_code == 503
    assert failed.json()["status"] == "failed" and "Connection closed by peer" in failed.json()["error"]
    refused = step(trainer, 0, b)
    assert (refused.status_code, error_of(refused)["code"]) == (500, "internal")
    assert "out of step" in error_of(refused)["message"]
    runtime(trainer).failure = None


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a working GPU")
def test_device_cuda_refuses_to_start_without_a_gpu(tiny_model_dir: Path) -> None:
    from spark_trainer.__main__ import main

    with pytest.raises(ValueError, match="--device cuda: no working CUDA GPU here"):
        Runtime({"tiny": tiny_model_dir}, device="cuda")
    with pytest.raises(SystemExit, match="--device cuda: no working CUDA GPU here"):
        main(["serve", "--port", "0", "--model", f"tiny={tiny_model_dir}", "--device", "cuda"])


# -- checkpoints --------------------------------------------------------------------------------


def test_save_commits_a_marker_listing_every_object(
    trainer: Trainer, store: ObjectStore, prefix: str
) -> None:
    (b,) = batches(store, prefix, 1)
    create(trainer)
    step(trainer, 0, b)
    uri = f"s3://{BUCKET}/{prefix}/ck/step-000000"
    saved = save(trainer, uri, step=0)
    assert saved.json() == {
        "protocolVersion": 1,
        "uri": uri,
        "step": 0,
        "markerUri": f"{uri}/COMMITTED",
        "created": True,
    }
    marker = CheckpointMarker.model_validate_json(store.get_bytes(f"{uri}/COMMITTED"))
    assert (marker.sessionId, marker.step, marker.config.baseModel) == ("run-1", 0, "tiny")
    names = [o.name for o in marker.objects]
    assert names == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "optimizer.safetensors",
        "trainer-state.json",
    ]
    for obj in marker.objects:
        assert hashlib.sha256(store.get_bytes(f"{uri}/{obj.name}")).hexdigest() == obj.sha256
    adapter = json.loads(store.get_bytes(f"{uri}/adapter_config.json"))
    assert (adapter["peft_type"], adapter["r"], sorted(adapter["target_modules"])) == (
        "LORA",
        4,
        ["q_proj", "v_proj"],
    )
    state = json.loads(store.get_bytes(f"{uri}/trainer-state.json"))
    assert state["log"] == [
        {"step": 0, "batchSha256": b["sha256"], "metrics": step(trainer, 0, b).json()["metrics"]}
    ]
    assert trainer.get("/v1/sessions/run-1").json()["lastCheckpoint"] == {
        "uri": uri,
        "step": 0,
        "markerUri": f"{uri}/COMMITTED",
    }


def test_save_is_idempotent_by_uri(trainer: Trainer, store: ObjectStore, prefix: str) -> None:
    b = batches(store, prefix, 2)
    create(trainer)
    create(trainer, "run-2")
    uri = f"s3://{BUCKET}/{prefix}/ck/a"
    assert save(trainer, uri, step=None).json()["created"] is True
    again = save(trainer, uri)
    assert (again.json()["created"], again.json()["step"]) == (False, None)
    other_session = save(trainer, uri, "run-2")
    assert (other_session.status_code, error_of(other_session)["code"]) == (409, "conflict")
    step(trainer, 0, b[0])
    later = save(trainer, uri)
    assert (later.status_code, error_of(later)["code"]) == (409, "conflict")
    wrong_step = save(trainer, f"s3://{BUCKET}/{prefix}/ck/b", step=5)
    assert wrong_step.status_code == 409
    assert error_of(wrong_step)["details"] == {"expectedStep": 0, "receivedStep": 5}


def test_the_store_puts_if_absent(store: ObjectStore, prefix: str) -> None:
    # The marker's put-if-absent (If-None-Match: *) is what keeps a committed checkpoint unmodified.
    uri = f"s3://{BUCKET}/{prefix}/COMMITTED"
    store.put(uri, b"first", if_absent=True)
    with pytest.raises(AlreadyExists):
        store.put(uri, b"second", if_absent=True)
    assert store.get_bytes(uri) == b"first"


def test_a_save_killed_before_committed_leaves_no_checkpoint_and_a_retry_commits(
    trainer: Trainer, store: ObjectStore, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (b,) = batches(store, prefix, 1)
    create(trainer)
    step(trainer, 0, b)
    uri = f"s3://{BUCKET}/{prefix}/ck/step-000000"
    real_put = ObjectStore.put

    def crash_on_marker(self: ObjectStore, target: str, body: bytes, **kwargs: Any) -> Any:
        if target.endswith("/COMMITTED"):
            raise ConnectionResetError("the trainer died here")
        return real_put(self, target, body, **kwargs)

    monkeypatch.setattr(ObjectStore, "put", crash_on_marker)
    crashed = save(trainer, uri, step=0)
    assert (crashed.status_code, error_of(crashed)["code"]) == (500, "internal")
    monkeypatch.undo()
    assert store.get_bytes_if_exists(f"{uri}/adapter_model.safetensors") is not None, (
        "data objects were written"
    )
    assert store.get_bytes_if_exists(f"{uri}/COMMITTED") is None
    resumed = create(trainer, "run-2", resumeFrom=uri)
    assert (resumed.status_code, error_of(resumed)["code"]) == (404, "checkpoint-not-found")
    assert trainer.get("/v1/sessions/run-1").json()["lastCheckpoint"] is None
    retried = save(trainer, uri, step=0)
    assert retried.json()["created"] is True
    assert create(trainer, "run-2", resumeFrom=uri).json()["session"]["lastAppliedStep"] == 0


def test_resume_after_a_restart_answers_retried_steps(
    trainer: Trainer, store: ObjectStore, prefix: str
) -> None:
    b = batches(store, prefix, 4)
    create(trainer)
    answers = [step(trainer, i, b[i]).json() for i in range(3)]
    uri = f"s3://{BUCKET}/{prefix}/ck/step-000002"
    save(trainer, uri, step=2)

    trainer.restart()
    assert error_of(step(trainer, 3, b[3]))["code"] == "unknown-session"
    resumed = create(trainer, resumeFrom=uri)
    assert resumed.status_code == 201
    session = resumed.json()["session"]
    assert (session["lastAppliedStep"], session["nextStep"]) == (2, 3)
    assert session["lastCheckpoint"] == {"uri": uri, "step": 2, "markerUri": f"{uri}/COMMITTED"}
    assert updates_done(trainer) == 3
    # The restored weights are the saved ones: saving them again writes the same adapter bytes.
    again = f"s3://{BUCKET}/{prefix}/ck/resumed-step-000002"
    assert save(trainer, again, step=2).json()["created"] is True
    assert adapter_sha256(store, again) == adapter_sha256(store, uri)
    for i in range(3):
        assert step(trainer, i, b[i]).json() == {**answers[i], "applied": False}
    assert error_of(step(trainer, 1, b[2]))["code"] == "conflict"
    assert step(trainer, 3, b[3]).json()["applied"] is True
    assert updates_done(trainer) == 4


def test_resume_refuses_other_weights_and_damaged_objects(
    trainer: Trainer, store: ObjectStore, prefix: str
) -> None:
    create(trainer)
    uri = f"s3://{BUCKET}/{prefix}/ck/initial"
    save(trainer, uri)
    other_adapter = create(trainer, "run-2", resumeFrom=uri, adapter={**CONFIG["adapter"], "rank": 8})
    assert (other_adapter.status_code, error_of(other_adapter)["code"]) == (409, "checkpoint-mismatch")
    assert "adapter" in error_of(other_adapter)["message"]
    other_model = create(trainer, "run-2", resumeFrom=uri, baseModel="other")
    assert error_of(other_model)["code"] == "checkpoint-mismatch"
    store.put(f"{uri}/adapter_model.safetensors", b'{"w": 99}')
    damaged = create(trainer, "run-2", resumeFrom=uri)
    assert (damaged.status_code, error_of(damaged)["code"]) == (409, "checkpoint-mismatch")
    assert "adapter_model.safetensors does not match its marker" in error_of(damaged)["message"]
    assert error_of(trainer.get("/v1/sessions/run-2"))["code"] == "unknown-session", (
        "no session is left behind"
    )


# -- publish ------------------------------------------------------------------------------------


def test_publish_copies_the_adapter_and_reloads_it(
    trainer: Trainer, store: ObjectStore, prefix: str, inference: FakeInference, tmp_path: Path
) -> None:
    create(trainer)
    body = {"protocolVersion": 1, "inferenceBaseURL": inference.base_url, "modelName": "policy-step-000000"}
    nothing = trainer.post("/v1/sessions/run-1/publish", body)
    assert (nothing.status_code, error_of(nothing)["code"]) == (404, "checkpoint-not-found")
    uri = f"s3://{BUCKET}/{prefix}/ck/initial"
    save(trainer, uri)
    published = trainer.post("/v1/sessions/run-1/publish", body)
    assert published.status_code == 200, published.text
    answer = published.json()
    assert (answer["checkpointUri"], answer["step"], answer["modelName"]) == (uri, None, "policy-step-000000")
    folder = Path(answer["loraPath"])
    assert folder.parent == (tmp_path / "publish").resolve()
    assert folder.name.startswith("policy-step-000000--initial-")
    assert sorted(p.name for p in folder.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    served = hashlib.sha256((folder / "adapter_model.safetensors").read_bytes()).hexdigest()
    assert served == adapter_sha256(store, uri)
    assert inference.calls == [
        ("unload", {"lora_name": "policy-step-000000"}),
        ("load", {"lora_name": "policy-step-000000", "lora_path": str(folder)}),
    ]
    # Publishing the same name again replaces what it served, from the same copy.
    assert trainer.post("/v1/sessions/run-1/publish", {**body, "checkpointUri": uri}).json() == answer
    assert inference.loaded == {"policy-step-000000": str(folder)}
    inference.fail_load = True
    failed = trainer.post("/v1/sessions/run-1/publish", body)
    assert (failed.status_code, error_of(failed)["code"]) == (502, "publish-failed")
    gone = trainer.post("/v1/sessions/run-1/publish", {**body, "inferenceBaseURL": "http://127.0.0.1:9/v1"})
    assert (gone.status_code, error_of(gone)["code"]) == (502, "publish-failed")


def test_publish_sends_the_inference_servers_api_key(
    store: ObjectStore, prefix: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """vLLM started with --api-key refuses LoRA loads without it: the trainer sends the key it was
    given, and one without it gets the server's 401 back as publish-failed, naming the endpoint."""
    inference = FakeInference(api_key="sk-inference-test")
    models = {"tiny": tiny_model_dir}
    with_key = Trainer(
        lambda: FaultyRuntime(models), store, models, tmp_path / "a", inference_api_key="sk-inference-test"
    ).start()
    without = Trainer(lambda: FaultyRuntime(models), store, models, tmp_path / "b").start()
    try:
        body = {"protocolVersion": 1, "inferenceBaseURL": inference.base_url, "modelName": "policy-key"}
        for server, uri in (
            (with_key, f"s3://{BUCKET}/{prefix}/ck/a"),
            (without, f"s3://{BUCKET}/{prefix}/ck/b"),
        ):
            create(server)
            save(server, uri)
        published = with_key.post("/v1/sessions/run-1/publish", body)
        assert published.status_code == 200, published.text
        assert inference.loaded == {"policy-key": published.json()["loraPath"]}
        calls = len(inference.calls)
        refused = without.post("/v1/sessions/run-1/publish", body)
        assert (refused.status_code, error_of(refused)["code"]) == (502, "publish-failed")
        message = error_of(refused)["message"]
        assert "unload_lora_adapter answered 401 (the inference server wants an API key" in message
        assert len(inference.calls) == calls  # nothing without the key reached the endpoints
    finally:
        with_key.stop()
        without.stop()
        inference.stop()


def test_a_full_fine_tune_cannot_be_published(trainer: Trainer, inference: FakeInference) -> None:
    create(trainer, adapter={"kind": "full"})
    body = {"protocolVersion": 1, "inferenceBaseURL": inference.base_url, "modelName": "m"}
    response = trainer.post("/v1/sessions/run-1/publish", body)
    assert (response.status_code, error_of(response)["code"]) == (400, "invalid-request")


# -- helpers ------------------------------------------------------------------------------------


class _Background:
    def __init__(self, fn: Any) -> None:
        self.done = threading.Event()
        self._value: Any = None

        def run() -> None:
            self._value = fn()
            self.done.set()

        threading.Thread(target=run, daemon=True).start()

    def result(self) -> Any:
        assert self.done.wait(30), "the request did not finish"
        return self._value


def _in_background(fn: Any) -> _Background:
    return _Background(fn)


def test_serve_refuses_an_unset_inference_api_key_variable_before_loading_models(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spark_trainer.__main__ import main

    monkeypatch.delenv("SPARK_TEST_UNSET_KEY", raising=False)
    with pytest.raises(SystemExit, match="SPARK_TEST_UNSET_KEY is not set"):
        main(
            [
                "serve",
                "--port",
                "0",
                "--model",
                f"tiny={tiny_model_dir}",
                "--inference-api-key-env",
                "SPARK_TEST_UNSET_KEY",
            ]
        )
