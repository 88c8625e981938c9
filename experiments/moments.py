"""Target moments of the calibration: real ones from ``shared/data``, simulated ones from runs.

Every moment is scale-free, so a world far smaller than Binance can match it
(Franke & Westerhoff 2012's moment set for agent-based models, extended with
liquidity; ``contagion_and_peers.md`` §4; Cont 2001's stylised facts):

* ``vol_5m`` — annualised volatility of 5-minute log returns;
* ``kurtosis_5m`` — their excess kurtosis (heavy tails);
* ``acf_abs_5m_1``, ``acf_abs_5m_12`` — autocorrelation of their absolute
  values at lags 1 and 12 (5 minutes and one hour: volatility clustering);
* ``hill_5m`` — Hill (1975) tail index of the largest 5 % of |r|;
* ``depth_to_volume`` — mean bid notional resting within 1 % of the mid over
  the mean 5-minute traded notional (depth in units of flow);
* ``funding_abs`` — mean absolute funding rate per 8-hour interval;
* ``depth_collapse`` — mean ask notional within 1 % during a cascade over its
  mean before it (10 Oct 2025: 21:14–21:38 UTC against 00:00–20:00 UTC).

Real values (:func:`real_moments`) come from the Binance USDⓈ-M BTCUSDT files
in ``shared/data`` (``prices/binance_usdm_perp_BTCUSDT_5m_2025-10-01_2025-10-31.csv``:
returns over the calm days 1–9 Oct 2025 and 5-minute volume on 10 Oct before
20:00; ``depth/binance_usdm_BTCUSDT_bookDepth_2025-10-10.csv``: depth bands;
``prices/binance_usdm_funding_BTCUSDT.csv``: funding from 2025 on; provenance
in ``shared/data/README.md``, which gives 1.6–3.0k BTC within 1 % on the bid
in calm hours and 0.6–1.5k BTC on the ask in the cascade). Simulated values
(:func:`run_moments`) come from one run's ``timeseries.parquet``: the
perpetual's mid sampled every 5 minutes of simulated time, its per-step
traded notional and depth bands, and its funding rate at funding times.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from experiments.stats import autocorrelation, hill_tail_index

__all__ = ["CALM_RETURNS", "CASCADE", "CRASH_MOMENTS", "MOMENTS", "RealWindows", "crash_moments",
           "real_moments", "return_moments", "run_moments"]

MOMENTS = ("vol_5m", "kurtosis_5m", "acf_abs_5m_1", "acf_abs_5m_12", "hill_5m",
           "depth_to_volume", "funding_abs")
"""Moments of a calm run (module docstring)."""

CRASH_MOMENTS = ("depth_collapse",)
"""Moments of a crash run (module docstring)."""

BAR_SECONDS = 300
"""Bar length of the return moments: 5 minutes, the shipped bars."""

BARS_FILE = "binance_usdm_perp_BTCUSDT_5m_2025-10-01_2025-10-31.csv"
"""The shipped 5-minute bars of the BTCUSDT perpetual (``shared/data/prices``)."""


@dataclass(frozen=True)
class RealWindows:
    """Time windows (UTC, inclusive start, exclusive end) the real moments are read from."""

    returns: tuple[str, str] = ("2025-10-01", "2025-10-10")
    calm_depth: tuple[str, str] = ("2025-10-10 00:00", "2025-10-10 20:00")
    cascade_depth: tuple[str, str] = ("2025-10-10 21:14", "2025-10-10 21:38:01")
    funding: tuple[str, str] = ("2025-01-01", "2026-01-01")


CALM_RETURNS = RealWindows().returns
"""Days of calm 5-minute returns (1–9 Oct 2025, before the cascade)."""

CASCADE = RealWindows().cascade_depth
"""The cascade window of 10 Oct 2025 in the depth file (``shared/data/README.md``)."""


def return_moments(prices: np.ndarray) -> dict[str, float]:
    """The return moments (the first five of :data:`MOMENTS`) of 5-minute prices.

    Args:
        prices: Prices sampled every 5 minutes (non-positive and NaN entries dropped).

    Returns:
        The moments; NaN where the series is too short.
    """
    p = np.asarray(prices, dtype=np.float64)
    p = p[np.isfinite(p) & (p > 0.0)]
    r = np.diff(np.log(p))
    if len(r) < 30:
        return {k: float("nan") for k in MOMENTS[:5]}
    ar = np.abs(r)
    return {
        "vol_5m": float(r.std(ddof=1) * np.sqrt(365.0 * 86400.0 / BAR_SECONDS)),
        "kurtosis_5m": float(stats.kurtosis(r, fisher=True)),
        "acf_abs_5m_1": autocorrelation(ar, 1),
        "acf_abs_5m_12": autocorrelation(ar, 12),
        "hill_5m": hill_tail_index(r),
    }


def _between(df: pd.DataFrame, col: str, window: tuple[str, str]) -> pd.DataFrame:
    t = pd.to_datetime(df[col], format="mixed")
    return df[(t >= pd.Timestamp(window[0])) & (t < pd.Timestamp(window[1]))]


def real_moments(data_dir: Path, windows: RealWindows | None = None) -> dict[str, float]:
    """Every moment of :data:`MOMENTS` and :data:`CRASH_MOMENTS` from the shipped files.

    Args:
        data_dir: The shared data directory (``sim.scenarios.replay.data_dir()``).
        windows: The time windows to read (default :class:`RealWindows`).

    Returns:
        Moment name → value.
    """
    w = windows or RealWindows()
    bars = pd.read_csv(data_dir / "prices" / BARS_FILE, parse_dates=["timestamp_utc"])
    out = return_moments(_between(bars, "timestamp_utc", w.returns)["close"].to_numpy())
    depth = pd.read_csv(data_dir / "depth" / "binance_usdm_BTCUSDT_bookDepth_2025-10-10.csv",
                        parse_dates=["timestamp"])
    calm = _between(depth, "timestamp", w.calm_depth)
    flow = _between(bars, "timestamp_utc", w.calm_depth)
    bid = calm.loc[calm["percentage"] == -1, "notional"].mean()
    out["depth_to_volume"] = float(bid / (flow["volume"] * flow["close"]).mean())
    ask_calm = calm.loc[calm["percentage"] == 1, "notional"].mean()
    casc = _between(depth, "timestamp", w.cascade_depth)
    out["depth_collapse"] = float(casc.loc[casc["percentage"] == 1, "notional"].mean() / ask_calm)
    funding = pd.read_csv(data_dir / "prices" / "binance_usdm_funding_BTCUSDT.csv",
                          parse_dates=["timestamp_utc"])
    out["funding_abs"] = float(_between(funding, "timestamp_utc", w.funding)["funding_rate"]
                               .abs().mean())
    return out


def _perp(ts: pd.DataFrame, asset: str) -> str:
    cols = [c[:-4] for c in ts.columns if c.endswith(f":{asset}-PERP.mid")]
    if not cols:
        raise ValueError(f"the run has no {asset} perpetual")
    return cols[0]


def run_moments(ts: pd.DataFrame, asset: str, step_seconds: float, skip_steps: int,
                funding_steps: int) -> dict[str, float]:
    """The calm moments of :data:`MOMENTS` from one run's time series.

    Args:
        ts: ``timeseries.parquet`` of the run.
        asset: Underlying whose (first) perpetual is measured.
        step_seconds: Simulated seconds per step (``market.step_seconds``).
        skip_steps: Warm-up steps left out.
        funding_steps: Steps between funding payments (``protocols[p].funding_interval``).

    Returns:
        Moment name → value (NaN when undefined, never zero).
    """
    n = _perp(ts, asset)
    t = ts[ts["step"] > skip_steps]
    every = max(round(BAR_SECONDS / step_seconds), 1)
    out = return_moments(t[f"{n}.mid"].to_numpy()[::every])
    flow = t[f"{n}.notional"].to_numpy()
    bars = len(flow) // every
    per_bar = flow[:bars * every].reshape(bars, every).sum(axis=1).mean() if bars else np.nan
    depth = t[f"{n}.depth_bid_1pct"].mean()
    out["depth_to_volume"] = float(depth / per_bar) if per_bar and per_bar > 0 else float("nan")
    paid = t[t["step"] % funding_steps == 0][f"{n}.funding_rate"]
    out["funding_abs"] = float(paid.abs().mean()) if len(paid) else float("nan")
    return out


def crash_moments(ts: pd.DataFrame, asset: str, start: int, stop: int,
                  skip_steps: int) -> dict[str, float]:
    """``depth_collapse`` of one crash run: ask depth within 1 % in ``[start, stop)`` over before.

    Args:
        ts: ``timeseries.parquet`` of the run.
        asset: Underlying whose perpetual is measured.
        start: First step of the crash.
        stop: Step after the crash window.
        skip_steps: Warm-up steps left out of the calm mean.
    """
    n = _perp(ts, asset)
    col = f"{n}.depth_ask_1pct"
    before = ts.loc[(ts["step"] > skip_steps) & (ts["step"] < start), col].mean()
    during = ts.loc[(ts["step"] >= start) & (ts["step"] < stop), col].mean()
    ok = np.isfinite(before) and before > 0
    return {"depth_collapse": float(during / before) if ok else float("nan")}


def moment_frame(rows: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Moments of several runs (run name → moments) as a frame, one row per run."""
    return pd.DataFrame.from_dict(dict(rows), orient="index")
