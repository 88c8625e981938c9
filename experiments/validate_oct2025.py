"""Study: validation on a held-out real event, the 10 Oct 2025 cascade on a Hyperliquid-like venue.

The world (:func:`experiments.worlds.hyperliquid_oct2025`) replays the Binance
spot BTC and ETH 5-minute bars of 9–11 Oct 2025 in real time
(``scenario=replay_oct2025``) on one venue with Hyperliquid's margin tiers,
its book close-outs, the HLP-style backstop and ADL
(``conf/protocols/hyperliquid.yaml``). Replicate ``k`` uses seed
``replicate_seeds(base_seed, N)[k]`` (``SeedSequence.spawn``; the replayed
path is the same in every replicate, only the agents' draws differ). Each
run is compared with what happened on 10 Oct 2025 through ratios a scaled
world can match (its accounts are far smaller than Hyperliquid's):

1. ``adl_over_liquidated`` — ADL notional over liquidated notional in the
   event window (the Hyperliquid replay's 21:15–21:27 UTC). Real: the replay
   summary's ADL notional (2.103B USD) over the liquidations its README gives
   (5.511B USD). Simulated: ``adl`` events over the positions liquidated
   (traded in the book by the venue or by liquidators, or taken over by the
   insurance fund: the ``traded`` and ``backstopped`` paths of
   :data:`sim.venue.liquidation.config.PATHS`), at each event's price. 0 when
   positions were liquidated and nothing was ADL'd; undefined (NaN) when
   nothing was liquidated.
2. ``adl_in_profit`` — share of ADL'd positions in profit at the ADL moment.
   Real: the replay summary's ``profitable_positions_pct`` (99.4 %). Simulated:
   ADL events whose counterparty was in profit at the mark against its entry
   (``taker_entry``; the mark is the event's price less its loss against the
   mark per unit, ``amount / |size|``). The ADL queue only takes profitable
   positions, so 1 by construction: the row checks the mechanism.
3. ``long_share`` — share of liquidated notional that was long, over the
   whole run. Real: CoinGlass's market-wide 24 h figures of 10–11 Oct
   (16.83B of 19.13B USD). Simulated: liquidated positions with ``size > 0``.
4. ``depth_ratio`` — ask depth within 1 % of the mid, mean over the cascade
   (21:14–21:38) over the mean in calm hours (00:00–15:00). Real: Binance
   USDⓈ-M BTCUSDT depth bands (``notional`` at ``percentage = 1``; the bid
   bands froze at one stale level from 15:00, so the ask side). Simulated:
   the BTC perpetual's ``depth_ask_1pct`` column (USD), over the steps whose
   time falls in the same windows.
5. ``adl_delay_s`` — seconds from the first liquidation in the event window
   to the first ADL at or after it (in the window). Real: 61.7 s (the replay's
   README). Simulated: the steps between them times ``market.step_seconds``
   (a multiple of the step: 60 s).
6. ``adl_confined`` — share of ADL notional on positions that had lost on
   their own asset (long with the mark below the bankrupt account's entry, or
   short above it): ADL that covers that asset's loss rather than carrying a
   loss made on another asset to its counterparties. Real: 1 (the replay found
   no ADL across assets). Simulated: ``adl`` events with their ``entry``.
7. ``adl_on_biggest_fall`` — share of the ADL notional on BTC and ETH that fell
   on whichever of them fell most in the event window (open of the window's
   first 5-minute bar to its lowest low; BTC −9.1 %, ETH −7.9 %). Real: the
   by-coin file's BTC and ETH rows. Simulated: ``adl`` events by asset, the
   asset that fell most read from the run's index.

Every real figure is computed from the shipped files
(:func:`real_figures`), except those the data README alone gives
(:data:`LIQUIDATED_NOTIONAL_USD`, :data:`ADL_DELAY_S`,
:data:`LONG_LIQUIDATIONS_USD`, :data:`ALL_LIQUIDATIONS_USD`,
:data:`ADL_CROSS_ASSET_SHARE`). A run's time: step ``s`` is
``t0 + s × bar interval / steps per bar`` on the replay's clock
(:meth:`sim.scenarios.replay.Replay.time_at`; one minute per step in real
time), windows are half-open ``[start, end)``.

Usage::

    python -m experiments.validate_oct2025                       # 5 replicates x 2,880 steps
    python -m experiments.validate_oct2025 start='2025-10-10 06:00' end='2025-10-10 23:55'
    python -m experiments.validate_oct2025 event_window='[2025-10-10 20:45, 2025-10-10 21:45]'
    python -m experiments.validate_oct2025 report_only=true      # re-draw only

Parameters: ``conf/experiment/validate_oct2025.yaml``. Output directory
(``output_dir``)::

    runs/rNN/                          one run each (sim outputs + done.json)
    aggregated.csv                     one row per run: status, sim.<ratio> (NaN: failed, undefined)
    tables/validation.{csv,md,tex}     real, simulated mean and 95 % t-interval, sim / real, counts
    figures/validation.{png,pdf}       per ratio: the real value, each replicate, mean and interval
    figures/timeline.{png,pdf}         the first replicate: index, ask depth, liquidations and ADL
    study.yaml                         the parameters used

Runs are resumed and reused only when their resolved config and the code
match (:mod:`experiments.sweep`); a failed run is NaN in every table and
counted (``runs_failed``), a finished run where a ratio is undefined is
counted apart (``runs_undefined``); the study then exits with status 1 if any
run failed.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from experiments.analysis import write_table
from experiments.common import StudyRuns, run_and_aggregate, study_exit
from experiments.stats import replicate_seeds, t_interval
from experiments.study_args import study_config
from experiments.sweep import RunSpec
from experiments.worlds import hyperliquid_oct2025

__all__ = ["ADL_CROSS_ASSET_SHARE", "ADL_DELAY_S", "ALL_LIQUIDATIONS_USD", "LIQUIDATED_KINDS",
           "LIQUIDATED_NOTIONAL_USD", "LONG_LIQUIDATIONS_USD", "RATIOS", "REAL_FILES", "RunLayout",
           "adl_confined_share", "adl_delay_seconds", "adl_in_profit_share",
           "adl_over_liquidated", "adl_share_on_biggest_fall", "biggest_fall", "build_specs",
           "depth_ratio", "long_share", "main", "real_depth", "real_figures", "report",
           "run_layout", "run_ratios", "run_study", "validation_table", "window_steps"]

STUDY = "validate_oct2025"

# ----------------------------------------------------------------- the real figures

REAL_FILES = {
    "adl_summary": "liquidations/hyperliquid_adl_2025-10-10_summary.json",
    "adl_by_coin": "liquidations/hyperliquid_adl_2025-10-10_by_coin.csv",
    "depth": "depth/binance_usdm_BTCUSDT_bookDepth_2025-10-10.csv",
    "prices": {"BTC": "prices/binance_spot_BTCUSDT_5m_2025-10-01_2025-10-31.csv",
               "ETH": "prices/binance_spot_ETHUSDT_5m_2025-10-01_2025-10-31.csv"},
}
"""The shipped files the real figures come from, relative to the data directory
(:func:`sim.scenarios.replay.data_dir`; provenance in ``shared/data/README.md``)."""

LIQUIDATED_NOTIONAL_USD = 5.511e9
"""Hyperliquid liquidations in the 21:15–21:27 UTC window of 10 Oct 2025, USD.

