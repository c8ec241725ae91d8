"""2 ranks (torchrun, gloo on CPU) train to the same weights as 1 rank, for FSDP2 and DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


# DDP is the fallback path: its LoRA session suffices (and keeps the suite quick).
@pytest.mark.parametrize(("sharding", "names"), [("fsdp", ["lora", "full"]), ("ddp", ["lora"])])
def test_two_ranks_train_the_same_weights_as_one(
    tiny_model_dir: Path, one_rank: Path, tmp_path: Path, sharding: str, names: list[str]
) -> None:
    worker = Path(__file__).with_name("distributed_worker.py")
    # A small token budget: the ranks' slices cut into different numbers of micro-batches.
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    command += [str(worker), str(tiny_model_dir), str(tmp_path), str(STEPS), "64", ",".join(names)]
    env = {**os.environ, "SPARK_TRAINER_SHARDING": sharding, "OMP_NUM_THREADS": "1"}
    subprocess.run(command, check=True, timeout=240, env=env, capture_output=True)
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
