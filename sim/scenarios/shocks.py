"""Shock scenarios: correlated GBM plus a schedule of exogenous shocks.

Stylised stress scenarios on top of :class:`~sim.scenarios.gbm.CorrelatedGBM`.
They draw exactly the random numbers the ``calm`` scenario draws, so with the
same seed a shocked path equals the calm path times the shock profile (and,
for a volatility spike, differs only inside the window). The shock sizes in
``conf/scenario/*.yaml`` are of the order of the crash days in
``shared/data/README.md`` (BTC spot hourly: −52.6 % on 12–13 Mar 2020, −34.5 %
on 19 May 2021, −17.6 % on 10 Oct 2025; worst hour −20 %).

Shock components (composable in Python through :class:`ShockScenario`):

* :class:`Crash` — the price is multiplied by a deterministic profile ``M(j)``
  that falls from 1 to ``1 - x`` over ``k`` steps starting at ``start_step``,
  then optionally recovers a fraction ``r`` of the loss over ``m`` steps, to
  ``1 - x (1 - r)``. GBM keeps moving underneath, so after the shock the path
  continues from the crashed level. ``shape: log`` falls by the same return each
  step, ``shape: linear`` by the same price amount.
* :class:`VolSpike` — the GBM volatility of the chosen assets is multiplied by
  ``m`` inside a window (drift correction ``-sigma^2/2`` uses the raised vol).
* :class:`LiquidityDrought` — :meth:`~sim.scenarios.base.Scenario.liquidity`
  returns ``level`` inside a window.
* :class:`OracleOutage` — the oracle's latency is raised to ``L`` steps and/or
  it publishes nothing new inside a window.

Config scenarios (``scenario.name`` → params; defaults in each factory's
docstring, while ``conf/scenario/<name>.yaml`` sets every param explicitly):

* ``jump_crash``: ``start_step``, ``crash`` (fraction or mapping asset →
  fraction), ``duration_steps``, ``assets`` (``all`` or list), ``shape``.
* ``flash_crash``: the same plus ``recovery`` (fraction of the loss regained)
  and ``recovery_steps``.
* ``vol_spike``: ``start_step``, ``end_step``, ``multiplier``, ``assets``.
* ``liquidity_drought``: ``start_step``, ``end_step``, ``level`` and an
  optional crash inside: ``crash`` (0 = none), ``crash_start_step``
  (default ``start_step``), ``crash_duration_steps``, ``assets``, ``shape``.
* ``oracle_delay``: ``start_step``, ``end_step``, ``latency_steps`` (null =
  configured), ``stale`` and the same optional crash params.

Windows are half-open, ``start_step <= step < end_step``; steps are counted
as in :mod:`sim.scenarios.base` (the model's first step is 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.scenarios.base import Window
from sim.scenarios.gbm import CorrelatedGBM
from sim.scenarios.params import Params

__all__ = [
    "Crash",
    "LiquidityDrought",
    "OracleOutage",
    "ShockScenario",
    "VolSpike",
    "flash_crash",
    "jump_crash",
    "liquidity_drought",
    "oracle_delay",
    "vol_spike",
]

SHAPES = ("log", "linear")
MAX_STEPS = 100_000_000


@dataclass(frozen=True, eq=False)
class Crash:
    """A deterministic fall of the fundamental, optionally followed by a recovery.

    The cumulative multiplier ``M(j)`` after ``j`` steps of the event is, with
    fall ``x`` (per asset), ``k = duration_steps``, ``m = recovery_steps`` and
    recovered fraction ``r``:

    * fall, ``0 <= j <= k``: ``(1-x)^(j/k)`` (log) or ``1 - x j/k`` (linear);
    * recovery, ``j = k + i``, ``0 <= i <= m``: from ``1 - x`` to
      ``R = 1 - x (1 - r)``, geometrically (log) or linearly (linear).

    Step ``start_step`` is the first step of the fall, so the price at the end
    of step ``start_step + k - 1`` is the pre-crash price times ``1 - x`` (times
    the GBM moves of those steps).

    Args:
        start_step: First step of the fall (>= 1).
        size: Fall ``x`` per asset, each in [0, 1) (0 = asset not hit).
        duration_steps: ``k`` >= 1.
        recovery: ``r`` in [0, 1].
        recovery_steps: ``m`` (0 when ``recovery`` is 0).
        shape: ``log`` or ``linear``.
    """

    start_step: int
    size: np.ndarray
    duration_steps: int
    recovery: float = 0.0
    recovery_steps: int = 0
    shape: str = "log"

    def __post_init__(self) -> None:
        size = np.asarray(self.size, dtype=np.float64)
        if np.any(size < 0) or np.any(size >= 1):
            raise ValueError(f"params.crash = {size.tolist()} is invalid: must be in [0, 1)")
        object.__setattr__(self, "size", size)
        if self.shape not in SHAPES:
            raise ValueError(f"params.shape = {self.shape!r} is invalid: must be one of "
                             f"{', '.join(SHAPES)}")
        if self.recovery > 0 and self.recovery_steps < 1:
            raise ValueError(f"params.recovery_steps = {self.recovery_steps} is invalid: must "
                             "be >= 1 when recovery > 0")

    @property
    def end_step(self) -> int:
        """First step after the fall and the recovery."""
        return self.start_step + self.duration_steps + self.recovery_steps

    def multiplier(self, j: int) -> np.ndarray:
        """Cumulative multiplier ``M(j)`` after ``j`` steps of the event (clipped)."""
        k, m, x, r = self.duration_steps, self.recovery_steps, self.size, self.recovery
        j = min(max(j, 0), k + m)
        if j <= k:
            u = j / k
            return (1.0 - x) ** u if self.shape == "log" else 1.0 - x * u
        u = (j - k) / m
        if self.shape == "log":
            return (1.0 - x) * ((1.0 - x * (1.0 - r)) / (1.0 - x)) ** u
        return 1.0 - x * (1.0 - r * u)

    def log_factor(self, step: int) -> np.ndarray | None:
        """Log of this step's multiplicative move ``M(j) / M(j-1)``, or ``None`` outside."""
        j = step - self.start_step + 1
        if j < 1 or j > self.duration_steps + self.recovery_steps:
            return None
        return np.log(self.multiplier(j)) - np.log(self.multiplier(j - 1))


