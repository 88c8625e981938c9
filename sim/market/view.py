"""The market view: everything an agent may read from, or send to, the world.

Agents (``agents/``) hold strategy parameters and ledger row ids only; they see
prices, books and their own balances through this view and act by submitting
arrays of order events (``EVENT_DTYPE``) to an instrument. The view is the one
seam between behaviour and mechanics (DESIGN.md: ``agents -> sim``'s public
market view only).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.market.book import (
    CANCEL,
    EVENT_DTYPE,
    IOC,
    LIMIT,
    MARKET,
    POST_ONLY,
    REDUCE_ONLY,
    STATUS_RESTING,
)
from sim.market.instruments import Instrument


__all__ = [
    "CANCEL",
    "EVENT_DTYPE",
    "IOC",
    "LIMIT",
    "MARKET",
    "POST_ONLY",
    "REDUCE_ONLY",
    "STATUS_RESTING",
    "MarketView",
]


class MarketView:
    """Read access to prices, books and own balances; order submission.

    Args:
        model: The model this view looks into.
    """

    def __init__(self, model: Any) -> None:
        self._m = model
        self._table = np.zeros((3, 0))
        self._table_parts: list[tuple[np.ndarray, object]] | None = None
        self._option_cache: tuple[tuple[int, int], dict[str, np.ndarray]] | None = None

    @property
    def step(self) -> int:
        """Current model step (1 during the first step; 0 while seeding liquidity)."""
        return self._m.steps

    @property
    def liquidity(self) -> float:
        """Market-wide liquidity multiplier set by the scenario (1 normal, 0 = makers withdraw)."""
        return self._m.liquidity

    @property
    def instruments(self) -> list[Instrument]:
        """All instruments of the world, by index."""
        return self._m.instruments

    @property
    def step_years(self) -> float:
        """Length of one step in years."""
        return self._m.scenario.dt

    def index_price(self, asset: int) -> float:
        """The oracle's index price of an asset (quote units)."""
        return float(self._m.asset_prices[asset])

    def underlying_price(self, instrument: int) -> float:
        """Index price of an instrument's base asset."""
        return self.index_price(self._m.instruments[instrument].base)

    def mark(self, instrument: int) -> float:
        """Current mark price of an instrument."""
        return float(self._m.marks[instrument])

    def best_bid(self, instrument: int) -> float | None:
        """Best bid in quote units, None when the bid side is empty."""
        t = self._m.books[instrument].best_bid()
        return None if t is None else t * self._m.instruments[instrument].tick_size

    def best_ask(self, instrument: int) -> float | None:
        """Best ask in quote units, None when the ask side is empty."""
        t = self._m.books[instrument].best_ask()
        return None if t is None else t * self._m.instruments[instrument].tick_size

    def mid(self, instrument: int) -> float | None:
        """Mid price in quote units, None unless both sides are quoted."""
        m = self._m.books[instrument].mid()
        return None if m is None else m * self._m.instruments[instrument].tick_size

    def reference_price(self, instrument: int) -> float:
        """Book mid when both sides exist, otherwise the index of the base asset."""
        mid = self.mid(instrument)
        return self.underlying_price(instrument) if mid is None else mid

    # ---------------------------------------------------------------- options
    def option_slots(self, protocol: int | None = None, asset: int | None = None) -> np.ndarray:
        """Instrument indices of the option slots (of one protocol and underlying if given)."""
        return np.array([i.index for i in self._m.instruments if i.is_option
                         and (protocol is None or i.protocol == protocol)
                         and (asset is None or i.base == asset)], np.int64)

    def option_table(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """What an option trader reads of some slots, as arrays aligned with ``slots``.

        Keys: ``listed`` (bool), ``expiry_step`` (-1 unlisted; a new value means a
        new contract), ``strike``, ``tte`` (years to expiry), ``is_call``, ``iv``
        (mark implied vol), ``mark`` (in the book's quote unit), ``mark_usd``,
        ``delta``, ``gamma``, ``vega`` (USD per vol point) and ``theta`` (USD per
        day), Black-76 per unit of the underlying.
        """
        m = self._m
        o = m.options
        if o is None or len(slots) == 0:
            z = np.zeros(len(slots))
            return {"listed": z.astype(bool), "expiry_step": np.full(len(slots), -1),
                    "strike": z, "tte": z, "is_call": z.astype(bool), "iv": z, "mark": z,
                    "mark_usd": z, "delta": z, "gamma": z, "vega": z, "theta": z}
        key = (m.steps, m.option_epoch)
        if self._option_cache is None or self._option_cache[0] != key:
            g = m.option_greeks
            allslots = o.slots
            self._option_cache = (key, {
                "listed": o.listed(), "expiry_step": o.chain.expiry_step.copy(),
                "strike": o.chain.strike.copy(), "tte": o.time_to_expiry(m.steps),
                "is_call": o.is_call, "iv": m.implied_vols[allslots],
                "mark": m.marks[allslots], "mark_usd": g.value, "delta": g.delta,
                "gamma": g.gamma, "vega": g.vega, "theta": g.theta})
        k = m.option_index[np.asarray(slots, np.int64)]
        return {name: col[k] for name, col in self._option_cache[1].items()}

    @property
    def option_events(self) -> int:
        """Number of option listing and settlement events so far (changes when contracts do)."""
        o = self._m.options
        return 0 if o is None else len(o.events)

    def usd_per_quote(self, instrument: int) -> float:
        """Value of one unit of an instrument's quote asset in USD (1 unless coin-quoted)."""
        return float(self._m.asset_prices[self._m.instruments[instrument].quote])

    def positions(self, rows: np.ndarray, instrument: int) -> np.ndarray:
        """Perpetual or option positions (base units) of some accounts (a copy)."""
        return self._m.ledger.position[rows, instrument].copy()

    def holdings(self, rows: np.ndarray, instruments: np.ndarray) -> np.ndarray:
        """Position of ``rows[i]`` in ``instruments[i]`` (arrays broadcast; a copy).

        For a spot instrument it is the balance of its base asset.
        """
        m = self._m
        rows = np.asarray(rows, np.int64)
        instruments = np.asarray(instruments, np.int64)
        out = m.ledger.position[rows, instruments]
        spot = m.specs.kind[instruments] == 0
        if np.any(spot):
            base = m.specs.underlying[instruments]
            bal = m.ledger.collateral[rows, base]
            out = np.where(spot, bal, out)
        return np.array(out, np.float64)

    def balances(self, rows: np.ndarray, asset: int) -> np.ndarray:
        """Collateral balances of some accounts in one asset (a copy)."""
        return self._m.ledger.collateral[rows, asset].copy()

    def margin(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Equity, initial and maintenance requirement of accounts, from the last evaluation.

        Accounts are looked up in their protocol's most recent engine result
        (end of the previous step, or the latest liquidation round); accounts
        in no result get ``nan``.

        Returns:
            ``(equity, initial, maintenance)`` float64 arrays aligned with ``rows``.
        """
        rows = np.asarray(rows, np.int64)
        table = self._margin_table()
        if len(rows) and (rows.min() < 0 or rows.max() >= table.shape[1]):
            return self._margin_search(rows)
        out = table[:, rows]
        return out[0], out[1], out[2]

    def _margin_table(self) -> np.ndarray:
        """``float64[3, max row + 1]`` of the last results by ledger row (nan = no result).

        Rebuilt only when ``margin_state`` holds other results than last time.
        """
        parts = list(self._m.margin_state.values())
        cached = self._table_parts
        if (cached is not None and len(cached) == len(parts)
                and all(a is b for a, b in zip(cached, parts, strict=True))):
            return self._table
        width = max((int(prows.max()) + 1 for prows, _res in parts if len(prows)), default=0)
        table = np.full((3, width), np.nan)
        for prows, res in parts:  # a later protocol's result wins, as in _margin_search
            table[0, prows] = res.equity
            table[1, prows] = res.initial
            table[2, prows] = res.maintenance
        self._table, self._table_parts = table, parts
        return table

    def _margin_search(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`margin` by binary search in each result (any row values)."""
        out = np.full((3, len(rows)), np.nan)
        for prows, res in self._m.margin_state.values():
            pos = np.searchsorted(prows, rows)
            pos = np.clip(pos, 0, max(len(prows) - 1, 0))
            hit = (
                (len(prows) > 0) & (prows[pos] == rows) if len(prows) else np.zeros(len(rows), bool)
            )
            out[0, hit] = res.equity[pos[hit]]
            out[1, hit] = res.initial[pos[hit]]
            out[2, hit] = res.maintenance[pos[hit]]
        return out[0], out[1], out[2]

    def deposit(self, row: int, amount: float, asset: int = 0) -> None:
        """Top up an account from outside the world (default: the quote asset)."""
        self._m.ledger.deposit(int(row), asset, float(amount))

    def book_depth(self, instrument: int, levels: int) -> tuple[np.ndarray, np.ndarray]:
        """L2 depth in quote-unit prices and base quantities: ``(bids, asks)``, each (k, 2)."""
        inst = self._m.instruments[instrument]
        bids, asks = self._m.books[instrument].depth(levels)
        conv = np.array([inst.tick_size, inst.lot_size])
        return bids * conv, asks * conv

    def sweep_cost(self, instrument: int, side: int, qty: float):
        """VWAP and slippage of a hypothetical market order of ``qty`` base units.

        Returns:
            ``(filled_qty, vwap, slippage)`` in base units, quote-unit price and
            fraction of the mid (``nan`` when nothing would fill).
        """
        inst = self._m.instruments[instrument]
        lots = int(max(round(qty / inst.lot_size), 0))
        s = self._m.books[instrument].sweep_cost(int(side), lots)
        return s.filled_qty * inst.lot_size, s.vwap * inst.tick_size, s.slippage

    def new_events(self, n: int) -> np.ndarray:
        """A zeroed array of ``n`` order events to fill in and submit."""
        return np.zeros(n, dtype=EVENT_DTYPE)

    def submit_many(self, batch: list[tuple[int, np.ndarray]]) -> list[np.ndarray]:
        """:meth:`submit` of several books of one protocol, with one pre-trade check.

        Returns:
            One ``RESULT_DTYPE`` array per ``(instrument, events)`` item.
        """
        return self._m.submit_many(batch)

    def submit(self, instrument: int, events: np.ndarray) -> np.ndarray:
        """Send order events (owner = the sending account row) to an instrument's book.

        Orders pass the protocol's pre-trade margin check first; rejected ones
        get order id -1 and status ``REJECTED_MARGIN`` in the returned rows.

        Returns:
            ``RESULT_DTYPE`` rows aligned with ``events``.
        """
        return self._m.submit(instrument, events)
