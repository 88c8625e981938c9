"""Calibration of volatility, drift and correlation from OHLCV price files.

One loader, :func:`load_price_csv`, reads any CSV with the columns
``timestamp_utc, open, high, low, close, volume`` (the project's data format,
see ``shared/data/README.md``), so users can drop in their own files. On top of
it:

* log returns and annualised volatility. The bar interval is inferred as the
  median timestamp spacing, so the 27 outage gaps in the Binance hourly files
  do not change it, or it can be passed. Crypto trades every day, hence 365 days
  per year by default.
* EWMA variance ``σ²_t = λ σ²_{t−1} + (1−λ) r²_{t−1}`` with the RiskMetrics
  default λ = 0.94 (J.P. Morgan/Reuters, *RiskMetrics Technical Document*, 4th
  ed., 1996; reference ``margin_methods.md`` §5.2). λ = 0.94 is RiskMetrics'
  *daily* decay: on hourly bars it averages over about 16 hours.
* correlation and covariance of several series aligned on their common
  timestamps (inner join; optionally resampled, e.g. to daily UTC closes).
* :func:`calibrate`, which returns the per-asset annualised volatility, GBM
  drift, end-of-sample EWMA volatility and the correlation matrix: the
  parameters of a correlated geometric Brownian motion
  ``dS_i = μ_i S_i dt + σ_i S_i dW_i``, ``corr(dW_i, dW_j) = ρ_ij``.

Neighbours: ``margin.risk.backtest`` (test a margin series built from these
volatilities), ``margin.methods.tiers`` and ``margin.methods.pricing``.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numba import njit

__all__ = [
    "PRICE_COLUMNS",
    "Calibration",
    "align_closes",
    "annualised_volatility",
    "calibrate",
    "correlation_matrix",
    "covariance_matrix",
    "ewma_next_variance",
    "ewma_variance",
    "ewma_variance_kernel",
    "ewma_volatility",
    "infer_interval",
    "load_price_csv",
    "log_returns",
    "periods_per_year",
]

#: Columns every price file must have (extra columns are ignored).
PRICE_COLUMNS: tuple[str, ...] = ("timestamp_utc", "open", "high", "low", "close", "volume")

#: RiskMetrics (1996) daily decay factor.
RISKMETRICS_LAMBDA = 0.94

_SECONDS_PER_DAY = 86_400.0


# ------------------------------------------------------------------------ loading


def load_price_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Load an OHLCV CSV with columns ``timestamp_utc, open, high, low, close, volume``.

    Timestamps are parsed as UTC: naive strings are taken to be UTC, and strings
    with an offset are converted to UTC. Rows are sorted by time. Column names
    are matched after stripping whitespace and lower-casing; extra columns are
    dropped.

    Args:
        path: Path to the CSV file.

    Returns:
        A DataFrame indexed by a UTC ``DatetimeIndex`` named ``timestamp_utc``
        with float64 columns ``open, high, low, close, volume``.

    Raises:
        ValueError: One line naming the file and the problem: missing file,
            unreadable CSV, missing column, unparseable timestamp or number,
            empty cell, non-positive price, or duplicate timestamp.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"price file not found: {p}")
    try:
        raw = pd.read_csv(p, dtype=str, skipinitialspace=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{p}: not a readable CSV ({first})") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in PRICE_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(
            f"{p}: missing column(s) {', '.join(missing)}; expected {', '.join(PRICE_COLUMNS)}"
        )
    if raw.empty:
        raise ValueError(f"{p}: no data rows")
    raw = raw.loc[:, list(PRICE_COLUMNS)]

    for col in PRICE_COLUMNS:
        empty = raw[col].isna() | (raw[col].str.strip() == "")
        if empty.any():
            row = int(np.flatnonzero(empty.to_numpy())[0])
            raise ValueError(
                f"{p}: column {col} has {int(empty.sum())} empty cell(s), "
                f"first at data row {row + 1}"
            )

    ts_text = raw["timestamp_utc"].str.strip()
    if pd.to_numeric(ts_text, errors="coerce").notna().all():
        raise ValueError(
            f"{p}: column timestamp_utc holds numbers; "
            "expected date-time text such as 2021-01-01 00:00:00"
        )
    ts = pd.to_datetime(ts_text, utc=True, errors="coerce", format="mixed")
    if ts.isna().any():
        row = int(np.flatnonzero(ts.isna().to_numpy())[0])
        raise ValueError(
            f"{p}: column timestamp_utc has an unparseable value {ts_text.iloc[row]!r} "
            f"at data row {row + 1}"
        )

    data = {}
    for col in PRICE_COLUMNS[1:]:
        vals = pd.to_numeric(raw[col].str.strip(), errors="coerce")
        if vals.isna().any():
            row = int(np.flatnonzero(vals.isna().to_numpy())[0])
            raise ValueError(
                f"{p}: column {col} has a non-numeric value {raw[col].iloc[row]!r} "
                f"at data row {row + 1}"
            )
        arr = vals.to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            row = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise ValueError(f"{p}: column {col} has a non-finite value at data row {row + 1}")
        if col != "volume" and np.any(arr <= 0):
            row = int(np.flatnonzero(arr <= 0)[0])
            raise ValueError(f"{p}: column {col} must be > 0, got {arr[row]} at data row {row + 1}")
        if col == "volume" and np.any(arr < 0):
            row = int(np.flatnonzero(arr < 0)[0])
            raise ValueError(
                f"{p}: column volume must be >= 0, got {arr[row]} at data row {row + 1}"
            )
        data[col] = arr

    # A bar's high is its largest price and its low its smallest (open and close are
    # not held to them: exchanges' bars do print an open or close a tick outside).
    bad = data["high"] < data["low"]
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{p}: data row {row + 1} has high {data['high'][row]} < low {data['low'][row]}: "
            f"a bar's high must be >= its low"
        )

    index = pd.DatetimeIndex(ts, name="timestamp_utc")
    dup = index.duplicated(keep=False)
    if dup.any():
        first = index[dup].sort_values()[0]
        n_dup = int(index.duplicated().sum())
        raise ValueError(f"{p}: {n_dup} duplicate timestamp(s), first {first.isoformat()}")
    frame = pd.DataFrame(data, index=index)
    return frame.sort_index(kind="stable")


# ------------------------------------------------------------------------ returns & vol


def _close_series(prices: pd.Series | pd.DataFrame, name: str = "prices") -> pd.Series:
    if isinstance(prices, pd.DataFrame):
        if "close" not in prices.columns:
            raise ValueError(f"{name} DataFrame has no 'close' column")
        prices = prices["close"]
    return prices


def log_returns(
    prices: pd.Series | pd.DataFrame | np.ndarray,
) -> pd.Series | pd.DataFrame | np.ndarray:
    """Log returns ``r_t = ln(P_t / P_{t−1})``.

    Args:
        prices: Prices in time order: an array, a Series, or a DataFrame whose
            columns are price series.

    Returns:
        One fewer row than ``prices``, same type; pandas outputs keep the
        timestamps of the period ends.

    Raises:
        ValueError: If any price is not > 0.
    """
    if isinstance(prices, (pd.Series, pd.DataFrame)):
        vals = prices.to_numpy(dtype=np.float64)
        if np.any(~(vals > 0)):
            raise ValueError("log_returns needs prices > 0 (found a non-positive or NaN price)")
        return np.log(prices.astype(np.float64)).diff().iloc[1:]
    arr = np.asarray(prices, dtype=np.float64)
    if np.any(~(arr > 0)):
        raise ValueError("log_returns needs prices > 0 (found a non-positive or NaN price)")
    return np.diff(np.log(arr), axis=0)


def _to_timedelta(interval: object) -> pd.Timedelta:
    numeric = isinstance(interval, (int, float, np.integer, np.floating))
    if numeric and not isinstance(interval, bool):
        td = pd.Timedelta(seconds=float(interval))
    elif isinstance(interval, (str, _dt.timedelta, np.timedelta64, pd.Timedelta)):
        try:
            td = pd.Timedelta(interval)
        except ValueError:
            msg = f"interval {interval!r} is not a time span such as '1h' or 3600"
            raise ValueError(msg) from None
    else:
        raise ValueError(
            "interval must be seconds, a string like '1h' or a timedelta, "
            f"got {type(interval).__name__}"
        )
    if not td > pd.Timedelta(0):
        raise ValueError(f"interval must be positive, got {interval!r}")
    return td


def infer_interval(index: pd.DatetimeIndex) -> pd.Timedelta:
    """Bar interval as the median spacing of sorted timestamps.

    The median ignores occasional gaps (exchange outages) and duplicates.

    Args:
        index: Timestamps (at least 2, increasing).

    Returns:
        The interval.

    Raises:
        ValueError: If there are fewer than 2 timestamps or the spacing is not positive.
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(
            f"need a DatetimeIndex to infer the bar interval, got {type(index).__name__}"
        )
    if len(index) < 2:
        raise ValueError("need at least 2 timestamps to infer the bar interval")
    med = pd.Series(index[1:] - index[:-1]).median()
    if not med > pd.Timedelta(0):
        raise ValueError("timestamps must increase to infer the bar interval")
    return pd.Timedelta(med)