``shared/data/README.md`` lines 46–47: "Figures from the same Hyperliquid
replay's README (not in a file here): liquidations 5.511B USD in 63,637
events and ADL 2.103B USD in 34,983 events over about 12 minutes"
(ConejoCapital/HyperMultiAssetedADL @79bad0f, README). No shipped file holds it.
"""

ADL_DELAY_S = 61.7
"""Seconds from the first liquidation to the first ADL in that window.

``shared/data/README.md`` lines 47–48: "the first ADL came 61.7 s after the
first liquidation" (the same replay's README; its liquidations start at
21:15:03, its ADL at 21:16:04 UTC).
"""

ADL_CROSS_ASSET_SHARE = 0.0
"""Share of Hyperliquid's ADL that crossed assets on 10 Oct 2025: none.

``shared/data/README.md`` lines 48–49: "ADL never crossed assets (each
coin's losses were covered by that coin's positions)". The confined share is
``1 - ADL_CROSS_ASSET_SHARE``.
"""

LONG_LIQUIDATIONS_USD = 16.83e9
"""Long positions liquidated market-wide on 10–11 Oct 2025 (24 h), USD.

``shared/data/README.md`` lines 50–51 (CoinGlass, as quoted by secondary
sources): "19.13B USD liquidated across 1,618,240 traders in 24 h, of which
longs 16.83B and shorts 2.49B (88 % long)". Longs and shorts add up to
19.32B, not 19.13B; the README's 88 % is 16.83 / 19.13 (16.83 / 19.32 = 87.1 %).
"""

ALL_LIQUIDATIONS_USD = 19.13e9
"""All positions liquidated market-wide in the same 24 h, USD (:data:`LONG_LIQUIDATIONS_USD`)."""

LIQUIDATED_KINDS = ("book_close", "option_close", "liquidator", "backstop", "option_takeover",
                    "insurance")
"""Event kinds that liquidate a position: the ``traded`` and ``backstopped`` paths of
:data:`sim.venue.liquidation.config.PATHS` (``universal_cover`` moves balances, not positions)."""


@dataclass(frozen=True)
class Ratio:
    """One compared quantity: its label, unit and the part of the event it covers."""

    label: str
    unit: str
    scope: str


RATIOS: dict[str, Ratio] = {
    "adl_over_liquidated": Ratio("ADL notional / liquidated notional", "ratio", "event window"),
    "adl_in_profit": Ratio("share of ADL'd positions in profit", "share", "event window"),
    "long_share": Ratio("share of liquidated notional that was long", "share", "whole run"),
    "depth_ratio": Ratio("BTC ask depth within 1 %: cascade / calm", "ratio",
                         "calm and cascade windows"),
    "adl_delay_s": Ratio("first liquidation to first ADL", "seconds", "event window"),
    "adl_confined": Ratio("share of ADL notional on positions that lost on their own asset",
                          "share", "event window"),
    "adl_on_biggest_fall": Ratio("share of BTC+ETH ADL notional on the asset that fell most",
                                 "share", "event window"),
}
"""Ratio key → label, unit and scope, in table order (module docstring)."""


def _utc(t: Any) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _window(w: Sequence[Any]) -> tuple[pd.Timestamp, pd.Timestamp]:
    return _utc(w[0]), _utc(w[1])


def _data_path(rel: str, data_dir: str | Path | None) -> Path:
    from sim.scenarios.replay import resolve_data_path

    return Path(data_dir) / rel if data_dir is not None else resolve_data_path(rel)


def real_depth(path: str | Path, calm: Sequence[Any], cascade: Sequence[Any], *,
               percentage: int = 1, column: str = "notional") -> dict[str, float]:
    """Mean depth of one band in the calm and the cascade windows, and their ratio.

    Reads the Binance depth-band file (``timestamp, percentage, depth,
    notional, weighted_avg_price``; ``shared/data/README.md``, depth/; its
    timestamps are UTC and one carries a stray leading blank).

    Args:
        path: The CSV.
        calm: ``[start, end)`` of the calm hours.
        cascade: ``[start, end)`` of the cascade.
        percentage: The band (``1``: ask side within 1 % of the mid, ``-1`` bid).
        column: ``notional`` (USDT) or ``depth`` (BTC).

    Returns:
        ``{"calm", "cascade", "ratio", "calm_n", "cascade_n"}``; NaN means when a
        window holds no sample.
    """
    d = pd.read_csv(path, dtype={"timestamp": str})
    d["timestamp"] = pd.to_datetime(d["timestamp"].str.strip(), utc=True)
    band = d[d["percentage"] == percentage].set_index("timestamp").sort_index()[column]
    out: dict[str, float] = {}
    for name, w in (("calm", calm), ("cascade", cascade)):
        lo, hi = _window(w)
        sel = band[(band.index >= lo) & (band.index < hi)]
        out[name] = float(sel.mean()) if len(sel) else math.nan
        out[f"{name}_n"] = float(len(sel))
    out["ratio"] = out["cascade"] / out["calm"] if out["calm"] > 0 else math.nan
    return out


def biggest_fall(falls: Mapping[str, float]) -> str | None:
    """The asset with the largest fall (first listed on a tie); None if no fall is finite."""
    finite = {a: f for a, f in falls.items() if np.isfinite(f)}
    return max(finite, key=finite.__getitem__) if finite else None


def _bar_falls(files: Mapping[str, str | Path], window: Sequence[Any]) -> dict[str, float]:
    """Fall of each asset in a window: 1 − lowest low / open of the first bar, from OHLC bars."""
    from margin.risk.calibration import load_price_csv

    lo, hi = _window(window)
    out = {}
    for asset, path in files.items():
        bars = load_price_csv(path)
        w = bars[(bars.index >= lo) & (bars.index < hi)]
        out[asset] = 1.0 - float(w["low"].min()) / float(w["open"].iloc[0]) if len(w) else math.nan
    return out


def real_figures(event_window: Sequence[Any], calm_window: Sequence[Any],
                 cascade_window: Sequence[Any], data_dir: str | Path | None = None
                 ) -> dict[str, dict[str, Any]]:
    """Every ratio's real value on 10 Oct 2025, from the shipped files (module docstring).

    Args:
        event_window: ``[start, end)`` UTC of the ADL window (for the asset that fell most).
        calm_window: Calm hours of the depth comparison.
        cascade_window: The cascade of the depth comparison.
        data_dir: The data directory (None: :func:`sim.scenarios.replay.data_dir`).

    Returns:
        Ratio key → ``{"value": float, "source": str}`` plus the inputs the
        values rest on (``adl_notional``, ``depth_calm``, ``falls`` ...).
    """
    summary = json.loads(_data_path(REAL_FILES["adl_summary"], data_dir).read_text())
    found = summary["key_findings"]
    adl = float(found["total_adl_notional"])
    by_coin = pd.read_csv(_data_path(REAL_FILES["adl_by_coin"], data_dir)).set_index("coin")
    depth = real_depth(_data_path(REAL_FILES["depth"], data_dir), calm_window, cascade_window)
    prices = {a: _data_path(p, data_dir) for a, p in REAL_FILES["prices"].items()}
    falls = _bar_falls(prices, event_window)
    fell = biggest_fall(falls)
    adl_by_asset = {a: float(by_coin.loc[a, "adl_notional"]) for a in prices}
    total = sum(adl_by_asset.values())
    readme = "shared/data/README.md"
    return {
        "adl_over_liquidated": {
            "value": adl / LIQUIDATED_NOTIONAL_USD,
            "source": f"{REAL_FILES['adl_summary']} total_adl_notional / {readme} "
                      f"liquidations 5.511B"},
        "adl_in_profit": {"value": float(found["profitable_positions_pct"]) / 100.0,
                          "source": f"{REAL_FILES['adl_summary']} profitable_positions_pct"},
        "long_share": {"value": LONG_LIQUIDATIONS_USD / ALL_LIQUIDATIONS_USD,
                       "source": f"{readme} CoinGlass 24 h: longs 16.83B of 19.13B"},
        "depth_ratio": {"value": depth["ratio"],
                        "source": f"{REAL_FILES['depth']} ask notional within 1 %"},
        "adl_delay_s": {"value": ADL_DELAY_S, "source": f"{readme} 61.7 s"},
        "adl_confined": {"value": 1.0 - ADL_CROSS_ASSET_SHARE,
                         "source": f"{readme} ADL never crossed assets"},
        "adl_on_biggest_fall": {
            "value": adl_by_asset[fell] / total if fell is not None and total > 0 else math.nan,
            "source": f"{REAL_FILES['adl_by_coin']} BTC, ETH; fall from the 5-minute bars"},
        "adl_notional": adl,
        "adl_by_asset": adl_by_asset,
        "adl_by_coin_total": float(by_coin["adl_notional"].sum()),
        "depth": depth,
        "falls": falls,
        "fell_most": fell,
    }


# ----------------------------------------------------------------- a run's ratios

@dataclass(frozen=True)
class RunLayout:
    """What a run's outputs need to be read on the historical clock.

    Attributes:
        t0: Historical time of step 0 (UTC).
        step_time: Historical time per step (bar interval / steps per bar).
        step_seconds: Model seconds per step (``market.step_seconds``).
        steps: Steps of the run.
        perp_asset: Perpetual instrument index → its underlying asset name.
        perp_name: Asset name → its perpetual's name (time-series column prefix).
    """

    t0: pd.Timestamp
    step_time: pd.Timedelta
    step_seconds: float
    steps: int
    perp_asset: Mapping[int, str]
    perp_name: Mapping[str, str]

    def time_at(self, step: int) -> pd.Timestamp:
        """Historical time of ``step``."""
        return self.t0 + self.step_time * int(step)

    @property
    def end(self) -> pd.Timestamp:
        """Historical time of the run's last step."""
        return self.time_at(self.steps)


