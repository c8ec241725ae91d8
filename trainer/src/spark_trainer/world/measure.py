"""Measuring world models on held-out problems: greedy answers scored against the world's truth.

- policy accuracy: the last `\\boxed{}` of the answer equals the true result (two decimals);
- verifier step accuracy: each step's `This step is correct/incorrect` label against the truth,
  in order (a step the verification leaves out counts as wrong);
- balanced accuracy: the mean of the accuracy on correct steps and on wrong steps, because most
  steps are correct and a verifier that calls every step correct would score high otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..tokens import end_of_turn_id, render_prompt

BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
STEP_LABEL = re.compile(r"this\s+step\s+is\s+(correct|incorrect)", re.IGNORECASE)


@torch.no_grad()
def greedy_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Sequence[dict[str, str]]],
    max_new_tokens: int,
    batch: int = 64,
) -> list[str]:
    """Greedy answers to chat prompts, decoded without special tokens."""
    eot = end_of_turn_id(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eot
    out: list[str] = []
    for start in range(0, len(prompts), batch):
        chunk = [
            tokenizer(render_prompt(tokenizer, p), add_special_tokens=False)["input_ids"]
            for p in prompts[start : start + batch]
        ]
        width = max(len(c) for c in chunk)
        # Left padding: every row's answer starts at the same position.
        ids = torch.tensor([[pad] * (width - len(c)) + c for c in chunk])
        mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in chunk])
        generated = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=eot,
            pad_token_id=pad,
        )
        for row in generated[:, width:].tolist():
            out.append(tokenizer.decode(row, skip_special_tokens=True))
    return out


def boxed_value(text: str) -> float | None:
    found = BOXED.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].strip())
    except ValueError:
        return None


def policy_accuracy(answers: Sequence[str], truths: Sequence[float]) -> float:
    right = 0
    for text, truth in zip(answers, truths, strict=True):
        value = boxed_value(text)
        right += value is not None and abs(value - truth) < 0.006
    return right / max(1, len(truths))


def step_labels(text: str) -> list[bool]:
    """The verification's step labels in order (`True`: correct)."""
    return [m.group(1).lower() == "correct" for m in STEP_LABEL.finditer(text)]


def verifier_accuracy(verifications: Sequence[str], truths: Sequence[Sequence[bool]]) -> dict[str, Any]:
    """Step accuracy and balanced step accuracy of verifications against the true labels."""
    hits = {True: 0, False: 0}
    totals = {True: 0, False: 0}
    for text, labels in zip(verifications, truths, strict=True):
        predicted = step_labels(text)
        for i, truth in enumerate(labels):
            totals[truth] += 1
            hits[truth] += i < len(predicted) and predicted[i] == truth
    on_correct = hits[True] / max(1, totals[True])
    on_wrong = hits[False] / max(1, totals[False])
    return {
        "stepAccuracy": (hits[True] + hits[False]) / max(1, totals[True] + totals[False]),
        "balancedAccuracy": (on_correct + on_wrong) / 2,
        "accuracyOnCorrectSteps": on_correct,
        "accuracyOnWrongSteps": on_wrong,
        "steps": totals[True] + totals[False],
        "wrongSteps": totals[False],
    }
