from __future__ import annotations

from pathlib import Path

import pytest

from spark_trainer.models import load_tokenizer
from spark_trainer.protocol import StepAdvantage
from spark_trainer.tokens import (
    encode_example,
    end_of_turn_id,
    render_prompt,
    token_advantages,
    token_positions,
    utf16_to_codepoint_ends,
)


def spans(*pairs: tuple[int, float]) -> list[StepAdvantage]:
    return [StepAdvantage(end=end, advantage=value) for end, value in pairs]


def test_utf16_ends_become_code_point_ends() -> None:
    assert utf16_to_codepoint_ends("abc", [1, 3]) == [1, 3]
    # 😀 is one code point and two UTF-16 code units
    text = "a😀b"
    assert utf16_to_codepoint_ends(text, [1, 3, 4]) == [1, 2, 3]
    # an end between the two halves of the surrogate pair covers the emoji
    assert utf16_to_codepoint_ends(text, [2]) == [2]
    # é, 日 are single code units: no shift
    assert utf16_to_codepoint_ends("é日x", [1, 2, 3]) == [1, 2, 3]
    # past the end stays past the end
    assert utf16_to_codepoint_ends(text, [6]) == [5]


def test_a_token_takes_the_span_holding_its_first_character() -> None:
    # tokens "ab" [0,2), "cd" [2,4), "ef" [4,6); span ends 3 and 5
    offsets = [(0, 2), (2, 4), (4, 6)]
    values = token_advantages("abcdef", offsets, 9.0, spans((3, 1.0), (5, 2.0)))
    # "cd" starts at 2 < 3: first span; "ef" starts at 4: second; EOS at 6: after the last end
    assert values == [1.0, 1.0, 2.0, 9.0]


def test_boundaries_are_exclusive_and_tokens_after_the_last_end_keep_the_advantage() -> None:
    offsets = [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert token_advantages("wxyz", offsets, 0.5, spans((1, -1.0), (2, 3.0))) == [-1.0, 3.0, 0.5, 0.5, 0.5]


def test_without_step_advantages_every_token_and_the_eos_take_the_advantage() -> None:
    assert token_advantages("abc", [(0, 1), (1, 3)], 0.7, None) == [0.7, 0.7, 0.7]


def test_the_eos_takes_a_span_only_when_that_span_reaches_past_the_text() -> None:
    offsets = [(0, 2)]
    assert token_advantages("ab", offsets, 0.0, spans((2, 1.0))) == [1.0, 0.0]
    assert token_advantages("ab", offsets, 0.0, spans((3, 1.0))) == [1.0, 1.0]


def test_byte_pieces_of_one_character_share_its_position() -> None:
    # byte-level BPE: three tokens for the bytes of one character, one with empty offsets
    assert token_positions([(0, 1), (1, 2), (1, 2), (2, 2), (2, 3)]) == [0, 1, 1, 1, 2]


def test_multi_byte_and_astral_characters_with_the_real_tokenizer(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_model_dir)
    completion = "é😀ab 日本"
    enc = tokenizer(completion, add_special_tokens=False, return_offsets_mapping=True)
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    # JS: "é" 1 unit, "😀" 2 units, so "é😀" ends at 3 and "é😀ab" at 5
    values = token_advantages(completion, offsets, 7.0, spans((3, 1.0), (5, 2.0)))
    assert len(values) == len(offsets) + 1
    for (start, end), value in zip(offsets, values, strict=False):
        first = start if end > start else None
        if first is not None:
            expected = 1.0 if first < 2 else 2.0 if first < 4 else 7.0
            assert value == expected, (start, end, value)
    assert values[-1] == 7.0
    # every byte piece of the emoji (code point 1) carries the first span's value
    emoji = [v for (s, e), v in zip(offsets, values, strict=False) if (s, e) == (1, 2)]
    assert emoji and all(v == 1.0 for v in emoji)


def test_the_encoded_example_is_prompt_then_completion_then_end_of_turn(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_model_dir)
    prompt = [{"role": "user", "content": "What is 2+2?"}]
    encoded = encode_example(tokenizer, prompt, "4", 1.5)
    rendered = render_prompt(tokenizer, prompt)
    assert rendered.endswith("<|im_start|>assistant\n")
    prompt_ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    assert encoded.input_ids[: encoded.prompt_len] == prompt_ids
    assert encoded.input_ids[-1] == end_of_turn_id(tokenizer) == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer.decode(encoded.input_ids[encoded.prompt_len : -1]) == "4"
    assert encoded.token_weights == [1.5] * encoded.completion_len


@pytest.mark.parametrize("completion", ["", "x"])
def test_short_completions_still_train_the_end_of_turn(tiny_model_dir: Path, completion: str) -> None:
    encoded = encode_example(load_tokenizer(tiny_model_dir), [{"role": "user", "content": "q"}], completion)
    assert encoded.completion_len == len(completion) + 1


def test_a_completion_cut_at_the_token_limit_gets_no_end_of_turn(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_model_dir)
    prompt = [{"role": "user", "content": "Count to ten."}]
    ended = encode_example(tokenizer, prompt, "1 2 3", 0.5, spans((2, 1.0)))
    cut = encode_example(tokenizer, prompt, "1 2 3", 0.5, spans((2, 1.0)), ended=False)
    assert cut.input_ids == ended.input_ids[:-1]
    assert end_of_turn_id(tokenizer) not in cut.input_ids[cut.prompt_len :]
    assert cut.token_weights == ended.token_weights[:-1]
    assert len(cut.token_weights) == cut.completion_len
