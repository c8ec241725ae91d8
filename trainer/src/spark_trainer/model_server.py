"""A small OpenAI-compatible model server for development and tests. NOT FOR PRODUCTION.

Production inference is vLLM (or SGLang), which need a GPU; this server lets the control plane's
real inference client and the trainer's publish step run end to end on a CPU. It serves local
model folders by name and PEFT LoRA adapters loaded at run time through vLLM's endpoints:

- `POST /v1/chat/completions`: `messages`, `n`, `temperature` (0 = greedy), `top_p`, `seed`
  (the same seed gives the same text, alone or batched with other requests), `max_tokens` /
  `max_completion_tokens`; `usage` and `finish_reason` as vLLM reports them. `logprobs: true` and
  `return_token_ids: true` answer as vLLM ≥ 0.10.2 does (`prompt_token_ids`, `choices[i].token_ids`
  with the stop token, `choices[i].logprobs.content[j]`). A field that would change the output and
  is not implemented (`stream`, `stop`, `logit_bias`, penalties, tools, …) is refused with a 400
  naming it (`chat_fields.py`).
- `GET /v1/models`, `GET /health`.
- `POST /v1/load_lora_adapter` `{lora_name, lora_path}` (a local folder in PEFT layout): 400 if
  the name is loaded already, as vLLM. `POST /v1/unload_lora_adapter` `{lora_name}`: 404 if unknown.

Requests are decoded together by one scheduler thread (`generation.py`): concurrent requests and a
request's `n` samples share each forward pass, with a KV cache.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from peft import PeftModel
from pydantic import BaseModel, ConfigDict, Field
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from .chat_fields import unsupported
from .generation import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_BATCH_TOKENS,
    Job,
    Sample,
    Sampling,
    Scheduler,
)
from .models import load_model, load_tokenizer
from .tokens import end_of_turn_id, render_prompt

DEFAULT_MAX_TOKENS = 256


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | None = ""


class ChatRequest(BaseModel):
    """The fields this server honours; every other one is checked by `chat_fields.unsupported`."""

    model_config = ConfigDict(extra="allow")
    model: str
    messages: Annotated[list[Message], Field(min_length=1)]
    n: Annotated[int, Field(ge=1, le=256)] = 1
    temperature: Annotated[float, Field(ge=0)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    seed: int | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    logprobs: bool | None = None
    return_token_ids: bool | None = None


class LoadAdapter(BaseModel):
    lora_name: Annotated[str, Field(min_length=1)]
    lora_path: Annotated[str, Field(min_length=1)]


class UnloadAdapter(BaseModel):
    lora_name: Annotated[str, Field(min_length=1)]


class ServerError(Exception):
    def __init__(
        self, status: int, message: str, kind: str = "BadRequestError", param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param


@dataclass
class Base:
    """A served base model; `peft` wraps it once its first adapter loads."""

    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    stop_ids: frozenset[int]
    peft: PeftModel | None = None
    adapters: set[str] = field(default_factory=set)


def _stop_ids(tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    return frozenset({end_of_turn_id(tokenizer), *eos})


class Registry:
    """The served models and adapters, and the scheduler that decodes for all of them."""

    def __init__(
        self,
        models: dict[str, Path],
        device: torch.device | None = None,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
    ) -> None:
        self.device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.bases: dict[str, Base] = {}
        for name, directory in models.items():
            model = load_model(directory, self.device).eval()
            tokenizer = load_tokenizer(directory)
            self.bases[name] = Base(name, model, tokenizer, _stop_ids(tokenizer))
        self.adapter_base: dict[str, str] = {}
        self.created = int(time.time())
        # Held by each forward pass and by adapter loads and unloads, which change the modules.
        self.lock = threading.Lock()
        self.scheduler = Scheduler(self._forward, self.device, max_batch_size, max_batch_tokens)

    def close(self) -> None:
        self.scheduler.close()

    def resolve(self, name: str) -> tuple[Base, str | None]:
        if name in self.bases:
            return self.bases[name], None
        if name in self.adapter_base:
            return self.bases[self.adapter_base[name]], name
        raise ServerError(404, f"The model `{name}` does not exist.", "NotFoundError", "model")

    def load_adapter(self, name: str, path: str) -> None:
        if name in self.bases or name in self.adapter_base:
            raise ServerError(400, f"The lora adapter '{name}' has already been loaded.")
        folder = Path(path)
        if not (folder / "adapter_config.json").is_file():
            raise ServerError(400, f"Loading lora {name} failed: no adapter_config.json in '{path}'")
        base = self._base_for(folder)
        if base.peft is None:
            base.peft = PeftModel.from_pretrained(base.model, folder, adapter_name=name, is_trainable=False)
            base.peft.eval()
        else:
            base.peft.load_adapter(folder, adapter_name=name, is_trainable=False)
        base.adapters.add(name)
        self.adapter_base[name] = base.name

    def unload_adapter(self, name: str) -> None:
        if name not in self.adapter_base:
            raise ServerError(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
        base = self.bases[self.adapter_base.pop(name)]
        base.adapters.discard(name)
        assert base.peft is not None
        base.peft.delete_adapter(name)

    def _base_for(self, folder: Path) -> Base:
        """The base the adapter names (`base_model_name_or_path`), or the only one served."""
        named = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
        if named in self.bases:
            return self.bases[named]
        if len(self.bases) == 1:
            return next(iter(self.bases.values()))
        raise ServerError(400, f"the adapter's base model {named!r} is not served here")

    def listing(self) -> dict[str, Any]:
        def entry(name: str, root: str, parent: str | None) -> dict[str, Any]:
            return {
                "id": name,
                "object": "model",
                "created": self.created,
                "owned_by": "spark-trainer",
                "root": root,
                "parent": parent,
            }

        data = [entry(n, n, None) for n in self.bases]
        data += [entry(a, b, b) for a, b in self.adapter_base.items()]
        return {"object": "list", "data": data}

    def _forward(
        self,
        key: Hashable,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        cache: DynamicCache,
    ) -> torch.Tensor:
        """One forward pass of the base `key[0]` with adapter `key[1]` (None: the bare base)."""
        base_name, adapter = key  # type: ignore[misc]
        inputs = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "position_ids": position_ids,
            "cache": cache,
            "use_cache": True,
            "logits_to_keep": 1,
        }
        with self.lock:
            base = self.bases[base_name]
            if adapter is None and base.peft is None:
                return base.model(**inputs).logits[:, -1]
            assert base.peft is not None
            if adapter is None:
                # Loading the first adapter put LoRA layers into the base's modules: switch them off.
                with base.peft.disable_adapter():
                    return base.peft(**inputs).logits[:, -1]
            if adapter not in base.adapters:
                raise ServerError(404, f"The lora adapter '{adapter}' was unloaded.", "NotFoundError")
            base.peft.set_adapter(adapter)
            return base.peft(**inputs).logits[:, -1]

    def submit(self, request: ChatRequest) -> tuple[Job, list[int], PreTrainedTokenizerBase]:
        """Checks and tokenises the request and queues it for decoding."""
        refused = unsupported(request.model_extra or {})
        if refused is not None:
            raise ServerError(400, refused[1], param=refused[0])
        base, adapter = self.resolve(request.model)
        tokenizer = base.tokenizer
        messages = [{"role": m.role, "content": m.content or ""} for m in request.messages]
        prompt_ids = tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"]
        max_tokens = request.max_completion_tokens or request.max_tokens or DEFAULT_MAX_TOKENS
        limit = min(self.scheduler.max_batch_tokens, base.model.config.max_position_embeddings)
        if len(prompt_ids) + max_tokens > limit:
            raise ServerError(
                400,
                f"The prompt ({len(prompt_ids)} tokens) plus max_tokens ({max_tokens}) is more than this "
                f"server's {limit} tokens per sample (the model's max_position_embeddings, or "
                "--max-batch-tokens).",
                param="max_tokens",
            )
        temperature = 1.0 if request.temperature is None else request.temperature
        seed = request.seed if request.seed is not None else int.from_bytes(os.urandom(8), "big")
        job = Job(
            key=(base.name, adapter),
            prompt_ids=list(prompt_ids),
            sampling=Sampling(temperature, request.top_p or 1.0, max_tokens, seed),
            stop_ids=base.stop_ids,
            n=request.n,
        )
        self.scheduler.submit(job)
        return job, list(prompt_ids), tokenizer


def completion(
    request: ChatRequest, prompt_ids: list[int], samples: list[Sample], tokenizer: PreTrainedTokenizerBase
) -> dict[str, Any]:
    """The chat completion body for the decoded `samples`, as vLLM writes it."""
    choices = []
    for index, sample in enumerate(samples):
        ids = sample.token_ids
        text_ids = ids[:-1] if sample.finish_reason == "stop" else ids
        choice: dict[str, Any] = {
            "index": index,
            "message": {"role": "assistant", "content": tokenizer.decode(text_ids, skip_special_tokens=True)},
            "finish_reason": sample.finish_reason,
            "logprobs": None,
        }
        if request.logprobs:
            choice["logprobs"] = {
                "content": [
                    _token_logprob(tokenizer, t, lp) for t, lp in zip(ids, sample.logprobs, strict=True)
                ]
            }
        if request.return_token_ids:
            choice["token_ids"] = list(ids)  # the stop token included, as vLLM
        choices.append(choice)
    completion_tokens = sum(len(s.token_ids) for s in samples)  # the stop token counts, as in vLLM
    body: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": choices,
        "usage": {
            "prompt_tokens": len(prompt_ids),
            "completion_tokens": completion_tokens,
            "total_tokens": len(prompt_ids) + completion_tokens,
        },
    }
    if request.return_token_ids:
        body["prompt_token_ids"] = prompt_ids
    return body


def _token_logprob(tokenizer: PreTrainedTokenizerBase, token_id: int, logprob: float) -> dict[str, Any]:
    token = tokenizer.decode([token_id])
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8")), "top_logprobs": []}


def _error(status: int, message: str, kind: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": param, "code": status}, "object": "error"},
        status,
    )


def create_model_app(
    models: dict[str, Path],
    device: str | None = None,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
) -> FastAPI:
    """The FastAPI app serving `models` (name -> local model folder)."""
    registry = Registry(
        {n: Path(p) for n, p in models.items()},
        torch.device(device) if device else None,
        max_batch_size=max_batch_size,
        max_batch_tokens=max_batch_tokens,
    )
    app = FastAPI(title="spark-trainer development model server (not for production)")
    app.state.registry = registry

    @app.exception_handler(ServerError)
    async def server_error(_: Request, exc: ServerError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.kind, exc.param)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(400, f"{where}: {first.get('msg')}", "BadRequestError", where or None)

    @app.get("/health")
    def health() -> PlainTextResponse:
        return PlainTextResponse("")

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        return registry.listing()

    # An async endpoint: requests wait on the scheduler's future without holding a worker thread,
    # so any number of them can be waiting to share a batch.
    @app.post("/v1/chat/completions")
    async def chat(request: ChatRequest) -> dict[str, Any]:
        job, prompt_ids, tokenizer = registry.submit(request)
        samples = await asyncio.wrap_future(job.future)
        return completion(request, prompt_ids, samples, tokenizer)

    @app.post("/v1/load_lora_adapter")
    def load(request: LoadAdapter) -> PlainTextResponse:
        with registry.lock:
            registry.load_adapter(request.lora_name, request.lora_path)
        return PlainTextResponse(f"Success: LoRA adapter '{request.lora_name}' added successfully.")

    @app.post("/v1/unload_lora_adapter")
    def unload(request: UnloadAdapter) -> PlainTextResponse:
        with registry.lock:
            registry.unload_adapter(request.lora_name)
        return PlainTextResponse(f"Success: LoRA adapter '{request.lora_name}' removed successfully.")

    return app


def serve_model(
    port: int,
    models: dict[str, Path],
    host: str = "127.0.0.1",
    device: str | None = None,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
) -> None:
    """Runs the development model server until interrupted."""
    import uvicorn

    app = create_model_app(models, device, max_batch_size, max_batch_tokens)
    uvicorn.run(app, host=host, port=port, log_level="warning")