def periods_per_year(interval: object, days_per_year: float = 365.0) -> float:
    """Number of bars per year: ``days_per_year × 86,400 s / interval``.

    Crypto markets trade every day (365); use 252 for exchange trading days
    (reference §5.2).

    Args:
        interval: Bar length: seconds, a pandas offset string (``"1h"``) or a timedelta.
        days_per_year: Trading days per year.

    Returns:
        Bars per year.

    Raises:
        ValueError: On a non-positive or unparseable interval.
    """
    if not days_per_year > 0:
        raise ValueError(f"days_per_year must be > 0, got {days_per_year}")
    td = _to_timedelta(interval)
    return days_per_year * _SECONDS_PER_DAY / td.total_seconds()


def annualised_volatility(
    prices: pd.Series | pd.DataFrame | np.ndarray,
    interval: object = None,
    days_per_year: float = 365.0,
) -> float:
    """Annualised volatility: sample std (ddof=1) of log returns × √(bars per year).

    Args:
        prices: Close prices in time order: a Series with a DatetimeIndex, an
            OHLCV DataFrame (uses ``close``) or an array.
        interval: Bar length (seconds, ``"1h"``, timedelta). Inferred from the
            index when ``None``; required for arrays.
        days_per_year: 365 for crypto, 252 for exchange trading days.

    Returns:
        The annualised volatility.

    Raises:
        ValueError: With fewer than 3 prices, or if the interval cannot be inferred.
    """
    close = _close_series(prices)
    if interval is None:
        if not isinstance(close, pd.Series) or not isinstance(close.index, pd.DatetimeIndex):
            raise ValueError("pass interval= for prices without a DatetimeIndex")
        interval = infer_interval(close.index)
    ppy = periods_per_year(interval, days_per_year)
    r = np.asarray(log_returns(close), dtype=np.float64)
    if r.size < 2:
        raise ValueError(f"need at least 3 prices for a volatility, got {r.size + 1}")
    return float(np.std(r, ddof=1) * math.sqrt(ppy))


