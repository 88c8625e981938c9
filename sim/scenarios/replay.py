"""Historical replay of real price paths from OHLCV CSV files (scenario ``replay``).

The fundamental of each replayed asset follows a real price path read with
:func:`margin.risk.calibration.load_price_csv`, so any CSV with ``timestamp_utc,
open, high, low, close, volume`` works. The shipped configs replay the Binance
spot crash windows listed in ``shared/data/README.md`` (BTC/ETH hourly bars,
Roshan7869/algotrading @4e790fea; October 2025 five-minute bars,
Harthor/marketlab @6135a753): ``conf/scenario/replay_{mar2020,may2021,
may2022,nov2022,oct2025}.yaml``.

Path construction. Bars are stamped with their open time (Binance convention).
The window holds the bars with ``start <= timestamp <= end``; bar ``b`` (its
position on the regular grid of the file's median bar interval, counted from the
first bar in the window) spans model steps ``b*spb .. (b+1)*spb`` where ``spb``
is ``steps_per_bar``. Knots of the path:

* step 0: the open of the first bar (also the open of any bar after a gap in
  the file, e.g. an exchange outage);
* step ``(b+1)*spb``: the close of bar ``b`` (``column: close``);
* with ``column: ohlc`` also the bar's two extremes at steps
  ``b*spb + round(spb/3)`` and ``b*spb + round(2 spb/3)``, low first when the
  bar closed up, high first when it closed down — the usual intrabar
  convention, so the path reaches the real highs and lows (the README's crash
  drawdowns are measured high to low).

Between knots the log-price is interpolated linearly (a straight line in log
price, so the path is monotone between knots), optionally with a Brownian
bridge of annualised volatility ``bridge_vol`` pinned at the knots.

Time mapping (``steps_per_bar``):

* ``null`` (default) — real time: ``spb = round(bar interval / step_seconds)``,
  e.g. hourly bars on one-minute steps give 60 steps per bar, so a replayed
  hour lasts an hour of model time and volatilities, funding intervals and
  oracle latencies keep their meaning;
* an integer, e.g. ``1`` — one bar per step: time is compressed (a year of
  hourly bars in 8,760 steps); every per-step quantity of the model then
  refers to bar time, not ``market.step_seconds``.

``normalise: true`` (default) scales each replayed path so it starts at the
asset's configured price, so the config's tick and lot sizes fit; the shape
(returns, drawdowns) is unchanged. ``false`` replays raw prices.

When the run is longer than the replay (``n_steps``), ``after: hold`` (default)
freezes the replayed prices at their last value; ``after: gbm`` lets all assets
continue as the configured correlated GBM from where they are.

Assets absent from ``files`` follow the configured GBM, conditioned on the
replayed assets: each step the replayed log returns are standardised with the
configured drift and volatility, ``z_r``, and the free assets' shocks are drawn
from the Gaussian conditional ``N(C_fr C_rr^+ z_r, C_ff - C_fr C_rr^+ C_rf)``
of the configured correlation ``C`` — an ETH left to GBM falls with a replayed
BTC crash with beta ``rho sigma_ETH / sigma_BTC``. After the replay ends they
follow their unconditional GBM.

Paths are resolved against the data directory: the environment variable
``MARGINSIM_DATA_DIR`` if set, else ``<repo>/../shared/data`` (the repo root
found from this package's location); absolute paths are used as they are.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from margin.risk.calibration import infer_interval, load_price_csv
from sim.scenarios.base import Scenario
from sim.scenarios.gbm import CorrelatedGBM, factor
from sim.scenarios.params import Params

__all__ = ["DATA_DIR_ENV", "Replay", "data_dir", "replay", "resolve_data_path"]

DATA_DIR_ENV = "MARGINSIM_DATA_DIR"
COLUMNS = ("close", "ohlc")
AFTER = ("hold", "gbm")
MAX_REPLAY_STEPS = 20_000_000


def data_dir() -> Path:
    """The directory relative data paths are resolved against.

    Returns:
        ``$MARGINSIM_DATA_DIR`` when set, else ``<repo>/../shared/data`` where
        ``<repo>`` is the directory holding the ``sim`` package.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def resolve_data_path(path: str | os.PathLike[str]) -> Path:
    """An absolute path as is, a relative one under :func:`data_dir`."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else data_dir() / p


@functools.lru_cache(maxsize=8)
def _cached_frame(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    # Keyed by file identity: an edited file is read again. Callers never mutate.
    return load_price_csv(path)


def _load(path: Path) -> pd.DataFrame:
    st = path.stat() if path.is_file() else None
    if st is None:
        return load_price_csv(path)  # raises the loader's one-line "not found" error
    return _cached_frame(str(path), st.st_mtime_ns, st.st_size)


def _utc(p: Params, key: str) -> pd.Timestamp:
    value = p.get(key)
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        p.fail(key, value, "must be a UTC timestamp such as '2020-03-12 00:00'")
    if pd.isna(ts):
        p.fail(key, value, "must be a UTC timestamp such as '2020-03-12 00:00'")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _asset_knots(bars: pd.DataFrame, t0: pd.Timestamp, interval: pd.Timedelta, spb: int,
                 column: str) -> tuple[np.ndarray, np.ndarray]:
    """Knot steps and prices of one asset's bars (see the module docstring)."""
    pos = ((bars.index - t0) / interval).to_numpy(dtype=float)  # bar position in bars
    o, h, lo, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    gap_before = np.ones(len(pos), dtype=bool)
    gap_before[1:] = np.diff(pos) > 1.5
    steps = [pos[gap_before] * spb]
    vals = [o[gap_before]]
    if column == "ohlc":
        q1, q2 = max(1, round(spb / 3)), min(spb - 1, round(2 * spb / 3))
        up = c >= o
        steps += [pos * spb + q1, pos * spb + q2]
        vals += [np.where(up, lo, h), np.where(up, h, lo)]
    steps.append((pos + 1.0) * spb)
    vals.append(c)
    s = np.rint(np.concatenate(steps)).astype(np.int64)
    v = np.concatenate(vals)
    order = np.argsort(s, kind="stable")
    s, v = s[order], v[order]
    keep = np.ones(len(s), dtype=bool)
    keep[:-1] = s[1:] != s[:-1]  # irregular files: last knot on a step wins
    return s[keep], v[keep]


