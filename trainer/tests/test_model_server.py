from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient
from helpers import session_config

from spark_trainer.distributed import DistContext
from spark_trainer.engine import Engine
from spark_trainer.generation import SchedulerStats, sample_tokens
from spark_trainer.model_server import create_model_app
from spark_trainer.models import load_model, load_tokenizer
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


def post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/chat/completions", json={"model": "tiny", "messages": MESSAGES, **body})
    assert response.status_code == 200, response.text
    return response.json()


def together(client: TestClient, bodies: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], SchedulerStats]:
    """The requests, sent at once and held until every one waits, so they meet in one batch;
    with what the scheduler did for them."""
    scheduler = client.app.state.registry.scheduler  # type: ignore[attr-defined]
    scheduler.stats = SchedulerStats()  # the scheduler is idle: nothing else counts meanwhile
    with ThreadPoolExecutor(len(bodies)) as pool:
        with scheduler.hold():
            futures = [pool.submit(post, client, body) for body in bodies]
            deadline = time.monotonic() + 30
            while scheduler.waiting() < len(bodies):
                assert time.monotonic() < deadline, "the requests never reached the scheduler"
                time.sleep(0.01)
        answers = [f.result() for f in futures]
    return answers, replace(scheduler.stats)


def test_concurrent_requests_are_decoded_together_in_one_batch(tiny_model_dir: Path) -> None:
    client = TestClient(create_model_app({"tiny": tiny_model_dir}, device="cpu"))
    bodies = [{"n": 2, "temperature": 1.0, "seed": s, "max_tokens": 10} for s in range(4)]
    answers, stats = together(client, bodies)
    assert [len(a["choices"]) for a in answers] == [2, 2, 2, 2]
    assert stats.prefills == 4  # one prompt pass per request, shared by its n samples
    assert stats.max_rows == 8  # every sample of every request in one forward pass
    # One request alone takes up to 9 decode steps after its prefill; four in turn would take 36.
    assert stats.decode_steps <= 9


def test_a_seeded_request_gives_the_same_text_alone_and_batched_with_others(client: TestClient) -> None:
    seeded = {
        "n": 2,
        "temperature": 1.0,
        "top_p": 0.9,
        "seed": 11,
        "max_tokens": 12,
        "return_token_ids": True,
    }
    alone = post(client, seeded)
    others = [
        {"messages": [{"role": "user", "content": "A much longer question. " * 9}], "n": 3, "max_tokens": 20},
        {"temperature": 0, "max_tokens": 5},
        {"temperature": 0.7, "top_p": 0.5, "seed": 3, "max_tokens": 16},
    ]
    answers, stats = together(client, [others[0], seeded, *others[1:]])
    assert stats.max_rows == 3 + 2 + 1 + 1
    assert texts(answers[1]) == texts(alone)
    assert [c["token_ids"] for c in answers[1]["choices"]] == [c["token_ids"] for c in alone["choices"]]
    # Sample i draws from its own stream: a shorter max_tokens gives a prefix of the same tokens.
    shorter = post(client, {**seeded, "max_tokens": 5})
    assert [c["token_ids"] for c in shorter["choices"]] == [c["token_ids"][:5] for c in alone["choices"]]


def test_greedy_batched_decoding_matches_unpadded_generate(client: TestClient, tiny_model_dir: Path) -> None:
    prompts = ["Hi", "Natalia sold 48 clips in April and half as many in May. " * 3, "How many clips?"]
    bodies = [
        {
            "messages": [{"role": "user", "content": p}],
            "temperature": 0,
            "max_tokens": 8 + 4 * i,
            "return_token_ids": True,
        }
        for i, p in enumerate(prompts)
    ]
    bodies.append({"temperature": 1.0, "n": 2, "seed": 1, "max_tokens": 16})  # sampled rows alongside
    answers, stats = together(client, bodies)
    assert stats.max_rows == 5
    registry = client.app.state.registry  # type: ignore[attr-defined]
    model = load_model(tiny_model_dir, "cpu").eval()  # the served one may carry LoRA layers by now
    for body, answer in zip(bodies[:3], answers, strict=False):
        prompt = torch.tensor([answer["prompt_token_ids"]])
        with torch.no_grad():
            out = model.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                do_sample=False,
                max_new_tokens=body["max_tokens"],
                eos_token_id=sorted(registry.bases["tiny"].stop_ids),
                pad_token_id=0,
            )
        assert answer["choices"][0]["token_ids"] == out[0, prompt.shape[1] :].tolist()


