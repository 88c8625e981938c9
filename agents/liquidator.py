"""Fixed-spread liquidators: take over under-margined positions for a bonus, then unwind.

The liquidation engine (``sim.liquidation``) offers each position of an
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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np

from sim.checks import invalid as _bad
from sim.view import MARKET, REDUCE_ONLY

if TYPE_CHECKING:  # pragma: no cover
    from sim.liquidation import Candidate

__all__ = ["Liquidator", "LiquidatorConfig", "validate_liquidator_config"]

_MAX_HALVINGS = 6


@dataclass
class LiquidatorConfig:
    """Liquidator population (nested in ``AgentsConfig.liquidator``).

    Attributes:
        n: Number of liquidator agents (each has an account on every protocol).
        capital: Quote deposit of each liquidator account.
        latency_steps: Steps between an account becoming liquidatable and the
            liquidator acting on it (0 = same step).
        min_profit: Minimum estimated profit (quote units) to accept.
        max_notional_per_step: Cap on notional taken over per step.
        taker_fee: The liquidator's estimate of the taker fee it pays to
            unwind (Binance USDⓈ-M regular tier 0.05 %).
        lock_capital: Keep the margin committed to positions taken this step
            in use until the next step (see the module docstring).
    """

    n: int = 3
    capital: float = 1_000_000.0
    latency_steps: int = 0
    min_profit: float = 0.0
    max_notional_per_step: float = 5_000_000.0
    taker_fee: float = 0.0005
    lock_capital: bool = False

    def __post_init__(self) -> None:
        validate_liquidator_config(self)


def validate_liquidator_config(cfg: Any, prefix: str = "agents.liquidator") -> Any:
    """Check a :class:`LiquidatorConfig` (dataclass or OmegaConf node); return it.

    Raises:
        ValueError: One line naming the first bad field and the allowed range.
    """
    if not isinstance(cfg.lock_capital, bool):
        _bad(f"{prefix}.lock_capital", cfg.lock_capital, "must be true or false")
    for name, hi in (("n", 10_000), ("latency_steps", 1_000_000)):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
            _bad(f"{prefix}.{name}", v, f"must be an integer in [0, {hi}]")
    for name, lo, hi in (("capital", 0.0, 1e15), ("min_profit", -1e15, 1e15),
                         ("max_notional_per_step", 0.0, 1e18), ("taker_fee", 0.0, 0.01)):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            _bad(f"{prefix}.{name}", v, f"must be a number in [{lo}, {hi}]")
    return cfg


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
            candidate: The offer (see :class:`sim.liquidation.Candidate`).

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
