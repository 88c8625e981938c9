"""Every interval and summary statistic the studies report, in one place.

The studies compare simulated systems over independent replications (Law &
Kelton, *Simulation Modeling and Analysis*, 5th ed., §9.4 "independent
replications"); each replicate has its own seed from :func:`replicate_seeds`
and, within a study, the same seed under every compared configuration
(common random numbers, §11.2). On those replications:

* :func:`t_interval` — mean and Student-*t* interval of one system's mean
  (§4.5, §9.4.1); :func:`t_half_width` its half-width;
* :func:`paired_ci` — paired-*t* interval of a mean difference between two
  systems run with common random numbers (§10.2.1);
* :func:`wilson_interval` — Wilson score interval of a probability
  estimated as a share of replications (Wilson 1927);
* :func:`summarise_cell` — a cell of replicates: Wilson intervals of its
  event shares, *t*-intervals of its means;
* :func:`quantile` — an empirical quantile (Hyndman & Fan 1996, definition 7,
  NumPy's default ``linear`` method) and :func:`tail_metrics`, Gauntlet's
  Value at Risk (insolvent debt) and Liquidations at Risk (liquidated volume)
  as such quantiles across runs (contagion_and_peers.md §3.3).

The arithmetic is fixed: a study's tables are byte-identical from one version
of this module to the next unless a formula here changes on purpose.

Neighbours: :mod:`experiments.analysis` (headline metrics and tables),
:mod:`experiments.common` (running a study), ``sim.output.metrics`` (per-run
metrics of the world).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["autocorrelation", "hill_tail_index", "paired_ci", "quantile", "replicate_seeds",
           "summarise_cell", "t_half_width", "t_interval", "tail_metrics", "wilson_interval"]


def replicate_seeds(base_seed: int, runs: int) -> list[int]:
    """Independent per-replicate seeds from one base seed.

    ``numpy.random.SeedSequence(base_seed).spawn(runs)``: child ``k`` hashes
    the base entropy with its spawn key, so the streams are independent for
    practical purposes (O'Neill's PCG ``SeedSequence``, NumPy's recommended way
    to seed parallel streams) and the whole study is reproducible from one
    seed. Replicate ``k`` is the same seed in every cell of a study (common
    random numbers, Law & Kelton §11.2).

    Args:
        base_seed: The study's seed.
        runs: Number of replicates.

    Returns:
        ``runs`` seeds in ``[0, 2**63 - 1)``.
    """
    children = np.random.SeedSequence(base_seed).spawn(runs)
    return [int(c.generate_state(1, np.uint64)[0] % (2**63 - 1)) for c in children]


def _check_level(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def t_half_width(a: np.ndarray, confidence: float = 0.95) -> float:
    """Half-width ``t_{n-1, (1+c)/2} · s / √n`` of the Student-*t* interval of a mean.

    Law & Kelton §4.5 (the *t* confidence interval of a mean from IID
    observations), applied to replicate outcomes (§9.4.1). No values are
    dropped here (see :func:`t_interval`).

    Args:
        a: The sample (1-D float array), ``n >= 2`` values.
        confidence: Two-sided level in (0, 1).

    Returns:
        The half-width; NaN when ``n < 2``.
    """
    n = int(a.size)
    if n < 2:
        return math.nan
    return float(stats.t.ppf(0.5 + confidence / 2.0, n - 1) * a.std(ddof=1) / math.sqrt(n))


def t_interval(x: Any, confidence: float = 0.95) -> dict[str, float]:
    """Mean and Student-*t* interval ``x̄ ± t_{n-1, (1+c)/2} · s / √n``.

    Law & Kelton §4.5 / §9.4.1. Non-finite values are dropped first; with
    ``n < 2`` the bounds are NaN.

    Args:
        x: Replicate values.
        confidence: Two-sided level in (0, 1).

    Returns:
        ``{"mean", "ci_low", "ci_high", "n"}``.
    """
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    n = int(a.size)
    mean = float(a.mean()) if n else math.nan
    if n < 2:
        return {"mean": mean, "ci_low": math.nan, "ci_high": math.nan, "n": n}
    half = t_half_width(a, confidence)
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": n}


def paired_ci(x: Sequence[float], y: Sequence[float], confidence: float = 0.95
              ) -> dict[str, float]:
    """Paired-*t* interval for ``E[x − y]`` from replicate-wise pairs.

    ``d_k = x_k − y_k``; interval ``d̄ ± t_{n−1, (1+c)/2} · s_d / √n``
    (Law & Kelton, *Simulation Modeling and Analysis*, §10.2.1 "paired-t
    confidence interval"). With common random numbers (§11.2: the same
    replicate seed under both systems) the shared noise cancels in ``d_k``.
    Pairs with a NaN on either side are dropped. With ``n < 2`` the bounds
    are NaN; with zero spread the interval collapses onto the mean.

    Args:
        x: Replicate values of the compared system.
        y: Replicate values of the baseline, same replicate order.
        confidence: Two-sided level in (0, 1).

    Returns:
        ``{"diff", "ci_low", "ci_high", "half_width", "sd", "n"}``.

    Raises:
        ValueError: Different lengths or confidence outside (0, 1).
    """
    _check_level(confidence)
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.shape} vs {b.shape}")
    d = a - b
    d = d[np.isfinite(d)]
    n = int(d.size)
    if n == 0:
        return {"diff": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "half_width": math.nan, "sd": math.nan, "n": 0}
    mean = float(d.mean())
    if n < 2:
        return {"diff": mean, "ci_low": math.nan, "ci_high": math.nan,
                "half_width": math.nan, "sd": math.nan, "n": n}
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1) * sd / math.sqrt(n))
    return {"diff": mean, "ci_low": mean - half, "ci_high": mean + half,
            "half_width": half, "sd": sd, "n": n}


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927).

    ``(p̂ + z²/2n ± z √(p̂(1-p̂)/n + z²/4n²)) / (1 + z²/n)`` with
    ``z = Φ⁻¹((1 + c)/2)`` (E. B. Wilson, "Probable inference, the law of
    succession, and statistical inference", *JASA* 22, 1927; recommended over
    the Wald interval by Brown, Cai & DasGupta, *Statistical Science* 16,
    2001); e.g. 5 of 10 at 95 %: [0.2366, 0.7634]. It stays inside [0, 1] and
    is not degenerate at 0 or ``n`` successes (those ends are exact 0 / 1).

    Args:
        successes: Replicates with the event.
        trials: Replicates.
        confidence: Two-sided level in (0, 1).

    Returns:
        ``(low, high)``; ``(nan, nan)`` for zero trials.

    Raises:
        ValueError: A level outside (0, 1) or not ``0 <= successes <= trials``.
    """
    _check_level(confidence)
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return math.nan, math.nan
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    lo = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends (no rounding)
    hi = 1.0 if successes == trials else min(1.0, centre + half)
    return lo, hi


