"""Anti-procyclicality (APC) tools and procyclicality measures.

EMIR RTS 153/2013 Art. 28 (margin_methods.md §5.1) requires a CCP to use at
least one of three tools; each is implemented here on a *margin rate* series
(requirement per unit of notional), so it applies to any regime whose scan
range or haircut is a rate:

* (a) ``buffer``: a buffer of at least 25 % of calculated margin, "temporarily
  exhausted in periods where calculated margin requirements are rising
  significantly". Implemented as ``rate = max(raw, min((1 + b) raw, (1 + b)
  ref))`` with ``ref`` the calm reference rate (the minimum raw rate over a
  trailing window): in calm times the posted rate is ``(1 + b) raw``; as the
  raw rate rises above ``ref`` the buffer is used up and the posted rate stays
  at ``(1 + b) ref`` until the raw rate passes it.
* (b) ``stressed_weight``: at least 25 % weight on stressed observations —
  ``variance = (1 − w) σ²_current + w σ²_stressed`` (the "IM = 0.75 IM_current
  + 0.25 IM_stress" form of §5.1 applied to variances, so that it composes
  with scan ranges proportional to σ).
* (c) ``floor``: margin no lower than that from volatility over a 10-year
  lookback — ``σ = max(σ_current, σ_long)``.

Procyclicality measures (ESMA's APC review, margin_methods.md §5.1): the
peak-to-trough ratio of total margin and its largest increase over ``n``
steps.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "APC_TOOLS",
    "apc_buffer_rates",
    "apc_floor_vol",
    "apc_stressed_vol",
    "max_n_step_increase",
    "peak_to_trough",
]

APC_TOOLS = ("none", "buffer", "stressed_weight", "floor")


@njit(cache=True)
def apc_buffer_rates(raw: np.ndarray, buffer: float, window: int) -> np.ndarray:
    """Posted margin rates under EMIR Art. 28(1)(a) (see module docstring).

    Args:
        raw: float64[n] calculated (raw) margin rates over time.
        buffer: Buffer fraction b (EMIR: at least 0.25).
        window: Trailing window (steps) defining the calm reference rate.

    Returns:
        float64[n] posted rates, each ``>= raw`` and ``<= (1 + b) raw``.
    """
    n = raw.shape[0]
    out = np.empty(n)
    for t in range(n):
        lo = max(0, t - window + 1)
        ref = raw[lo]
        for s in range(lo, t + 1):
            if raw[s] < ref:
                ref = raw[s]
        out[t] = max(raw[t], min((1.0 + buffer) * raw[t], (1.0 + buffer) * ref))
    return out


def apc_stressed_vol(current: np.ndarray, stressed: np.ndarray, weight: float = 0.25) -> np.ndarray:
    """Volatility with weight ``w`` on the stressed period, EMIR Art. 28(1)(b).

    Args:
        current: Current volatility estimates (any shape).
        stressed: Stressed-period volatility, broadcastable to ``current``.
        weight: Weight on stressed observations (EMIR: at least 0.25).
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must lie in [0, 1], got {weight}")
    c = np.asarray(current, dtype=np.float64)
    s = np.asarray(stressed, dtype=np.float64)
    return np.sqrt((1.0 - weight) * c * c + weight * s * s)


def apc_floor_vol(current: np.ndarray, long_run: np.ndarray) -> np.ndarray:
    """Volatility floored at the long-lookback estimate, EMIR Art. 28(1)(c)."""
    return np.maximum(np.asarray(current, dtype=np.float64), np.asarray(long_run, dtype=np.float64))


def peak_to_trough(margin: np.ndarray) -> float:
    """Ratio of the highest to the lowest total margin over a period (>= 1).

    Returns NaN when the series is empty or its minimum is not positive.
    """
    m = np.asarray(margin, dtype=np.float64)
    m = m[np.isfinite(m)]
    if m.size == 0 or m.min() <= 0.0:
        return float("nan")
    return float(m.max() / m.min())


def max_n_step_increase(margin: np.ndarray, n: int) -> float:
    """Largest relative rise of total margin over any ``n`` steps, ``max(M[t+n]/M[t]) - 1``.

    Returns NaN when the series is shorter than ``n + 1`` or a base value is
    not positive.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    m = np.asarray(margin, dtype=np.float64)
    if m.size <= n:
        return float("nan")
    base = m[:-n]
    if np.any(base <= 0.0):
        return float("nan")
    return float(np.max(m[n:] / base) - 1.0)