def _without_seed(overrides: Sequence[str]) -> tuple[str, ...]:
    return tuple(o for o in overrides if not o.startswith("seed="))


@functools.lru_cache(maxsize=8)
def _layout(overrides: tuple[str, ...]) -> RunLayout:
    import sim

    cfg = sim.load_config(list(overrides))
    model = sim.MarketModel(cfg)
    scen = model.scenario
    if getattr(scen, "start", None) is None:
        raise ValueError(f"scenario {cfg.scenario.name!r} has no historical clock (a replay "
                         f"of price files is needed)")
    perps = [i for i in model.instruments if i.is_perp]
    return RunLayout(t0=_utc(scen.start), step_time=scen.bar_interval / scen.steps_per_bar,
                     step_seconds=float(cfg.market.step_seconds), steps=int(cfg.steps),
                     perp_asset={int(i.index): model.asset_names[i.base] for i in perps},
                     perp_name={model.asset_names[i.base]: i.name for i in perps})


def run_layout(overrides: Sequence[str]) -> RunLayout:
    """The :class:`RunLayout` of a run (its instruments and clock; the seed does not matter).

    Args:
        overrides: The run's run-config overrides.

    Raises:
        ValueError: The run's scenario is not a replay with a clock.
    """
    return _layout(_without_seed(overrides))