# ------------------------------------------------------------------------ EWMA


@njit(cache=True)
def ewma_variance_kernel(returns: np.ndarray, lam: float, sigma2_0: float) -> np.ndarray:
    """EWMA recursion ``σ²_{t+1} = λ σ²_t + (1−λ) r²_t`` (RiskMetrics 1996; §5.2).

    Example (reference §5.2): σ = 1%, r = 3%, λ = 0.94 → next σ = 1.2166%.

    Args:
        returns: float64[:] returns ``r_0 … r_{n−1}``.
        lam: Decay factor λ in (0, 1).
        sigma2_0: Variance for period 0 (before any return is seen).

    Returns:
        float64[:] of length n + 1: element t is the variance forecast for
        return t using returns before t; the last element is the forecast for
        the next, unseen period.
    """
    n = returns.shape[0]
    out = np.empty(n + 1, dtype=np.float64)
    out[0] = sigma2_0
    w = 1.0 - lam
    for t in range(n):
        out[t + 1] = lam * out[t] + w * returns[t] * returns[t]
    return out


def _ewma_inputs(
    returns: object, lam: float, init: float | None, warmup: int
) -> tuple[np.ndarray, float]:
    if not (0.0 < lam < 1.0):
        raise ValueError(f"lam must lie in (0, 1), got {lam}")
    r = np.ascontiguousarray(np.asarray(returns, dtype=np.float64))
    if r.ndim != 1:
        raise ValueError(f"returns must be one-dimensional, got shape {r.shape}")
    if r.size == 0:
        raise ValueError("returns is empty")
    if not np.all(np.isfinite(r)):
        raise ValueError("returns contain NaN or inf")
    if init is None:
        if warmup < 1:
            raise ValueError(f"warmup must be >= 1, got {warmup}")
        init = float(np.mean(r[: min(warmup, r.size)] ** 2))
    elif not (init >= 0.0 and math.isfinite(init)):
        raise ValueError(f"init variance must be finite and >= 0, got {init}")
    return r, float(init)


