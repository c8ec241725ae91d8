"""The neural world's build: tokenizer, measurements, layout, cache and exact reproduction by seed.

The learning itself (accuracies in the budgets of `--size ci|default`) is measured by the build and
by the workflow tests (`test/neural/`); here a tiny budget checks the mechanics.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from spark_trainer.models import load_tokenizer
from spark_trainer.world import build
from spark_trainer.world.measure import policy_accuracy, step_labels, verifier_accuracy
from spark_trainer.world.pretrain import Budget
from spark_trainer.world.tokenizer import train_world_tokenizer


def test_step_labels_are_read_in_order() -> None:
    text = "## Step 1: a\n**This step is correct.**\n## Step 2: b\n**This step is Incorrect.**\nNo"
    assert step_labels(text) == [True, False]


def test_balanced_accuracy_does_not_reward_calling_everything_correct() -> None:
    truths = [[True, True, True, False], [True, True, True, True]]
    always_correct = ["**This step is correct.**" * 4] * 2
    scored = verifier_accuracy(always_correct, truths)
    assert scored["stepAccuracy"] == pytest.approx(7 / 8)
    assert scored["balancedAccuracy"] == pytest.approx(0.5)
    # A verification that stops early leaves its last steps wrong.
    short = verifier_accuracy(["**This step is correct.**"], [[True, False]])
    assert short["accuracyOnWrongSteps"] == 0


def test_policy_accuracy_reads_the_last_boxed_value() -> None:
    answers = ["<answer>\\boxed{12}</answer>", "\\boxed{3} then \\boxed{4.5}", "no answer"]
    assert policy_accuracy(answers, [12, 4.5, 1]) == pytest.approx(2 / 3)


def test_the_tokenizer_keeps_digits_apart_and_merges_the_boilerplate() -> None:
    sentence = "Verify the solution step by step. "
    tok = train_world_tokenizer(
        [sentence + f"Start with {n}. Add {n + 3}." for n in range(400)], vocab_size=600
    )
    pieces = [tok.id_to_token(i) for i in tok.encode("Start with 123.").ids]
    digits = [p for p in pieces if any(c.isdigit() for c in p)]
    assert digits == ["1", "2", "3"]
    assert len(tok.encode(sentence).ids) <= 4  # from 34 characters


@pytest.fixture
def tiny_size(monkeypatch: pytest.MonkeyPatch) -> str:
    ci = build.SIZES["ci"]
    tiny = dataclasses.replace(
        ci,
        policy_examples=200,
        verifier_examples=200,
        heldout=6,
        policy_budget=Budget(steps=4, batch=4, lr=1e-3, warmup=2),
        verifier_budget=Budget(steps=4, batch=4, lr=1e-3, warmup=2),
    )
    monkeypatch.setitem(build.SIZES, "tiny", tiny)
    return "tiny"


def _weights_digest(directory: Path) -> str:
    return hashlib.sha256(
        b"".join((directory / m / "model.safetensors").read_bytes() for m in ("policy", "verifier"))
    ).hexdigest()


def test_a_world_is_two_model_folders_and_world_json_reproduced_exactly_by_its_seed(
    tiny_size: str, tmp_path: Path
) -> None:
    world = build.make_world_models(tmp_path / "a", seed=3, size_name=tiny_size, threads=1)
    for model in ("policy", "verifier"):
        assert (tmp_path / "a" / model / "config.json").is_file()
        assert load_tokenizer(tmp_path / "a" / model).chat_template
    recorded = json.loads((tmp_path / "a" / "world.json").read_text())
    assert recorded["problems"] == build.SIZES["ci"].problems
    for key in ("policyAccuracy", "verifierStepAccuracy", "verifierBalancedAccuracy"):
        assert 0 <= recorded[key] <= 1
    assert recorded["contentHash"] == world["contentHash"]

    # The same seed gives the same weights; another seed does not.
    build.make_world_models(tmp_path / "b", seed=3, size_name=tiny_size, threads=1)
    build.make_world_models(tmp_path / "c", seed=4, size_name=tiny_size, threads=1)
    assert _weights_digest(tmp_path / "a") == _weights_digest(tmp_path / "b")
    assert _weights_digest(tmp_path / "a") != _weights_digest(tmp_path / "c")


def test_a_second_build_of_the_same_world_costs_nothing(
    tiny_size: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build.make_world_models(tmp_path / "w", seed=5, size_name=tiny_size, threads=1)
    before = (tmp_path / "w" / "policy" / "model.safetensors").stat().st_mtime_ns
    build.make_world_models(tmp_path / "w", seed=5, size_name=tiny_size, threads=1)
    assert "nothing to build" in capsys.readouterr().err
    assert (tmp_path / "w" / "policy" / "model.safetensors").stat().st_mtime_ns == before


def test_an_unknown_size_is_refused_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--size: expected one of ci, default"):
        build.make_world_models(tmp_path, size_name="huge")
