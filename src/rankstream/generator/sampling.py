"""Drawing from skewed distributions, shared by the synthetic stream and live traffic."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def zipf_weights(count: int, exponent: float) -> FloatArray:
    """Unnormalised Zipf weights ``1 / r**exponent`` for ranks ``1..count``."""
    return np.arange(1, count + 1, dtype=np.float64) ** -exponent


def cdf(weights: FloatArray) -> FloatArray:
    """The cumulative distribution of ``weights`` (last value exactly 1)."""
    cumulative = np.cumsum(weights)
    cumulative /= cumulative[-1]
    return cumulative


def draw(cumulative: FloatArray, size: int, rng: np.random.Generator) -> IntArray:
    """``size`` indices drawn from the distribution of ``cumulative``: exact inverse-CDF
    sampling, bounded to the support (unlike rejection on ``rng.zipf``)."""
    picks = np.searchsorted(cumulative, rng.random(size), side="right")
    return np.minimum(picks, len(cumulative) - 1).astype(np.int64)


def spread(now_ms: int, jitter_ms: int, size: int, rng: np.random.Generator) -> IntArray:
    """``size`` ascending event times (epoch ms) in ``[now_ms - jitter_ms, now_ms)``: the
    in-order events of a batch made at ``now_ms``."""
    return now_ms - jitter_ms + np.sort(rng.integers(0, jitter_ms, size))