def ewma_variance(
    returns: pd.Series | np.ndarray,
    lam: float = RISKMETRICS_LAMBDA,
    init: float | None = None,
    warmup: int = 30,
) -> pd.Series | np.ndarray:
    """EWMA variance forecast for each period, aligned with ``returns`` (RiskMetrics 1996).

    ``out[t] = λ out[t−1] + (1−λ) r²_{t−1}`` uses only returns before ``t``, so
    ``z × √out[t]`` is an out-of-sample VaR/margin for period ``t`` that
    :func:`margin.risk.backtest.backtest` can test.

    Args:
        returns: Returns per bar (not annualised).
        lam: Decay λ (RiskMetrics: 0.94 daily, 0.97 monthly; LCH PAIRS 0.97).
        init: Variance for the first period. If ``None``, the mean squared
            return of the first ``warmup`` returns. This is a warm-up
            convention, not RiskMetrics', and it looks ahead over those bars.
        warmup: Bars averaged for the default ``init``.

    Returns:
        Per-bar variances, same length and type as ``returns``.

    Raises:
        ValueError: On λ outside (0, 1), empty or non-finite returns.
    """
    r, init_v = _ewma_inputs(returns, lam, init, warmup)
    out = ewma_variance_kernel(r, float(lam), init_v)[:-1]
    if isinstance(returns, pd.Series):
        return pd.Series(out, index=returns.index, name="ewma_variance")
    return out


def ewma_volatility(
    returns: pd.Series | np.ndarray,
    lam: float = RISKMETRICS_LAMBDA,
    init: float | None = None,
    warmup: int = 30,
) -> pd.Series | np.ndarray:
    """Square root of :func:`ewma_variance` (per bar, not annualised).

    Args:
        returns: Returns per bar.
        lam: Decay λ.
        init: Initial variance (see :func:`ewma_variance`).
        warmup: Bars for the default ``init``.

    Returns:
        Per-bar volatilities aligned with ``returns``.

    Raises:
        ValueError: As :func:`ewma_variance`.
    """
    var = ewma_variance(returns, lam, init, warmup)
    if isinstance(var, pd.Series):
        return np.sqrt(var).rename("ewma_volatility")
    return np.sqrt(var)


def ewma_next_variance(
    returns: pd.Series | np.ndarray,
    lam: float = RISKMETRICS_LAMBDA,
    init: float | None = None,
    warmup: int = 30,
) -> float:
    """EWMA variance forecast for the period after the last return (per bar).

    Args:
        returns: Returns per bar.
        lam: Decay λ.
        init: Initial variance (see :func:`ewma_variance`).
        warmup: Bars for the default ``init``.

    Returns:
        ``λ σ²_{n−1} + (1−λ) r²_{n−1}``.

    Raises:
        ValueError: As :func:`ewma_variance`.
    """
    r, init_v = _ewma_inputs(returns, lam, init, warmup)
    return float(ewma_variance_kernel(r, float(lam), init_v)[-1])


# ------------------------------------------------------------------------ several assets


def align_closes(
    closes: Mapping[str, pd.Series | pd.DataFrame], resample: str | None = None
) -> pd.DataFrame:
    """Close prices of several assets on their common timestamps.

    Args:
        closes: Name → close Series or OHLCV DataFrame, each with a UTC
            DatetimeIndex.
        resample: Optional pandas rule, e.g. ``"1D"``. Each series then takes
            its last close in every bin (a UTC daily close, as in the data
            README), and empty bins are dropped.

    Returns:
        DataFrame with one column per name, restricted to timestamps present
        in every series (inner join).

    Raises:
        ValueError: If ``closes`` is empty, an index is not a DatetimeIndex,
            or no timestamps are shared.
    """
    if not closes:
        raise ValueError("closes is empty")
    cols = {}
    for name, obj in closes.items():
        s = _close_series(obj, name=str(name))
        if not isinstance(s.index, pd.DatetimeIndex):
            raise ValueError(f"series {name!r} needs a DatetimeIndex, got {type(s.index).__name__}")
        if s.index.tz is None:
            s = s.tz_localize("UTC")  # naive timestamps are taken to be UTC
        s = s.astype(np.float64).sort_index()
        if resample is not None:
            s = s.resample(resample).last().dropna()
        cols[str(name)] = s
    frame = pd.concat(cols, axis=1, join="inner").dropna()
    if frame.empty:
        raise ValueError(f"series {', '.join(cols)} share no timestamps")
    return frame


