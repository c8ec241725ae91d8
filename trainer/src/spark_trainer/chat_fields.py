"""Which chat-completion fields the development model server refuses, and which it lets pass.

A field the server does not implement is refused (400, naming it) when its value would change the
output: a client that asks for `stream: true` or a `stop` string and silently gets something else
is worse off than one told no. The same field at its default value passes, and so do fields that
never change what a model writes here (`user`, `metadata`, …). A field this table does not know is
refused too: it may be a newer option that changes the output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def _absent(value: Any) -> bool:
    return value is None


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _false(value: Any) -> bool:
    return value is None or value is False


def _equals(*defaults: Any) -> Callable[[Any], bool]:
    return lambda value: value is None or any(value == d and type(value) is type(d) for d in defaults)


def _number(default: float) -> Callable[[Any], bool]:
    return lambda value: value is None or (isinstance(value, int | float) and value == default)


# Field -> whether its value leaves the output unchanged (OpenAI's fields, then vLLM's extras).
DEFAULT_ONLY: dict[str, Callable[[Any], bool]] = {
    "stream": _false,
    "stream_options": _absent,
    "stop": _empty,
    "logit_bias": _empty,
    "presence_penalty": _number(0),
    "frequency_penalty": _number(0),
    "top_logprobs": _number(0),  # logprobs come with `top_logprobs: []`
    "tools": _empty,
    "functions": _empty,
    "tool_choice": _equals("none", "auto"),
    "function_call": _equals("none", "auto"),
    "response_format": lambda value: value is None or value == {"type": "text"},
    "audio": _absent,
    "modalities": lambda value: value is None or value == ["text"],
    "prediction": _absent,
    "web_search_options": _absent,
    "top_k": lambda value: value is None or value in (0, -1),
    "min_p": _number(0),
    "repetition_penalty": _number(1),
    "length_penalty": _number(1),
    "min_tokens": _number(0),
    "ignore_eos": _false,
    "stop_token_ids": _empty,
    "bad_words": _empty,
    "allowed_token_ids": _empty,
    "best_of": _number(1),
    "use_beam_search": _false,
    "prompt_logprobs": _absent,
    "echo": _false,
    "add_generation_prompt": lambda value: value is None or value is True,
    "continue_final_message": _false,
    "chat_template": _absent,
    "chat_template_kwargs": _empty,
    "skip_special_tokens": lambda value: value is None or value is True,
    "structured_outputs": _absent,
    "guided_json": _absent,
    "guided_regex": _absent,
    "guided_choice": _absent,
    "guided_grammar": _absent,
    "truncate_prompt_tokens": _absent,
}

# Fields that never change what the model writes here: bookkeeping, routing, cache hints, and
# options of hosted reasoning models that a plain causal LM has no use for.
HARMLESS = frozenset(
    {
        "user",
        "metadata",
        "store",
        "service_tier",
        "parallel_tool_calls",
        "prompt_cache_key",
        "safety_identifier",
        "reasoning_effort",
        "verbosity",
        "include_stop_str_in_output",  # only matters with `stop`, which is refused
        "spaces_between_special_tokens",  # special tokens are skipped
        "request_id",
        "priority",
    }
)


def unsupported(extra: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first field of `extra` (fields beyond those honoured) to refuse, and why; None if none."""
    for name, value in extra.items():
        if name in HARMLESS:
            continue
        allowed = DEFAULT_ONLY.get(name)
        if allowed is None:
            return name, f"`{name}` is not supported by this development model server."
        if not allowed(value):
            return name, (
                f"`{name}`={value!r} is not supported by this development model server "
                "(it would change the output); leave it out or at its default."
            )
    return None