class Replay(Scenario):
    """Fundamental prices replaying historical paths; other assets follow GBM.

    Built from config by :func:`replay`; see the module docstring for the path,
    time mapping and free-asset rules.

    Args:
        gbm: The configured correlated GBM of all assets (its prices are the
            configured initial prices).
        replayed: Indices (config order) of the replayed assets.
        knot_steps: Strictly increasing int steps of the knots, the first 0.
        knot_prices: Prices at the knots, shape ``(len(knot_steps), len(replayed))``
            (already normalised).
        after: ``hold`` or ``gbm`` (after the last knot).
        bridge_vol: Annualised volatility of the Brownian bridge between knots.

    Attributes:
        n_steps: Steps the replay lasts (the last knot).
        replayed: Indices of the replayed assets.
        knot_steps: Knot steps.
        knot_prices: Knot prices.
        start: Timestamp of step 0 (``None`` when built without files).
        bar_interval: Bar interval of the files (``None`` likewise).
        steps_per_bar: Model steps per bar.
        scale: Normalisation factor per asset (1 for free assets).
    """

    def __init__(self, gbm: CorrelatedGBM, replayed: np.ndarray, knot_steps: np.ndarray,
                 knot_prices: np.ndarray, *, after: str = "hold", bridge_vol: float = 0.0
                 ) -> None:
        r = np.asarray(replayed, dtype=np.int64)
        ks = np.asarray(knot_steps, dtype=np.int64)
        kp = np.asarray(knot_prices, dtype=np.float64).reshape(len(ks), len(r))
        if len(ks) == 0 or ks[0] != 0 or np.any(np.diff(ks) <= 0):
            raise ValueError("replay knots must start at step 0 and strictly increase")
        if not np.all(np.isfinite(kp)) or np.any(kp <= 0):
            raise ValueError("replay knot prices must be positive and finite")
        if after not in AFTER:
            raise ValueError(f"params.after = {after!r} is invalid: must be one of "
                             f"{', '.join(AFTER)}")
        prices = gbm.prices.copy()
        prices[r] = kp[0]
        super().__init__(prices, gbm.dt)
        self.gbm = gbm
        self.replayed = r
        self.free = np.setdiff1d(np.arange(len(prices)), r)
        self.knot_steps = ks
        self.knot_prices = kp
        self._knot_logs = np.log(kp)
        self._log = self._knot_logs[0].copy()
        self._next = 1
        self.n_steps = int(ks[-1])
        self.after = after
        self.bridge_vol = float(bridge_vol)
        self.start: pd.Timestamp | None = None
        self.bar_interval: pd.Timedelta | None = None
        self.steps_per_bar = 1
        self.scale = np.ones(len(prices))
        c = gbm.correlation
        f = self.free
        c_rr = c[np.ix_(r, r)]
        self._beta = c[np.ix_(f, r)] @ np.linalg.pinv(c_rr) if len(r) else np.zeros((len(f), 0))
        self._chol_cond = factor(c[np.ix_(f, f)] - self._beta @ c[np.ix_(r, f)])
        self._chol_free = factor(c[np.ix_(f, f)])
        self._chol_rep = factor(c_rr)

    def time_at(self, step: int) -> pd.Timestamp | None:
        """Historical time of ``step`` (``None`` without files)."""
        if self.start is None or self.bar_interval is None:
            return None
        return self.start + self.bar_interval * (step / self.steps_per_bar)

    def _free_move(self, rng: np.random.Generator, z_rep: np.ndarray | None) -> None:
        f = self.free
        if len(f) == 0:
            return
        if z_rep is None:
            z = self._chol_free @ rng.standard_normal(len(f))
        else:
            z = self._beta @ z_rep + self._chol_cond @ rng.standard_normal(len(f))
        vol, mu, dt = self.gbm.vol[f], self.gbm.drift[f], self.dt
        self.prices[f] *= np.exp((mu - 0.5 * vol**2) * dt + vol * math.sqrt(dt) * z)

    def _move(self, rng: np.random.Generator) -> None:
        j = self.steps
        if j >= self.n_steps:
            if self.after == "gbm":
                self.prices *= np.exp(self.gbm.log_increment(rng))
            else:
                self._free_move(rng, None)
            return
        r = self.replayed
        target_step = self.knot_steps[self._next]
        y = self._knot_logs[self._next]
        gap = int(target_step - j)
        x = self._log
        if gap == 1:
            new = y.copy()
            self._next += 1
        else:
            new = x + (y - x) / gap
            if self.bridge_vol > 0:
                sd = self.bridge_vol * math.sqrt(self.dt * (gap - 1) / gap)
                new = new + sd * (self._chol_rep @ rng.standard_normal(len(r)))
        if len(self.free):
            vol, mu = self.gbm.vol[r], self.gbm.drift[r]
            sd = vol * math.sqrt(self.dt)
            z_rep = np.divide(new - x - (mu - 0.5 * vol**2) * self.dt, sd,
                              out=np.zeros(len(r)), where=sd > 0)
            self._free_move(rng, z_rep)
        self._log = new
        self.prices[r] = np.exp(new)


