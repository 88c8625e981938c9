"""The scenario contract: exogenous drivers the model reads each step.

A scenario owns the *fundamental* prices of the risky assets (config asset order)
and moves them one step at a time with the run's generator. Besides the path it
offers hooks through which the model lets exogenous conditions act on the
endogenous world:

* :meth:`Scenario.liquidity` — multiplier of market makers' quoting (1 normal,
  0 full withdrawal);
* :meth:`Scenario.oracle_latency` and :meth:`Scenario.oracle_stale` — a raised
  oracle delay, or an oracle that publishes nothing new;
* :meth:`Scenario.fundamental_drawdown` — the worst peak-to-trough fall of the
  fundamental path so far, the denominator of endogenous amplification
  (simulated drawdown / exogenous drawdown).

Step numbering follows Mesa: the model's ``steps`` counter is 1 during the
first call of ``step()``. The scenario counts its own advances in
:attr:`Scenario.steps`, so after ``advance`` in model step ``t`` both equal ``t``
and the hooks are called with that ``t``. Windows are half-open:
``start_step <= t < end_step``.

Neighbours: :mod:`sim.scenarios.gbm` (calm correlated GBM),
:mod:`sim.scenarios.shocks` (crashes, volatility, liquidity and oracle shocks),
:mod:`sim.scenarios.replay` (historical paths).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Scenario", "Window"]


@dataclass(frozen=True)
class Window:
    """A half-open range of model steps ``start_step <= step < end_step``.

    Args:
        start_step: First step inside (1 = the model's first step).
        end_step: First step after the window.

    Raises:
        ValueError: ``start_step < 1`` or ``end_step <= start_step``.
    """

    start_step: int
    end_step: int

    def __post_init__(self) -> None:
        if self.start_step < 1:
            raise ValueError(f"params.start_step = {self.start_step} is invalid: must be >= 1")
        if self.end_step <= self.start_step:
            raise ValueError(f"params.end_step = {self.end_step} is invalid: must be > "
                             f"start_step ({self.start_step})")

    def __contains__(self, step: object) -> bool:
        return isinstance(step, (int, np.integer)) and self.start_step <= step < self.end_step


class Scenario:
    """Base class of every exogenous scenario.

    Subclasses implement :meth:`_move`, which updates :attr:`prices` in place by
    one step drawing all randomness from the generator it is given; they may
    override the hooks, whose defaults describe a normal market.

    Args:
        prices: Initial fundamental prices, one per asset in config order.
        dt_years: Length of one model step in years.

    Attributes:
        prices: float64 array of the current fundamental prices.
        initial: Copy of the prices at step 0.
        dt: Step length in years.
        steps: Number of :meth:`advance` calls so far.
    """

    def __init__(self, prices: np.ndarray, dt_years: float) -> None:
        self.prices = np.asarray(prices, dtype=np.float64).copy()
        if self.prices.ndim != 1 or not np.all(np.isfinite(self.prices)) or np.any(
                self.prices <= 0):
            raise ValueError("scenario prices must be a 1-d array of positive finite numbers")
        self.initial = self.prices.copy()
        self.dt = float(dt_years)
        self.steps = 0
        self._peak = self.prices.copy()
        self._max_drawdown = np.zeros_like(self.prices)

    # ------------------------------------------------------------------ path
    def advance(self, rng: np.random.Generator) -> np.ndarray:
        """Move one step and return the new prices.

        Args:
            rng: The run's generator; the only source of randomness.

        Returns:
            :attr:`prices` itself (a view updated in place; copy to keep).
        """
        self._move(rng)
        self.steps += 1
        np.maximum(self._peak, self.prices, out=self._peak)
        np.maximum(self._max_drawdown, 1.0 - self.prices / self._peak, out=self._max_drawdown)
        return self.prices

    def _move(self, rng: np.random.Generator) -> None:
        """Update :attr:`prices` in place by one step (step ``self.steps + 1``)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ hooks
    def liquidity(self, step: int) -> float:
        """Multiplier of market makers' quoting at ``step``, in [0, 1].

        1 is normal quoting, 0 full withdrawal. The default is always 1.
        """
        return 1.0

    def oracle_latency(self, step: int) -> int | None:
        """Oracle latency in steps to use at ``step``; ``None`` keeps the configured one."""
        return None

    def vol_factors(self, step: int, assets: np.ndarray) -> np.ndarray | None:
        """Factor on the volatility of some assets at ``step`` (``None``: no spike).

        The implied-volatility surface reads it, so a volatility-spike scenario
        lifts implied volatility as it lifts realised volatility. The default
        has no spikes.

        Args:
            step: Model step.
            assets: Scenario asset indices (market assets, from 0).
        """
        return None

    def oracle_stale(self, step: int) -> bool:
        """Whether the oracle publishes nothing new at ``step`` (keeps its last index)."""
        return False

    @property
    def max_oracle_latency(self) -> int:
        """Largest latency :meth:`oracle_latency` can return (0 if it never overrides).

        Lets the model size the oracle's history buffer before the run.
        """
        return 0

    # ------------------------------------------------------------------ drawdown
    @property
    def drawdowns(self) -> np.ndarray:
        """Per-asset maximum drawdown of the fundamental path so far.

        Each entry is ``max_t (1 - S_t / max_{u <= t} S_u)`` over the steps taken,
        a fraction in [0, 1) (0.526 for a fall from 7,980 to 3,782).
        """
        return self._max_drawdown.copy()

    def fundamental_drawdown(self, asset: int | None = None) -> float:
        """Maximum drawdown of the fundamental path so far (see :attr:`drawdowns`).

        Args:
            asset: Index of one asset (config order), or ``None`` for the worst
                over all assets.

        Returns:
            A positive fraction: the exogenous drawdown against which the
            simulated (endogenous) drawdown is compared.
        """
        if asset is None:
            return float(self._max_drawdown.max())
        return float(self._max_drawdown[asset])
