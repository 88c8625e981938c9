"""Index and cross-venue arbitrage within a capital limit.

Arbitrageurs tie book prices to the index and to each other, with limited
capital — the limits-to-arbitrage view of Shleifer & Vishny (1997, "The limits
of arbitrage", J. Finance 52(1):35–55) and Gromb & Vayanos (2002, "Equilibrium
and welfare in markets with financially constrained arbitrageurs", JFE
66:361–407): a mispricing is closed only as far as the arbitrageur's capital
and inventory allow, so a large dislocation can outlast it. In crypto the
role is played by basis and cross-exchange traders (Makarov & Schoar 2020,
"Trading and arbitrage in cryptocurrency markets", JFE 135:293–319).

One agent holds one account per protocol (``accounts``: protocol → ledger row)
and watches a list of instruments. Each step, for each instrument ``j`` with
index ``v`` and reference mid ``s`` (the one quoted side's best price when the
book is one-sided):

* **Index arbitrage.** If ``(s − v)/v < −threshold``, send an IOC buy limited
  at ``v (1 − band)``, sized to the ask depth at or below that price — it eats
  the cheap liquidity up to the band and no further; symmetrically sell when
  ``(s − v)/v > threshold``.
* **Cross-venue arbitrage** (``cross_venue``). For two instruments of the same
  kind and base asset on different protocols, if the bid of one exceeds the
  ask of the other by more than ``threshold``, buy on the cheap venue and sell
  on the rich one, both IOC limited at the midpoint ``x`` of the two prices and
  sized to the smaller of the ask depth ≤ ``x`` and the bid depth ≥ ``x``.
* **Unwind.** If ``|s − v|/v ≤ unwind_bps``, reduce the instrument's
  inventory with an IOC order — a sell limited at ``v (1 − band)``, a buy at
  ``v (1 + band)`` — of at most ``unwind_notional`` per step: the convergence
  trade is closed once prices have converged.

Every order is also limited by capital: one order's notional by
``max_order_notional``; an instrument's inventory (perp position, or spot
holding away from the initial one) by ``max_inventory_notional``; and the
account's gross inventory notional by ``max_leverage × equity`` (equity from
``view.margin``, the last evaluation). Orders that reduce inventory are never
limited. The protocol's pre-trade margin check stays the hard limit.

The agent draws no random numbers.
"""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np

from agents.base import order_events

__all__ = ["Arbitrageur"]