@dataclass(frozen=True, eq=False)
class VolSpike:
    """Volatility multiplied by ``multiplier`` (per asset; 1 = unchanged) in a window.

    Args:
        window: Steps with the raised volatility.
        multiplier: Per-asset factor on the GBM volatility (> 0).
    """

    window: Window
    multiplier: np.ndarray

    def vol_factor(self, step: int) -> np.ndarray | None:
        """The per-asset factor at ``step``, or ``None`` outside the window."""
        return self.multiplier if step in self.window else None


@dataclass(frozen=True)
class LiquidityDrought:
    """Market makers quote ``level`` times their normal size inside a window.

    Args:
        window: Steps of the drought.
        level: Liquidity multiplier in [0, 1] (0 = full withdrawal).
    """

    window: Window
    level: float


@dataclass(frozen=True)
class OracleOutage:
    """The oracle lags ``latency_steps`` and/or stops publishing inside a window.

    Models on-chain oracle failures such as delayed or missing updates during
    network congestion.

    Args:
        window: Steps of the outage.
        latency_steps: Latency override in steps (``None`` keeps the configured one).
        stale: Publish nothing new (the index keeps its last value).
    """

    window: Window
    latency_steps: int | None = None
    stale: bool = False


Shock = Crash | VolSpike | LiquidityDrought | OracleOutage


