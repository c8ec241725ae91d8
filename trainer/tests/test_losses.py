from __future__ import annotations

import math

import pytest
import torch

from spark_trainer import losses


def test_kl_estimators_match_hand_values() -> None:
    logp = torch.tensor([math.log(0.5), math.log(0.2)])
    ref = torch.tensor([math.log(0.25), math.log(0.4)])
    d = [math.log(2.0), math.log(0.5)]  # log π − log π_ref
    torch.testing.assert_close(losses.kl_penalty(logp, ref, "k1"), torch.tensor(d))
    torch.testing.assert_close(losses.kl_penalty(logp, ref, "k2"), torch.tensor([0.5 * x * x for x in d]))
    # k3 = r − log r − 1 with r = π_ref/π: r = 0.5 → 0.5 + log 2 − 1; r = 2 → 2 − log 2 − 1
    k3 = [0.5 + math.log(2) - 1, 2 - math.log(2) - 1]
    torch.testing.assert_close(losses.kl_penalty(logp, ref, "low-var-kl"), torch.tensor(k3))


def test_every_estimator_is_zero_when_the_policies_agree() -> None:
    logp = torch.tensor([-0.3, -2.0, -7.5])
    for estimator in losses.KL_ESTIMATORS:
        assert torch.equal(losses.kl_penalty(logp, logp.clone(), estimator), torch.zeros(3))


def test_low_var_kl_is_clamped_like_verl() -> None:
    out = losses.kl_penalty(torch.tensor([-50.0, 0.0]), torch.tensor([0.0, -50.0]), "low-var-kl")
    assert out[0].item() == 10.0  # exp(20) − 21 clamped to 10
    assert out[1].item() == 10.0  # d clamped to −20: exp(−20) + 19 clamped to 10


def test_an_unknown_estimator_is_refused() -> None:
    with pytest.raises(ValueError, match="k4"):
        losses.kl_penalty(torch.zeros(1), torch.zeros(1), "k4")


def test_on_policy_the_ratio_is_one_and_the_clip_never_binds() -> None:
    logp = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    adv = torch.tensor([1.0, -1.0, 0.3])
    pg, clipped = losses.policy_gradient(logp, logp.detach(), adv, 0.2)
    assert torch.equal(clipped, torch.zeros(3))
    torch.testing.assert_close(pg, -adv)
    pg.sum().backward()
    torch.testing.assert_close(logp.grad, -adv)  # the gradient is −A ∇log π


def test_the_clip_binds_off_policy() -> None:
    old = torch.tensor([0.0, 0.0])
    new = torch.tensor([math.log(1.5), math.log(0.5)])
    pg, clipped = losses.policy_gradient(new, old, torch.tensor([1.0, -1.0]), 0.2)
    torch.testing.assert_close(pg, torch.tensor([-1.2, 0.8]))
    assert clipped.tolist() == [1.0, 1.0]


def test_entropy_of_a_uniform_distribution_is_log_v() -> None:
    assert losses.token_entropy(torch.zeros(2, 8)).tolist() == pytest.approx([math.log(8)] * 2)


def test_token_log_probs_are_log_softmax_at_the_target() -> None:
    logits = torch.randn(2, 3, 5)
    targets = torch.randint(0, 5, (2, 3))
    expected = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(losses.token_log_probs(logits, targets), expected)


def test_the_token_mean_does_not_depend_on_how_the_batch_is_cut() -> None:
    values = torch.randn(4, 6)
    mask = (torch.rand(4, 6) > 0.3).float()
    n = int(mask.sum().item())
    whole = losses.token_sum(values, mask, n)
    parts = losses.token_sum(values[:1], mask[:1], n) + losses.token_sum(values[1:], mask[1:], n)
    torch.testing.assert_close(whole, parts)
    torch.testing.assert_close(whole, (values * mask).sum() / mask.sum())


def test_the_metric_entropy_in_chunks_is_the_entropy() -> None:
    logits = torch.randn(37, 50, generator=torch.Generator().manual_seed(3)) * 4
    whole = losses.token_entropy(logits)
    for rows in (1, 8, 37, 100):
        torch.testing.assert_close(losses.token_entropy_chunked(logits, rows), whole)
    assert losses.token_entropy_chunked(logits[:0]).shape == (0,)
