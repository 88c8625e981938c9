"""Backtests of margin / VaR coverage: exceedances, Kupiec, Christoffersen, Basel zones.

A margin (or VaR) series ``m_t`` covers the next period's loss at confidence
``1 − α``. An exceedance is ``I_t = 1`` when the loss ``−pnl_t`` exceeds
``m_t``. Over ``N`` periods with ``x = Σ I_t`` exceedances (reference
``margin_methods.md`` §6):

* Kupiec (1995) proportion of failures, unconditional coverage, χ²(1)::

      LR_uc = −2 ln[(1−α)^{N−x} α^x / ((1−π̂)^{N−x} π̂^x)],  π̂ = x/N

* Christoffersen (1998) independence, χ²(1), from the transition counts
  ``n_ij`` (state i followed by state j)::

      LR_ind = −2 ln[L_0 / L_A],
      L_A = (1−π01)^{n00} π01^{n01} (1−π11)^{n10} π11^{n11}
      L_0 = (1−π)^{n00+n10} π^{n01+n11}

* Conditional coverage ``LR_cc = LR_uc + LR_ind``, χ²(2).
* Basel Committee (1996) traffic light: 250 days at 99%: green 0–4, yellow
  5–9 (plus factor 0.40/0.50/0.65/0.75/0.85), red ≥ 10 (plus factor 1.00).
  Zones start where the binomial CDF reaches 95% (yellow) and 99.99% (red),
  which extends to other sample sizes and levels.

Zero counts use safe logs (``0 × ln 0 = 0``), so no input gives NaN. Sources:
Kupiec, P. (1995) *J. Derivatives* 3(2); Christoffersen, P. (1998) *Int. Econ.
Rev.* 39(4); BCBS (1996) "Supervisory framework for the use of backtesting in
conjunction with the internal models approach"; MathWorks ``varbacktest``
(pof/cci/cc). Neighbours: ``margin.risk.calibration`` (EWMA volatility to build a
margin series).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

__all__ = [
    "BASEL_PLUS_FACTORS",
    "BacktestReport",
    "LikelihoodRatioResult",
    "TrafficLight",
    "backtest",
    "christoffersen_independence",
    "conditional_coverage",
    "exceedances",
    "kupiec_pof",
    "traffic_light",
    "transition_counts",
]

#: Basel (1996) plus factors for 250 observations at 99%, by number of
#: exceptions in the yellow zone (red zone: 1.00). Reference §6.
BASEL_PLUS_FACTORS: dict[int, float] = {5: 0.40, 6: 0.50, 7: 0.65, 8: 0.75, 9: 0.85}


@dataclass(frozen=True)
class LikelihoodRatioResult:
    """Outcome of a likelihood-ratio coverage test.

    Attributes:
        name: ``"kupiec_pof"``, ``"christoffersen_independence"`` or
            ``"conditional_coverage"``.
        statistic: The LR statistic (≥ 0).
        p_value: ``P(χ²(dof) ≥ statistic)``.
        dof: Degrees of freedom of the asymptotic χ² law.
        level: Test size used for ``reject``.
        reject: True when ``p_value < level`` (the model is rejected).
        n_obs: Observations used.
        n_exceptions: Exceedances among them.
    """

    name: str
    statistic: float
    p_value: float
    dof: int
    level: float
    reject: bool
    n_obs: int
    n_exceptions: int


@dataclass(frozen=True)
class TrafficLight:
    """Basel (1996) traffic-light classification of a backtest.

    Attributes:
        zone: ``"green"``, ``"yellow"`` or ``"red"``.
        n_exceptions: Exceedances counted.
        n_obs: Observations.
        confidence: VaR confidence (e.g. 0.99).
        cumulative_probability: Binomial ``P(X ≤ n_exceptions)`` under correct
            coverage.
        plus_factor: Basel plus factor (0 green; 0.40–0.85 yellow; 1 red) for
            the 250-day 99% setting; ``None`` for other settings, where Basel
            defines none.
    """

    zone: str
    n_exceptions: int
    n_obs: int
    confidence: float
    cumulative_probability: float
    plus_factor: float | None

    @property
    def multiplier(self) -> float | None:
        """Capital multiplier ``3 + plus_factor`` (``None`` if no plus factor)."""
        return None if self.plus_factor is None else 3.0 + self.plus_factor


@dataclass(frozen=True)
class BacktestReport:
    """All coverage diagnostics of one P&L / margin pair (see :func:`backtest`).

    Attributes:
        n_obs: Observations.
        n_exceptions: Exceedances.
        exception_rate: ``n_exceptions / n_obs``.
        kupiec: Kupiec POF test.
        independence: Christoffersen independence test.
        conditional: Christoffersen conditional-coverage test.
        traffic_light: Basel zone.
    """

    n_obs: int
    n_exceptions: int
    exception_rate: float
    kupiec: LikelihoodRatioResult
    independence: LikelihoodRatioResult
    conditional: LikelihoodRatioResult
    traffic_light: TrafficLight


# --------------------------------------------------------------------- helpers


def _check_unit(name: str, value: float) -> float:
    value = float(value)
    if not (0.0 < value < 1.0):
        raise ValueError(f"{name} must lie in (0, 1), got {value}")
    return value


def _check_counts(n_exceptions: int, n_obs: int) -> tuple[int, int]:
    if int(n_obs) != n_obs or n_obs < 1:
        raise ValueError(f"n_obs must be a positive integer, got {n_obs}")
    if int(n_exceptions) != n_exceptions or not (0 <= n_exceptions <= n_obs):
        raise ValueError(
            f"n_exceptions must be an integer in [0, n_obs={n_obs}], got {n_exceptions}"
        )
    return int(n_exceptions), int(n_obs)


def _as_hits(hits: object) -> np.ndarray:
    arr = np.asarray(hits)
    if arr.ndim != 1:
        raise ValueError(f"hits must be one-dimensional, got shape {arr.shape}")
    if arr.dtype != bool:
        if not np.all(np.isin(arr, (0, 1))):
            raise ValueError("hits must contain only 0/1 or booleans")
        arr = arr.astype(bool)
    return arr


def _bernoulli_loglik(n_zero: float, n_one: float, p: float) -> float:
    """``n_zero ln(1−p) + n_one ln p`` with ``0 ln 0 = 0``."""
    return float(special.xlog1py(n_zero, -p) + special.xlogy(n_one, p))


def _lr_result(
    name: str, lr: float, dof: int, level: float, n_obs: int, n_exc: int
) -> LikelihoodRatioResult:
    lr = float(lr)
    if lr <= 0.0:  # rounding can give −1e−15 (or −0.0) when the fit is exact
        lr = 0.0
    p = float(stats.chi2.sf(lr, dof))
    return LikelihoodRatioResult(name, lr, p, dof, level, bool(p < level), n_obs, n_exc)


# --------------------------------------------------------------------- public API


def exceedances(pnl: object, margin: object) -> np.ndarray:
    """Exceedance indicators ``I_t = (−pnl_t > margin_t)`` (reference §6).

    Args:
        pnl: Profit-and-loss per period (losses negative), array-like.
        margin: Margin or VaR held for each period, as a positive amount,
            array-like of the same length (or a scalar).

    Returns:
        Boolean array, True where the loss exceeded the margin.

    Raises:
        ValueError: On shape mismatch, non-1-D input or NaN.
    """
    p = np.asarray(pnl, dtype=np.float64)
    m = np.asarray(margin, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"pnl must be one-dimensional, got shape {p.shape}")
    if m.ndim == 0:
        m = np.full_like(p, float(m))
    if m.shape != p.shape:
        raise ValueError(f"margin shape {m.shape} does not match pnl shape {p.shape}")
    if np.isnan(p).any():
        raise ValueError("pnl contains NaN; drop or fill those periods first")
    if np.isnan(m).any():
        raise ValueError("margin contains NaN; drop or fill those periods first")
    return -p > m


def kupiec_pof(
    n_exceptions: int, n_obs: int, confidence: float = 0.99, level: float = 0.05
) -> LikelihoodRatioResult:
    """Kupiec (1995) proportion-of-failures (unconditional coverage) test, χ²(1).

    ``LR_uc = −2 ln[(1−α)^{N−x} α^x / ((1−π̂)^{N−x} π̂^x)]`` with ``π̂ = x/N``
    (reference ``margin_methods.md`` §6). For N = 250 at 99%: x = 4 → 0.7691,
    x = 7 → 5.4970; x = 0 → 5.0252.

    Args:
        n_exceptions: Number of exceedances ``x``.
        n_obs: Number of observations ``N``.
        confidence: Coverage level ``1 − α`` of the margin / VaR.
        level: Test size for ``reject``.

    Returns:
        The test result.

    Raises:
        ValueError: On counts outside ``0 ≤ x ≤ N`` or levels outside (0, 1).
    """
    x, n = _check_counts(n_exceptions, n_obs)
    alpha = 1.0 - _check_unit("confidence", confidence)
    level = _check_unit("level", level)
    pi_hat = x / n
    lr = -2.0 * (_bernoulli_loglik(n - x, x, alpha) - _bernoulli_loglik(n - x, x, pi_hat))
    return _lr_result("kupiec_pof", lr, 1, level, n, x)


def transition_counts(hits: object) -> tuple[int, int, int, int]:
    """First-order transition counts ``(n00, n01, n10, n11)`` of a 0/1 hit sequence.

    ``n_ij`` counts periods in state ``j`` whose previous period was in state
    ``i`` (Christoffersen 1998; reference §6).

    Args:
        hits: One-dimensional booleans or 0/1 values.

    Returns:
        The four counts; they sum to ``len(hits) − 1``.

    Raises:
        ValueError: If ``hits`` is not a 1-D 0/1 sequence.
    """
    h = _as_hits(hits)
    prev, cur = h[:-1], h[1:]
    n00 = int(np.count_nonzero(~prev & ~cur))
    n01 = int(np.count_nonzero(~prev & cur))
    n10 = int(np.count_nonzero(prev & ~cur))
    n11 = int(np.count_nonzero(prev & cur))
    return n00, n01, n10, n11


def christoffersen_independence(hits: object, level: float = 0.05) -> LikelihoodRatioResult:
    """Christoffersen (1998) independence test of exceedances, χ²(1).

    Compares a first-order Markov chain (``π01``, ``π11``) with independent
    hits (``π``); see the module docstring and reference §6. Sequences with no
    hits, or only hits, give LR 0.

    Args:
        hits: Exceedance indicators in time order (at least 2).
        level: Test size for ``reject``.

    Returns:
        The test result (``n_obs`` is the number of transitions, ``len − 1``).

    Raises:
        ValueError: If fewer than 2 observations or not a 0/1 sequence.
    """
    h = _as_hits(hits)
    if h.size < 2:
        raise ValueError(f"christoffersen_independence needs at least 2 observations, got {h.size}")
    level = _check_unit("level", level)
    n00, n01, n10, n11 = transition_counts(h)
    pi01 = n01 / (n00 + n01) if (n00 + n01) > 0 else 0.0
    pi11 = n11 / (n10 + n11) if (n10 + n11) > 0 else 0.0
    total = n00 + n01 + n10 + n11
    pi = (n01 + n11) / total
    ll_alt = _bernoulli_loglik(n00, n01, pi01) + _bernoulli_loglik(n10, n11, pi11)
    ll_null = _bernoulli_loglik(n00 + n10, n01 + n11, pi)
    lr = -2.0 * (ll_null - ll_alt)
    return _lr_result("christoffersen_independence", lr, 1, level, total, int(np.count_nonzero(h)))


def conditional_coverage(
    hits: object, confidence: float = 0.99, level: float = 0.05
) -> LikelihoodRatioResult:
    """Christoffersen (1998) conditional coverage ``LR_cc = LR_uc + LR_ind``, χ²(2).

    ``LR_uc`` is Kupiec's statistic on the full sample, as in reference §6 and
    MathWorks ``varbacktest.cc``.

    Args:
        hits: Exceedance indicators in time order (at least 2).
        confidence: Coverage level ``1 − α``.
        level: Test size for ``reject``.

    Returns:
        The test result.

    Raises:
        ValueError: On bad input (see the component tests).
    """
    h = _as_hits(hits)
    uc = kupiec_pof(int(np.count_nonzero(h)), h.size, confidence, level)
    ind = christoffersen_independence(h, level)
    stat = uc.statistic + ind.statistic
    return _lr_result("conditional_coverage", stat, 2, level, h.size, uc.n_exceptions)


def traffic_light(n_exceptions: int, n_obs: int = 250, confidence: float = 0.99) -> TrafficLight:
    """Basel (1996) traffic-light zone of a backtest.

    Yellow starts where the binomial ``P(X ≤ x)`` under correct coverage
    reaches 95%, red where it reaches 99.99% (BCBS 1996; reference §6). For
    250 days at 99% that gives green 0–4, yellow 5–9 and red ≥ 10, with plus
    factors 0.40/0.50/0.65/0.75/0.85 in yellow and 1.00 in red. Other settings
    get zones but no plus factor (e.g. N = 750 at 99.5%: yellow from 7, red from 13).

    Args:
        n_exceptions: Exceedances.
        n_obs: Observations.
        confidence: VaR confidence level.

    Returns:
        The classification.

    Raises:
        ValueError: On counts outside ``0 ≤ x ≤ N`` or confidence outside (0, 1).
    """
    x, n = _check_counts(n_exceptions, n_obs)
    conf = _check_unit("confidence", confidence)
    cdf = float(stats.binom.cdf(x, n, 1.0 - conf))
    # guard the boundaries against 1-ulp noise in the CDF
    if cdf >= 0.9999 - 1e-12:
        zone = "red"
    elif cdf >= 0.95 - 1e-12:
        zone = "yellow"
    else:
        zone = "green"
    plus: float | None = None
    if n == 250 and abs(conf - 0.99) < 1e-12:
        plus = {"green": 0.0, "red": 1.0}.get(zone)
        if plus is None:
            plus = BASEL_PLUS_FACTORS[x]
    return TrafficLight(zone, x, n, conf, cdf, plus)


def backtest(
    pnl: object, margin: object, confidence: float = 0.99, level: float = 0.05
) -> BacktestReport:
    """Run all coverage tests of a margin (VaR) series against realised P&L.

    Args:
        pnl: Profit-and-loss per period (losses negative), in time order.
        margin: Margin / VaR covering each period (positive), same length.
        confidence: Intended coverage ``1 − α`` of the margin.
        level: Test size for the LR tests.

    Returns:
        Exceedance counts, Kupiec, Christoffersen independence and conditional
        coverage results, and the Basel zone (reference §6).

    Raises:
        ValueError: On mismatched or invalid input, or fewer than 2 periods.
    """
    hits = exceedances(pnl, margin)
    if hits.size < 2:
        raise ValueError(f"backtest needs at least 2 periods, got {hits.size}")
    x = int(np.count_nonzero(hits))
    n = int(hits.size)
    return BacktestReport(
        n_obs=n,
        n_exceptions=x,
        exception_rate=x / n,
        kupiec=kupiec_pof(x, n, confidence, level),
        independence=christoffersen_independence(hits, level),
        conditional=conditional_coverage(hits, confidence, level),
        traffic_light=traffic_light(x, n, confidence),
    )
