"""2 ranks (torchrun, gloo on CPU) train to the same weights as 1 rank, for FSDP2 and DDP."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
from pathlib import Path

import pytest
import torch
from distributed_worker import run
from safetensors.torch import load_file

STEPS = 2  # one SFT step, one GRPO step
WEIGHTS = {"lora": "adapter_model.safetensors", "full": "model.safetensors"}


@pytest.fixture(scope="module")
def one_rank(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("one-rank")
    run(tiny_model_dir, out, STEPS, 100_000)
    return out


def _rank(rank: int, port: int, sharding: str, args: tuple[Path, Path, int, int, list[str]]) -> None:
    """One rank, as torchrun would start it (the environment it sets)."""
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE="2",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        SPARK_TRAINER_SHARDING=sharding,
    )
    run(*args)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# DDP is the fallback path: its LoRA session suffices (and keeps the suite quick).
@pytest.mark.parametrize(("sharding", "names"), [("fsdp", ["lora", "full"]), ("ddp", ["lora"])])
def test_two_ranks_train_the_same_weights_as_one(
    tiny_model_dir: Path, one_rank: Path, tmp_path: Path, sharding: str, names: list[str]
) -> None:
    # Forked ranks skip re-importing torch and transformers (most of a fresh process's start);
    # `torchrun --nproc-per-node 2 tests/distributed_worker.py ...` runs the same code.
    # A small token budget: the ranks' slices cut into different numbers of micro-batches.
    args = (tiny_model_dir, tmp_path, STEPS, 64, names)
    port = free_port()
    fork = multiprocessing.get_context("fork")
    ranks = [fork.Process(target=_rank, args=(rank, port, sharding, args)) for rank in range(2)]
    for process in ranks:
        process.start()
    for process in ranks:
        process.join(timeout=240)
    assert [p.exitcode for p in ranks] == [0, 0]
    for name in names:
        for step in range(STEPS):
            single = json.loads((one_rank / f"{name}-{step}.json").read_text())
            double = json.loads((tmp_path / f"{name}-{step}.json").read_text())
            assert double.keys() == single.keys()
            for key in single:
                assert double[key] == pytest.approx(single[key], rel=1e-4, abs=1e-6), (name, step, key)
        a = load_file(one_rank / name / WEIGHTS[name])
        b = load_file(tmp_path / name / WEIGHTS[name])
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6)
