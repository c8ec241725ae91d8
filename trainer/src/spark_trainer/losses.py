"""The losses, as pure functions on per-token tensors (verl's `core_algos.py` style).

Every function returns per-token values; `token_sum` then divides by the global number of
loss tokens (all micro-batches, all ranks), which the caller counts before the first forward.
Summing each micro-batch's `token_sum` therefore gives the token-mean over the whole batch, so
neither the micro-batch size nor the number of ranks changes the loss or its gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

KL_ESTIMATORS = ("k1", "k2", "low-var-kl")


def token_log_probs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log π(y_t | y_<t) for each target: log_softmax(logits)[y_t], computed in fp32.

    `logits` [..., V] predict `targets` [...] (the caller shifts by one position).
    """
    return -F.cross_entropy(logits.float().flatten(0, -2), targets.flatten(), reduction="none").view(
        targets.shape
    )


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H_t = logsumexp(z) − Σ_v softmax(z)_v · z_v, the policy's entropy at each position."""
    z = logits.float()
    p = torch.softmax(z, dim=-1)
    return torch.logsumexp(z, dim=-1) - (p * z).sum(-1)


# Rows per chunk of `token_entropy_chunked`: 1,024 × a 152k vocabulary in fp32 is about 0.6 GB a
# temporary, where all 4,096 positions of a micro-batch at once would be about 2.5 GB, twice.
ENTROPY_CHUNK_ROWS = 1024


@torch.no_grad()
def token_entropy_chunked(logits: torch.Tensor, rows: int = ENTROPY_CHUNK_ROWS) -> torch.Tensor:
    """`token_entropy` of [N, V] logits `rows` positions at a time, without gradient: the
    entropy as a metric only (entropyCoefficient 0), so its fp32 temporaries stay small."""
    if logits.shape[0] == 0:
        return logits.new_zeros((0,), dtype=torch.float32)
    return torch.cat([token_entropy(part) for part in logits.split(rows)])


def cross_entropy(log_probs: torch.Tensor) -> torch.Tensor:
    """SFT: ℓ_t = −log π(y_t)."""
    return -log_probs


def kl_penalty(log_probs: torch.Tensor, ref_log_probs: torch.Tensor, estimator: str) -> torch.Tensor:
    """Per-token estimate of KL(π ‖ π_ref) from samples of π (Schulman's k1/k2/k3), as verl:

    - `k1`:  log π − log π_ref
    - `k2`:  ½ (log π − log π_ref)²
    - `low-var-kl` (k3): r − log r − 1 with r = π_ref / π, i.e. exp(d) − d − 1 for
      d = log π_ref − log π clamped to [−20, 20]; the result clamped to [−10, 10].
    """
    if estimator == "k1":
        return log_probs - ref_log_probs
    if estimator == "k2":
        return 0.5 * (log_probs - ref_log_probs).square()
    if estimator == "low-var-kl":
        d = (ref_log_probs - log_probs).clamp(-20, 20)
        return (torch.exp(d) - d - 1).clamp(-10, 10)
    raise ValueError(f"unknown KL estimator {estimator!r}; one of {', '.join(KL_ESTIMATORS)}")


def policy_gradient(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, clip_ratio: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate per token, and whether the clip bound it:

        ρ_t = exp(log π − log π_old)
        ℓ_t = max(−A_t ρ_t, −A_t clip(ρ_t, 1 − ε, 1 + ε))

    The trainer makes one optimiser step per request and takes π_old as this request's own
    forward pass before the update, so ρ = 1 exactly, the clip never binds (`clipFraction` 0)
    and ℓ's gradient is −A ∇log π: the on-policy GRPO gradient.
    """
    ratio = torch.exp(log_probs - old_log_probs)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - clip_ratio, 1 + clip_ratio)
    return torch.maximum(unclipped, clipped), (clipped > unclipped).float()


def grpo_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    ref_log_probs: torch.Tensor,
    entropy: torch.Tensor,
    advantages: torch.Tensor,
    *,
    clip_ratio: float,
    kl_coefficient: float,
    entropy_coefficient: float,
    kl_estimator: str,
) -> dict[str, torch.Tensor]:
    """Per token: ℓ_t = pg_t + β · KL_t − c_H · H_t (KL to the base model is a loss term, not in
    the reward). Returns `loss`, `pg`, `kl`, `entropy`, `clipped`, each per token."""
    pg, clipped = policy_gradient(log_probs, old_log_probs, advantages, clip_ratio)
    kl = kl_penalty(log_probs, ref_log_probs, kl_estimator)
    loss = pg + kl_coefficient * kl - entropy_coefficient * entropy
    return {"loss": loss, "pg": pg, "kl": kl, "entropy": entropy, "clipped": clipped}


def token_sum(values: torch.Tensor, mask: torch.Tensor, global_tokens: int) -> torch.Tensor:
    """Σ_t mask_t · v_t / N, with N the loss-token count of the whole batch across micro-batches
    and ranks: the micro-batches' sums add up to the batch's token-mean."""
    return (values * mask).sum() / max(global_tokens, 1)
