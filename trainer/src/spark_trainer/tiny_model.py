"""A tiny Qwen2-style model with random weights and a locally trained tokenizer, for tests.

Nothing is downloaded: the byte-level BPE tokenizer is trained on the GSM8K text in the shared
datasets folder (`<repo>/../shared/datasets`, or `SPARK_DATASETS_DIR`), or on a small built-in
corpus when that folder is absent, so a fresh machine still gets a working model. The same seed
gives byte-identical files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
PAD = "<|endoftext|>"
SPECIAL_TOKENS = [PAD, IM_START, IM_END]
VOCAB_SIZE = 2048

# ChatML, as Qwen2 writes it (without Qwen's default system prompt).
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Qwen2's pre-tokenizer split: digits one by one, words with their leading space.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

FALLBACK_CORPUS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "Natalia sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 clips altogether. #### 72",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting.",
    "Step 1: 17 + 25 = 42. Step 2: 42 * 3 = 126. The answer is \\boxed{126}.",
    "<step>17 + 25 = 42</step><step>42 * 3 = 126</step><answer>\\boxed{126}</answer>",
    "Problem: 17 + 25 = ?\nStudent Solution: Step 1: 17 + 25 = 42.\nLet's verify step by step.",
    "Step 1: Correct\n**Verification: Is the answer correct (Yes/No)? Yes**",
    "Start with 17, add 25, times 3, minus 48, divide by 6. What is the result?",
]


def default_datasets_dir() -> Path:
    """`SPARK_DATASETS_DIR`, else the shared datasets folder beside the repository (found from
    this file, so the package must run from the checkout: the editable install `uv sync` makes)."""
    env = os.environ.get("SPARK_DATASETS_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[3]
    return repo.parent / "shared" / "datasets"


def corpus(datasets_dir: Path | None = None) -> Iterator[str]:
    """GSM8K questions and answers (train split), or the fallback corpus when absent."""
    path = (datasets_dir or default_datasets_dir()) / "gsm8k" / "train.jsonl"
    if not path.is_file():
        yield from FALLBACK_CORPUS
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                yield row["question"]
                yield row["answer"]


def train_tokenizer(datasets_dir: Path | None = None, vocab_size: int = VOCAB_SIZE) -> Tokenizer:
    """A byte-level BPE tokenizer with Qwen2's pre-tokenizer and the ChatML special tokens."""
    return train_byte_level_bpe(corpus(datasets_dir), vocab_size, QWEN2_SPLIT)


def train_byte_level_bpe(texts: Iterable[str], vocab_size: int, split: str) -> Tokenizer:
    """Byte-level BPE with the ChatML special tokens, trained on `texts`; `split` (a regex) cuts the
    text into the pieces merges may not cross."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    # trim_offsets=False: offsets cover every character (a word's leading space included).
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def chatml_tokenizer(tok: Tokenizer, model_max_length: int) -> PreTrainedTokenizerFast:
    """A trained tokenizer as transformers saves it: ChatML's end of turn as eos, pad and template."""
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token=IM_END,
        pad_token=PAD,
        unk_token=None,
        model_max_length=model_max_length,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


# The constant of embedding column 0 when `end_of_turn_lead` is set (see make_tiny_model).
END_OF_TURN_COLUMN = 10.0


def make_tiny_model(
    directory: Path | str,
    seed: int = 0,
    datasets_dir: Path | None = None,
    end_of_turn_lead: float | None = None,
) -> Path:
    """Writes the tiny model (safetensors), its tokenizer files and chat template to `directory`.

    A random-weight model almost never samples its end-of-turn token (about 1 in 2,000 per token),
    so every answer runs into `max_tokens`. `end_of_turn_lead` makes it end its turns: column 0 of
    the tied embeddings becomes one constant for every token, so the residual stream carries a large
    constant component that dominates the final norm, and the end-of-turn row gets `lead` more in
    that column: a logit lead over every other token whatever the context (1.5 gives about one
    sampled token in nine, so answers at temperature 1 are a few words long). Everything else stays
    random.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = chatml_tokenizer(train_tokenizer(datasets_dir), model_max_length=2048)
    tokenizer.save_pretrained(out)

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=352,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids(IM_START),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        # A wider init than 0.02 makes the random model's samples vary more, so tests see
        # training move log-probabilities without many steps.
        initializer_range=0.1,
    )
    # fork_rng: seeding for the init must not disturb the caller's random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    if end_of_turn_lead is not None:
        with torch.no_grad():
            column = model.get_input_embeddings().weight[:, 0]
            column.fill_(END_OF_TURN_COLUMN)
            column[tokenizer.eos_token_id] += end_of_turn_lead
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    return out
