"""Examples to tokens, as an inference server sees them, and advantages to tokens.

The prompt is the chat template rendered as text with the generation prompt, tokenised without
adding special tokens (the template already wrote them); the completion is tokenised on its own
(a server's generated tokens never straddle the prompt's end) and followed by the end-of-turn
token, which the model must learn to emit, unless the completion was cut at the token limit
(`finishReason: "length"`): the policy never sampled an ending there. Only completion tokens (and
that end-of-turn token) carry loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase

from .protocol import ChatMessage, StepAdvantage

# End-of-turn tokens of the chat formats in use; a tokenizer without any ends turns with eos.
END_OF_TURN_TOKENS = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>")


@dataclass(frozen=True)
class EncodedExample:
    """`input_ids` = prompt + completion + end-of-turn; the loss covers `input_ids[prompt_len:]`."""

    input_ids: list[int]
    prompt_len: int
    # One value per completion token (end-of-turn included): the advantage for GRPO, 1.0 for SFT.
    token_weights: list[float]

    @property
    def completion_len(self) -> int:
        return len(self.input_ids) - self.prompt_len


def render_prompt(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[ChatMessage | dict[str, Any]]
) -> str:
    """The chat template applied to `messages` with the generation prompt, as text.

    The development model server and the trainer both call this, so they see the same prompt.
    """
    plain = [m.model_dump() if isinstance(m, ChatMessage) else dict(m) for m in messages]
    text = tokenizer.apply_chat_template(plain, add_generation_prompt=True, tokenize=False)
    assert isinstance(text, str)
    return text


def end_of_turn_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The token that ends an assistant turn: ChatML's `<|im_end|>` and its kin, else eos."""
    vocab = tokenizer.get_vocab()
    for token in END_OF_TURN_TOKENS:
        if token in vocab:
            return vocab[token]
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has neither an end-of-turn nor an eos token")
    return int(tokenizer.eos_token_id)


def utf16_to_codepoint_ends(text: str, ends: Sequence[int]) -> list[int]:
    """JavaScript string indices (UTF-16 code units) to Python ones (code points).

    An end is exclusive, so it covers every character starting before it: an end that falls
    between the two halves of a surrogate pair covers that astral character. Ends past the text
    are kept past it (in code points), so a span can still cover the end-of-turn token.
    """
    starts: list[int] = []  # UTF-16 offset of each code point
    unit = 0
    for char in text:
        starts.append(unit)
        unit += 2 if ord(char) > 0xFFFF else 1
    out = []
    for end in ends:
        if end >= unit:
            out.append(len(text) + (end - unit))
        else:
            # count of characters whose first code unit is before `end`
            lo, hi = 0, len(starts)
            while lo < hi:
                mid = (lo + hi) // 2
                if starts[mid] < end:
                    lo = mid + 1
                else:
                    hi = mid
            out.append(lo)
    return out


def token_positions(offsets: Sequence[tuple[int, int]]) -> list[int]:
    """The character each token starts at (code points).

    Byte-level BPE splits a multi-byte character over several tokens that all report that
    character's offsets (overlapping); a token with empty offsets takes its predecessor's
    position, so it follows the character it completes.
    """
    positions: list[int] = []
    previous = 0
    for start, end in offsets:
        position = start if end > start else previous
        positions.append(position)
        previous = position
    return positions


def token_advantages(
    completion: str,
    offsets: Sequence[tuple[int, int]],
    advantage: float,
    step_advantages: Sequence[StepAdvantage] | None,
) -> list[float]:
    """The advantage of each completion token, plus one for the end-of-turn token (last).

    Span i covers characters [end_{i-1}, end_i) (UTF-16 ends, converted to code points); a token
    takes the value of the span holding its first character; tokens after the last end keep
    `advantage`. The end-of-turn token sits at position len(completion), just past the last
    character: it takes a span's value only when that span's end lies beyond the completion
    (never for ends within it), so with the usual spans that tile the text it keeps `advantage`,
    the outcome-level value.
    """
    positions = [*token_positions(offsets), len(completion)]
    if not step_advantages:
        return [advantage] * len(positions)
    ends = utf16_to_codepoint_ends(completion, [s.end for s in step_advantages])
    values = [s.advantage for s in step_advantages]
    out: list[float] = []
    span = 0
    for position in positions:  # positions never decrease, so one pass over the spans
        while span < len(ends) and position >= ends[span]:
            span += 1
        out.append(values[span] if span < len(ends) else advantage)
    return out


def ended_turn(finish_reason: str | None) -> bool:
    """Whether the policy sampled its end-of-turn token: `stop` (or no reason given, as v1 lines
    before `finishReason` say nothing). A completion cut at the token limit (`length`) never
    sampled it, so training it would teach an ending the policy did not choose."""
    return finish_reason is None or finish_reason == "stop"


def encode_example(
    tokenizer: PreTrainedTokenizerBase,
    prompt: Sequence[ChatMessage | dict[str, Any]],
    completion: str,
    advantage: float = 1.0,
    step_advantages: Sequence[StepAdvantage] | None = None,
    *,
    ended: bool = True,
) -> EncodedExample:
    """Prompt, completion and (when `ended`) end-of-turn as token ids, with one weight per
    completion token."""
    prompt_ids = tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]
    enc = tokenizer(completion, add_special_tokens=False, return_offsets_mapping=True)
    completion_ids = list(enc["input_ids"])
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    weights = token_advantages(completion, offsets, advantage, step_advantages)  # type: ignore[arg-type]
    end = [end_of_turn_id(tokenizer)] if ended else []
    return EncodedExample(
        input_ids=[*prompt_ids, *completion_ids, *end],
        prompt_len=len(prompt_ids),
        # token_advantages gives the end-of-turn token's value last.
        token_weights=weights if ended else weights[:-1],
    )
