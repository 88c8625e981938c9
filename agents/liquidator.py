"""Fixed-spread liquidators: take over under-margined positions for a bonus, then unwind.

The liquidation engine (``sim.venue.liquidation``) offers each position of an
account under maintenance to the liquidators in a random order (first come,
first served). A liquidator is the "rational liquidator" of Gauntlet's
agent-based market-risk models (contagion_and_peers.md §3.3: it takes the
collateral at the liquidation incentive and sells it on a venue with a
slippage model) and of the fixed-spread designs studied by Qin et al. (2021,
"An Empirical Study of DeFi Liquidations", §2.1): it accepts when

    profit = bonus - price impact - taker fee > min_profit,

where the bonus is the share of the liquidation fee the protocol pays it, the
price impact is what sweeping the taken quantity through the book costs
against the mark (``MarketView.sweep_cost``) and the taker fee is its estimate
of the venue's fee. Constraints:

* *latency*: it only sees candidates that became liquidatable at least
  ``latency_steps`` steps ago (keeper/bot delay; on Black Thursday keepers
  lagged, contagion_and_peers.md §2.3);
* *capital and margin*: it must stay above its initial requirement after
  taking the position: its own equity and IM come from ``MarketView.margin``
  (the latest evaluation); the IM of a position is estimated at the
  liquidated account's IM per unit of notional, and inventory it took since
  that evaluation is charged at the same rate (the larger of the two IMs);
* *throughput*: at most ``max_notional_per_step`` of notional taken per step
  (over all venues);
* *shared capital* (``contagion.shared_liquidator_capital``, set on the agent
  as ``shared_capital``): the equity and requirements of all its venue
  accounts are summed into one pool, so capital used on one venue is missing
  on the others; off, each venue account stands alone;
* *locked capital* (``lock_capital``): the IM of every position taken this
  step (at the candidate's IM rate) stays committed until the next step even
  after the unwind — the capital a keeper ties up until its trades settle
  (keepers' DAI locked in Maker auctions on Black Thursday,
  contagion_and_peers.md §2.3); off, capital is recycled as soon as the
  inventory is sold (flash-loan style).

It sizes its acceptance to what the book can absorb now, halving the size
while the estimated profit is too low. After taking a position it closes it
at once with a reduce-only market order; whatever the book could not absorb
is retried in its own ``step`` (phase 3 of the next step).

Agents act through the market view only (DESIGN.md); they hold parameters and
ledger row ids, never balances.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np

from sim.market.view import MARKET, REDUCE_ONLY

if TYPE_CHECKING:  # pragma: no cover
    from sim.market.offer import Candidate

__all__ = ["Liquidator"]

_MAX_HALVINGS = 6


class Liquidator(mesa.Agent):
    """One liquidator with an account per protocol.

    Args:
        model: The Mesa model (exposes ``view``).
        cfg: A :class:`LiquidatorConfig`.
        shared_capital: Pool the capital of all venue accounts
            (``contagion.shared_liquidator_capital``).

    Attributes:
        accounts: Ledger row per protocol index (set when the model opens them).
        taken_notional: Notional taken over so far in the current step.
        committed: Margin committed per protocol in the current step
            (counted against capacity with ``lock_capital``).
    """

    def __init__(self, model: mesa.Model, cfg: Any, shared_capital: bool = False) -> None:
        super().__init__(model)
        self.cfg = cfg
        self.shared_capital = bool(shared_capital)
        self.accounts: dict[int, int] = {}
        self.taken_notional = 0.0
        self.committed: dict[int, float] = {}
        self._taken_step = -1

    # ---------------------------------------------------------- decisions
    def offer(self, candidate: Candidate) -> float:
        """Decide how much of an offered position to take.

        Args:
            candidate: The offer (see :class:`sim.market.offer.Candidate`).

        Returns:
            Base units accepted (unsigned, whole lots, at most ``|candidate.qty|``);
            0 to pass.
        """
        c = candidate
        row = self.accounts.get(c.protocol)
        if row is None or c.step - c.first_seen < self.cfg.latency_steps:
            return 0.0
        if self._taken_step != c.step:
            self._taken_step, self.taken_notional = c.step, 0.0
            self.committed = {}
        qty = min(abs(c.qty), self._capacity(c, row))
        lots = math.floor(qty / c.lot_size + 1e-9)
        for _ in range(_MAX_HALVINGS + 1):
            if lots <= 0:
                return 0.0
            qty = lots * c.lot_size
            filled, profit = self._estimate(c, qty)
            if filled + 1e-12 < qty:  # size to what the book can absorb now
                lots = math.floor(filled / c.lot_size + 1e-9)
                continue
            if profit > self.cfg.min_profit:
                self.taken_notional += qty * c.mark
                if self.cfg.lock_capital:
                    self.committed[c.protocol] = (self.committed.get(c.protocol, 0.0)
                                                  + c.im_rate * qty * c.mark)
                return qty
            lots //= 2
        return 0.0

    def _capacity(self, c: Candidate, row: int) -> float:
        """Largest quantity allowed by throughput, capital and initial margin.

        Capital is this venue's account, or with ``shared_capital`` the sum
        over all venue accounts: ``headroom = Σ_v (E_v − max(IM_v + L_v,
        im_rate × held_v))`` with ``L_v`` the margin locked this step
        (``lock_capital``) and ``held_v`` inventory still held.
        """
        view = self.model.view
        room = max(self.cfg.max_notional_per_step - self.taken_notional, 0.0) / c.mark
        pool = sorted(self.accounts.items()) if self.shared_capital else [(c.protocol, row)]
        headroom = 0.0
        for p, r in pool:
            equity, initial, _ = view.margin(np.array([r]))
            eq, im = float(equity[0]), float(initial[0])
            if not math.isfinite(eq):  # not evaluated yet: its quote balance, no requirement
                eq, im = float(view.balances(np.array([r]), 0)[0]), 0.0
            locked = self.committed.get(p, 0.0) if self._taken_step == c.step else 0.0
            im = max(im + locked, c.im_rate * self._held_notional(p))  # inventory taken since
            headroom += eq - im
        if headroom <= 0.0:
            return 0.0
        if c.im_rate > 0.0:
            room = min(room, headroom / (c.im_rate * c.mark))
        return room

    def _held_notional(self, protocol: int) -> float:
        """Gross notional of inventory still held on a protocol (unwinds that did not fill)."""
        view = self.model.view
        row = np.array([self.accounts[protocol]])
        total = 0.0
        for inst in view.instruments:
            if inst.protocol == protocol and inst.is_perp:
                total += abs(float(view.positions(row, inst.index)[0])) * view.mark(inst.index)
        return total

    def _estimate(self, c: Candidate, qty: float) -> tuple[float, float]:
        """``(fillable qty, profit)`` of taking ``qty`` at the mark and selling it into the book."""
        side = -c.side
        filled, vwap, _ = self.model.view.sweep_cost(c.instrument, side, qty)
        if filled <= 0.0 or not math.isfinite(vwap):
            return 0.0, -math.inf
        impact = side * (vwap - c.mark) * filled
        fee = self.cfg.taker_fee * vwap * filled
        return filled, c.bonus(filled) - impact - fee

    # ------------------------------------------------------------ actions
    def unwind(self, instrument: int) -> None:
        """Close this liquidator's position in ``instrument`` with a reduce-only market order."""
        view = self.model.view
        inst = view.instruments[instrument]
        row = self.accounts.get(inst.protocol)
        if row is None:
            return
        pos = float(view.positions(np.array([row]), instrument)[0])
        lots = math.floor(abs(pos) / inst.lot_size + 1e-9)
        if lots <= 0:
            return
        ev = view.new_events(1)
        ev["kind"] = MARKET
        ev["side"] = -1 if pos > 0 else 1
        ev["qty"] = lots
        ev["owner"] = row
        ev["flags"] = REDUCE_ONLY
        view.submit(instrument, ev)

    def step(self) -> None:
        """Retry closing any inventory left from earlier liquidations."""
        for inst in self.model.view.instruments:
            if inst.is_perp and inst.protocol in self.accounts:
                self.unwind(inst.index)
