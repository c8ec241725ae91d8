"""2 ranks (forked with the environment torchrun sets; gloo on CPU) train to the same weights as
1 rank, with FSDP2 and with DDP, and resume a checkpoint alike."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from distributed_worker import run, run_faults, strict_model
from safetensors.torch import load_file

STEPS = 2  # one SFT step, one GRPO step
WEIGHTS = {"lora": "adapter_model.safetensors", "full": "model.safetensors"}


@pytest.fixture(scope="module")
def one_rank(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("one-rank")
    run(tiny_model_dir, out, STEPS, 100_000)
    return out


def _rank(
    rank: int, port: int, sharding: str, args: tuple[Any, ...], kwargs: dict[str, Any], target: Any = run
) -> None:
    """One rank, as torchrun would start it (the environment it sets)."""
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE="2",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        SPARK_TRAINER_SHARDING=sharding,
    )
    target(*args, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_ranks(
    sharding: str,
    *args: Any,
    target: Any = run,
    timeout: float = 240,
    exits: tuple[int, int] = (0, 0),
    **kwargs: Any,
) -> None:
    """`target` (`run`) on 2 forked ranks: they skip re-importing torch and transformers (most of
    a fresh process's start); `torchrun --nproc-per-node 2 tests/distributed_worker.py ...` runs
    the same. Both must end within `timeout` seconds with the `exits` statuses."""
    port = free_port()
    fork = multiprocessing.get_context("fork")
    ranks = [
        fork.Process(target=_rank, args=(rank, port, sharding, args, kwargs, target)) for rank in range(2)
    ]
    for process in ranks:
        process.start()
    deadline = time.monotonic() + timeout
    for process in ranks:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
    hung = [p for p in ranks if p.exitcode is None]
    for process in hung:
        process.kill()
    assert not hung, f"{len(hung)} rank(s) still running after {timeout} s"
    assert tuple(p.exitcode for p in ranks) == exits


def assert_same_run(one: Path, two: Path, names: list[str], steps: range) -> None:
    for name in names:
        for step in steps:
            single = json.loads((one / f"{name}-{step}.json").read_text())
            double = json.loads((two / f"{name}-{step}.json").read_text())
            assert double.keys() == single.keys()
            for key in single:
                assert double[key] == pytest.approx(single[key], rel=1e-4, abs=1e-6), (name, step, key)
        a = load_file(one / name / WEIGHTS[name])
        b = load_file(two / name / WEIGHTS[name])
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6)


# DDP is the fallback path: its LoRA session suffices (and keeps the suite quick).
@pytest.mark.parametrize(("sharding", "names"), [("fsdp", ["lora", "full"]), ("ddp", ["lora"])])
def test_two_ranks_train_the_same_weights_as_one(
    tiny_model_dir: Path, one_rank: Path, tmp_path: Path, sharding: str, names: list[str]
) -> None:
    # A small token budget: the ranks' slices cut into different numbers of micro-batches.
    two_ranks(sharding, tiny_model_dir, tmp_path, STEPS, 64, names)
    assert_same_run(one_rank, tmp_path, names, range(STEPS))
    # FSDP2: rank 1 never read the model (meta-device init, rank 0's weights broadcast into the
    # shards); DDP replicates, so each rank reads its own (the full fine-tune: its reference too).
    loads = json.loads((tmp_path / "rank-1-loads.json").read_text())
    assert len(loads) == (0 if sharding == "fsdp" else len(names))


def test_two_ranks_resume_an_adam_checkpoint_like_one(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Rank 0 reads the checkpoint; the weights and Adam's moments reach rank 1 by broadcast."""
    run(tiny_model_dir, tmp_path / "first", STEPS, 4096, ["lora"], optimizer=None)
    state = json.loads((tmp_path / "first" / "lora-engine.json").read_text())
    resume = (tmp_path / "first" / "lora", state)
    later = range(STEPS, STEPS + 1)
    run(tiny_model_dir, tmp_path / "one", 1, 4096, ["lora"], optimizer=None, resume=resume, first_step=STEPS)
    two_ranks(
        "fsdp",
        tiny_model_dir,
        tmp_path / "two",
        1,
        64,
        ["lora"],
        optimizer=None,
        resume=resume,
        first_step=STEPS,
    )
    assert_same_run(tmp_path / "one", tmp_path / "two", ["lora"], later)


def test_a_failure_on_one_rank_is_the_same_error_on_every_rank_or_ends_them_all(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Rank 1 alone cannot encode a line: both ranks answer the same invalid-request before any
    model collective and go on training. Then rank 1 fails inside a forward pass: it ends (exit
    1), and rank 0 learns of it at once and refuses everything after, instead of waiting in a
    collective for 10 minutes."""
    model = strict_model(tiny_model_dir, tmp_path)
    started = time.monotonic()
    two_ranks("fsdp", model, tmp_path, target=run_faults, timeout=90, exits=(0, 1))
    assert time.monotonic() - started < 90
    result = json.loads((tmp_path / "faults.json").read_text())
    assert result["encode"]["code"] == "invalid-request"
    assert result["encode"]["message"].startswith("batch example 5: cannot be encoded: ")
    assert "System messages must come first" in result["encode"]["message"]
    assert result["step0"]["examples"] == 6  # the ranks were still in step
    assert "die" in result and result["failure"] is not None
    assert result["failure"].startswith("train_step failed on rank 0")
