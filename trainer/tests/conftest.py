"""Shared fixtures: the tiny model is built once per test session, under pytest's tmp folder."""

from __future__ import annotations

from pathlib import Path

import pytest

# The server tests' fixtures (S3, a stand-in inference server), shared by every module.
from harness import inference, prefix, s3_config, store  # noqa: F401

from spark_trainer.tiny_model import make_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2-style model folder (seed 0), shared by every test of the session."""
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny", seed=0)