def test_logprobs_and_token_ids_are_returned_as_vllm_returns_them(
    client: TestClient, tiny_model_dir: Path
) -> None:
    body = post(
        client,
        {"n": 2, "temperature": 0.8, "seed": 4, "max_tokens": 6, "logprobs": True, "return_token_ids": True},
    )
    tokenizer = load_tokenizer(tiny_model_dir)
    assert (
        body["prompt_token_ids"]
        == encode_example(tokenizer, MESSAGES, "x").input_ids[: body["usage"]["prompt_tokens"]]
    )
    model = load_model(tiny_model_dir, "cpu").eval()
    for choice in body["choices"]:
        ids, content = choice["token_ids"], choice["logprobs"]["content"]
        assert len(ids) == len(content)
        assert [c["token"] for c in content] == [tokenizer.decode([i]) for i in ids]
        assert all(c["top_logprobs"] == [] and c["bytes"] == list(c["token"].encode()) for c in content)
        # Each log-prob is the model's, after temperature, for the token it follows.
        sequence = torch.tensor([body["prompt_token_ids"] + ids])
        with torch.no_grad():
            logits = model(sequence).logits[0, len(body["prompt_token_ids"]) - 1 : -1] / 0.8
        expected = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(ids).unsqueeze(1)).squeeze(1)
        assert [c["logprob"] for c in content] == pytest.approx(expected.tolist(), abs=1e-4)
    assert body["usage"]["completion_tokens"] == sum(len(c["token_ids"]) for c in body["choices"])
    plain = post(client, {"max_tokens": 2})
    assert "prompt_token_ids" not in plain and plain["choices"][0]["logprobs"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stream", True),
        ("stream_options", {"include_usage": True}),
        ("stop", ["\n"]),
        ("logit_bias", {"5": 10}),
        ("presence_penalty", 0.5),
        ("frequency_penalty", 1.0),
        ("tools", [{"type": "function", "function": {"name": "f"}}]),
        ("response_format", {"type": "json_object"}),
        ("top_logprobs", 2),
        ("top_k", 5),
        ("made_up_option", 1),
    ],
)
def test_fields_that_would_change_the_output_are_refused_naming_the_field(
    client: TestClient, field: str, value: Any
) -> None:
    response = client.post(
        "/v1/chat/completions", json={"model": "tiny", "messages": MESSAGES, "max_tokens": 2, field: value}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == field and f"`{field}`" in error["message"]


def test_harmless_fields_and_defaults_are_accepted(client: TestClient) -> None:
    body = {
        "stream": False,
        "stop": None,
        "presence_penalty": 0,
        "response_format": {"type": "text"},
        "tool_choice": "none",
        "user": "someone",
        "metadata": {"run": "x"},
        "top_logprobs": 0,
        "top_k": -1,
    }
    assert len(post(client, {"max_tokens": 2, **body})["choices"]) == 1


def test_a_sample_longer_than_the_server_allows_is_refused(client: TestClient) -> None:
    response = client.post(
        "/v1/chat/completions", json={"model": "tiny", "messages": MESSAGES, "max_tokens": 100_000}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "max_tokens"


def test_requests_for_an_adapter_and_its_base_at_once_each_get_their_own_weights(
    client: TestClient, adapter_dir: Path
) -> None:
    load = {"lora_name": "mixed-adapter", "lora_path": str(adapter_dir)}
    assert client.post("/v1/load_lora_adapter", json=load).status_code == 200
    greedy = {"temperature": 0, "max_tokens": 8, "n": 2}
    base_alone = texts(post(client, greedy))
    tuned_alone = texts(post(client, {**greedy, "model": "mixed-adapter"}))
    assert base_alone != tuned_alone
    answers, stats = together(client, [greedy, {**greedy, "model": "mixed-adapter"}, greedy])
    assert [texts(a) for a in answers] == [base_alone, tuned_alone, base_alone]
    assert stats.max_rows <= 4  # peft runs one adapter per forward pass: the adapter's rows ran apart
    assert client.post("/v1/unload_lora_adapter", json={"lora_name": "mixed-adapter"}).status_code == 200


def test_sampling_keeps_the_nucleus_and_does_not_depend_on_the_other_rows() -> None:
    probs = torch.tensor([0.5, 0.3, 0.2])
    logits = probs.log().repeat(4, 1)
    tokens, logprobs = sample_tokens(
        logits,
        temperature=torch.tensor([1.0, 1.0, 1.0, 0.0]),
        top_p=torch.tensor([0.6, 1.0, 0.6, 1.0]),
        uniform=torch.tensor([0.99, 0.99, 0.1, 0.99], dtype=torch.float64),
    )
    # top_p 0.6 keeps {0, 1}; without top-p a high uniform reaches token 2; greedy takes the argmax.
    assert tokens.tolist() == [1, 2, 0, 0]
    assert logprobs.tolist() == pytest.approx(probs.log()[[1, 2, 0, 0]].tolist(), abs=1e-6)
    alone, _ = sample_tokens(
        logits[:1], torch.tensor([1.0]), torch.tensor([0.6]), torch.tensor([0.99], dtype=torch.float64)
    )
    assert alone.tolist() == [1]