class ShockScenario(CorrelatedGBM):
    """Correlated GBM with a schedule of crashes, vol spikes, droughts and outages.

    Args:
        prices: Initial prices, one per asset.
        vol: Annualised volatilities.
        drift: Annualised drifts.
        correlation: Correlation matrix.
        dt_years: Step length in years.
        shocks: The shock components (any number of each kind). Overlapping
            crashes multiply, vol spikes multiply, the lowest liquidity level
            and the largest latency win.
    """

    def __init__(self, prices: np.ndarray, vol: np.ndarray, drift: np.ndarray,
                 correlation: np.ndarray, dt_years: float, shocks: Sequence[Shock] = ()
                 ) -> None:
        super().__init__(prices, vol, drift, correlation, dt_years)
        self.shocks: tuple[Shock, ...] = tuple(shocks)
        for s in self.shocks:
            if not isinstance(s, (Crash, VolSpike, LiquidityDrought, OracleOutage)):
                raise TypeError(f"not a shock component: {s!r}")
            size = getattr(s, "size", getattr(s, "multiplier", None))
            if size is not None and np.shape(size) != self.prices.shape:
                raise ValueError(f"{type(s).__name__} needs one value per asset "
                                 f"({len(self.prices)}), got shape {np.shape(size)}")

    def _move(self, rng: np.random.Generator) -> None:
        step = self.steps + 1
        vol = self.vol
        for s in self.shocks:
            if isinstance(s, VolSpike) and (f := s.vol_factor(step)) is not None:
                vol = vol * f
        inc = self.log_increment(rng, vol)
        for s in self.shocks:
            if isinstance(s, Crash) and (g := s.log_factor(step)) is not None:
                inc = inc + g
        self.prices *= np.exp(inc)

    def vol_factors(self, step: int, assets: np.ndarray) -> np.ndarray | None:
        """Product of the volatility spikes active at ``step`` for ``assets`` (None if none)."""
        out = None
        for s in self.shocks:
            if isinstance(s, VolSpike) and (f := s.vol_factor(step)) is not None:
                out = f[assets] if out is None else out * f[assets]
        return out

    def liquidity(self, step: int) -> float:
        """Lowest ``level`` of the droughts active at ``step`` (1 when none)."""
        levels = [s.level for s in self.shocks
                  if isinstance(s, LiquidityDrought) and step in s.window]
        return float(min(levels, default=1.0))

    def oracle_latency(self, step: int) -> int | None:
        """Largest latency override of the outages active at ``step`` (``None`` when none)."""
        lat = [s.latency_steps for s in self.shocks if isinstance(s, OracleOutage)
               and s.latency_steps is not None and step in s.window]
        return max(lat) if lat else None

    def oracle_stale(self, step: int) -> bool:
        """Whether an outage active at ``step`` freezes the oracle."""
        return any(isinstance(s, OracleOutage) and s.stale and step in s.window
                   for s in self.shocks)

    @property
    def max_oracle_latency(self) -> int:
        """Largest latency any outage asks for (0 when none)."""
        return max((s.latency_steps for s in self.shocks if isinstance(s, OracleOutage)
                    and s.latency_steps is not None), default=0)


# ---------------------------------------------------------------------- factories
class _D:
    """Defaults of the config scenarios' params (the YAML files set their own)."""

    start_step = 600
    end_step = 720
    crash = 0.3
    duration_steps = 10
    recovery = 0.8
    recovery_steps = 30
    multiplier = 5.0
    level = 0.1
    latency_steps = 10
    shape = "log"


_CRASH_KEYS = ("start_step", "crash", "duration_steps", "assets", "shape")
_WINDOW_KEYS = ("start_step", "end_step")
_INNER_CRASH_KEYS = ("crash", "crash_start_step", "crash_duration_steps", "assets", "shape")


def _names(market_cfg: Any) -> list[str]:
    return [a.name for a in market_cfg.assets]


def _crash_sizes(p: Params, names: list[str], default: float) -> np.ndarray:
    if isinstance(p.get("crash", default), dict) and p.get("assets", "all") != "all":
        p.fail("assets", p.get("assets"), "give either assets or a per-asset crash mapping")
    selected = p.assets("assets", names)
    return p.per_asset("crash", names, selected, default, lo=0.0, hi=1.0, hi_open=True)


def _window(p: Params) -> Window:
    start = p.integer("start_step", _D.start_step, 1, MAX_STEPS)
    end = p.integer("end_step", _D.end_step, 1, MAX_STEPS)
    if end <= start:
        p.fail("end_step", end, f"must be > start_step ({start})")
    return Window(start, end)


def _inner_crash(p: Params, names: list[str], window: Window) -> list[Crash]:
    size = _crash_sizes(p, names, 0.0)
    shape = p.choice("shape", _D.shape, SHAPES)
    start = p.integer("crash_start_step", window.start_step, 1, MAX_STEPS)
    duration = p.integer("crash_duration_steps", 1, 1, MAX_STEPS)
    if not np.any(size > 0):
        return []
    return [Crash(start, size, duration, shape=shape)]


def jump_crash(params: Any, market_cfg: Any) -> ShockScenario:
    """Scenario ``jump_crash``: GBM with a fall of ``crash`` over ``duration_steps``.

    Args:
        params: ``start_step`` (600), ``crash`` (0.3, or a mapping asset →
            fraction), ``duration_steps`` (10), ``assets`` (``all``),
            ``shape`` (``log``).
        market_cfg: The market config (assets, vols, correlation, step length).

    Returns:
        The scenario.
    """
    p = Params("jump_crash", params, _CRASH_KEYS)
    names = _names(market_cfg)
    crash = Crash(p.integer("start_step", _D.start_step, 1, MAX_STEPS),
                  _crash_sizes(p, names, _D.crash),
                  p.integer("duration_steps", _D.duration_steps, 1, MAX_STEPS),
                  shape=p.choice("shape", _D.shape, SHAPES))
    return ShockScenario.from_config(market_cfg, shocks=[crash])


