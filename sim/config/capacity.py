"""What a run can represent: prices in integer ticks, and memory for its per-step outputs.

Books hold prices as int64 ticks and quantities as int64 lots
(:mod:`sim.market.book.constants`); the model keeps one time-series row per step, the
fills and the event log in memory until the run ends (``sim.output.runner``). A
config whose prices leave the books' range, or whose outputs cannot fit in
memory, passes every per-key range check and then runs a dead market (a book
that cannot quote) or dies hours later; these checks refuse it at the door,
and :func:`check_fundamentals` stops a run whose exogenous path leaves the
range anyway, with one line instead of an overflow deep in a kernel.

Bounds:

* a tick is at most 1 % of the price (:data:`MIN_TICKS` ticks per price): a
  coarser book's one-tick spread is already 100 bps;
* a price is at most :data:`MAX_TICKS` ticks (int64 ticks times int64 lots
  stay far from overflow in the notional arithmetic);
* the exogenous volatility, spikes included, is at most :data:`MAX_VOL` a
  year (the bound of ``market.assets[*].vol``), and its 6-sigma band over the
  run keeps the price inside the tick range;
* the estimated memory of the per-step outputs (:func:`estimated_run_bytes`)
  is at most :data:`MEMORY_SHARE` of the machine's physical memory.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

__all__ = ["MAX_TICKS", "MAX_VOL", "MEMORY_SHARE", "MIN_TICKS", "SimulationError",
           "check_fundamentals", "check_run_memory", "check_scenario_path",
           "estimated_run_bytes", "physical_memory_bytes"]

MIN_TICKS = 100.0
"""Fewest ticks per price: a tick of at most 1 % of the price."""

MAX_TICKS = 1e12
"""Most ticks per price a book represents."""

MAX_VOL = 10.0
"""Largest annualised volatility of a fundamental, spikes included (1,000 % a year)."""

BAND_SIGMAS = 6.0
"""Width, in standard deviations of the run's log return, of the band the path must fit."""

MEMORY_SHARE = 0.5
"""Share of physical memory the estimated per-step outputs may take."""

BYTES_PER_SERIES_VALUE = 60.0
"""Memory per time-series column and step, held until the run ends (measured: peak RSS of
the default world grows 8.5 kB a step with 103 columns, two venues 16.7 kB with 202)."""

BYTES_PER_TRADER_STEP = 8.0
"""Memory per trading account and step for fills and events (measured: 3,000 noise traders
add 22 kB a step)."""


class SimulationError(RuntimeError):
    """A run left what the world can represent; the message is one line naming the cause."""


