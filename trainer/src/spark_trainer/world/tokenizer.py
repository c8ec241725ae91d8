"""The world's tokenizer: byte-level BPE that keeps digits apart and merges across words.

Digits stay single tokens, so arithmetic is learnable; everything else may merge freely (no
word-level pre-tokenizer), so the project's long prompt boilerplate becomes a few tokens and
sequences stay short enough to train on two cores.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer

from ..tiny_model import train_byte_level_bpe

# Each digit on its own, and a newline never inside a merged token (keeps lines apart).
WORLD_SPLIT = r"\p{N}|\n"


def train_world_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    return train_byte_level_bpe(texts, vocab_size, WORLD_SPLIT)
