"""Value investors (fundamentalists) acting as one vectorised population.

A fundamentalist believes the asset is worth its oracle index ``v`` and trades
against the book's deviation from it: with mispricing ``m = (v − mid) / v`` it
buys when ``m > 0`` and sells when ``m < 0``, with a demand proportional to
``|m|``. This is the fundamentalist of Chiarella (1992, "The dynamics of
speculative behaviour", Annals of Operations Research 37:101–123), the value
investor of Farmer & Joshi (2002, "The price dynamics of common trading
strategies", JEBO 49:149–171, §3.1: a deadband threshold below which the
mispricing is ignored) and of Thurner, Farmer & Geanakoplos (2012, "Leverage
causes fat tails and clustered volatility", Quantitative Finance 12(5), demand
``β · m · W`` with a per-fund aggressiveness ``β``; reference note
``contagion_and_peers.md`` §1.6).

Per step, each trader independently trades with probability ``trade_prob`` on
one of the population's instruments drawn uniformly. Its order notional is
``β_i · |m| · usd`` (``β_i`` drawn once per trader, uniform in ``[beta_min,
beta_max]``), capped at ``max_order_notional`` and by the room left under
``max_position_notional`` (perp position, or spot holding away from its initial
one; orders that shrink the exposure are never capped by it). A share
``market_prob`` of orders are market orders; the rest are immediate-or-cancel
limit orders priced at the index — a value investor sweeps the book up to its
value and no further.

Randomness: every step draws, from ``model.rng`` and in this order, ``n``
activation uniforms, then for the active traders an instrument index and a
market-order uniform.
"""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np

from agents.base import capped_notional, exposure_notional, initial_spot_holdings, order_events

__all__ = ["FundamentalistPopulation"]


class FundamentalistPopulation(mesa.Agent):
    """A population of value investors on one protocol's books.

    Args:
        model: The Mesa model (exposes ``view``, a :class:`sim.market.view.MarketView`,
            and ``rng``).
        instruments: World indices of the instruments the population trades.
        cfg: A :class:`FundamentalistConfig`.

    Attributes:
        accounts: int64[n] ledger rows, one per trader (set by the model;
            assigning it draws each trader's aggressiveness ``beta``).
        beta: float64[n] aggressiveness per trader.
    """

    def __init__(self, model: mesa.Model, instruments: list[int], cfg: Any) -> None:
        super().__init__(model)
        self.instruments = np.asarray(instruments, np.int64)
        self.cfg = cfg
        self._accounts = np.zeros(0, np.int64)
        self.beta = np.zeros(0)
        self._base0: dict[int, np.ndarray] = {}

    @property
    def accounts(self) -> np.ndarray:
        """Ledger rows of the traders."""
        return self._accounts

    @accounts.setter
    def accounts(self, rows: np.ndarray) -> None:
        self._accounts = np.asarray(rows, np.int64)
        cfg = self.cfg
        self.beta = self.model.rng.uniform(cfg.beta_min, cfg.beta_max, len(self._accounts))
        self._base0 = {}

    def _initial_base(self, j: int) -> np.ndarray | None:
        return initial_spot_holdings(self.model.view, self._base0, self._accounts, j)

    def step(self) -> None:
        """Let the active traders trade toward the index on one instrument each."""
        cfg = self.cfg
        rng = self.model.rng
        n = len(self._accounts)
        if n == 0 or len(self.instruments) == 0:
            return
        active = np.flatnonzero(rng.random(n) < cfg.trade_prob)
        if len(active) == 0:
            return
        choice = rng.integers(0, len(self.instruments), len(active))
        is_market = rng.random(len(active)) < cfg.market_prob
        for c, j in enumerate(self.instruments):
            sel = active[choice == c]
            if len(sel):
                self._trade(int(j), sel, is_market[choice == c])

    def _trade(self, j: int, idx: np.ndarray, is_market: np.ndarray) -> None:
        view = self.model.view
        cfg = self.cfg
        mid = view.mid(j)
        if mid is None:
            return
        value = view.underlying_price(j)
        m = (value - mid) / value
        if abs(m) * 1e4 < cfg.threshold_bps or m == 0.0:
            return
        side = np.full(len(idx), 1 if m > 0 else -1, np.int64)
        rows = self._accounts[idx]
        base0 = self._initial_base(j)
        exposure = exposure_notional(view, rows, j, None if base0 is None else base0[idx])
        notional = np.minimum(self.beta[idx] * abs(m) * cfg.usd, cfg.max_order_notional)
        notional = capped_notional(side, notional, exposure, cfg.max_position_notional)
        ev = order_events(view, j, rows, side, notional / value, is_market,
                          np.full(len(idx), value))
        if len(ev):
            view.submit(j, ev)