def physical_memory_bytes() -> int:
    """This machine's physical memory in bytes (``os.sysconf``; 0 if unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def _series_width(cfg: Any) -> int:
    """Columns of the per-step time series: per asset, per instrument and per protocol."""
    n_assets = len(cfg.market.assets)
    n_protocols = len(cfg.protocols)
    listed = sum(len(p.assets) if len(p.assets) else n_assets for p in cfg.protocols)
    books = sum((len(p.assets) if len(p.assets) else n_assets) * (int(p.spot) + int(p.perp))
                for p in cfg.protocols)
    return 4 * n_assets + 12 * books + 3 * listed + 40 * n_protocols + 10


def _traders(cfg: Any) -> int:
    a = cfg.agents
    per_protocol = sum(int(getattr(getattr(a, k), "n", 0)) for k in
                       ("noise", "fundamentalist", "momentum", "leveraged"))
    return per_protocol * len(cfg.protocols)


def estimated_run_bytes(cfg: Any) -> float:
    """Estimated memory of a run's per-step outputs, in bytes.

    ``steps x (series width x BYTES_PER_SERIES_VALUE + traders x
    BYTES_PER_TRADER_STEP)``; the series width is counted from the listed
    books and protocols (within 10 % of the real column count).
    """
    per_step = (_series_width(cfg) * BYTES_PER_SERIES_VALUE
                + _traders(cfg) * BYTES_PER_TRADER_STEP)
    return float(cfg.steps) * per_step


def check_run_memory(cfg: Any) -> None:
    """Refuse a run whose per-step outputs cannot fit in memory (``steps`` named).

    Raises:
        sim.config.ConfigError: ``steps = N is invalid: needs about X GB ...``.
    """
    from sim.config.checks import ConfigError

    total = physical_memory_bytes()
    if total <= 0:
        return
    need = estimated_run_bytes(cfg)
    budget = MEMORY_SHARE * total
    if need > budget:
        per_step = need / float(cfg.steps)
        most = int(budget // per_step)
        raise ConfigError(
            f"steps = {cfg.steps!r} is invalid: the run keeps about {per_step / 1e3:.1f} kB per "
            f"step in memory, {need / 1e9:.0f} GB in all, and this machine has "
            f"{total / 1e9:.0f} GB: must be <= {most:,} (or split the run)")


def _tick_band(market: Any) -> tuple[np.ndarray, np.ndarray]:
    tick = np.array([float(a.tick_size) for a in market.assets])
    return tick * 1.0, tick * MAX_TICKS


def check_scenario_path(scenario: Any, scenario_cfg: Any, market: Any, steps: int) -> None:
    """The scenario's prices stay where the books can quote them over ``steps`` steps.

    A replayed window is checked knot by knot; a random path by its largest
    volatility (spikes included) and the 6-sigma band of its log price over
    the run.

    Raises:
        sim.config.ConfigError: One line naming the scenario key at fault.
    """
    from sim.config.checks import ConfigError

    names = [a.name for a in market.assets]
    lo, hi = _tick_band(market)
    knots = getattr(scenario, "knot_prices", None)
    if knots is not None:
        replayed = getattr(scenario, "replayed", np.arange(len(names)))
        kp = np.asarray(knots, dtype=np.float64)
        for col, i in enumerate(np.asarray(replayed)):
            path = kp[:, col]
            if path.min() < lo[i] * MIN_TICKS or path.max() > hi[i]:
                raise ConfigError(
                    f"scenario.params.files.{names[i]} is invalid: the replayed prices span "
                    f"{path.min():.3g} .. {path.max():.3g}, outside what the {names[i]} books "
                    f"quote ({lo[i] * MIN_TICKS:.3g} .. {hi[i]:.3g} at tick_size {lo[i]:g}); "
                    f"set scenario.params.normalise=true or market.assets[{i}].tick_size")
    vol = np.array([float(a.vol) for a in market.assets])
    peak = vol.copy()
    for shock in getattr(scenario, "shocks", ()):
        mult = getattr(shock, "multiplier", None)
        if mult is not None and hasattr(shock, "window"):
            peak = np.maximum(peak, vol * np.asarray(mult, dtype=np.float64))
    worst = int(np.argmax(peak)) if len(peak) else 0
    if len(peak) and peak[worst] > MAX_VOL:
        raise ConfigError(
            f"scenario.params.multiplier = {peak[worst] / max(vol[worst], 1e-300):g} is invalid: "
            f"{names[worst]}'s volatility would reach {peak[worst]:.3g} a year; at most "
            f"{MAX_VOL:g} (market.assets[*].vol's bound)")
    step_years = float(market.step_seconds) / (365.0 * 24 * 3600)
    band = BAND_SIGMAS * peak * math.sqrt(max(int(steps), 1) * step_years)
    prices = np.array([float(a.price) for a in market.assets])
    for i, name in enumerate(names):
        if knots is not None and i in set(np.asarray(getattr(scenario, "replayed", []))):
            continue
        down, up = prices[i] * math.exp(-band[i]), prices[i] * math.exp(band[i])
        if down < lo[i] * MIN_TICKS / 100.0 or up > hi[i]:
            raise ConfigError(
                f"steps = {steps} is invalid: at {name}'s volatility of {peak[i]:.3g} a year the "
                f"price's 6-sigma band over the run ({down:.3g} .. {up:.3g}) leaves what its "
                f"books quote ({lo[i]:.3g} .. {hi[i]:.3g}); shorten the run or lower the "
                f"volatility")


def check_fundamentals(step: int, prices: np.ndarray, names: list[str], lo: np.ndarray,
                       hi: np.ndarray) -> None:
    """Stop a run whose exogenous prices left the books' range (one line, the asset named).

    Args:
        step: The model step.
        prices: Fundamental prices, one per asset.
        names: Asset names.
        lo: Lowest quotable price per asset (one tick).
        hi: Highest quotable price per asset.

    Raises:
        SimulationError: The first asset outside ``[lo, hi]`` or not finite.
    """
    bad = ~np.isfinite(prices) | (prices < lo) | (prices > hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SimulationError(
            f"step {step}: the {names[i]} fundamental price {prices[i]:.3g} left what its books "
            f"can quote ({lo[i]:.3g} .. {hi[i]:.3g}); lower the scenario's volatility or shock "
            f"sizes")