class Arbitrageur(mesa.Agent):
    """One arbitrageur watching a set of instruments, with one account per protocol.

    Args:
        model: The Mesa model (exposes ``view``).
        instruments: World indices of the watched instruments (any protocols).
        cfg: An :class:`ArbitrageurConfig`.

    Attributes:
        accounts: ``{protocol index: ledger row}``, set by the model; every
            protocol of a watched instrument needs one.
    """

    def __init__(self, model: mesa.Model, instruments: list[int], cfg: Any) -> None:
        super().__init__(model)
        self.instruments = [int(j) for j in instruments]
        self.cfg = cfg
        self.accounts: dict[int, int] = {}
        self._base0: dict[tuple[int, int], float] = {}

    # ------------------------------------------------------------ reading
    def _row(self, j: int) -> int:
        return self.accounts[self.model.view.instruments[j].protocol]

    def _inventory(self, j: int) -> float:
        """Base-unit inventory in ``j``: perp position, or spot holding above the initial one."""
        view = self.model.view
        inst = view.instruments[j]
        row = np.array([self._row(j)])
        if inst.is_perp:
            inv = float(view.positions(row, j)[0])
        else:
            held = float(view.balances(row, inst.base)[0])
            inv = held - self._base0.setdefault((int(row[0]), inst.base), held)
        return 0.0 if abs(inv) < 0.5 * inst.lot_size else inv  # float dust of whole lots

    def _gross_room(self, row: int) -> float:
        """Notional the account may still add before ``max_leverage × equity``."""
        view = self.model.view
        equity = float(view.margin(np.array([row]))[0][0])
        if np.isnan(equity):
            equity = float(view.balances(np.array([row]), 0)[0])
        gross = 0.0
        for j in self.instruments:
            if self._row(j) == row:
                gross += abs(self._inventory(j)) * view.underlying_price(j)
        return max(self.cfg.max_leverage * max(equity, 0.0) - gross, 0.0)

    def _room(self, j: int, side: int, price: float) -> float:
        """Largest base quantity an order of ``side`` may have in ``j`` under the limits."""
        cfg = self.cfg
        inv = self._inventory(j)
        reducing = min(abs(inv), max(-side * inv, 0.0))  # part of the order that shrinks |inv|
        grow = min(cfg.max_inventory_notional / price - (abs(inv) - reducing),
                   self._gross_room(self._row(j)) / price)
        return max(min(reducing + max(grow, 0.0), cfg.max_order_notional / price), 0.0)

    def _depth(self, j: int, side: int, limit: float) -> float:
        """Opposite-side quantity a taker of ``side`` would reach up to ``limit``."""
        bids, asks = self.model.view.book_depth(j, self.cfg.depth_levels)
        if side > 0:
            return float(asks[asks[:, 0] <= limit + 1e-9, 1].sum()) if len(asks) else 0.0
        return float(bids[bids[:, 0] >= limit - 1e-9, 1].sum()) if len(bids) else 0.0

    def _reference(self, j: int) -> float | None:
        view = self.model.view
        mid = view.mid(j)
        if mid is not None:
            return mid
        bid, ask = view.best_bid(j), view.best_ask(j)
        return ask if bid is None else bid

    # ------------------------------------------------------------- acting
    def _ioc(self, j: int, side: int, qty: float, limit: float) -> None:
        view = self.model.view
        lot = view.instruments[j].lot_size
        qty = np.floor(qty / lot + 1e-9) * lot  # never round an order above its limits
        ev = order_events(view, j, np.array([self._row(j)]), np.array([side]), np.array([qty]),
                          np.array([False]), np.array([limit]))
        if len(ev):
            view.submit(j, ev)

    def step(self) -> None:
        """Index arbitrage and unwinding on each instrument, then cross-venue pairs."""
        for j in self.instruments:
            self._index_arbitrage(j)
        if self.cfg.cross_venue:
            self._cross_venue()

    def _index_arbitrage(self, j: int) -> None:
        cfg = self.cfg
        view = self.model.view
        s = self._reference(j)
        if s is None:
            return
        v = view.underlying_price(j)
        dev = (s - v) / v
        band = cfg.band_bps * 1e-4
        if abs(dev) * 1e4 > cfg.threshold_bps:
            side = 1 if dev < 0 else -1
            limit = v * (1.0 - side * band)
            qty = min(self._depth(j, side, limit), self._room(j, side, v))
            self._ioc(j, side, qty, limit)
        elif abs(dev) * 1e4 <= cfg.unwind_bps:
            inv = self._inventory(j)
            if inv == 0.0:
                return
            side = -1 if inv > 0 else 1
            qty = min(abs(inv), cfg.unwind_notional / v)
            self._ioc(j, side, qty, v * (1.0 + side * band))  # no worse than the band

    def _cross_venue(self) -> None:
        view = self.model.view
        insts = [view.instruments[j] for j in self.instruments]
        for a, ia in enumerate(insts):
            for ib in insts[a + 1:]:
                if ia.base != ib.base or ia.kind != ib.kind or ia.protocol == ib.protocol:
                    continue
                for cheap, rich in ((ia.index, ib.index), (ib.index, ia.index)):
                    self._pair(cheap, rich)

    def _pair(self, cheap: int, rich: int) -> None:
        view = self.model.view
        ask, bid = view.best_ask(cheap), view.best_bid(rich)
        if ask is None or bid is None or bid <= ask * (1.0 + self.cfg.threshold_bps * 1e-4):
            return
        x = 0.5 * (ask + bid)
        qty = min(self._depth(cheap, 1, x), self._depth(rich, -1, x),
                  self._room(cheap, 1, x), self._room(rich, -1, x))
        if qty <= 0.0:
            return
        self._ioc(cheap, 1, qty, x)
        self._ioc(rich, -1, qty, x)