def replay(params: Any, market_cfg: Any) -> Replay:
    """Scenario ``replay``: build a :class:`Replay` from config params.

    Args:
        params: ``files`` (mapping asset name → CSV path, required), ``start``
            and ``end`` (UTC timestamps, required; bars with ``start <= t <=
            end``), ``column`` (``close`` or ``ohlc``; default ``close``),
            ``steps_per_bar`` (null = real time), ``normalise`` (true), ``after``
            (``hold``), ``bridge_vol`` (0.0).
        market_cfg: The market config (asset names, prices, vols, correlation,
            ``step_seconds``).

    Returns:
        The scenario.

    Raises:
        ValueError: One line naming the bad param (or file and its problem).
    """
    p = Params("replay", params, ("files", "start", "end", "column", "steps_per_bar",
                                  "normalise", "after", "bridge_vol"))
    names = [a.name for a in market_cfg.assets]
    files = p.get("files")
    if not isinstance(files, dict) or not files:
        p.fail("files", files, "must map asset names to CSV paths")
    for name, path in files.items():
        if name not in names:
            p.fail(f"files.{name}", path, f"unknown asset; known: {', '.join(names)}")
        if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
            p.fail(f"files.{name}", path, "must be a CSV path")
    start, end = _utc(p, "start"), _utc(p, "end")
    if end < start:
        p.fail("end", p.get("end"), f"must not be before start ({start})")
    column = p.choice("column", "close", COLUMNS)
    spb_param = p.optional_integer("steps_per_bar", 1, 1_000_000)
    normalise = p.boolean("normalise", True)
    after = p.choice("after", "hold", AFTER)
    bridge_vol = p.number("bridge_vol", 0.0, 0.0, 10.0)

    frames: dict[str, pd.DataFrame] = {}
    interval: pd.Timedelta | None = None
    first_name = ""
    for name, path in files.items():
        try:
            frame = _load(resolve_data_path(path))
            iv = infer_interval(frame.index)
        except ValueError as exc:
            raise ValueError(f"params.files.{name}: {str(exc).splitlines()[0]}") from None
        if interval is None:
            interval, first_name = iv, name
        elif iv != interval:
            p.fail(f"files.{name}", path, f"bar interval {iv} differs from {first_name}'s "
                                          f"{interval}")
        bars = frame.loc[(frame.index >= start) & (frame.index <= end)]
        if bars.empty:
            p.fail(f"files.{name}", path, f"has no bars between {start} and {end}")
        frames[name] = bars
    assert interval is not None
    spb = spb_param if spb_param is not None else max(
        1, round(interval.total_seconds() / float(market_cfg.step_seconds)))
    if column == "ohlc" and spb < 3:
        p.fail("steps_per_bar", spb, "column ohlc needs >= 3 steps per bar "
                                     "(or use column: close)")
    t0 = min(b.index[0] for b in frames.values())
    n_bars = max((b.index[-1] - t0) / interval for b in frames.values()) + 1
    if n_bars * spb > MAX_REPLAY_STEPS:
        p.fail("steps_per_bar", spb, f"the window would last {int(n_bars * spb)} steps; "
                                     f"at most {MAX_REPLAY_STEPS}")

    gbm = CorrelatedGBM.from_config(market_cfg)
    replayed = sorted(names.index(n) for n in frames)
    knots = {n: _asset_knots(frames[n], t0, interval, spb, column) for n in frames}
    steps = np.unique(np.concatenate([k[0] for k in knots.values()]))
    logs = np.column_stack([np.interp(steps, knots[names[i]][0], np.log(knots[names[i]][1]))
                            for i in replayed])
    scale = np.ones(len(names))
    if normalise:
        scale[replayed] = gbm.prices[replayed] / np.exp(logs[0])
        logs = logs + np.log(scale[replayed])
    scen = Replay(gbm, np.array(replayed), steps, np.exp(logs), after=after,
                  bridge_vol=bridge_vol)
    scen.start, scen.bar_interval, scen.steps_per_bar, scen.scale = t0, interval, spb, scale
    return scen