def window_steps(layout: RunLayout, window: Sequence[Any] | None) -> tuple[int, int]:
    """Steps ``[lo, hi)`` whose historical time lies in ``[start, end)`` (None: every step)."""
    if window is None:
        return 0, layout.steps + 1
    lo, hi = _window(window)

    def first_at(t: pd.Timestamp) -> int:
        return max(0, math.ceil((t - layout.t0) / layout.step_time))

    return first_at(lo), min(first_at(hi), layout.steps + 1)


def _in(events: pd.DataFrame, steps: tuple[int, int]) -> pd.DataFrame:
    return events[(events["step"] >= steps[0]) & (events["step"] < steps[1])]


def _perp_events(events: pd.DataFrame, layout: RunLayout, kinds: Sequence[str]) -> pd.DataFrame:
    inst = events["instrument"].to_numpy()
    keep = events["kind"].isin(list(kinds)) & np.isin(inst, list(layout.perp_asset))
    return events[keep]


def adl_over_liquidated(events: pd.DataFrame, layout: RunLayout,
                        steps: tuple[int, int]) -> float:
    """ADL notional / liquidated notional of the perpetuals within ``steps``.

    Returns:
        0 when positions were liquidated and none was ADL'd; NaN when nothing was liquidated.
    """
    ev = _in(events, steps)
    liq = float(_perp_events(ev, layout, LIQUIDATED_KINDS)["notional"].sum())
    adl = float(_perp_events(ev, layout, ("adl",))["notional"].sum())
    return adl / liq if liq > 0.0 else math.nan


def _adl_marks(adl: pd.DataFrame) -> np.ndarray:
    """The mark at each ADL event: the price less its loss against the mark per unit.

    A bankrupt long is closed at or above the mark, a short at or below it
    (:func:`sim.venue.liquidation.bankruptcy_prices`), and ``amount`` is
    ``|size| × |price − mark|``.
    """
    size = adl["size"].to_numpy(dtype=float)
    per_unit = adl["amount"].to_numpy(dtype=float) / np.abs(size)
    return adl["price"].to_numpy(dtype=float) - np.sign(size) * per_unit


