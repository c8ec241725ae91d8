"""Shared fixtures: the tiny model is built once per test session, under pytest's tmp folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_trainer.tiny_model import make_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2-style model folder (seed 0), shared by every test of the session."""
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny", seed=0)
