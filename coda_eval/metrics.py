"""pass@k and bootstrap confidence intervals."""

from __future__ import annotations

import random
from math import comb
from statistics import mean


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with n samples, c of them correct (Chen et al. 2021)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def mean_pass_at_k(counts: list[tuple[int, int]], k: int) -> float:
    """Mean pass@k over problems given (n, c) per problem."""
    return mean(pass_at_k(n, c, k) for n, c in counts) if counts else 0.0


def bootstrap_ci(values: list[float], resamples: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (resampling problems)."""
    if not values:
        return (0.0, 0.0)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    low = means[int((1 - level) / 2 * resamples)]
    high = means[min(resamples - 1, int((1 + level) / 2 * resamples))]
    return (low, high)


# -- what a user would accept ---------------------------------------------------------
# Exact match is 0 for every small model we have, so it cannot steer training. A user takes a
# suggestion word by word as far as it is right: the right prefix of the line is what they keep.


def first_line(text: str) -> str:
    """The first line of a fill without its indentation (the editor's) or trailing spaces."""
    return text.split("\n", 1)[0].strip()


def prefix_match(fill: str, expected: str) -> float:
    """The fraction of the expected line's characters that the fill's first line gets right as a prefix."""
    want, got = first_line(expected), first_line(fill)
    if not want:
        return float(not got)
    same = 0
    for a, b in zip(want, got):
        if a != b:
            break
        same += 1
    return same / len(want)