def correlation_matrix(closes: pd.DataFrame) -> pd.DataFrame:
    """Pearson correlation of log returns of aligned close prices.

    Args:
        closes: Aligned closes, one column per asset (see :func:`align_closes`).

    Returns:
        Symmetric DataFrame of correlations with unit diagonal.

    Raises:
        ValueError: With fewer than 3 rows or a non-positive price.
    """
    if len(closes) < 3:
        raise ValueError(f"need at least 3 aligned prices, got {len(closes)}")
    return log_returns(closes).corr()


def covariance_matrix(
    closes: pd.DataFrame,
    interval: object = None,
    days_per_year: float = 365.0,
    annualise: bool = True,
) -> pd.DataFrame:
    """Sample covariance (ddof=1) of log returns of aligned closes, optionally annualised.

    Args:
        closes: Aligned closes, one column per asset.
        interval: Bar length; inferred from the index when ``None``.
        days_per_year: 365 for crypto.
        annualise: Multiply by bars per year.

    Returns:
        Symmetric covariance DataFrame.

    Raises:
        ValueError: With fewer than 3 rows or if the interval cannot be inferred.
    """
    if len(closes) < 3:
        raise ValueError(f"need at least 3 aligned prices, got {len(closes)}")
    cov = log_returns(closes).cov()
    if annualise:
        if interval is None:
            interval = infer_interval(closes.index)
        cov = cov * periods_per_year(interval, days_per_year)
    return cov


# ------------------------------------------------------------------------ calibrate


