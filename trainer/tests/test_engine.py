from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import GRPO, SFT, batch_for, grpo_batch, session_config, sft_batch
from safetensors.torch import load_file

from spark_trainer.distributed import DistContext
from spark_trainer.engine import Engine
from spark_trainer.protocol import GrpoExample, GrpoLoss, ProtocolError
from spark_trainer.runtime import Runtime
from spark_trainer.tokens import encode_example

CPU = DistContext(rank=0, world=1, device=torch.device("cpu"))
SGD = {"name": "sgd", "learningRate": 0.5, "betas": [0.9, 0.999], "weightDecay": 0.0, "warmupSteps": 0}


def engine(model_dir: Path, micro_batch_tokens: int = 4096, **config: Any) -> Engine:
    return Engine(model_dir, session_config(**config), CPU, micro_batch_tokens)


def trainable(e: Engine) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in e.model.named_parameters() if p.requires_grad}


def test_kl_is_zero_at_step_zero_and_the_clip_never_binds(tiny_model_dir: Path) -> None:
    e = engine(tiny_model_dir)
    first = e.train_step(0, grpo_batch(0), GRPO, None)
    assert first["kl"] == 0.0
    assert first["clipFraction"] == 0.0
    second = e.train_step(1, grpo_batch(1), GRPO, None)
    assert second["kl"] > 0.0
    assert second["clipFraction"] == 0.0
    assert set(first) == {
        "loss",
        "tokens",
        "examples",
        "learningRate",
        "gradNorm",
        "kl",
        "entropy",
        "clipFraction",
    }


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_the_advantage_sign_moves_the_completion_log_probability(tiny_model_dir: Path, sign: float) -> None:
    e = engine(tiny_model_dir, optimizer=SGD)
    example = GrpoExample.model_validate({**sft_batch(0, 1)[0].model_dump(), "advantage": sign})
    before = e.completion_log_probs([example])[0]
    loss = GrpoLoss(kind="grpo", klCoefficient=0.0, entropyCoefficient=0.0)
    e.train_step(0, [example], loss, None)
    e.train_step(1, [example], loss, None)  # LoRA's B starts at 0: the second step moves π
    after = e.completion_log_probs([example])[0]
    assert (after - before) * sign > 0.01, (before, after)


def test_sft_lowers_the_loss(tiny_model_dir: Path) -> None:
    e = engine(tiny_model_dir)
    batch = sft_batch(0)
    metrics = [e.train_step(step, batch, SFT, 2e-2) for step in range(5)]
    assert metrics[-1]["loss"] < metrics[0]["loss"] - 0.1
    assert metrics[0]["tokens"] == sum(
        encode_example(e.tokenizer, x.prompt, x.completion).completion_len for x in batch
    )


@pytest.mark.parametrize("kind", ["sft", "grpo"])
def test_the_step_does_not_depend_on_the_micro_batch_size(tiny_model_dir: Path, kind: str) -> None:
    whole = engine(tiny_model_dir, optimizer=SGD, adapter={"kind": "full"})
    cut = engine(tiny_model_dir, micro_batch_tokens=48, optimizer=SGD, adapter={"kind": "full"})
    batch, loss = (sft_batch(3), SFT) if kind == "sft" else (grpo_batch(3), GRPO)
    a = whole.train_step(0, batch, loss, None)
    b = cut.train_step(0, batch, loss, None)
    for key in a:
        assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), key
    wa, wb = trainable(whole), trainable(cut)
    for name in wa:
        torch.testing.assert_close(wb[name], wa[name], rtol=1e-5, atol=1e-6)


def test_a_full_fine_tune_keeps_a_frozen_reference(tiny_model_dir: Path) -> None:
    e = engine(tiny_model_dir, adapter={"kind": "full"})
    assert e.reference is not None
    assert not any(p.requires_grad for p in e.reference.parameters())
    assert e.train_step(0, grpo_batch(0), GRPO, None)["kl"] == 0.0
    assert e.train_step(1, grpo_batch(1), GRPO, None)["kl"] > 0.0


def test_warm_up_override_and_the_grad_norm_before_clipping(tiny_model_dir: Path) -> None:
    optimizer = {
        "name": "adam",
        "learningRate": 3e-3,
        "betas": [0.9, 0.999],
        "weightDecay": 0.1,
        "warmupSteps": 3,
        "maxGradNorm": 1e-4,
    }
    e = engine(tiny_model_dir, optimizer=optimizer)
    rates = [e.train_step(s, sft_batch(s), SFT, None)["learningRate"] for s in range(2)]
    assert rates == pytest.approx([1e-3, 2e-3])
    overridden = e.train_step(2, sft_batch(2), SFT, 7e-4)
    assert overridden["learningRate"] == 7e-4
    assert overridden["gradNorm"] > 1e-4  # reported before clipping to maxGradNorm
    assert e.train_step(3, sft_batch(3), SFT, None)["learningRate"] == pytest.approx(3e-3)


