"""Zero-intelligence noise traders acting as one vectorised population.

After the zero-intelligence order-flow model of Farmer, Patelli & Zovko (2005,
"The predictive power of zero intelligence in financial markets", PNAS 102(6))
and Gode & Sunder (1993): each trader independently sends an order with a
fixed probability per step; side is a fair coin; a share of orders are market
orders, a share of limit orders are marketable, the rest are passive limits at
an exponentially distributed distance from the reference price; resting orders
are cancelled after a fixed lifetime (FPZ use a constant cancellation rate; a
fixed lifetime keeps the population's book footprint bounded). Sizes are
exponential in notional. One behavioural addition, documented in
ASSUMPTIONS.md: a trader whose perpetual position (or spot holding away from
its initial one) exceeds a notional cap only sends orders that shrink it.
"""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np

from sim.market.view import CANCEL, LIMIT, MARKET, STATUS_RESTING

__all__ = ["NoiseTraderPopulation"]


class NoiseTraderPopulation(mesa.Agent):
    """A population of zero-intelligence traders on one protocol's books.

    Args:
        model: The Mesa model (must expose ``view``, a :class:`sim.market.view.MarketView`).
        instruments: World indices of the instruments the population trades.
        cfg: A ``NoiseConfig``.

    Attributes:
        accounts: int64[n] ledger rows, one per trader (set by the model).
    """

    def __init__(self, model: mesa.Model, instruments: list[int], cfg: Any) -> None:
        super().__init__(model)
        self.instruments = np.asarray(instruments, np.int64)
        self.cfg = cfg
        self.accounts = np.zeros(0, np.int64)
        self._initial_base: dict[int, np.ndarray] = {}
        # resting orders: (instrument, order id, expiry step), kept as parallel arrays
        self._live_inst = np.zeros(0, np.int64)
        self._live_id = np.zeros(0, np.int64)
        self._live_expiry = np.zeros(0, np.int64)

    def _cancel_expired(self, step: int) -> None:
        view = self.model.view
        expired = self._live_expiry <= step
        if not expired.any():
            return
        for j in np.unique(self._live_inst[expired]):
            ids = self._live_id[expired & (self._live_inst == j)]
            ev = view.new_events(len(ids))
            ev["kind"] = CANCEL
            ev["order_id"] = ids
            view.submit(int(j), ev)
        keep = ~expired
        self._live_inst = self._live_inst[keep]
        self._live_id = self._live_id[keep]
        self._live_expiry = self._live_expiry[keep]

    def _exposure(self, rows: np.ndarray, j: int) -> np.ndarray:
        """Signed notional the inventory rule looks at: perp position or spot drift."""
        view = self.model.view
        inst = view.instruments[j]
        price = view.underlying_price(j)
        if inst.is_perp:
            return view.positions(rows, j) * price
        if inst.base not in self._initial_base or not len(self.accounts):
            base = view.balances(self.accounts, inst.base)
            init = self._initial_base.setdefault(inst.base, base.copy())
            drift = base - init
            sel = np.searchsorted(self.accounts, rows) if len(self.accounts) else rows
            return drift[sel] * price
        # only the senders' rows: (base - init)[sel] == base[sel] - init[sel], elementwise
        sel = np.searchsorted(self.accounts, rows)
        return (view.balances(rows, inst.base) - self._initial_base[inst.base][sel]) * price

    def step(self) -> None:
        """Cancel expired orders, then let the active traders send one order each."""
        view = self.model.view
        cfg = self.cfg
        rng = self.model.rng
        self._cancel_expired(view.step)
        n = len(self.accounts)
        if n == 0 or len(self.instruments) == 0:
            return
        active = np.flatnonzero(rng.random(n) < cfg.order_prob)
        if len(active) == 0:
            return
        choice = rng.integers(0, len(self.instruments), len(active))
        side = np.where(rng.random(len(active)) < 0.5, 1, -1)
        is_market = rng.random(len(active)) < cfg.market_prob
        marketable = rng.random(len(active)) < cfg.marketable_prob
        offset = rng.exponential(cfg.offset_bps * 1e-4, len(active))
        notional = rng.exponential(cfg.size_notional, len(active))
        for c, j in enumerate(self.instruments):
            sel = np.flatnonzero(choice == c)
            if len(sel) == 0:
                continue
            self._send(int(j), self.accounts[active[sel]], side[sel], is_market[sel],
                       marketable[sel], offset[sel], notional[sel])

    def _send(self, j: int, rows: np.ndarray, side: np.ndarray, is_market: np.ndarray,
              marketable: np.ndarray, offset: np.ndarray, notional: np.ndarray) -> None:
        view = self.model.view
        inst = view.instruments[j]
        ref = view.reference_price(j)
        exposure = self._exposure(rows, j)
        over = np.abs(exposure) > self.cfg.max_position_notional
        side = np.where(over, -np.sign(exposure), side) if over.any() else np.asarray(side)
        side = side.astype(np.int64)
        ev = view.new_events(len(rows))
        ev["owner"] = rows
        ev["side"] = side
        ev["qty"] = inst.lots(notional / ref)
        ev["kind"] = np.where(is_market, MARKET, LIMIT)
        bid, ask = view.best_bid(j), view.best_ask(j)
        passive = ref * (1.0 - side * offset)
        through = np.where(
            side > 0, ask if ask is not None else ref, bid if bid is not None else ref
        )
        through = through * (1.0 + side * offset)
        price = np.where(marketable, through, passive)
        ev["price"] = np.where(is_market, 0, inst.ticks(price, 0))
        res = view.submit(j, ev)
        rest = res["status"] == STATUS_RESTING
        n_rest = int(rest.sum())
        if n_rest:
            self._live_inst = np.concatenate([self._live_inst, np.full(n_rest, j, np.int64)])
            self._live_id = np.concatenate([self._live_id, res["order_id"][rest]])
            self._live_expiry = np.concatenate(
                [self._live_expiry, np.full(n_rest, view.step + self.cfg.lifetime_steps, np.int64)])
