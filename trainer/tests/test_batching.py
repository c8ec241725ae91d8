from __future__ import annotations

from pathlib import Path

import torch

from spark_trainer.batching import collate, micro_batches, rank_slice
from spark_trainer.optim_state import load_optimizer_state, save_optimizer_state
from spark_trainer.tokens import EncodedExample


def test_rank_slices_cover_the_batch_once_and_differ_by_at_most_one() -> None:
    for count in range(0, 9):
        for world in (1, 2, 3):
            slices = [list(rank_slice(count, r, world)) for r in range(world)]
            assert [i for s in slices for i in s] == list(range(count))
            assert max(map(len, slices)) - min(map(len, slices)) <= 1


def test_micro_batches_keep_the_padded_size_within_the_budget() -> None:
    lengths = [10, 30, 20, 5, 40, 100, 8]
    groups = micro_batches(lengths, 64)
    assert [i for g in groups for i in g] == list(range(len(lengths)))
    for group in groups:
        longest = max(lengths[i] for i in group)
        assert len(group) * longest <= 64 or len(group) == 1
    assert [5] in groups  # longer than the budget: alone


def test_collate_masks_exactly_the_completion_and_its_end_of_turn() -> None:
    a = EncodedExample(input_ids=[1, 2, 3, 4, 5], prompt_len=3, token_weights=[0.5, -1.0])
    b = EncodedExample(input_ids=[6, 7, 8], prompt_len=1, token_weights=[2.0, 3.0])
    batch = collate([a, b], pad_id=0, device=torch.device("cpu"))
    assert batch.input_ids.tolist() == [[1, 2, 3, 4, 5], [6, 7, 8, 0, 0]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    # position t predicts input t+1: a's completion tokens 4, 5 are predicted at positions 2, 3
    assert batch.loss_mask.tolist() == [[0, 0, 1, 1], [1, 1, 0, 0]]
    assert batch.targets[batch.loss_mask.bool()].tolist() == [4, 5, 7, 8]
    assert batch.weights[batch.loss_mask.bool()].tolist() == [0.5, -1.0, 2.0, 3.0]


def test_optimizer_state_round_trips_through_safetensors(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.9), weight_decay=0.1)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    state = {
        "state": {n: optimizer.state[p] for n, p in model.named_parameters()},
        "param_groups": [{**optimizer.param_groups[0], "params": ["weight", "bias"]}],
    }
    save_optimizer_state(state, tmp_path / "optimizer.safetensors")
    loaded = load_optimizer_state(tmp_path / "optimizer.safetensors")
    assert loaded["param_groups"][0]["betas"] == (0.8, 0.9)
    assert loaded["param_groups"][0]["params"] == ["weight", "bias"]
    for name, entry in state["state"].items():
        for key, value in entry.items():
            assert torch.equal(loaded["state"][name][key], value)