def test_resume_in_a_new_process_is_bitwise_exact(tiny_model_dir: Path, tmp_path: Path) -> None:
    """4 steps straight == 2 steps, checkpoint, a new process resumed from it, 2 more steps."""
    config = {
        "adapter": {"kind": "lora", "rank": 4, "alpha": 8, "targetModules": ["all-linear"], "dropout": 0.1}
    }
    straight = engine(tiny_model_dir, **config)
    for step in range(4):
        straight.train_step(step, *batch_for(step), None)
    straight.save(tmp_path / "straight")
    first_half = engine(tiny_model_dir, **config)
    for step in range(2):
        first_half.train_step(step, *batch_for(step), None)
    half = tmp_path / "half"
    state = first_half.save(half)

    resumed = tmp_path / "resumed"
    worker = Path(__file__).with_name("resume_worker.py")
    args = [str(tiny_model_dir), str(half), json.dumps(state), json.dumps(config), str(resumed), "2", "4"]
    subprocess.run([sys.executable, str(worker), *args], check=True, timeout=120)

    for name in ("adapter_model.safetensors", "optimizer.safetensors"):
        straight = load_file(tmp_path / "straight" / name)
        again = load_file(resumed / name)
        assert straight.keys() == again.keys()
        for key in straight:
            assert torch.equal(straight[key], again[key]), (name, key)
    assert json.loads((half / "adapter_config.json").read_text())["base_model_name_or_path"] == "tiny"


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_a_checkpoint_of_the_initial_weights_resumes_like_a_fresh_session(
    tiny_model_dir: Path, tmp_path: Path, optimizer: str
) -> None:
    spec = {**SGD, "name": optimizer, "learningRate": 1e-2}
    first = engine(tiny_model_dir, optimizer=spec)
    state = first.save(tmp_path)
    assert state["updatesDone"] == 0
    assert not first.optimizer.state  # saving did not step the optimiser
    second = Engine(tiny_model_dir, session_config(optimizer=spec), CPU, 4096, (tmp_path, state))
    for step in range(2):
        assert first.train_step(step, *batch_for(step), None) == second.train_step(
            step, *batch_for(step), None
        )
    a, b = trainable(first), trainable(second)
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_the_runtime_refuses_a_grpo_step_on_sft_lines_and_unknown_names(tiny_model_dir: Path) -> None:
    runtime = Runtime({"tiny": tiny_model_dir}, device="cpu")
    with pytest.raises(ProtocolError) as unknown:
        runtime.train_step("nope", 0, sft_batch(0), SFT, None)
    assert unknown.value.code == "unknown-session"
    with pytest.raises(ProtocolError) as model:
        runtime.open("s", session_config().model_copy(update={"baseModel": "other"}))
    assert model.value.code == "invalid-request"
    runtime.open("s", session_config())
    with pytest.raises(ProtocolError) as mixed:
        runtime.train_step("s", 0, sft_batch(0), GRPO, None)
    assert mixed.value.code == "invalid-request"
    assert runtime.train_step("s", 0, sft_batch(0), SFT, None)["examples"] == 6
    runtime.shutdown()


def test_a_checkpoint_without_its_weights_fails_the_open(tiny_model_dir: Path, tmp_path: Path) -> None:
    e = engine(tiny_model_dir)
    e.train_step(0, sft_batch(0), SFT, None)
    state = e.save(tmp_path)
    (tmp_path / "adapter_model.safetensors").unlink()
    with pytest.raises(ValueError, match="cannot resume"):
        Engine(tiny_model_dir, session_config(), CPU, 4096, (tmp_path, state))


def _poison_first_gradient(e: Engine) -> None:
    """An Inf in one gradient, as a bf16 overflow in backward gives, with a finite loss."""
    e.params[0].register_hook(lambda grad: torch.full_like(grad, float("inf")))


@pytest.mark.parametrize("adapter", [None, {"kind": "full"}])
def test_a_non_finite_gradient_skips_the_update_and_is_reported(
    tiny_model_dir: Path, tmp_path: Path, adapter: dict[str, Any] | None
) -> None:
    e = engine(tiny_model_dir, **({"adapter": adapter} if adapter else {}))
    e.train_step(0, sft_batch(0), SFT, None)  # Adam has state to keep
    before = trainable(e)
    moments = {k: v.clone() for s in e.optimizer.state.values() for k, v in s.items() if k != "step"}
    _poison_first_gradient(e)
    metrics = e.train_step(1, grpo_batch(1), GRPO, None)
    assert metrics["skipped"] == 1.0
    assert math.isfinite(metrics["loss"])
    assert not math.isfinite(metrics["gradNorm"])
    after = trainable(e)
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert all(p.grad is None for p in e.params)  # zeroed, not carried into the next step
    moments_after = {k: v for s in e.optimizer.state.values() for k, v in s.items() if k != "step"}
    assert all(torch.equal(moments[k], moments_after[k]) for k in moments)
    assert e.updates_done == 1
    state = e.save(tmp_path)  # the checkpoint holds only finite values
    assert state["updatesDone"] == 1
    weights = load_file(tmp_path / ("adapter_model.safetensors" if adapter is None else "model.safetensors"))
    assert all(torch.isfinite(t).all() for t in weights.values())