def flash_crash(params: Any, market_cfg: Any) -> ShockScenario:
    """Scenario ``flash_crash``: a fall, then a recovery of a fraction of the loss.

    After the recovery the price is ``1 - crash (1 - recovery)`` times its
    pre-crash level (times the GBM moves).

    Args:
        params: ``start_step`` (600), ``crash`` (0.3), ``duration_steps`` (10),
            ``recovery`` (0.8), ``recovery_steps`` (30), ``assets`` (``all``),
            ``shape`` (``log``).
        market_cfg: The market config.

    Returns:
        The scenario.
    """
    p = Params("flash_crash", params, (*_CRASH_KEYS, "recovery", "recovery_steps"))
    names = _names(market_cfg)
    crash = Crash(p.integer("start_step", _D.start_step, 1, MAX_STEPS),
                  _crash_sizes(p, names, _D.crash),
                  p.integer("duration_steps", _D.duration_steps, 1, MAX_STEPS),
                  recovery=p.number("recovery", _D.recovery, 0.0, 1.0),
                  recovery_steps=p.integer("recovery_steps", _D.recovery_steps, 1, MAX_STEPS),
                  shape=p.choice("shape", _D.shape, SHAPES))
    return ShockScenario.from_config(market_cfg, shocks=[crash])


def vol_spike(params: Any, market_cfg: Any) -> ShockScenario:
    """Scenario ``vol_spike``: volatility times ``multiplier`` between two steps.

    Args:
        params: ``start_step`` (600), ``end_step`` (720), ``multiplier`` (5.0,
            or a mapping asset → factor), ``assets`` (``all``).
        market_cfg: The market config.

    Returns:
        The scenario.
    """
    p = Params("vol_spike", params, (*_WINDOW_KEYS, "multiplier", "assets"))
    names = _names(market_cfg)
    window = _window(p)
    if isinstance(p.get("multiplier", _D.multiplier), dict) and p.get("assets", "all") != "all":
        p.fail("assets", p.get("assets"), "give either assets or a per-asset multiplier mapping")
    selected = p.assets("assets", names)
    mult = p.per_asset("multiplier", names, selected, _D.multiplier, lo=0.0, hi=1000.0,
                       lo_open=True)
    if isinstance(p.get("multiplier", _D.multiplier), dict):
        mult[mult == 0.0] = 1.0  # assets left out of the mapping keep their vol
    else:
        keep = np.ones(len(names), dtype=bool)
        keep[selected] = False
        mult[keep] = 1.0
    return ShockScenario.from_config(market_cfg, shocks=[VolSpike(window, mult)])


def liquidity_drought(params: Any, market_cfg: Any) -> ShockScenario:
    """Scenario ``liquidity_drought``: market makers withdraw to ``level`` in a window.

    Args:
        params: ``start_step`` (600), ``end_step`` (720), ``level`` (0.1), and an
            optional crash: ``crash`` (0 = none), ``crash_start_step``
            (``start_step``), ``crash_duration_steps`` (1), ``assets``, ``shape``.
        market_cfg: The market config.

    Returns:
        The scenario.
    """
    p = Params("liquidity_drought", params, (*_WINDOW_KEYS, "level", *_INNER_CRASH_KEYS))
    window = _window(p)
    shocks: list[Shock] = [LiquidityDrought(window, p.number("level", _D.level, 0.0, 1.0))]
    shocks += _inner_crash(p, _names(market_cfg), window)
    return ShockScenario.from_config(market_cfg, shocks=shocks)


def oracle_delay(params: Any, market_cfg: Any) -> ShockScenario:
    """Scenario ``oracle_delay``: the oracle lags or freezes in a window.

    Args:
        params: ``start_step`` (600), ``end_step`` (720), ``latency_steps``
            (10; null = the configured latency, then ``stale`` must be true),
            ``stale`` (false), and the optional crash params of
            :func:`liquidity_drought`.
        market_cfg: The market config.

    Returns:
        The scenario.
    """
    p = Params("oracle_delay", params, (*_WINDOW_KEYS, "latency_steps", "stale",
                                        *_INNER_CRASH_KEYS))
    window = _window(p)
    if "latency_steps" in p.raw:  # explicit null: keep the configured latency
        latency = p.optional_integer("latency_steps", 0, 1_000_000)
    else:
        latency = _D.latency_steps
    stale = p.boolean("stale", False)
    if latency is None and not stale:
        p.fail("latency_steps", None, "set latency_steps or stale: true (else nothing happens)")
    shocks: list[Shock] = [OracleOutage(window, latency, stale)]
    shocks += _inner_crash(p, _names(market_cfg), window)
    return ShockScenario.from_config(market_cfg, shocks=shocks)
