"""Cutting a batch: each rank's slice, micro-batches by token budget, padded tensors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .tokens import EncodedExample


def rank_slice(count: int, rank: int, world: int) -> range:
    """The examples rank `rank` of `world` takes: contiguous, sizes differing by at most one."""
    base, extra = divmod(count, world)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


def micro_batches(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Consecutive examples grouped so that rows × longest row ≤ `token_budget` (the padded
    size a forward pass holds); an example longer than the budget goes alone."""
    groups: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index, length in enumerate(lengths):
        if current and (len(current) + 1) * max(longest, length) > token_budget:
            groups.append(current)
            current, longest = [], 0
        current.append(index)
        longest = max(longest, length)
    if current:
        groups.append(current)
    return groups


@dataclass(frozen=True)
class MicroBatch:
    """Right-padded rows. Position t of `loss_mask`/`weights`/`targets` is predicted by the
    logits at position t of `input_ids` (the targets are the inputs shifted left by one)."""

    input_ids: torch.Tensor  # [B, T] long
    attention_mask: torch.Tensor  # [B, T] long
    targets: torch.Tensor  # [B, T-1] long
    loss_mask: torch.Tensor  # [B, T-1] float: 1 on completion tokens
    weights: torch.Tensor  # [B, T-1] float: each completion token's advantage (or 1)


def collate(examples: Sequence[EncodedExample], pad_id: int, device: torch.device) -> MicroBatch:
    """Pads `examples` into one micro-batch on `device`."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    mask = torch.zeros((len(examples), width - 1))
    weights = torch.zeros((len(examples), width - 1))
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        attention[row, :n] = 1
        # token j (j >= prompt_len) is predicted at position j - 1
        mask[row, example.prompt_len - 1 : n - 1] = 1
        weights[row, example.prompt_len - 1 : n - 1] = torch.tensor(example.token_weights)
    return MicroBatch(
        input_ids=ids.to(device),
        attention_mask=attention.to(device),
        targets=ids[:, 1:].to(device),
        loss_mask=mask.to(device),
        weights=weights.to(device),
    )


def empty_micro_batch(pad_id: int, device: torch.device) -> MicroBatch:
    """A micro-batch with no loss tokens: a rank with fewer micro-batches than another still runs
    as many forward/backward passes, so the sharded model's collectives line up."""
    ids = torch.full((1, 2), pad_id, dtype=torch.long, device=device)
    zeros = torch.zeros((1, 1), device=device)
    return MicroBatch(ids, torch.ones_like(ids), ids[:, 1:], zeros, zeros)