def adl_in_profit_share(events: pd.DataFrame, layout: RunLayout,
                        steps: tuple[int, int]) -> float:
    """Share of ADL events whose counterparty was in profit at the mark, by count.

    The counterparty holds the side opposite to the ADL'd position (``-sign(size)``)
    entered at ``taker_entry``; it is in profit when ``-sign(size) × (mark −
    taker_entry) > 0``. Events without a recorded entry are left out.

    Returns:
        The share; NaN when no ADL event (with an entry) lies within ``steps``.
    """
    adl = _perp_events(_in(events, steps), layout, ("adl",))
    adl = adl[np.isfinite(adl["taker_entry"].to_numpy(dtype=float))]
    if adl.empty:
        return math.nan
    side = -np.sign(adl["size"].to_numpy(dtype=float))
    profit = side * (_adl_marks(adl) - adl["taker_entry"].to_numpy(dtype=float))
    return float(np.mean(profit > 0.0))


def long_share(events: pd.DataFrame, layout: RunLayout, steps: tuple[int, int]) -> float:
    """Share of liquidated perpetual notional within ``steps`` that was long (``size > 0``).

    Returns:
        The share; NaN when nothing was liquidated.
    """
    liq = _perp_events(_in(events, steps), layout, LIQUIDATED_KINDS)
    total = float(liq["notional"].sum())
    return float(liq.loc[liq["size"] > 0, "notional"].sum()) / total if total > 0 else math.nan


def depth_ratio(ts: pd.DataFrame, column: str, calm: tuple[int, int],
                cascade: tuple[int, int]) -> float:
    """Mean of a time-series column over the cascade steps / its mean over the calm steps.

    Returns:
        The ratio; NaN when a window holds no step or the calm mean is not positive.
    """
    s = ts.set_index("step")[column].astype(float)
    c = s[(s.index >= calm[0]) & (s.index < calm[1])]
    k = s[(s.index >= cascade[0]) & (s.index < cascade[1])]
    if c.empty or k.empty or not c.mean() > 0.0:
        return math.nan
    return float(k.mean() / c.mean())


def adl_delay_seconds(events: pd.DataFrame, layout: RunLayout,
                      steps: tuple[int, int]) -> float:
    """Seconds from the first liquidation within ``steps`` to the first ADL at or after it.

    ``(step of that ADL − step of that liquidation) × market.step_seconds``.

    Returns:
        The delay; NaN when no liquidation, or no ADL after it, lies within ``steps``.
    """
    ev = _in(events, steps)
    liq = _perp_events(ev, layout, LIQUIDATED_KINDS)["step"]
    if liq.empty:
        return math.nan
    first = int(liq.min())
    adl = _perp_events(ev, layout, ("adl",))["step"]
    adl = adl[adl >= first]
    return float((int(adl.min()) - first) * layout.step_seconds) if len(adl) else math.nan


def adl_confined_share(events: pd.DataFrame, layout: RunLayout,
                       steps: tuple[int, int]) -> float:
    """Share of ADL notional on positions that had lost on their own asset (by ``entry``).

    A position ADL'd (the bankrupt account's, ``size``) lost on its asset when
    ``sign(size) × (mark − entry) < 0``; ADL of a position that gained carries a
    loss made elsewhere to that asset's counterparties.

    Returns:
        The share; NaN when no ADL event (with an entry) lies within ``steps``.
    """
    adl = _perp_events(_in(events, steps), layout, ("adl",))
    adl = adl[np.isfinite(adl["entry"].to_numpy(dtype=float))]
    total = float(adl["notional"].sum())
    if adl.empty or total <= 0.0:
        return math.nan
    pnl = np.sign(adl["size"].to_numpy(dtype=float)) * (
        _adl_marks(adl) - adl["entry"].to_numpy(dtype=float))
    return float(adl.loc[pnl < 0.0, "notional"].sum()) / total


def _index_falls(ts: pd.DataFrame, assets: Sequence[str], steps: tuple[int, int]
                 ) -> dict[str, float]:
    """Fall of each asset's index within ``steps``: 1 − lowest / first value."""
    s = ts.set_index("step")
    w = s[(s.index >= steps[0]) & (s.index < steps[1])]
    return {a: (1.0 - float(w[f"{a}.index"].min()) / float(w[f"{a}.index"].iloc[0])
                if len(w) else math.nan) for a in assets}


def adl_share_on_biggest_fall(events: pd.DataFrame, ts: pd.DataFrame, layout: RunLayout,
                              steps: tuple[int, int], assets: Sequence[str] = ("BTC", "ETH")
                              ) -> float:
    """Share of the ADL notional on ``assets`` that fell on the asset whose index fell most.

    Returns:
        The share; NaN when nothing of ``assets`` was ADL'd within ``steps``.
    """
    adl = _perp_events(_in(events, steps), layout, ("adl",))
    asset = adl["instrument"].map(layout.perp_asset)
    adl = adl[asset.isin(list(assets))]
    total = float(adl["notional"].sum())
    fell = biggest_fall(_index_falls(ts, assets, steps))
    if total <= 0.0 or fell is None:
        return math.nan
    return float(adl.loc[adl["instrument"].map(layout.perp_asset) == fell, "notional"].sum()
                 ) / total


