"""Trend followers (momentum traders) acting as one vectorised population.

Farmer & Joshi (2002, "The price dynamics of common trading strategies", JEBO
49:149–171, §3.2) trend followers hold a position proportional to the price
change over a lookback ``θ``; heterogeneous lookbacks across traders are what
keeps their aggregate from being a single oscillator. Here each trader ``i``
measures the trend by an exponentially weighted moving average of log returns
of the book's reference price (mid, or the index when the book is one-sided)
with its own half-life ``h_i`` (log-uniform in ``[halflife_min_steps,
halflife_max_steps]``; an EWMA is the smooth analogue of the fixed lookback
and needs O(1) state per trader):

* ``μ_i ← λ_i μ_i + (1 − λ_i) r`` with ``λ_i = 2^(−1/h_i)`` (bias-corrected by
  ``1 − λ_i^t`` during warm-up, as in Adam's moment estimates);
* ``σ²`` is a population-wide EWMA of ``r²`` with half-life
  ``vol_halflife_steps``;
* the signal is a t-statistic, ``z_i = μ_i / (σ √((1 − λ_i)/(1 + λ_i)))`` —
  the standard deviation of an EWMA of i.i.d. returns — so ``|z|`` is about
  ``N(0, 1)`` when there is no trend and a single threshold suits every
  lookback.

Each step a trader trades with probability ``trade_prob`` on one instrument
drawn uniformly; when ``|z_i| ≥ threshold`` it sends a market order on the side
of ``z_i`` of notional ``notional_per_signal · |z_i|``, capped by
``max_order_notional`` and by the room under ``max_position_notional`` (the
same exposure rule as the fundamentalists). Traders do not trade during the
first ``warmup_steps`` observations of an instrument.

Randomness: every step draws, from ``model.rng`` and in this order, ``n``
activation uniforms and, for the active traders, an instrument index.
"""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np

from agents.base import (
    capped_notional,
    exposure_notional,
    initial_spot_holdings,
    order_events,
)

__all__ = ["MomentumPopulation"]


class MomentumPopulation(mesa.Agent):
    """A population of trend followers on one protocol's books.

    Args:
        model: The Mesa model (exposes ``view`` and ``rng``).
        instruments: World indices of the instruments the population trades.
        cfg: A :class:`MomentumConfig`.

    Attributes:
        accounts: int64[n] ledger rows, one per trader (set by the model;
            assigning it draws each trader's half-life).
        halflife: float64[n] trend half-life per trader, in steps.
        signal: float64[n, k] latest trend t-statistic per trader and instrument
            (0 before warm-up ends).
    """

    def __init__(self, model: mesa.Model, instruments: list[int], cfg: Any) -> None:
        super().__init__(model)
        self.instruments = np.asarray(instruments, np.int64)
        self.cfg = cfg
        k = len(self.instruments)
        self._accounts = np.zeros(0, np.int64)
        self.halflife = np.zeros(0)
        self._lam = np.zeros(0)
        self._mu = np.zeros((0, k))
        self.signal = np.zeros((0, k))
        self._last = np.full(k, np.nan)
        self._n_obs = np.zeros(k, np.int64)
        self._var = np.zeros(k)
        self._lam_var = 0.5 ** (1.0 / cfg.vol_halflife_steps)
        self._base0: dict[int, np.ndarray] = {}

    @property
    def accounts(self) -> np.ndarray:
        """Ledger rows of the traders."""
        return self._accounts

    @accounts.setter
    def accounts(self, rows: np.ndarray) -> None:
        cfg = self.cfg
        self._accounts = np.asarray(rows, np.int64)
        n, k = len(self._accounts), len(self.instruments)
        lo, hi = np.log(cfg.halflife_min_steps), np.log(cfg.halflife_max_steps)
        self.halflife = np.exp(self.model.rng.uniform(lo, hi, n))
        self._lam = 0.5 ** (1.0 / self.halflife)
        self._mu = np.zeros((n, k))
        self.signal = np.zeros((n, k))
        self._base0 = {}

    def _observe(self) -> None:
        """Update every trader's trend and the shared variance from the new prices."""
        view = self.model.view
        for c, j in enumerate(self.instruments):
            p = view.reference_price(int(j))
            last = self._last[c]
            self._last[c] = p
            if np.isnan(last) or last <= 0 or p <= 0:
                continue
            r = float(np.log(p / last))
            self._n_obs[c] += 1
            t = self._n_obs[c]
            self._var[c] = self._lam_var * self._var[c] + (1.0 - self._lam_var) * r * r
            self._mu[:, c] = self._lam * self._mu[:, c] + (1.0 - self._lam) * r
            if t < self.cfg.warmup_steps:
                continue
            var = self._var[c] / (1.0 - self._lam_var**t)
            if var <= 0.0:
                self.signal[:, c] = 0.0
                continue
            mu = self._mu[:, c] / (1.0 - self._lam**t)
            self.signal[:, c] = mu / np.sqrt(var * (1.0 - self._lam) / (1.0 + self._lam))

    def _initial_base(self, j: int) -> np.ndarray | None:
        return initial_spot_holdings(self.model.view, self._base0, self._accounts, j)

    def step(self) -> None:
        """Update the trend signals, then let the active traders follow them."""
        cfg = self.cfg
        rng = self.model.rng
        n = len(self._accounts)
        if n == 0 or len(self.instruments) == 0:
            return
        self._observe()
        active = np.flatnonzero(rng.random(n) < cfg.trade_prob)
        if len(active) == 0:
            return
        choice = rng.integers(0, len(self.instruments), len(active))
        for c, j in enumerate(self.instruments):
            idx = active[choice == c]
            z = self.signal[idx, c]
            idx = idx[np.abs(z) >= max(cfg.threshold, 1e-12)]
            if len(idx):
                self._trade(int(j), c, idx)

    def _trade(self, j: int, c: int, idx: np.ndarray) -> None:
        view = self.model.view
        cfg = self.cfg
        z = self.signal[idx, c]
        side = np.where(z > 0, 1, -1).astype(np.int64)
        rows = self._accounts[idx]
        base0 = self._initial_base(j)
        price = view.underlying_price(j)
        exposure = exposure_notional(view, rows, j, None if base0 is None else base0[idx])
        notional = np.minimum(cfg.notional_per_signal * np.abs(z), cfg.max_order_notional)
        notional = capped_notional(side, notional, exposure, cfg.max_position_notional)
        ev = order_events(view, j, rows, side, notional / price, np.ones(len(idx), np.bool_),
                          np.zeros(len(idx)))
        if len(ev):
            view.submit(j, ev)