def test_a_checkpoint_with_non_finite_weights_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    e = engine(tiny_model_dir)
    with torch.no_grad():
        e.params[0][0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        e.save(tmp_path)
    assert not (tmp_path / "adapter_model.safetensors").exists()


def test_resume_keeps_the_optimiser_state_with_the_new_hyperparameters(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    first = engine(tiny_model_dir)  # AdamW, betas (0.9, 0.99), weight decay 0.01
    for step in range(2):
        first.train_step(step, *batch_for(step), None)
    state = first.save(tmp_path)
    moments = {
        n: s["exp_avg"].clone() for n, s in zip(trainable(first), first.optimizer.state.values(), strict=True)
    }
    new = {
        "name": "adamw",
        "learningRate": 1e-3,
        "betas": [0.8, 0.95],
        "weightDecay": 0.2,
        "warmupSteps": 0,
        "maxGradNorm": 1.0,
    }
    resumed = Engine(tiny_model_dir, session_config(optimizer=new), CPU, 4096, (tmp_path, state))
    group = resumed.optimizer.param_groups[0]
    assert (group["betas"], group["weight_decay"]) == ((0.8, 0.95), 0.2)
    kept = {
        n: s["exp_avg"] for n, s in zip(trainable(resumed), resumed.optimizer.state.values(), strict=True)
    }
    assert kept.keys() == moments.keys()
    assert all(torch.equal(kept[n], moments[n]) for n in moments)
    assert resumed.train_step(2, *batch_for(2), None)["learningRate"] == 1e-3


def test_resume_refuses_another_optimiser_type(tiny_model_dir: Path, tmp_path: Path) -> None:
    first = engine(tiny_model_dir, optimizer=SGD)
    for step in range(2):
        first.train_step(step, *batch_for(step), None)
    state = first.save(tmp_path)
    with pytest.raises(ValueError, match="optimizer.name: the checkpoint's optimiser is sgd"):
        Engine(tiny_model_dir, session_config(), CPU, 4096, (tmp_path, state))


def test_a_cut_grpo_completion_trains_no_end_of_turn_token(tiny_model_dir: Path) -> None:
    """`finishReason: "length"`: the policy never sampled an ending, so none is in the loss."""
    lines = [line.model_dump(exclude_none=True) for line in grpo_batch(0, 4)]
    ended = [GrpoExample.model_validate({**line, "finishReason": "stop"}) for line in lines]
    cut = [GrpoExample.model_validate({**line, "finishReason": "length"}) for line in lines]
    legacy = [GrpoExample.model_validate(line) for line in lines]  # v1 lines before finishReason
    e = engine(tiny_model_dir, optimizer=SGD)
    stop_tokens = e.train_step(0, ended, GRPO, None)["tokens"]
    assert e.train_step(1, legacy, GRPO, None)["tokens"] == stop_tokens
    assert e.train_step(2, cut, GRPO, None)["tokens"] == stop_tokens - len(cut)
    # The cut completion's log-probability leaves out the end-of-turn token's.
    with_end, without = e.completion_log_probs([ended[0], cut[0]])
    assert without > with_end


@pytest.mark.parametrize("adapter", [None, {"kind": "full"}])
def test_gradient_checkpointing_trains_the_same_weights(
    tiny_model_dir: Path, adapter: dict[str, Any] | None
) -> None:
    extra = {"adapter": adapter} if adapter else {}
    plain = engine(tiny_model_dir, optimizer=SGD, **extra)
    checkpointed = Engine(
        tiny_model_dir, session_config(optimizer=SGD, **extra), CPU, 4096, gradient_checkpointing=True
    )
    assert checkpointed.model.is_activation_checkpointing  # type: ignore[union-attr]
    for step in range(2):
        a = plain.train_step(step, *batch_for(step), None)
        b = checkpointed.train_step(step, *batch_for(step), None)
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), key
    wa, wb = trainable(plain), trainable(checkpointed)
    for name in wa:
        torch.testing.assert_close(wb[name], wa[name], rtol=1e-5, atol=1e-6)
