"""How a masked position picks its token (sampling) and how sure it is (confidence), for every decoder.

These follow the published CoDA/Dream sampler: logits are tempered, then
filtered by top-p and top-k; greedy decoding (temperature 0) takes the
argmax. A position's *confidence* ranks which masked positions to commit:

  origin, maskgit_plus  probability of the chosen token
  topk_margin           top-1 minus top-2 probability
  entropy               negative entropy of the distribution (higher = surer)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ALGORITHMS = ("origin", "maskgit_plus", "topk_margin", "entropy")


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")


def filtered_probs(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """Probabilities [N, V] after temperature, top-p and top-k (fp32)."""
    logits = logits.float()
    if params.temperature > 0:
        logits = logits / params.temperature
    if params.top_p is not None and params.top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # drop a token once the mass before it already exceeds top_p (the top token always stays)
        drop_sorted = (cumulative - sorted_logits.softmax(-1)) > params.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    if params.top_k is not None and params.top_k < logits.shape[-1]:
        kth = logits.topk(params.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return logits.softmax(-1)


def sample_tokens(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None = None):
    """Pick one token per row of logits [N, V]. Returns (tokens [N], probs [N, V])."""
    probs = filtered_probs(logits, params)
    if params.temperature > 0 and probs.shape[0] > 0:
        tokens = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    else:
        tokens = probs.argmax(-1)
    return tokens, probs


def confidence(probs: torch.Tensor, tokens: torch.Tensor, alg: str) -> torch.Tensor:
    """Confidence [N] of choosing `tokens` from `probs` [N, V] under position-choice rule `alg`."""
    if alg in ("origin", "maskgit_plus"):
        return probs.gather(-1, tokens[:, None]).squeeze(-1)
    if alg == "topk_margin":
        top2 = probs.topk(2, dim=-1).values
        return top2[:, 0] - top2[:, 1]
    if alg == "entropy":
        return (probs * torch.log(probs + 1e-10)).sum(-1)
    raise ValueError(f"unknown algorithm {alg!r}; choose one of {', '.join(ALGORITHMS)}")