def quantile(x: Any, q: float) -> float:
    """Empirical ``q`` quantile across runs (Hyndman & Fan 1996, definition 7).

    ``numpy.quantile`` with its default ``linear`` method (R's type 7).
    Values that are infinite make the interpolation ``inf - inf`` undefined;
    such a quantile is reported as ``inf`` (the sample reaches infinity at
    that rank). Empty input gives NaN.

    Args:
        x: Values (NaNs already dropped).
        q: Quantile in [0, 1].

    Returns:
        The quantile as a float.
    """
    if not len(x):
        return math.nan
    with np.errstate(invalid="ignore"):  # inf - inf inside the interpolation
        value = float(np.quantile(x, q))
    return math.inf if np.isnan(value) else value


def tail_metrics(insolvent_debt: Any, liquidation_volume: Any, q: float = 0.95
                 ) -> dict[str, float]:
    """Gauntlet's tail metrics over repeated runs: VaR and LaR (contagion_and_peers.md §3.3).

    Value at Risk = the ``q`` quantile of insolvent debt (losses beyond the
    liquidated accounts' collateral) across runs; Liquidations at Risk = the
    ``q`` quantile of liquidated volume across runs (NumPy's default linear
    quantile, Hyndman & Fan definition 7). Same arithmetic as
    ``sim.output.metrics.tail_metrics``.

    Args:
        insolvent_debt: One value per run.
        liquidation_volume: One value per run.
        q: Quantile in (0, 1).

    Returns:
        ``{"VaR", "LaR", "runs", "quantile"}``.

    Raises:
        ValueError: ``q`` outside (0, 1) or no runs.
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must lie in (0, 1), got {q}")
    debt = np.asarray(insolvent_debt, dtype=np.float64)
    vol = np.asarray(liquidation_volume, dtype=np.float64)
    if debt.size == 0 or vol.size == 0:
        raise ValueError("tail_metrics needs at least one run")
    return {"VaR": float(np.quantile(debt, q)), "LaR": float(np.quantile(vol, q)),
            "runs": int(debt.size), "quantile": q}


def summarise_cell(g: Any, flags: list[str], values: list[str],
                   confidence: float = 0.95) -> dict[str, Any]:
    """One cell's summary: counts and Wilson intervals of flags, t-intervals of values.

    Per boolean column ``f`` its count ``f`` and ``p_f`` with a Wilson interval
    (:func:`wilson_interval`: ``p_f_low``, ``p_f_high``); per value column
    ``v`` its mean with a Student-*t* interval (:func:`t_interval`:
    ``v_mean``, ``v_low``, ``v_high``); and ``replicates`` (rows summarised).

    Args:
        g: The cell's replicates (a DataFrame, one row each).
        flags: Boolean columns (events per replicate).
        values: Numeric columns.
        confidence: Two-sided level of every interval.

    Returns:
        The summary row.
    """
    tot = len(g)
    row: dict[str, Any] = {"replicates": tot}
    for f in flags:
        succ = int(g[f].astype(bool).sum())
        lo, hi = wilson_interval(succ, tot, confidence)
        row.update({f: succ, f"p_{f}": succ / tot if tot else math.nan,
                    f"p_{f}_low": lo, f"p_{f}_high": hi})
    for v in values:
        ci = t_interval(g[v], confidence)
        row.update({f"{v}_mean": ci["mean"], f"{v}_low": ci["ci_low"], f"{v}_high": ci["ci_high"]})
    return row


def autocorrelation(x: np.ndarray, lag: int) -> float:
    """Sample autocorrelation at ``lag`` (the usual biased estimator, as in Cont 2001)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) <= lag + 1:
        return float("nan")
    d = x - x.mean()
    den = float(d @ d)
    return float(d[:-lag] @ d[lag:] / den) if den > 0 else float("nan")


def hill_tail_index(x: np.ndarray, tail: float = 0.05) -> float:
    """Hill (1975) estimator of the tail index of |x| from the largest ``tail`` share.

    ``alpha = 1 / mean(log(X_(i) / X_(k+1)))`` over the k largest values.
    """
    a = np.sort(np.abs(np.asarray(x, dtype=np.float64)))[::-1]
    a = a[a > 0]
    k = int(len(a) * tail)
    if k < 5:
        return float("nan")
    return float(1.0 / np.mean(np.log(a[:k] / a[k])))
