"""The world's tokenizer: byte-level BPE that keeps digits apart and merges across words.

Digits stay single tokens, so arithmetic is learnable; everything else may merge freely (no
word-level pre-tokenizer), so the project's long prompt boilerplate becomes a few tokens and
sequences stay short enough to train on two cores.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from ..tiny_model import SPECIAL_TOKENS


def train_world_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            # Each digit on its own, and a newline never inside a merged token (keeps lines apart).
            pre_tokenizers.Split(Regex(r"\p{N}|\n"), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
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