def run_ratios(events: pd.DataFrame, ts: pd.DataFrame, layout: RunLayout, cfg: Any
               ) -> dict[str, float]:
    """Every ratio of :data:`RATIOS` for one run (NaN where undefined), plus its inputs.

    Args:
        events: The run's ``liquidations.parquet``.
        ts: Its ``timeseries.parquet``.
        layout: Its :func:`run_layout`.
        cfg: Study config (``event_window``, ``calm_window``, ``cascade_window``).

    Returns:
        ``sim.<ratio>`` values and ``sim.liquidated_notional``,
        ``sim.adl_notional`` (event window), ``sim.liquidated_notional_run``,
        ``sim.adl_notional_run`` (whole run), ``sim.depth_calm``,
        ``sim.depth_cascade`` (USD).
    """
    event = window_steps(layout, cfg.event_window)
    calm = window_steps(layout, cfg.calm_window)
    cascade = window_steps(layout, cfg.cascade_window)
    run = window_steps(layout, None)
    col = f"{layout.perp_name['BTC']}.depth_ask_1pct"
    s = ts.set_index("step")[col].astype(float)

    def mean(w: tuple[int, int]) -> float:
        v = s[(s.index >= w[0]) & (s.index < w[1])]
        return float(v.mean()) if len(v) else math.nan

    def notional(w: tuple[int, int], kinds: Sequence[str]) -> float:
        return float(_perp_events(_in(events, w), layout, kinds)["notional"].sum())

    return {
        "sim.adl_over_liquidated": adl_over_liquidated(events, layout, event),
        "sim.adl_in_profit": adl_in_profit_share(events, layout, event),
        "sim.long_share": long_share(events, layout, run),
        "sim.depth_ratio": depth_ratio(ts, col, calm, cascade),
        "sim.adl_delay_s": adl_delay_seconds(events, layout, event),
        "sim.adl_confined": adl_confined_share(events, layout, event),
        "sim.adl_on_biggest_fall": adl_share_on_biggest_fall(events, ts, layout, event),
        "sim.liquidated_notional": notional(event, LIQUIDATED_KINDS),
        "sim.adl_notional": notional(event, ("adl",)),
        "sim.liquidated_notional_run": notional(run, LIQUIDATED_KINDS),
        "sim.adl_notional_run": notional(run, ("adl",)),
        "sim.depth_calm": mean(calm),
        "sim.depth_cascade": mean(cascade),
    }


# ----------------------------------------------------------------- the study

def world_overrides(cfg: DictConfig | Any) -> list[str]:
    """The runs' overrides before the seed: the world and its steps, flags, ``overrides``.

    ``steps`` null covers the replayed window (:func:`experiments.worlds.hyperliquid_oct2025`):
    the scenario's own 2,880 steps, or the length of the part ``start`` / ``end`` select.
    """
    ov = hyperliquid_oct2025(start=None if cfg.start is None else str(cfg.start),
                             end=None if cfg.end is None else str(cfg.end),
                             steps=None if cfg.steps is None else int(cfg.steps),
                             protocol=str(cfg.protocol))
    return [*ov, "output.figures=false", "progress=false", *list(cfg.overrides or [])]


def build_specs(cfg: DictConfig | Any) -> list[RunSpec]:
    """One run per replicate, named ``rNN``, seeds from ``SeedSequence(base_seed).spawn``.

    Args:
        cfg: The study config (``protocol``, ``start``, ``end``, ``steps``,
            ``replicates``, ``base_seed``, ``overrides``).
    """
    world = world_overrides(cfg)
    return [RunSpec(f"r{k:02d}", (*world, f"seed={seed}"), {"replicate": k, "seed": seed})
            for k, seed in enumerate(replicate_seeds(int(cfg.base_seed), int(cfg.replicates)))]


def add_run_ratios(runs: StudyRuns, table: pd.DataFrame, cfg: DictConfig | Any
                   ) -> pd.DataFrame:
    """Add every finished run's ratios (:func:`run_ratios`) to ``aggregated.csv``.

    A finished run whose outputs cannot be read becomes a failed run (its row
    ``status = failed`` with the error; NaN values), so it is counted, never a zero.

    Returns:
        The table with the ``sim.*`` columns.
    """
    specs = {s.name: s for s in runs.specs}
    rows = {}
    for name in list(runs.finished):
        try:
            d = runs.out / "runs" / name
            events = pd.read_parquet(d / "liquidations.parquet")
            ts = pd.read_parquet(d / "timeseries.parquet")
            rows[name] = run_ratios(events, ts, run_layout(specs[name].overrides), cfg)
        except (OSError, ValueError, KeyError) as exc:
            err = f"ratios: {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
            runs.finished.remove(name)
            runs.errors[name] = err
            table.loc[table["run"] == name, ["status", "error"]] = ["failed", err]
    cols = [*(f"sim.{k}" for k in RATIOS), "sim.liquidated_notional", "sim.adl_notional",
            "sim.liquidated_notional_run", "sim.adl_notional_run", "sim.depth_calm",
            "sim.depth_cascade"]
    extra = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=cols)
    extra.index.name = "run"
    out = table.drop(columns=[c for c in cols if c in table.columns])
    out = out.merge(extra.reset_index(), on="run", how="left")
    out.to_csv(runs.out / "aggregated.csv", index=False)
    return out


