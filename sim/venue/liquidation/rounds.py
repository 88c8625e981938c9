"""Liquidation rounds of one step: candidates, liquidators, the backstop (step phase 6).

:class:`LiquidationEngine` runs rounds until quiet or ``max_rounds`` (the rules
are described in :mod:`sim.venue.liquidation`); the deficit of an account left
bankrupt goes down the waterfall (:mod:`sim.venue.liquidation.waterfall`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

from sim.ledger import HolderKind
from sim.market.book import CANCEL, IOC, LIMIT, REDUCE_ONLY
from sim.market.offer import Candidate
from sim.venue.liquidation.config import (
    _REL_TOL,
    BAD_DEBT_OWNER,
    EVENT_COLUMNS,
    PATHS,
    QUOTE,
    STAT_KEYS,
    close_fraction,
    offer_qty,
    validate_liquidation_config,
)
from sim.venue.liquidation.options import OptionCloseOut
from sim.venue.liquidation.waterfall import Waterfall

__all__ = ["LiquidationEngine", "LiquidationHost"]


class LiquidationHost(Protocol):
    """What the liquidation rounds and the waterfall read and call of the world; nothing else.

    The model (:class:`sim.model.MarketModel`) provides it. State changes go
    through the ledger's and the books' own operations and the ``submit`` of
    orders; re-marking and re-evaluation after a round is the ``reprice``
    callable :meth:`LiquidationEngine.run` receives (``update_marks`` and
    ``evaluate_margins`` are its default). ``tests/sim/test_phases.py`` holds the
    engine to this list.
    """

    ledger: Any
    """The array ledger (:class:`sim.ledger.Ledger`)."""
    marks: np.ndarray
    """Mark price per instrument."""
    asset_prices: np.ndarray
    """Index price per asset (quote first)."""
    instruments: Sequence[Any]
    """Every instrument of every protocol, by index."""
    protocols: Sequence[Any]
    """The protocols (:class:`sim.venue.protocol.Protocol`)."""
    books: Sequence[Any]
    """One order book per instrument."""
    rng: np.random.Generator
    """The generator in use (a protocol's own stream inside :meth:`in_stream`)."""
    cfg: Any
    """The run config (the contagion switches)."""
    view: Any
    """The market view (order-event records)."""
    margin_state: Mapping[int, tuple[np.ndarray, Any]]
    """The latest margin evaluation."""

    def submit(self, instrument: int, events: np.ndarray) -> Any:
        """Send order events to a book (with the pre-trade check)."""

    def update_marks(self) -> None:
        """Re-mark every perpetual."""

    def evaluate_margins(self) -> Mapping[int, tuple[np.ndarray, Any]]:
        """Evaluate every account of every protocol."""

    def in_stream(self, p: int) -> AbstractContextManager[None]:
        """Make protocol ``p``'s random stream the active one."""


class LiquidationEngine(Waterfall, OptionCloseOut):
    """Runs phase 6 of every step: liquidation rounds and the bad-debt waterfall.

    Args:
        model: The world (a :class:`LiquidationHost`; the model in a run).
        cfgs_by_protocol: A :class:`LiquidationConfig` per protocol index
            (mapping or sequence aligned with ``model.protocols``); missing
            protocols are not liquidated.

    Attributes:
        events: Event log of the run, one dict per event with
            :data:`EVENT_COLUMNS`: ``step``, ``round``, ``protocol``,
            ``account`` (liquidated row), ``instrument`` (perp moved, -1 if
            none), ``asset`` (asset of a balance moved, -1 if none), ``kind``
            (:data:`KINDS`), ``size`` (signed base units or balance moved out
            of the account), ``price`` (mark, bankruptcy price or index),
            ``notional`` (``|size| x price``),
            ``bonus`` (to the liquidator), ``fee`` (to the insurance fund; on
            backstop rows the margin the fund seized), ``amount`` (quote
            absorbed by the taker: insurance payment, ADL loss against the
            mark, socialised charge, bad debt written off), ``shortfall`` (bad
            debt created; non-zero on ``bad_debt`` rows only), ``taker``
            (liquidator row, insurance row, ADL counterparty, charged account
            or bad-debt row), ``entry`` and ``taker_entry`` (the average entry
            prices of the account's and the taker's positions in
            ``instrument`` just before the position moved; NaN where a row held
            none, or the event moved no position): with ``price`` and the mark
            they give each side's profit on what moved (e.g. whether an ADL
            counterparty was in profit).
        bad_debt: Cumulative bad debt written off, per protocol (quote units).
        bad_debt_rows: The bad-debt ledger row of each protocol.
        step_stats: Counters of the last :meth:`run` per protocol (:data:`STAT_KEYS`).
        totals: The same counters summed over the run.
        max_depth: Deepest cascade (rounds with events in one step) per protocol.
    """

    def __init__(self, model: LiquidationHost,
                 cfgs_by_protocol: Mapping[int, Any] | Sequence[Any]) -> None:
        self.model = model
        items = (cfgs_by_protocol.items() if isinstance(cfgs_by_protocol, Mapping)
                 else enumerate(cfgs_by_protocol))
        self.cfgs: dict[int, Any] = {}
        for p, cfg in items:
            validate_liquidation_config(cfg, f"protocols[{p}].liquidation")
            self.cfgs[int(p)] = cfg
        self.events: list[dict[str, Any]] = []
        self.step_events: list[dict[str, Any]] = []
        self.bad_debt: dict[int, float] = {}
        self.bad_debt_rows: dict[int, int] = {}
        for proto in model.protocols:
            self.bad_debt[proto.index] = 0.0
            self.bad_debt_rows[proto.index] = model.ledger.open_account(
                HolderKind.INSURANCE, owner=BAD_DEBT_OWNER, protocol=proto.index)
        self.step_stats = {p.index: dict.fromkeys(STAT_KEYS, 0.0) for p in model.protocols}
        self.totals = {p.index: dict.fromkeys(STAT_KEYS, 0.0) for p in model.protocols}
        self.max_depth = {p.index: 0 for p in model.protocols}
        self._path_of = {k: name for name, kinds in PATHS.items() for k in kinds}
        self._path_totals = {p.index: {name: [0.0, 0.0] for name in PATHS}
                             for p in model.protocols}
        self._moved: tuple[int, int, int, float, float] | None = None
        self._first_seen: dict[int, int] = {}
        self._value_cache: np.ndarray | None = None
        self._gross_cache: np.ndarray | None = None
        self._cancelled: set[int] = set()
        self._candidates: tuple[Any, ...] | None = None
        self._step = 0
        self._round = 0

    def _active(self, rnd: int) -> list[Any]:
        return [p for p in self.model.protocols
                if p.index in self.cfgs and self.cfgs[p.index].enabled
                and rnd <= self.cfgs[p.index].max_rounds]

    def run(self, step: int, margins: Mapping[int, tuple[np.ndarray, Any]] | None = None,
            reprice: Callable[[], Mapping[int, tuple[np.ndarray, Any]]] | None = None
            ) -> Mapping[int, tuple[np.ndarray, Any]]:
        """Liquidation rounds of one step; returns the margins after the last round.

        Args:
            step: Current model step (recorded in events; latency is measured
                in steps).
            margins: The step's margin evaluation ``{protocol: (rows,
                MarginResult)}`` (default: the model's latest).
            reprice: Re-marks the books and re-evaluates every account after a
                round with events (default: the model's ``update_marks`` then
                ``evaluate_margins``).

        Returns:
            The final margins: ``margins`` itself when no round had an event.
            The step's events are :attr:`step_events` (and appended to
            :attr:`events`).
        """
        m = self.model
        self._step = int(step)
        self._cancelled = set()
        self._candidates = None
        for stats in self.step_stats.values():
            stats.update(dict.fromkeys(STAT_KEYS, 0.0))
        if margins is None:
            margins = m.margin_state or m.evaluate_margins()
        if reprice is None:
            def reprice() -> Mapping[int, tuple[np.ndarray, Any]]:
                m.update_marks()
                return m.evaluate_margins()
        start = len(self.events)
        rnd = 1
        while self._active(rnd):
            self._round = rnd
            self._track_first_seen(margins)
            before = len(self.events)
            for proto in self._active(rnd):
                if self._round_protocol(proto, margins):
                    self.step_stats[proto.index]["rounds"] = float(rnd)
            if len(self.events) == before:
                break
            margins = reprice()
            rnd += 1
        self._track_first_seen(margins)
        self._value_cache = self._gross_cache = None  # prices move before the next round
        for p, stats in self.step_stats.items():
            for k, v in stats.items():
                self.totals[p][k] += v
            self.max_depth[p] = max(self.max_depth[p], int(stats["rounds"]))
        self.step_events = self.events[start:]
        return margins

    def _track_first_seen(self, margins: Mapping[int, tuple[np.ndarray, Any]]) -> None:
        """Remember when each account first fell below maintenance (reset on recovery)."""
        below: set[int] = set()
        for rows, res in margins.values():
            below.update(int(r) for r in rows[res.below_maintenance])
        for r in list(self._first_seen):
            if r not in below:
                del self._first_seen[r]
        for r in below:
            self._first_seen.setdefault(r, self._step)

    def _round_protocol(self, proto: Any, margins: Mapping[int, tuple[np.ndarray, Any]]) -> bool:
        """One round on one protocol; True if anything happened."""
        m = self.model
        rows, res = margins[proto.index]
        if not res.below_maintenance.any():  # bankrupt implies below maintenance
            return False
        n_before = len(self.events)
        perps = self._perps(proto)
        values = m.ledger.account_value(m.asset_prices, m.marks)
        self._value_cache = values  # refreshed row by row as rows move (_values_of)
        self._gross_cache = None
        m.ledger.clear_dirty()
        tol = self._tolerances(rows)
        bankrupt = values[rows] < -tol
        held = perps if not proto.options else np.concatenate(
            [perps, np.array([i.index for i in proto.options], np.int64)])
        has_pos = (m.ledger.position[rows][:, held] != 0.0).any(axis=1)
        # something to act on: a position, or a balance in a risky asset (a borrow, or a
        # holding bought with borrowed quote); an account holding only quote has nothing
        # to close, and a negative quote balance alone is a deficit (bankrupt) or dust
        coll = m.ledger.collateral[rows]
        has_risky = (coll[:, QUOTE + 1:] != 0.0).any(axis=1)
        has_debt = (coll < 0.0).any(axis=1) & has_risky
        liquidatable = res.below_maintenance & (has_pos | has_debt) & ~bankrupt
        for k in self._shuffled(np.flatnonzero(liquidatable)):
            self._liquidate(proto, int(rows[k]), float(res.equity[k]), float(res.initial[k]),
                            float(res.maintenance[k]))
        bankrupt_rows = set(int(r) for r in rows[bankrupt])
        for k in self._shuffled(np.flatnonzero(bankrupt)):
            self._resolve_bankrupt(proto, int(rows[k]), bankrupt_rows)
        return len(self.events) > n_before

    def _shuffled(self, idx: np.ndarray) -> np.ndarray:
        return self.model.rng.permutation(idx) if len(idx) > 1 else idx

    @staticmethod
    def _perps(proto: Any) -> np.ndarray:
        return np.array([i.index for i in proto.instruments if i.is_perp], np.int64)

    def _tolerances(self, rows: np.ndarray) -> np.ndarray:
        """Round-off slack of each row's value: relative to its gross balances and notional."""
        m = self.model
        lg = m.ledger
        gross = np.abs(lg.collateral[rows]) @ np.abs(m.asset_prices)
        gross += lg.notional(m.marks, rows=rows)
        return _REL_TOL * (gross + 1.0)

    def _values_of(self, rows: np.ndarray, gross: bool = False) -> np.ndarray:
        """Account values (or gross perpetual notionals) of ``rows`` at this round's prices.

        Valued once for the whole ledger at the start of the protocol's round;
        a row the ledger has since changed (:meth:`sim.ledger.Ledger.take_dirty`)
        is valued again, with the same row-wise arithmetic, so the result is
        what valuing the rows now would give, without valuing every account
        for each bankrupt one (marks and index prices do not move within a
        round).
        """
        m = self.model
        lg = m.ledger
        cache = self._value_cache
        if cache is None or (len(rows) and int(rows.max()) >= len(cache)):
            return (lg.notional(m.marks, rows=rows) if gross
                    else lg.account_value(m.asset_prices, m.marks, rows=rows))
        moved = rows[lg.take_dirty(rows)]
        if len(moved):
            cache[moved] = lg.account_value(m.asset_prices, m.marks, rows=moved)
            if self._gross_cache is not None:
                self._gross_cache[moved] = lg.notional(m.marks, rows=moved)
        if not gross:
            return cache[rows]
        if self._gross_cache is None:
            self._gross_cache = lg.notional(m.marks)
        return self._gross_cache[rows]

    def _value(self, row: int) -> float:
        """One account's value (the ledger evaluates that row alone)."""
        m = self.model
        return float(m.ledger.account_value(m.asset_prices, m.marks, rows=(row,))[0])

    def _sync_book(self, j: int, *rows: int) -> None:
        """Tell the book the ledger's position after an off-book transfer (reduce-only clipping)."""
        inst = self.model.instruments[j]
        book = self.model.books[j]
        for r in rows:
            book.set_position(int(r), int(round(self.model.ledger.position[r, j] / inst.lot_size)))  # noqa: RUF046 - numpy floats

    def _entry(self, row: int, j: int) -> float:
        """``row``'s average entry price in instrument ``j`` (NaN when it holds none)."""
        lg = self.model.ledger
        return float(lg.entry_price[row, j]) if lg.position[row, j] != 0.0 else math.nan

    def _transfer(self, j: int, src: int, dst: int, qty: float, price: float) -> None:
        # both sides' entries before the move, for the event that records it (``_event``)
        self._moved = (j, src, dst, self._entry(src, j), self._entry(dst, j))
        self.model.ledger.transfer_position(j, src, dst, qty, price)
        self._sync_book(j, src, dst)

    def _cancel_orders(self, proto: Any, row: int) -> None:
        """Cancel the account's resting orders on the protocol's books, once per step.

        Each book's owner index lists the account's orders (in id order) at the
        cost of those orders alone, not of the book.
        """
        if row in self._cancelled:
            return
        self._cancelled.add(row)
        m = self.model
        for inst in [*proto.instruments, *proto.options]:
            ids = m.books[inst.index].live_orders_of(row)
            if len(ids):
                ev = m.view.new_events(len(ids))
                ev["kind"] = CANCEL
                ev["order_id"] = ids
                ev["owner"] = row
                m.submit(inst.index, ev)

    def _event(self, proto: Any, row: int, kind: str, instrument: int = -1, size: float = 0.0,
               price: float = 0.0, bonus: float = 0.0, fee: float = 0.0, amount: float = 0.0,
               shortfall: float = 0.0, taker: int = -1, asset: int = -1,
               entry: float = math.nan) -> None:
        taker_entry = math.nan
        moved, self._moved = self._moved, None
        if moved is not None and instrument >= 0 and moved[:3] == (instrument, row, taker):
            entry, taker_entry = moved[3], moved[4]  # the transfer this event records
        self.events.append({
            "step": self._step, "round": self._round, "protocol": proto.index, "account": row,
            "instrument": instrument, "asset": asset, "kind": kind, "size": float(size),
            "price": float(price),
            "notional": abs(float(size)) * float(price), "bonus": float(bonus), "fee": float(fee),
            "amount": float(amount), "shortfall": float(shortfall), "taker": int(taker),
            "entry": float(entry), "taker_entry": float(taker_entry)})
        acc = self._path_totals[proto.index][self._path_of[kind]]
        acc[0] += 1.0
        if instrument >= 0:
            inst = self.model.instruments[instrument]
            per_unit = (float(self.model.asset_prices[inst.base]) if kind.startswith("option_")
                        else float(price))
            acc[1] += abs(float(size)) * per_unit

    def _positions(self, proto: Any, row: int) -> list[tuple[int, float]]:
        pos = self.model.ledger.position
        return [(int(j), float(pos[row, j])) for j in self._perps(proto) if pos[row, j] != 0.0]

    def _liquidate(self, proto: Any, row: int, equity: float, initial: float,
                   maintenance: float) -> None:
        """Offer each perp position of a solvent account to liquidators; backstop if nobody acts.

        Spot exposure (borrows) is not offered to liquidators; the backstop
        takes it with the rest of the account.
        """
        m = self.model
        cfg = self.cfgs[proto.index]
        self._cancel_orders(proto, row)
        if proto.options:
            self._close_options(proto, row, penalty=True, in_book=True)
        positions = self._positions(proto, row)
        notional = sum(abs(q) * float(m.marks[j]) for j, q in positions)
        phi = close_fraction(cfg, equity, maintenance, notional)
        margin_left = equity
        acted = False
        for j, q in positions:
            inst = m.instruments[j]
            qty = offer_qty(q, phi, inst.lot_size)
            if cfg.close_in_book:
                traded, fee = self._close_perp_in_book(proto, row, j, qty, margin_left)
                if traded != 0.0:
                    acted = True
                    margin_left -= fee
                    q = float(m.ledger.position[row, j])
                    qty = qty - traded
                    if q == 0.0 or abs(qty) < inst.lot_size or qty * q <= 0.0:
                        continue
            cand = Candidate(self._step, self._round, proto.index, row, j, q, qty,
                             float(m.marks[j]), self._first_seen.get(row, self._step), equity,
                             initial, maintenance, notional, margin_left,
                             float(cfg.liquidation_fee), float(cfg.liquidator_share),
                             inst.lot_size)
            taken = self._offer(proto, cand)
            if taken is not None:
                acted = True
                margin_left -= taken
        below_backstop = equity < cfg.backstop_threshold * maintenance
        if not acted and cfg.backstop == "insurance" and below_backstop:
            self._backstop(proto, row)

    def _close_perp_in_book(self, proto: Any, row: int, j: int, qty: float,
                            margin_left: float) -> tuple[float, float]:
        """The venue's own close-out: a reduce-only IOC order for ``qty`` in the book.

        Limited at ``mark × (1 ∓ book_slippage)`` (Binance's liquidation
        engine and Hyperliquid's liquidator send the position to the book;
        ``LiquidationConfig.close_in_book``). What fills trades like any fill
        (taker fee to the treasury) and pays the liquidation fee on its
        notional at the mark to the insurance fund, capped by the margin left
        (:meth:`sim.market.offer.Candidate.fee`). Returns the signed quantity
        traded and that fee.
        """
        m = self.model
        cfg = self.cfgs[proto.index]
        mark = float(m.marks[j])
        side = -1 if qty > 0 else 1
        limit = mark * (1.0 + side * float(cfg.book_slippage))
        entry = self._entry(row, j)
        traded = self._ioc_close(row, j, qty, limit)
        if traded == 0.0:
            return 0.0, 0.0
        fee = min(float(cfg.liquidation_fee) * abs(traded) * mark, max(margin_left, 0.0))
        quote = m.instruments[j].quote
        if fee > 0.0:
            m.ledger.transfer(row, proto.insurance, quote, fee, allow_negative=True)
        self._event(proto, row, "book_close", j, traded, mark, fee=fee, taker=-1, entry=entry)
        stats = self.step_stats[proto.index]
        stats["liquidations"] += 1
        stats["notional"] += abs(traded) * mark
        stats["book_notional"] += abs(traded) * mark
        stats["fees"] += fee
        return traded, fee

    def _ioc_close(self, row: int, j: int, qty: float, limit: float) -> float:
        """Send a reduce-only IOC order closing ``qty`` of ``row``'s position in book ``j``.

        The order is limited at ``limit`` (pricing unit, rounded to a tick on
        the safe side and at least one tick) and goes through
        :meth:`sim.model.MarketModel.submit` like any order, so its fills move
        the book, the ledger and the marks' inputs. Returns the signed
        quantity traded (the position's change, same sign as ``qty``).
        """
        m = self.model
        inst = m.instruments[j]
        book = m.books[j]
        side = -1 if qty > 0 else 1
        before = float(m.ledger.position[row, j])
        lots = int(round(abs(qty) / inst.lot_size))  # noqa: RUF046 - numpy floats
        if lots == 0:
            return 0.0
        limit = max(limit, inst.tick_size)
        book.set_position(int(row), int(round(before / inst.lot_size)))  # noqa: RUF046 - numpy floats
        ev = m.view.new_events(1)
        ev["kind"] = LIMIT
        ev["owner"] = row
        ev["side"] = side
        ev["qty"] = lots
        ev["price"] = inst.ticks(limit, side=side)
        ev["flags"] = IOC | REDUCE_ONLY
        m.submit(j, ev)
        return before - float(m.ledger.position[row, j])

    def _offer(self, proto: Any, cand: Candidate) -> float | None:
        """Offer to liquidators in a random order; first taker wins. Returns the fee charged."""
        liqs = [a for a in getattr(self.model, "liquidators", ()) if proto.index in a.accounts]
        order = self._shuffled(np.arange(len(liqs)))
        for i in order:
            liq = liqs[int(i)]
            accepted = abs(float(liq.offer(cand)))
            if accepted <= 0.0:
                continue
            qty = min(accepted, abs(cand.qty))
            if abs(cand.position) - qty < cand.lot_size:  # no sub-lot dust left behind
                qty = abs(cand.position)
            return self._take(proto, cand, liq, math.copysign(qty, cand.position))
        return None

    def _take(self, proto: Any, cand: Candidate, liq: Any, qty: float) -> float:
        """Move ``qty`` to the liquidator at the mark, pay fee and bonus, let it unwind."""
        lg = self.model.ledger
        taker = int(liq.accounts[proto.index])
        quote = self.model.instruments[cand.instrument].quote
        self._transfer(cand.instrument, cand.account, taker, qty, cand.mark)
        fee = cand.fee(qty)
        bonus = cand.liquidator_share * fee
        if bonus > 0.0:
            lg.transfer(cand.account, taker, quote, bonus, allow_negative=True)
        if fee - bonus > 0.0:
            lg.transfer(cand.account, proto.insurance, quote, fee - bonus, allow_negative=True)
        self._event(proto, cand.account, "liquidator", cand.instrument, qty, cand.mark,
                    bonus=bonus, fee=fee - bonus, taker=taker)
        stats = self.step_stats[proto.index]
        stats["liquidations"] += 1
        stats["notional"] += abs(qty) * cand.mark
        stats["fees"] += fee - bonus
        stats["bonuses"] += bonus
        liq.unwind(cand.instrument)
        return fee

    def _backstop(self, proto: Any, row: int) -> None:
        """The fund takes the whole account: perps at the mark, balances, the quote margin.

        One ``backstop`` event per perp moved (counted as a liquidation), per
        non-quote balance moved, and one for the quote margin seized (``fee``).
        """
        m = self.model
        stats = self.step_stats[proto.index]
        for j, q in self._positions(proto, row):
            mark = float(m.marks[j])
            self._transfer(j, row, proto.insurance, q, mark)
            self._event(proto, row, "backstop", j, q, mark, taker=proto.insurance)
            stats["liquidations"] += 1
            stats["backstops"] += 1
            stats["notional"] += abs(q) * mark
        self._take_balances(proto, row, "backstop")
        margin = max(float(m.ledger.collateral[row, QUOTE]), 0.0)
        if margin > 0.0:
            m.ledger.transfer(row, proto.insurance, QUOTE, margin)
            self._event(proto, row, "backstop", size=margin, price=1.0, fee=margin,
                        taker=proto.insurance, asset=QUOTE)
            stats["fees"] += margin

    def _take_balances(self, proto: Any, row: int, kind: str) -> None:
        """The fund takes over every non-quote balance at the index price (value-neutral).

        Holdings are bought and borrows (negative balances) assumed by the
        fund against quote at the oracle index, so the account is left with
        quote only and unchanged value. The fund may end with a negative
        balance in an asset (it now owes what the account had borrowed) or in
        quote (it paid for holdings with money it did not have): both are
        matched by what it received, not losses.
        """
        m = self.model
        lg = m.ledger
        ins = proto.insurance
        for a in range(lg.n_assets):
            b = float(lg.collateral[row, a])
            if a == QUOTE or b == 0.0:
                continue
            price = float(m.asset_prices[a])
            if b > 0.0:
                lg.transfer(row, ins, a, b)
                lg.transfer(ins, row, QUOTE, b * price, allow_negative=True)
            else:
                lg.transfer(ins, row, a, -b, allow_negative=True)
                lg.transfer(row, ins, QUOTE, -b * price, allow_negative=True)
            self._event(proto, row, kind, size=b, price=price, taker=ins, asset=a)

    def check_bad_debt(self, rtol: float = 1e-9) -> None:
        """Raise if a bad-debt row's balance differs from ``-bad_debt`` (the recorded write-offs).

        Raises:
            AssertionError: With the protocol, the balance and the record.
        """
        coll = self.model.ledger.collateral
        for p, row in self.bad_debt_rows.items():
            held = float(coll[row, QUOTE])
            if abs(held + self.bad_debt[p]) > rtol * max(1.0, self.bad_debt[p]):
                raise AssertionError(f"bad-debt row of protocol {p} holds {held!r}, "
                                     f"recorded bad debt is {self.bad_debt[p]!r}")

    def events_table(self) -> dict[str, np.ndarray]:
        """The event log as columns (for Parquet), in :data:`EVENT_COLUMNS` order."""
        out: dict[str, np.ndarray] = {}
        for col in EVENT_COLUMNS:
            vals = [e[col] for e in self.events]
            if col == "kind":
                out[col] = np.array(vals, dtype=object)
            elif col in ("step", "round", "protocol", "account", "instrument", "asset", "taker"):
                out[col] = np.array(vals, dtype=np.int64)
            else:
                out[col] = np.array(vals, dtype=np.float64)
        return out

    def summary(self) -> dict[str, dict[str, Any]]:
        """Run totals per protocol name, for ``summary.json``.

        Keys: the :data:`STAT_KEYS` totals (``rounds`` summed over steps),
        ``max_depth``, ``bad_debt_total`` (recorded write-offs), ``events``,
        and bad debt at mark (:mod:`sim.venue.insurance`): ``bad_debt_uncovered_at_mark``
        (the insurance fund's negative marked equity, 0 when it is solvent) and
        ``bad_debt_total_at_mark`` (the sum of both); ``paths``: where the
        liquidated notional and the deficits went (:meth:`_paths`).
        """
        out = {}
        value = getattr(self.model, "insurance_state", None)
        for p in self.model.protocols:
            entry = {k: float(v) for k, v in self.totals[p.index].items()}
            entry["max_depth"] = float(self.max_depth[p.index])
            entry["bad_debt_total"] = float(self.bad_debt[p.index])
            uncovered = float(value(p).uncovered) if value is not None else 0.0
            entry["bad_debt_uncovered_at_mark"] = uncovered
            entry["bad_debt_total_at_mark"] = entry["bad_debt_total"] + uncovered
            entry["events"] = float(sum(e["protocol"] == p.index for e in self.events))
            entry["paths"] = self._paths(p.index)
            out[p.name] = entry
        return out

    def _paths(self, protocol: int) -> dict[str, dict[str, float | None]]:
        """Where the protocol's liquidated positions and deficits went (:data:`PATHS`).

        Per path: ``events``; ``notional`` of the positions it moved
        (perpetuals at the event's price, options at the underlying index at
        the time, as the ``notional`` counter counts them); ``share``: the
        path's fraction of all position notional moved (traded + backstopped
        + ADL'd), None when none was (JSON null); and the quote amount absorbed
        (``amount``): the insurance fund's payments for ``backstopped``, the
        ADL counterparties' loss against the mark, the socialised charges and
        the bad debt written off (the ``insurance_paid``, ``adl_loss``,
        ``socialised`` and ``bad_debt`` counters); 0 for ``traded``.
        """
        acc = self._path_totals[protocol]
        totals = self.totals[protocol]
        amounts = {"traded": 0.0, "backstopped": totals["insurance_paid"],
                   "adl": totals["adl_loss"], "socialised": totals["socialised"],
                   "bad_debt": totals["bad_debt"]}
        moved = sum(acc[k][1] for k in ("traded", "backstopped", "adl"))
        return {name: {"events": acc[name][0], "notional": acc[name][1],
                       "share": acc[name][1] / moved if moved > 0.0 else None,
                       "amount": float(amounts[name])} for name in PATHS}

    def metric_names(self) -> list[str]:
        """Time-series metric names, ``<protocol>.liq_<counter>`` plus cumulative bad debt."""
        names = []
        for p in self.model.protocols:
            names += [f"{p.name}.liq_{k}" for k in STAT_KEYS]
            names.append(f"{p.name}.bad_debt_total")
        return names

    def write_metrics(self, metrics: dict[str, float]) -> None:
        """Write the last step's counters (see :meth:`metric_names`) into ``metrics``."""
        for p in self.model.protocols:
            for k, v in self.step_stats[p.index].items():
                metrics[f"{p.name}.liq_{k}"] = float(v)
            metrics[f"{p.name}.bad_debt_total"] = float(self.bad_debt[p.index])
