"""Traders holding option-world books: the hedged portfolios portfolio margin is built for.

Each population holds one book type (:data:`agents.config.BOOK_TYPES`) for
``n`` traders on one protocol and underlying. A book is a list of legs, each a
target position in the perpetual, the spot balance, or an option chosen by
type, moneyness and tenor from the listed chain:

==================  =====================================================
``directional``     long perpetual (the unhedged reference)
``basis``           long spot, short perpetual (cash-and-carry)
``covered_call``    long underlying, short call ``moneyness`` out of the money
``cash_secured_put`` short put ``moneyness`` out of the money, cash held
``protective_put``  long underlying, long put ``moneyness`` out of the money
``calendar_spread`` short near at-the-money call, long far call
``strike_spread``   bull put spread: short put at ``moneyness``, long put at twice it
==================  =====================================================

These are the strategies whose requirements portfolio margin nets and
position-by-position margin does not (margin_methods.md §1.7: the covered
write; §2.1 and §3.1: hedged portfolios revalued together). A trader enters
at a random step of the warm-up (``enter_steps``), sends IOC orders until
every leg is at its target (option premiums bounded by ``option_slippage`` of
the mark), and when an option leg expires (cash-settled) it rolls into the
contract the same rule picks then. A trader whose legs are at target looks
again after :data:`IDLE_STEPS` or as soon as contracts are listed or settled
(so a position lost to liquidation is rebuilt within that time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mesa
import numpy as np

from agents.base import order_events

__all__ = ["BOOK_LEGS", "IDLE_STEPS", "Leg", "OptionBookPopulation", "pick_option"]

IDLE_STEPS = 30
"""Steps a trader whose legs are all at target waits before looking again (a listing,
an expiry or a settlement makes every trader look at once)."""


@dataclass(frozen=True)
class Leg:
    """One leg of a book: what it holds and with which sign.

    Attributes:
        kind: ``perp``, ``spot``, ``call`` or ``put``; ``underlying`` is the
            configured underlying leg (``perp`` or ``spot``).
        sign: +1 long, −1 short (in units of the book's quantity).
        moneyness: Strike as ``index × (1 + moneyness_factor × moneyness)``.
        near: Use the near tenor (calendar spread's short leg).
    """

    kind: str
    sign: int
    moneyness_factor: float = 0.0
    near: bool = False


BOOK_LEGS: dict[str, tuple[Leg, ...]] = {
    "directional": (Leg("perp", 1),),
    "basis": (Leg("spot", 1), Leg("perp", -1)),
    "covered_call": (Leg("underlying", 1), Leg("call", -1, 1.0)),
    "cash_secured_put": (Leg("put", -1, -1.0),),
    "protective_put": (Leg("underlying", 1), Leg("put", 1, -1.0)),
    "calendar_spread": (Leg("call", -1, 0.0, near=True), Leg("call", 1, 0.0)),
    "strike_spread": (Leg("put", -1, -1.0), Leg("put", 1, -2.0)),
}
"""The legs of every book type (module docstring)."""


def pick_option(table: dict[str, np.ndarray], is_call: bool, strike: float, tenor_years: float,
                min_years: float) -> int:
    """Index (into ``table``) of the listed option nearest a tenor, then nearest a strike.

    Args:
        table: :meth:`sim.market.view.MarketView.option_table` of the candidate slots.
        is_call: Call or put.
        strike: Wanted strike.
        tenor_years: Wanted time to expiry.
        min_years: Expiries closer than this are not picked.

    Returns:
        The index, or -1 when nothing is listed.
    """
    ok = table["listed"] & (table["is_call"] == is_call) & (table["tte"] > min_years)
    if not ok.any():
        return -1
    tte = np.where(ok, table["tte"], np.inf)
    best_t = tte[np.argmin(np.abs(tte - tenor_years))]
    ok &= table["tte"] == best_t
    dist = np.where(ok, np.abs(table["strike"] - strike), np.inf)
    return int(np.argmin(dist))


class OptionBookPopulation(mesa.Agent):
    """``n`` traders on one protocol and underlying, all holding one book type.

    Args:
        model: The Mesa model (exposes ``view``).
        book: Book type (a key of :data:`BOOK_LEGS`).
        protocol: Protocol index.
        asset: World index of the underlying.
        cfg: An :class:`agents.config.OptionBooksConfig`.

    Attributes:
        accounts: Ledger rows (set by the world builder).
        enter_step: Step at which each trader starts building its book.
        orders: Orders sent so far.
    """

    def __init__(self, model: mesa.Model, book: str, protocol: int, asset: int, cfg: Any) -> None:
        super().__init__(model)
        view = model.view
        self.book = book
        self.legs = BOOK_LEGS[book]
        self.protocol = int(protocol)
        self.asset = int(asset)
        self.cfg = cfg
        self.accounts = np.zeros(0, np.int64)
        self.slots = view.option_slots(protocol, asset)
        self.perp = self._instrument(perp=True)
        self.spot = self._instrument(perp=False)
        self.enter_step = np.zeros(0, np.int64)
        self._qty = np.zeros(0)
        self._chosen: list[list[tuple[int, int]]] = []
        self._next_look = np.zeros(0, np.int64)
        self._events_seen = -1
        self.orders = 0

    def _instrument(self, perp: bool) -> int:
        for i in self.model.view.instruments:
            if (not i.is_option and i.is_perp == perp and i.protocol == self.protocol
                    and i.base == self.asset):
                return i.index
        return -1

    def set_accounts(self, rows: np.ndarray) -> None:
        """Give the population its accounts; draws each trader's entry step from ``model.rng``."""
        self.accounts = np.asarray(rows, np.int64)
        n = len(self.accounts)
        self.enter_step = self.model.rng.integers(1, self.cfg.enter_steps + 1, size=n)
        self._qty = np.zeros(n)
        self._chosen = [[(-1, -2)] * len(self.legs) for _ in range(n)]
        self._next_look = np.zeros(n, np.int64)

    def step(self) -> None:
        """Traders past their entry step (and retry wait) move their legs toward the targets.

        Each leg is one vectorised pass: targets against holdings, then one
        batch of IOC orders per instrument; a trader that sent an order waits
        ``retry_steps`` before its next look.
        """
        view = self.model.view
        now = view.step
        if view.option_events != self._events_seen:  # contracts expired or listed: look now
            self._events_seen = view.option_events
            self._next_look[:] = np.minimum(self._next_look, now)
        active = np.flatnonzero((self.enter_step <= now) & (self._next_look <= now))
        if len(active) == 0:
            return
        table = view.option_table(self.slots) if len(self.slots) else None
        index = view.index_price(self.asset)
        fresh = active[self._qty[active] == 0.0]
        self._qty[fresh] = self.cfg.notional / index
        sent = np.zeros(len(self.accounts), bool)
        for leg_no, leg in enumerate(self.legs):
            picks = [self._leg_instrument(int(i), leg_no, leg, table, index) for i in active]
            inst = np.array([j for j, _k in picks], np.int64)
            marks = np.array([np.nan if k < 0 else float(table["mark"][k]) for _j, k in picks])
            ok = inst >= 0
            rows, inst, marks, who = self.accounts[active][ok], inst[ok], marks[ok], active[ok]
            if len(rows) == 0:
                continue
            diff = leg.sign * self._qty[who] - view.holdings(rows, inst)
            for j in np.unique(inst).tolist():
                lot = view.instruments[j].lot_size
                sel = (inst == j) & (np.abs(diff) >= lot)
                if sel.any():
                    sent[who[sel]] |= self._send(j, rows[sel], diff[sel], marks[sel])
        # at target: look again after idle_steps (or when contracts change); sent: retry_steps
        self._next_look[active] = now + IDLE_STEPS
        self._next_look[sent] = now + self.cfg.retry_steps

    def _send(self, j: int, rows: np.ndarray, diff: np.ndarray, marks: np.ndarray) -> np.ndarray:
        """IOC orders for ``diff`` on instrument ``j``; options limited around the mark.

        Returns which rows had an order sent.
        """
        view = self.model.view
        inst = view.instruments[j]
        side = np.where(diff > 0, 1, -1)
        if inst.is_option:
            limit = marks * (1.0 + side * self.cfg.option_slippage)
            keep = limit >= inst.tick_size
            is_market = np.zeros(len(rows), bool)
        else:
            limit = np.zeros(len(rows))
            keep = np.ones(len(rows), bool)
            is_market = np.ones(len(rows), bool)
        if not keep.any():
            return keep
        ev = order_events(view, j, rows[keep], side[keep], np.abs(diff[keep]), is_market[keep],
                          limit[keep])
        if len(ev):
            view.submit(j, ev)
            self.orders += len(ev)
        return keep

    def _leg_instrument(self, i: int, leg_no: int, leg: Leg,
                        table: dict[str, np.ndarray] | None, index: float) -> tuple[int, int]:
        """``(instrument, table index or -1)`` of a leg; options are (re)picked when expired."""
        kind = self.cfg.underlying_leg if leg.kind == "underlying" else leg.kind
        if kind == "perp":
            return self.perp, -1
        if kind == "spot":
            return self.spot, -1
        if table is None:
            return -1, -1
        k, contract = self._chosen[i][leg_no]
        if k >= 0 and table["expiry_step"][k] == contract and table["listed"][k]:
            return int(self.slots[k]), k
        days = self.cfg.near_days if leg.near else self.cfg.tenor_days
        strike = index * (1.0 + leg.moneyness_factor * self.cfg.moneyness)
        k = pick_option(table, kind == "call", strike, days / 365.0,
                        min_years=2.0 * self.model.view.step_years)
        if k < 0:
            return -1, -1
        self._chosen[i][leg_no] = (k, int(table["expiry_step"][k]))
        return int(self.slots[k]), k