def validation_table(agg: pd.DataFrame, real: Mapping[str, Mapping[str, Any]],
                     confidence: float = 0.95) -> pd.DataFrame:
    """Real against simulated, per ratio of :data:`RATIOS`.

    Args:
        agg: ``aggregated.csv`` (``status``, ``sim.<ratio>``).
        real: :func:`real_figures`.
        confidence: Level of the Student-*t* interval over replicates.

    Returns:
        Columns ``ratio, label, unit, scope, real, sim_mean, ci_low_<level>,
        ci_high_<level>, sim_over_real, runs`` (finished runs where the ratio is
        defined), ``runs_undefined`` (finished runs where it is not, e.g. no
        ADL), ``runs_failed`` (failed or not run), ``real_source``. A ratio
        without a run to rest on is NaN, never 0.
    """
    pct = f"{confidence:.0%}"
    done = (agg["status"].astype(str) == "done").to_numpy() if "status" in agg else np.ones(
        len(agg), bool)
    rows = []
    for key, r in RATIOS.items():
        col = f"sim.{key}"
        vals = (pd.to_numeric(agg[col], errors="coerce").to_numpy(dtype=float) if col in agg
                else np.full(len(agg), np.nan))
        v = vals[done]
        ci = t_interval(v, confidence)
        value = float(real[key]["value"])
        ratio = ci["mean"] / value if value != 0.0 and np.isfinite(value) else math.nan
        rows.append({"ratio": key, "label": r.label, "unit": r.unit, "scope": r.scope,
                     "real": value, "sim_mean": ci["mean"], f"ci_low_{pct}": ci["ci_low"],
                     f"ci_high_{pct}": ci["ci_high"], "sim_over_real": ratio,
                     "runs": int(ci["n"]), "runs_undefined": int(done.sum() - ci["n"]),
                     "runs_failed": int((~done).sum()), "real_source": real[key]["source"]})
    return pd.DataFrame(rows)