@dataclass(frozen=True, eq=False)
class Calibration:
    """Parameters of a correlated GBM, estimated by :func:`calibrate`.

    All rates are annualised with ``periods_per_year``. Arrays follow the
    order of ``names``. Volatility, drift and correlation use the common
    (aligned) sample of all assets.

    Attributes:
        names: Asset names.
        start: First aligned timestamp.
        end: Last aligned timestamp.
        n_returns: Number of aligned returns used.
        interval: Bar interval of those returns.
        periods_per_year: Bars per year.
        vol: Annualised volatility σ_i (std of log returns, ddof=1).
        log_drift: Annualised mean log return ``E[ln S_{t+1}/S_t] × bars/yr``.
        drift: GBM drift ``μ_i = log_drift_i + σ_i²/2``.
        ewma_vol: Annualised EWMA volatility forecast after the last bar
            (λ = ``ewma_lambda``).
        ewma_lambda: Decay used for ``ewma_vol``.
        corr: Correlation matrix of log returns (0 off the diagonal for an
            asset with constant price in the window).
        cov: Annualised covariance matrix.
    """

    names: tuple[str, ...]
    start: pd.Timestamp
    end: pd.Timestamp
    n_returns: int
    interval: pd.Timedelta
    periods_per_year: float
    vol: np.ndarray
    log_drift: np.ndarray
    drift: np.ndarray
    ewma_vol: np.ndarray
    ewma_lambda: float
    corr: np.ndarray
    cov: np.ndarray

    def cholesky(self) -> np.ndarray:
        """Lower Cholesky factor L of ``corr`` (``L Lᵀ = corr``) to correlate normal shocks.

        Returns:
            The lower-triangular factor.

        Raises:
            ValueError: If ``corr`` is not positive definite.
        """
        try:
            return np.linalg.cholesky(self.corr)
        except np.linalg.LinAlgError:
            msg = "correlation matrix is not positive definite (collinear assets?)"
            raise ValueError(msg) from None

    def index(self, name: str) -> int:
        """Position of ``name`` in the parameter arrays.

        Args:
            name: Asset name.

        Returns:
            Its index.

        Raises:
            ValueError: If the name is unknown.
        """
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"unknown asset {name!r}; known: {', '.join(self.names)}") from None

    def to_dict(self) -> dict[str, object]:
        """Plain-Python view (lists and strings) for JSON or config files.

        Returns:
            Dict of the fields with arrays converted to (nested) lists.
        """
        return {
            "names": list(self.names),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "n_returns": self.n_returns,
            "interval_seconds": self.interval.total_seconds(),
            "periods_per_year": self.periods_per_year,
            "vol": self.vol.tolist(),
            "log_drift": self.log_drift.tolist(),
            "drift": self.drift.tolist(),
            "ewma_vol": self.ewma_vol.tolist(),
            "ewma_lambda": self.ewma_lambda,
            "corr": self.corr.tolist(),
            "cov": self.cov.tolist(),
        }


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def calibrate(
    sources: Sequence[str | os.PathLike[str]]
    | Mapping[str, str | os.PathLike[str] | pd.DataFrame | pd.Series],
    *,
    start: object = None,
    end: object = None,
    resample: str | None = None,
    lam: float = RISKMETRICS_LAMBDA,
    days_per_year: float = 365.0,
    interval: object = None,
) -> Calibration:
    """Estimate correlated-GBM parameters from several price files.

    Each file is read with :func:`load_price_csv`, the closes are aligned on
    common timestamps (optionally resampled, e.g. ``"1D"`` for daily UTC
    closes), sliced to ``[start, end]``, and log returns give volatility,
    drift, correlation and the end-of-sample EWMA volatility (RiskMetrics
    1996, reference §5.2).

    Args:
        sources: Paths (names are the file stems) or a mapping name → path,
            loaded OHLCV DataFrame or close Series.
        start: Inclusive first timestamp (anything ``pd.Timestamp`` accepts,
            taken as UTC if naive).
        end: Inclusive last timestamp.
        resample: Optional pandas rule applied before alignment (``"1D"``).
        lam: EWMA decay for ``ewma_vol``.
        days_per_year: 365 for crypto, 252 for exchange trading days.
        interval: Bar interval of the aligned series; inferred when ``None``.

    Returns:
        The :class:`Calibration`.

    Raises:
        ValueError: On a bad file (see :func:`load_price_csv`), duplicate
            names, or fewer than 3 aligned prices in the window.
    """
    if isinstance(sources, Mapping):
        items = [(str(k), v) for k, v in sources.items()]
    elif isinstance(sources, (str, os.PathLike)):
        items = [(Path(sources).stem, sources)]
    else:
        items = [(Path(s).stem, s) for s in sources]
        stems = [n for n, _ in items]
        if len(set(stems)) != len(stems):
            raise ValueError(f"file names repeat ({', '.join(stems)}); pass a mapping name -> path")
    if not items:
        raise ValueError("calibrate needs at least one price source")

    closes: dict[str, pd.Series | pd.DataFrame] = {}
    for name, src in items:
        if isinstance(src, (pd.DataFrame, pd.Series)):
            closes[name] = src
        else:
            closes[name] = load_price_csv(src)
    frame = align_closes(closes, resample=resample)
    if start is not None or end is not None:
        t0 = _utc_timestamp(start) if start is not None else None
        t1 = _utc_timestamp(end) if end is not None else None
        frame = frame.loc[t0:t1]
    if len(frame) < 3:
        raise ValueError(f"need at least 3 aligned prices in the window, got {len(frame)}")

    td = _to_timedelta(interval) if interval is not None else infer_interval(frame.index)
    ppy = periods_per_year(td, days_per_year)
    rets = log_returns(frame)
    r = rets.to_numpy(dtype=np.float64)
    vol = r.std(axis=0, ddof=1) * math.sqrt(ppy)
    log_drift = r.mean(axis=0) * ppy
    drift = log_drift + 0.5 * vol**2
    ewma = np.array([math.sqrt(ewma_next_variance(r[:, j], lam) * ppy) for j in range(r.shape[1])])
    cov = np.atleast_2d(np.cov(r, rowvar=False, ddof=1))
    corr = _correlation_from_cov(cov)
    cov = cov * ppy
    return Calibration(
        names=tuple(frame.columns),
        start=frame.index[0],
        end=frame.index[-1],
        n_returns=int(r.shape[0]),
        interval=td,
        periods_per_year=float(ppy),
        vol=_readonly(vol),
        log_drift=_readonly(log_drift),
        drift=_readonly(drift),
        ewma_vol=_readonly(ewma),
        ewma_lambda=float(lam),
        corr=_readonly(corr),
        cov=_readonly(cov),
    )


def _correlation_from_cov(cov: np.ndarray) -> np.ndarray:
    """Correlation from covariance; a zero-variance (constant) asset gets ρ = 0 off-diagonal."""
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    live = sd > 0
    corr = np.zeros_like(cov)
    corr[np.ix_(live, live)] = cov[np.ix_(live, live)] / np.outer(sd[live], sd[live])
    corr = np.clip(corr, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    return corr


def _utc_timestamp(value: object) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a timestamp: {value!r}") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
