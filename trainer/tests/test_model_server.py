from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from helpers import session_config

from spark_trainer.distributed import DistContext
from spark_trainer.engine import Engine
from spark_trainer.model_server import create_model_app
from spark_trainer.models import load_tokenizer
from spark_trainer.tokens import encode_example

MESSAGES = [{"role": "user", "content": "Natalia sold 48 clips in April. How many in May?"}]


@pytest.fixture(scope="module")
def client(tiny_model_dir: Path) -> TestClient:
    return TestClient(create_model_app({"tiny": tiny_model_dir}, device="cpu"))


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter far from the base (random B), saved in the trainer's checkpoint layout."""
    engine = Engine(tiny_model_dir, session_config(), DistContext(0, 1, torch.device("cpu")), 4096)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in engine.model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator))
    out = tmp_path_factory.mktemp("adapter")
    engine.save(out)
    return out


def chat(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/chat/completions", json={"model": "tiny", "messages": MESSAGES, **body})
    assert response.status_code == 200, response.text
    return response.json()


def texts(body: dict[str, Any]) -> list[str]:
    return [c["message"]["content"] for c in body["choices"]]


def test_n_samples_with_usage_and_finish_reasons(client: TestClient) -> None:
    body = chat(client, n=3, temperature=1.0, seed=7, max_tokens=6)
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert body["usage"]["prompt_tokens"] > 0
    assert 3 <= body["usage"]["completion_tokens"] <= 18
    assert (
        body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    assert {c["finish_reason"] for c in body["choices"]} <= {"stop", "length"}


def test_the_same_seed_gives_the_same_text_and_another_seed_another(client: TestClient) -> None:
    first = texts(chat(client, n=2, temperature=1.0, top_p=0.95, seed=11, max_tokens=12))
    assert texts(chat(client, n=2, temperature=1.0, top_p=0.95, seed=11, max_tokens=12)) == first
    assert texts(chat(client, n=2, temperature=1.0, top_p=0.95, seed=12, max_tokens=12)) != first
    assert len(set(first)) == 2  # the n samples of one request differ


def test_models_are_listed_and_unknown_ones_are_404(client: TestClient) -> None:
    ids = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert "tiny" in ids
    response = client.post("/v1/chat/completions", json={"model": "nope", "messages": MESSAGES})
    assert response.status_code == 404


def test_a_loaded_adapter_serves_its_own_weights_until_unloaded(
    client: TestClient, adapter_dir: Path
) -> None:
    greedy = {"temperature": 0, "max_tokens": 12}
    base = texts(chat(client, **greedy))
    load = {"lora_name": "policy-step-000001", "lora_path": str(adapter_dir)}
    assert client.post("/v1/load_lora_adapter", json=load).status_code == 200
    assert client.post("/v1/load_lora_adapter", json=load).status_code == 400  # vLLM: already loaded
    assert "policy-step-000001" in [m["id"] for m in client.get("/v1/models").json()["data"]]
    tuned = texts(chat(client, **{**greedy, "model": "policy-step-000001"}))
    assert tuned != base
    assert texts(chat(client, **greedy)) == base  # the base is still served as it was
    unload = {"lora_name": "policy-step-000001"}
    assert client.post("/v1/unload_lora_adapter", json=unload).status_code == 200
    assert client.post("/v1/unload_lora_adapter", json=unload).status_code == 404
    missing = client.post("/v1/chat/completions", json={"model": "policy-step-000001", "messages": MESSAGES})
    assert missing.status_code == 404
    assert client.post("/v1/load_lora_adapter", json=load).status_code == 200  # the name is free again
    assert texts(chat(client, **{**greedy, "model": "policy-step-000001"})) == tuned


def test_an_adapter_path_without_an_adapter_is_refused(client: TestClient, tmp_path: Path) -> None:
    response = client.post("/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": str(tmp_path)})
    assert response.status_code == 400


def test_the_server_counts_the_prompt_tokens_the_trainer_trains_on(
    client: TestClient, tiny_model_dir: Path
) -> None:
    encoded = encode_example(load_tokenizer(tiny_model_dir), MESSAGES, "x")
    assert chat(client, max_tokens=1)["usage"]["prompt_tokens"] == encoded.prompt_len
