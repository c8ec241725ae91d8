"""A small OpenAI-compatible model server for development and tests. NOT FOR PRODUCTION.

Production inference is vLLM (or SGLang), which need a GPU; this server lets the control plane's
real inference client and the trainer's publish step run end to end on a CPU. It serves local
model folders by name and PEFT LoRA adapters loaded at run time through vLLM's endpoints:

- `POST /v1/chat/completions`: `messages`, `n`, `temperature` (0 = greedy), `top_p`, `seed`
  (the same seed gives the same text), `max_tokens`; `usage` and `finish_reason` as vLLM reports.
- `GET /v1/models`.
- `POST /v1/load_lora_adapter` `{lora_name, lora_path}` (a local folder in PEFT layout): 400 if
  the name is loaded already, as vLLM. `POST /v1/unload_lora_adapter` `{lora_name}`: 404 if unknown.

One request at a time (a lock around the model): it is a correctness tool, not a fast one.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from peft import PeftModel
from pydantic import BaseModel, ConfigDict, Field
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from .models import load_model, load_tokenizer
from .tokens import end_of_turn_id, render_prompt

DEFAULT_MAX_TOKENS = 256


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | None = ""


class ChatRequest(BaseModel):
    """The fields this server honours; others (OpenAI's many options) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str
    messages: Annotated[list[Message], Field(min_length=1)]
    n: Annotated[int, Field(ge=1, le=64)] = 1
    temperature: Annotated[float, Field(ge=0)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    seed: int | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None


class LoadAdapter(BaseModel):
    lora_name: Annotated[str, Field(min_length=1)]
    lora_path: Annotated[str, Field(min_length=1)]


class UnloadAdapter(BaseModel):
    lora_name: Annotated[str, Field(min_length=1)]


class ServerError(Exception):
    def __init__(self, status: int, message: str, kind: str = "BadRequestError") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


@dataclass
class Base:
    """A served base model; `peft` wraps it once its first adapter loads."""

    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    peft: PeftModel | None = None
    adapters: set[str] = field(default_factory=set)


class Registry:
    def __init__(self, models: dict[str, Path], device: torch.device | None = None) -> None:
        self.device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.bases: dict[str, Base] = {}
        for name, directory in models.items():
            model = load_model(directory, self.device).eval()
            self.bases[name] = Base(name, model, load_tokenizer(directory))
        self.adapter_base: dict[str, str] = {}
        self.created = int(time.time())
        self.lock = threading.Lock()

    def resolve(self, name: str) -> tuple[Base, str | None]:
        if name in self.bases:
            return self.bases[name], None
        if name in self.adapter_base:
            return self.bases[self.adapter_base[name]], name
        raise ServerError(404, f"The model `{name}` does not exist.", "NotFoundError")

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
        data = [
            {
                "id": n,
                "object": "model",
                "created": self.created,
                "owned_by": "spark-trainer",
                "root": n,
                "parent": None,
            }
            for n in self.bases
        ]
        data += [
            {
                "id": a,
                "object": "model",
                "created": self.created,
                "owned_by": "spark-trainer",
                "root": b,
                "parent": b,
            }
            for a, b in self.adapter_base.items()
        ]
        return {"object": "list", "data": data}

    def chat(self, request: ChatRequest) -> dict[str, Any]:
        base, adapter = self.resolve(request.model)
        tokenizer = base.tokenizer
        messages = [{"role": m.role, "content": m.content or ""} for m in request.messages]
        prompt_ids = tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"]
        stop_ids = sorted(
            {end_of_turn_id(tokenizer), *([tokenizer.eos_token_id] if tokenizer.eos_token_id else [])}
        )
        temperature = 1.0 if request.temperature is None else request.temperature
        greedy = temperature == 0
        config = GenerationConfig(
            max_new_tokens=request.max_completion_tokens or request.max_tokens or DEFAULT_MAX_TOKENS,
            do_sample=not greedy,
            temperature=None if greedy else temperature,
            top_p=None if greedy else (request.top_p or 1.0),
            top_k=0,  # no top-k, as vLLM by default (None would fill in transformers' 50)
            num_return_sequences=request.n,
            eos_token_id=stop_ids,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0],
        )
        inputs = torch.tensor([prompt_ids], device=self.device)
        seed = request.seed if request.seed is not None else int.from_bytes(os.urandom(4), "big")
        with self.lock, torch.no_grad():
            torch.manual_seed(seed)
            if adapter is not None:
                assert base.peft is not None
                base.peft.set_adapter(adapter)
                output = base.peft.generate(
                    input_ids=inputs, attention_mask=torch.ones_like(inputs), generation_config=config
                )
            elif base.peft is not None:
                with base.peft.disable_adapter():
                    output = base.peft.generate(
                        input_ids=inputs, attention_mask=torch.ones_like(inputs), generation_config=config
                    )
            else:
                output = base.model.generate(
                    input_ids=inputs, attention_mask=torch.ones_like(inputs), generation_config=config
                )
        choices, completion_tokens = [], 0
        for index, row in enumerate(output[:, len(prompt_ids) :].tolist()):
            stop = next((i for i, t in enumerate(row) if t in stop_ids), None)
            generated = row if stop is None else row[: stop + 1]  # the stop token counts, as in vLLM
            completion_tokens += len(generated)
            text = tokenizer.decode(row if stop is None else row[:stop], skip_special_tokens=True)
            choices.append(
                {
                    "index": index,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "length" if stop is None else "stop",
                    "logprobs": None,
                }
            )
        return {
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


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": status}, "object": "error"}, status
    )


def create_model_app(models: dict[str, Path], device: str | None = None) -> FastAPI:
    """The FastAPI app serving `models` (name -> local model folder)."""
    registry = Registry({n: Path(p) for n, p in models.items()}, torch.device(device) if device else None)
    app = FastAPI(title="spark-trainer development model server (not for production)")
    app.state.registry = registry

    @app.exception_handler(ServerError)
    async def server_error(_: Request, exc: ServerError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.kind)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(400, f"{where}: {first.get('msg')}", "BadRequestError")

    @app.get("/health")
    def health() -> PlainTextResponse:
        return PlainTextResponse("")

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        return registry.listing()

    # Plain `def` endpoints run in FastAPI's thread pool, so a long generation does not block
    # the event loop; the registry's lock serialises the model itself.
    @app.post("/v1/chat/completions")
    def chat(request: ChatRequest) -> dict[str, Any]:
        return registry.chat(request)

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
    port: int, models: dict[str, Path], host: str = "127.0.0.1", device: str | None = None
) -> None:
    """Runs the development model server until interrupted."""
    import uvicorn

    uvicorn.run(create_model_app(models, device), host=host, port=port, log_level="warning")
