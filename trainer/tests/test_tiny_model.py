from __future__ import annotations

import hashlib
from pathlib import Path

from transformers import PreTrainedTokenizerFast

from spark_trainer.models import load_model, load_tokenizer
from spark_trainer.tiny_model import FALLBACK_CORPUS, IM_END, make_tiny_model


def digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_the_same_seed_writes_byte_identical_files(tiny_model_dir: Path, tmp_path: Path) -> None:
    again = make_tiny_model(tmp_path / "again", seed=0)
    assert digests(again) == digests(tiny_model_dir)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(digests(again))


def test_another_seed_gives_other_weights_and_the_same_tokenizer(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    other = digests(make_tiny_model(tmp_path / "other", seed=1))
    base = digests(tiny_model_dir)
    assert other["model.safetensors"] != base["model.safetensors"]
    assert other["tokenizer.json"] == base["tokenizer.json"]


def test_without_the_datasets_a_builtin_corpus_trains_the_tokenizer(tmp_path: Path) -> None:
    directory = make_tiny_model(tmp_path / "fallback", datasets_dir=tmp_path / "absent")
    tokenizer = load_tokenizer(directory)
    assert tokenizer.decode(tokenizer(FALLBACK_CORPUS[0])["input_ids"]) == FALLBACK_CORPUS[0]


def test_the_tokenizer_keeps_its_trained_pre_tokenizer_and_renders_chatml(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_model_dir)
    assert isinstance(tokenizer, PreTrainedTokenizerFast)
    assert tokenizer.eos_token == IM_END
    text = "Natalia sold 48/2 = 24 clips in May. 😀"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_the_model_loads_in_fp32_on_cpu(tiny_model_dir: Path) -> None:
    model = load_model(tiny_model_dir, "cpu")
    assert next(model.parameters()).dtype.is_floating_point
    assert str(next(model.parameters()).dtype) == "torch.float32"
    assert model.config.num_hidden_layers == 2


def test_end_of_turn_lead_makes_the_random_model_end_its_turns(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch

    def p_end(directory: Path, text: str) -> float:
        tokenizer = load_tokenizer(directory)
        model = load_model(directory, torch.device("cpu"))
        messages = [{"role": "user", "content": text}]
        ids = tokenizer(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids["input_ids"]])).logits[0, -1]
        return float(torch.softmax(logits, -1)[tokenizer.convert_tokens_to_ids(IM_END)])

    ending = make_tiny_model(tmp_path / "ending", seed=0, end_of_turn_lead=1.5)
    for text in ["What is 3 + 4?", "Natalia sold clips to 48 of her friends in April."]:
        assert p_end(tiny_model_dir, text) < 0.01
        assert 0.05 < p_end(ending, text) < 0.3