def plot_validation(agg: pd.DataFrame, table: pd.DataFrame, out_dir: Path,
                    confidence: float = 0.95) -> dict[str, Path]:
    """One panel per ratio: the real value, each finished replicate, their mean and interval.

    Returns:
        Files written (``validation.png`` / ``.pdf``).
    """
    import matplotlib.pyplot as plt

    from sim.output.figures import OKABE_ITO, save

    pct = f"{confidence:.0%}"
    done = agg["status"].astype(str) == "done" if "status" in agg else pd.Series(True, agg.index)
    n = len(table)
    cols = 4
    fig, axes = plt.subplots(math.ceil(n / cols), cols, figsize=(3.2 * cols, 2.9 *
                                                                 math.ceil(n / cols)),
                             squeeze=False)
    for ax, rec in zip(axes.flat, table.to_dict("records"), strict=False):
        col = f"sim.{rec['ratio']}"
        v = (pd.to_numeric(agg.loc[done, col], errors="coerce").dropna().to_numpy()
             if col in agg else np.zeros(0))
        ax.axhline(rec["real"], color=OKABE_ITO[5], lw=1.5, label="real, 10 Oct 2025")
        if v.size:
            ax.scatter(np.full(v.size, 0.0) + np.linspace(-0.15, 0.15, v.size), v, s=14,
                       color=OKABE_ITO[1], zorder=3, label="replicates")
        if np.isfinite(rec["sim_mean"]):
            lo, hi = rec[f"ci_low_{pct}"], rec[f"ci_high_{pct}"]
            err = None if not np.isfinite(lo) else [[rec["sim_mean"] - lo], [hi - rec["sim_mean"]]]
            ax.errorbar([0.4], [rec["sim_mean"]], yerr=err, fmt="o", color=OKABE_ITO[6],
                        capsize=3, label=f"simulated mean, {pct} t-interval")
        else:
            ax.text(0.5, 0.5, "undefined in every run" if rec["runs_failed"] == 0 else
                    "no finished run", transform=ax.transAxes, ha="center", fontsize=8)
        ax.set_xlim(-0.5, 0.8)
        ax.set_xticks([])
        ax.set_title(f"{rec['label']}\n({rec['unit']}; {rec['runs']} runs, "
                     f"{rec['runs_undefined']} undefined)", fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower right", fontsize=7)
    fig.suptitle("10 Oct 2025 on a Hyperliquid-like venue: real against simulated", fontsize=9)
    fig.tight_layout()
    return save(fig, Path(out_dir), "validation")


def timeline_figure(run_dir: Path, layout: RunLayout, cfg: Any, out_dir: Path
                    ) -> dict[str, Path]:
    """One run around the crash: BTC and ETH index, BTC ask depth, liquidated and ADL notional.

    The event, calm and cascade windows are shaded; the x axis is UTC time.

    Returns:
        Files written (``timeline.png`` / ``.pdf``).
    """
    import matplotlib.pyplot as plt

    from sim.output.figures import OKABE_ITO, save

    ts = pd.read_parquet(run_dir / "timeseries.parquet")
    events = pd.read_parquet(run_dir / "liquidations.parquet")
    lo = max(0, window_steps(layout, cfg.event_window)[0] - 180)
    hi = min(layout.steps, window_steps(layout, cfg.event_window)[1] + 120)
    w = ts[(ts["step"] >= lo) & (ts["step"] <= hi)]
    t = [layout.time_at(s) for s in w["step"]]
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    for i, asset in enumerate(sorted(layout.perp_name)):
        axes[0].plot(t, w[f"{asset}.index"] / float(w[f"{asset}.index"].iloc[0]),
                     color=OKABE_ITO[1 + i], lw=1.0, label=f"{asset} index")
    axes[1].plot(t, w[f"{layout.perp_name['BTC']}.depth_ask_1pct"] / 1e3, color=OKABE_ITO[3],
                 lw=0.9, label="BTC perpetual ask depth within 1 %")
    for i, (kinds, label) in enumerate(((LIQUIDATED_KINDS, "liquidated"), (("adl",), "ADL"))):
        ev = _perp_events(events, layout, kinds)
        per = ev.groupby("step")["notional"].sum().reindex(w["step"], fill_value=0.0)
        axes[2].bar(t, per.to_numpy() / 1e3, width=layout.step_time * 0.8, color=OKABE_ITO[5 + i],
                    alpha=0.8, label=f"{label} notional")
    for ax in axes:
        for window, colour in ((cfg.cascade_window, "0.92"), (cfg.event_window, "0.78")):
            a, b = _window(window)
            ax.axvspan(a, b, color=colour, alpha=0.6, lw=0, zorder=0)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("index / first shown")
    axes[1].set_ylabel("k USD")
    axes[2].set_ylabel("k USD per step")
    axes[2].set_xlabel("UTC (shaded: the cascade window; darker: the event window)")
    axes[0].set_title(f"Replicate {run_dir.name}: the 10 Oct 2025 replay on the "
                      f"Hyperliquid-like venue")
    fig.autofmt_xdate()
    fig.tight_layout()
    return save(fig, Path(out_dir), "timeline")


def report(out_dir: str | Path, cfg: DictConfig | Any) -> dict[str, Path]:
    """Tables and figures from ``aggregated.csv`` and the real files (never re-runs).

    Args:
        out_dir: The study's output directory.
        cfg: Study config (the windows, ``confidence``).

    Returns:
        Files written.
    """
    out = Path(out_dir)
    agg = pd.read_csv(out / "aggregated.csv")
    real = real_figures(cfg.event_window, cfg.calm_window, cfg.cascade_window)
    level = float(cfg.confidence)
    table = validation_table(agg, real, level)
    files: dict[str, Path] = {}
    cap = (f"10 Oct 2025 on a Hyperliquid-like venue: real against simulated "
           f"(mean over replicates, {level:.0%} t-interval)")
    for k, v in write_table(table, out / "tables", "validation", caption=cap).items():
        files[f"validation_{k}"] = v
    (out / "real.json").write_text(json.dumps(real, indent=2, sort_keys=True, default=str) + "\n")
    files["real"] = out / "real.json"
    files.update(plot_validation(agg, table, out / "figures", level))
    first = out / "runs" / "r00"
    done = agg.loc[agg["run"] == "r00", "status"].astype(str).tolist() if "run" in agg else []
    if done == ["done"] and (first / "timeseries.parquet").is_file():
        rec = json.loads((first / "done.json").read_text())
        files.update(timeline_figure(first, run_layout(rec["overrides"]), cfg, out / "figures"))
    return files


def run_study(cfg: DictConfig | Any) -> Path:
    """Run (or resume) the replicates, add their ratios, write the report.

    Args:
        cfg: Study config.

    Returns:
        The output directory.

    Raises:
        experiments.common.StudyRunsFailed: Some runs have no result (raised
            after the tables and figures are written).
    """
    runs, table = run_and_aggregate(cfg, build_specs(cfg))
    add_run_ratios(runs, table, cfg)
    report(runs.out, cfg)
    runs.finish(STUDY)
    return runs.out


def main(argv: list[str] | None = None) -> None:
    """Command line: ``key=value`` overrides of ``conf/experiment/validate_oct2025.yaml``.

    Arguments are checked first (:data:`experiments.study_args.SCHEMAS`): a bad
    one stops with one line on stderr and exit status 2, before anything is
    written. Prints the table of real against simulated.
    """
    cfg = study_config(STUDY, sys.argv[1:] if argv is None else argv)
    with study_exit():
        out = run_study(cfg)
    table = pd.read_csv(out / "tables" / "validation.csv")
    show = table.drop(columns=["label", "scope", "real_source"])
    with pd.option_context("display.width", 200, "display.max_columns", None,
                           "display.float_format", "{:,.4g}".format):
        print(show.to_string(index=False))
    print(f"{STUDY} outputs in {out.resolve()}:")
    for sub in ("aggregated.csv", "tables", "figures"):
        print(f"  {out / sub}")


if __name__ == "__main__":
    main()
