"""Shared fixtures: the tiny model is built once per test session, under pytest's tmp folder."""

from __future__ import annotations

import os

# One intra-op thread unless told otherwise: the tiny model gains nothing from more, and on a
# shared 2-core machine OpenMP threads spinning against other processes make steps ~8x slower.
# Set before torch is imported; worker subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest

# The server tests' fixtures (S3, a stand-in inference server), shared by every module.
from harness import inference, prefix, s3_config, store  # noqa: F401

from spark_trainer.tiny_model import make_tiny_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2-style model folder (seed 0), shared by every test of the session."""
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny", seed=0)
