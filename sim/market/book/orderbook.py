"""The :class:`OrderBook`: a Python handle on one instrument's numba book.

The book is a price-time-priority continuous double auction (as on CME Globex
or Binance): integer price ticks >= 1 with no upper band, integer lot
quantities, limit / market / IOC / post-only / reduce-only orders, cancels,
partial fills and self-trade prevention after Binance's ``EXPIRE_MAKER`` /
``EXPIRE_TAKER`` / ``EXPIRE_BOTH``.  All state lives in int64 arrays processed
by :mod:`sim.market.book.kernels`; this class owns the arrays, grows them
geometrically when a kernel reports that one is full, and offers two ways in:

* per-call methods (:meth:`OrderBook.limit`, :meth:`OrderBook.market`,
  :meth:`OrderBook.cancel`) for tests, notebooks and plain-Python agents;
* :meth:`OrderBook.apply_events`, which applies a whole ``EVENT_DTYPE`` array
  in one kernel call (the path the simulation model uses).

Resting orders are indexed by owner as well as by price level, so
:meth:`OrderBook.live_orders_of` lists one owner's orders (to cancel them, as
a liquidation does) at the cost of that owner's orders alone.

Both paths run the same kernel and give identical results for valid events.
The pure-Python oracle with the same semantics is
``experiments/bench/reference_book.py``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from numba import types

from sim.market.book import analytics, kernels
from sim.market.book.constants import (
    ALL_FLAGS,
    ASK,
    BID,
    E_OWNER,
    EVENT_DTYPE,
    FILL_DTYPE,
    IOC,
    L_PRICE,
    LIMIT,
    M_CANCELLED_QTY,
    M_FREE,
    M_N_ASK_ORDERS,
    M_N_BID_ORDERS,
    M_N_FILLS,
    M_N_OWNERS,
    M_NEXT_ID,
    M_STEP,
    M_STP,
    M_SUBMITTED_QTY,
    MARKET,
    META_SIZE,
    N_EVENT_COLS,
    N_FILL_COLS,
    N_LEVEL_COLS,
    N_ORDER_COLS,
    N_OWNER_COLS,
    N_RESULT_COLS,
    NEED_BASE,
    NEED_FILLS,
    NEED_LEVELS,
    NEED_ORDERS,
    NEED_OWNERS,
    O_FLAGS,
    O_ID,
    O_OWNER,
    O_PRICE,
    O_REM,
    O_SIDE,
    POST_ONLY,
    RESULT_DTYPE,
    STATUS_CANCELLED,
    STATUS_NOT_FOUND,
    STP_CANCEL_BOTH,
    STP_CANCEL_RESTING,
    STP_CANCEL_TAKER,
    STP_NONE,
    W_COUNT,
)

__all__ = ["LIVE_ORDER_DTYPE", "BookState", "OrderBook", "SweepCost"]

LIVE_ORDER_DTYPE = np.dtype(
    [
        ("order_id", np.int64),
        ("side", np.int64),
        ("price", np.int64),
        ("remaining", np.int64),
        ("owner", np.int64),
        ("flags", np.int64),
    ]
)
"""Rows returned by :meth:`OrderBook.live_orders`."""

_LIMIT_FLAGS = frozenset(
    f for f in range(ALL_FLAGS + 1) if f & (IOC | POST_ONLY) != IOC | POST_ONLY
)
_MARKET_FLAGS = frozenset(f for f in range(ALL_FLAGS + 1) if not f & POST_ONLY)


class SweepCost(NamedTuple):
    """Cost of a hypothetical market order (see :func:`sim.market.book.analytics.sweep_cost`).

    Attributes:
        filled_qty: Lots the book could fill (< requested when too thin).
        notional: Exact sum of price * qty over the filled lots, in tick-lots.
        vwap: Average fill price in ticks (NaN if nothing fills).
        slippage: ``side * (vwap - mid) / mid``, or relative to the best
            opposite price when the own side is empty (NaN if nothing fills).
    """

    filled_qty: int
    notional: int
    vwap: float
    slippage: float


class BookState(NamedTuple):
    """The raw state arrays of a book, for njit callers.

    The field order is the argument order of the kernels in
    :mod:`sim.market.book.kernels` (``apply_batch(*book.state, events, results, 0)``);
    :mod:`sim.market.book.analytics` takes ``levels`` and ``meta``.  The arrays are
    replaced when the book grows: fetch a fresh ``state`` after every call that
    may add orders, levels, fills or owners, and let the wrapper do the growing
    when a kernel returns a ``NEED_*`` code.
    """

    orders: np.ndarray
    table: np.ndarray
    levels: np.ndarray
    fills: np.ndarray
    positions: np.ndarray
    by_owner: np.ndarray
    meta: np.ndarray


_I64 = types.int64
_SUBMIT_SIG = (
    types.int64[:, ::1],
    types.int64[::1],
    types.int64[:, :, ::1],
    types.int64[:, ::1],
    types.int64[::1],
    types.int64[:, ::1],
    types.int64[::1],
    *([_I64] * 7),
)
_CANCEL_SIG = (
    types.int64[:, ::1],
    types.int64[::1],
    types.int64[:, :, ::1],
    types.int64[:, ::1],
    types.int64[::1],
    _I64,
)


@functools.cache
def _entry_points():
    """Compiled (or cache-loaded) entry points of the per-call kernels.

    Calling a compiled overload's entry point directly skips numba's type
    dispatch (measured here: ~270 ns instead of ~400 ns for the six-array
    call).  The signatures are fixed, and the wrapper only ever passes its own
    int64 arrays and ints it has validated (the entry point would silently
    truncate a float, hence the integer checks in the per-call methods).
    """
    return (
        kernels.submit_one.compile(_SUBMIT_SIG),
        kernels.cancel_order.compile(_CANCEL_SIG),
    )


def _empty_owner_index(n: int) -> np.ndarray:
    """``n`` rows of the owner index: no live orders (head and tail -1, count 0)."""
    out = np.full((n, N_OWNER_COLS), -1, np.int64)
    out[:, W_COUNT] = 0
    return out


def _table_size(order_capacity: int) -> int:
    return 1 << max(4, (2 * order_capacity - 1).bit_length())


def _readonly_fill_view(fills: np.ndarray) -> np.ndarray:
    view = fills.view(FILL_DTYPE).reshape(fills.shape[0])
    view.flags.writeable = False
    return view


def _check_capacity(name: str, value: int) -> int:
    if int(value) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(value)


def _invalid_order(kind: str, side, price, qty, owner, flags) -> ValueError:
    allowed = sorted(_LIMIT_FLAGS if kind == "limit" else _MARKET_FLAGS)
    return ValueError(
        f"invalid {kind} order: need side in (+1, -1), integer price >= 1, qty >= 1, "
        f"owner >= 0, flags in {allowed}; got side={side!r} price={price!r} qty={qty!r} "
        f"owner={owner!r} flags={flags!r}"
    )


def _all_int(*values) -> bool:
    return all(isinstance(v, int | np.integer) for v in values)


class OrderBook:
    """Limit order book of one instrument, price-time priority.

    Semantics (see :func:`sim.market.book.kernels.process_event` for the full list):
    every LIMIT and MARKET order gets the next sequential id starting at 0,
    whether it rests, fills or is rejected; fills happen at the maker's price,
    best price first and FIFO within a level; market and IOC remainders are
    cancelled; a post-only order that would cross is rejected; self-trade
    prevention is a per-book mode; reduce-only orders are clipped to the
    owner's reducible position at entry and before each maker fill.

    Args:
        stp: Self-trade prevention mode, one of ``STP_NONE``,
            ``STP_CANCEL_RESTING`` (default, Binance ``EXPIRE_MAKER``),
            ``STP_CANCEL_TAKER``, ``STP_CANCEL_BOTH``.
        order_capacity: Initial number of live-order slots.
        level_capacity: Initial number of price levels per side.
        fill_capacity: Initial number of fill-log rows.
        owner_capacity: Initial number of owners of the positions array and
            of the owner index.

    All capacities grow by doubling when needed; owner ids index an array, so
    they should be small dense integers.
    """

    def __init__(
        self,
        stp: int = STP_CANCEL_RESTING,
        order_capacity: int = 1024,
        level_capacity: int = 256,
        fill_capacity: int = 16384,
        owner_capacity: int = 16,
    ) -> None:
        if stp not in (STP_NONE, STP_CANCEL_RESTING, STP_CANCEL_TAKER, STP_CANCEL_BOTH):
            raise ValueError(f"stp must be one of 0, 1, 2, 3 (STP_* constants), got {stp!r}")
        order_capacity = _check_capacity("order_capacity", order_capacity)
        level_capacity = _check_capacity("level_capacity", level_capacity)
        fill_capacity = _check_capacity("fill_capacity", fill_capacity)
        owner_capacity = _check_capacity("owner_capacity", owner_capacity)
        self._meta = np.zeros(META_SIZE, np.int64)
        self._meta[M_FREE] = -1
        self._meta[M_STP] = stp
        self._orders = np.zeros((order_capacity, N_ORDER_COLS), np.int64)
        kernels.link_free_slots(self._orders, self._meta, 0)
        self._table = np.full(_table_size(order_capacity), -1, np.int64)
        self._levels = np.zeros((2, level_capacity, N_LEVEL_COLS), np.int64)
        self._fills = np.zeros((fill_capacity, N_FILL_COLS), np.int64)
        self._fill_view = _readonly_fill_view(self._fills)
        self._positions = np.zeros(owner_capacity, np.int64)
        self._by_owner = _empty_owner_index(owner_capacity)
        self._submit, self._cancel = _entry_points()
        self._no_fills = _readonly_fill_view(np.zeros((0, N_FILL_COLS), np.int64))
        self.last_status: int | None = None
        """Status code of the last per-call ``limit``/``market``/``cancel``."""

    # --- growth -----------------------------------------------------------------
    def _grow(self, code: int, owner: int) -> None:
        if code == NEED_ORDERS:
            old = self._orders
            n = old.shape[0]
            new = np.empty((2 * n, N_ORDER_COLS), np.int64)
            new[:n] = old
            kernels.link_free_slots(new, self._meta, n)
            table = np.full(_table_size(2 * n), -1, np.int64)
            kernels.rebuild_table(table, new)
            self._orders, self._table = new, table
        elif code == NEED_LEVELS:
            old = self._levels
            n = old.shape[1]
            new = np.empty((2, 2 * n, N_LEVEL_COLS), np.int64)
            new[:, :n] = old
            self._levels = new
        elif code == NEED_FILLS:
            old = self._fills
            n = old.shape[0]
            new = np.empty((2 * n, N_FILL_COLS), np.int64)
            used = int(self._meta[M_N_FILLS])
            new[:used] = old[:used]
            self._fills = new
            self._fill_view = _readonly_fill_view(new)
        elif code == NEED_OWNERS:
            self._grow_positions(owner + 1)
        else:  # pragma: no cover - kernels only return the codes above
            raise RuntimeError(f"unknown kernel capacity code {code}")

    def _grow_positions(self, needed: int) -> None:
        n = self._positions.shape[0]
        if needed <= n:
            return
        new = np.zeros(max(2 * n, needed), np.int64)
        new[:n] = self._positions
        by_owner = _empty_owner_index(new.shape[0])
        by_owner[:n] = self._by_owner
        self._positions, self._by_owner = new, by_owner

    # --- per-call order entry -------------------------------------------------------
    def limit(self, side, price, qty, owner, flags=0, step=None):
        """Submit a limit order.

        Args:
            side: ``Side.BUY`` (+1) or ``Side.SELL`` (-1).
            price: Limit price in ticks, >= 1.
            qty: Quantity in lots, >= 1.
            owner: Owner id, >= 0.
            flags: Bit mask of ``IOC``, ``POST_ONLY``, ``REDUCE_ONLY`` (IOC and
                POST_ONLY together are invalid).
            step: If given, becomes :attr:`step` before the order is applied;
                fills are stamped with :attr:`step`.

        Returns:
            ``(order_id, fills)``: the id the order consumed and a read-only
            ``FILL_DTYPE`` array of the fills it caused (a view into the
            append-only log).  :attr:`last_status` holds its ``STATUS_*``.

        Raises:
            ValueError: On an invalid side, price, qty, owner or flags (no id
                is consumed, unlike an invalid event in :meth:`apply_events`).
            TypeError: On non-integer arguments.
        """
        if (
            (side != 1 and side != -1)
            or price < 1
            or qty < 1
            or owner < 0
            or flags not in _LIMIT_FLAGS
        ):
            raise _invalid_order("limit", side, price, qty, owner, flags)
        if (
            price.__class__ is not int or qty.__class__ is not int or owner.__class__ is not int
        ) and not _all_int(price, qty, owner):
            raise TypeError(
                f"price, qty, owner must be integers, got {price!r}, {qty!r}, {owner!r}"
            )
        if step is not None:
            self._meta[M_STEP] = step
        while True:
            code, oid, _, first, end = self._submit(
                self._orders,
                self._table,
                self._levels,
                self._fills,
                self._positions,
                self._by_owner,
                self._meta,
                LIMIT,
                side,
                price,
                qty,
                owner,
                flags,
                -1,
            )
            if code < NEED_BASE:
                break
            self._grow(code, owner)
        self.last_status = code
        if end == first:
            return oid, self._no_fills
        return oid, self._fill_view[first:end]

    def market(self, side, qty, owner, flags=0, step=None):
        """Submit a market order; the unfilled remainder is cancelled.

        Args:
            side: ``Side.BUY`` (+1) or ``Side.SELL`` (-1).
            qty: Quantity in lots, >= 1.
            owner: Owner id, >= 0.
            flags: Bit mask of ``IOC`` (redundant) and ``REDUCE_ONLY``.
            step: If given, becomes :attr:`step` before the order is applied.

        Returns:
            ``(order_id, fills)`` as for :meth:`limit`.

        Raises:
            ValueError: On an invalid side, qty, owner or flags.
            TypeError: On a non-integer qty.
        """
        if (side != 1 and side != -1) or qty < 1 or owner < 0 or flags not in _MARKET_FLAGS:
            raise _invalid_order("market", side, 1, qty, owner, flags)
        if (qty.__class__ is not int or owner.__class__ is not int) and not _all_int(qty, owner):
            raise TypeError(f"qty and owner must be integers, got {qty!r}, {owner!r}")
        if step is not None:
            self._meta[M_STEP] = step
        while True:
            code, oid, _, first, end = self._submit(
                self._orders,
                self._table,
                self._levels,
                self._fills,
                self._positions,
                self._by_owner,
                self._meta,
                MARKET,
                side,
                0,
                qty,
                owner,
                flags,
                -1,
            )
            if code < NEED_BASE:
                break
            self._grow(code, owner)
        self.last_status = code
        if end == first:
            return oid, self._no_fills
        return oid, self._fill_view[first:end]

    def cancel(self, order_id) -> bool:
        """Cancel a resting order.

        Args:
            order_id: Id returned when the order was submitted.

        Returns:
            True if the order was live (it is now cancelled), else False.

        Raises:
            TypeError: On a non-integer id.
        """
        if order_id.__class__ is not int and not _all_int(order_id):
            raise TypeError(f"order_id must be an integer, got {order_id!r}")
        ok = self._cancel(
            self._orders, self._table, self._levels, self._by_owner, self._meta, order_id
        ) >= 0
        self.last_status = STATUS_CANCELLED if ok else STATUS_NOT_FOUND
        return ok

    # --- batched order entry ------------------------------------------------------
    def apply_events(self, events: np.ndarray, step: int | None = None) -> np.ndarray:
        """Apply an array of events in order, in one kernel call.

        Invalid events are not errors here: they get a ``STATUS_REJECTED_*``
        row (an invalid LIMIT/MARKET still consumes an order id).  When an
        array fills up the kernel stops before the event, the book grows, and
        the batch resumes at that event.

        Args:
            events: 1-D array of ``EVENT_DTYPE``.
            step: If given, becomes :attr:`step` first; all fills of the batch
                are stamped with :attr:`step`.

        Returns:
            ``RESULT_DTYPE`` array, one row per event.

        Raises:
            ValueError: If ``events`` is not a 1-D ``EVENT_DTYPE`` array.
        """
        events = np.asarray(events)
        if events.dtype != EVENT_DTYPE or events.ndim != 1:
            raise ValueError(
                f"events must be a 1-D array of EVENT_DTYPE, got dtype {events.dtype} "
                f"with shape {events.shape}"
            )
        n = events.shape[0]
        ev = np.ascontiguousarray(events).view(np.int64).reshape(n, N_EVENT_COLS)
        results = np.empty(n, RESULT_DTYPE)
        res = results.view(np.int64).reshape(n, N_RESULT_COLS)
        if step is not None:
            self._meta[M_STEP] = step
        start = 0
        while True:
            start, code = kernels.apply_batch(
                self._orders,
                self._table,
                self._levels,
                self._fills,
                self._positions,
                self._by_owner,
                self._meta,
                ev,
                res,
                start,
            )
            if code == 0:
                return results
            self._grow(code, int(ev[start, E_OWNER]))

    # --- prices and depth ---------------------------------------------------------
    def best_bid(self) -> int | None:
        """Highest resting bid in ticks, or None if there are no bids."""
        n = self._meta[BID]
        return int(self._levels[BID, n - 1, L_PRICE]) if n else None

    def best_ask(self) -> int | None:
        """Lowest resting ask in ticks, or None if there are no asks."""
        n = self._meta[ASK]
        return int(self._levels[ASK, n - 1, L_PRICE]) if n else None

    def mid(self) -> float | None:
        """Mid price in ticks, or None unless both sides are quoted."""
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or ask is None:
            return None
        return 0.5 * (bid + ask)

    def spread(self) -> int | None:
        """Best ask minus best bid in ticks, or None unless both sides are quoted."""
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or ask is None:
            return None
        return ask - bid

    def depth(self, levels: int) -> tuple[np.ndarray, np.ndarray]:
        """L2 depth, best level first.

        Args:
            levels: Maximum number of levels per side.

        Returns:
            ``(bids, asks)``, each an int64 array of shape ``(k, 2)`` with rows
            ``[price, qty]``.
        """
        return (
            analytics.depth_side(self._levels, self._meta, 1, int(levels)),
            analytics.depth_side(self._levels, self._meta, -1, int(levels)),
        )

    def band_notional(self, side: int, mid: float, bands: np.ndarray, tick_size: float,
                      lot_size: float, max_levels: int) -> np.ndarray:
        """Cumulative notional of one side within each band of the mid.

        See :func:`sim.market.book.analytics.band_notional`.
        """
        return analytics.band_notional(self._levels, self._meta, int(side), float(mid), bands,
                                       float(tick_size), float(lot_size), int(max_levels))

    def lots_within(self, lo: float, hi: float, max_levels: int) -> int:
        """Lots resting at prices in ``[lo, hi]`` ticks among each side's best ``max_levels``."""
        return int(analytics.lots_within(self._levels, self._meta, float(lo), float(hi),
                                         int(max_levels)))

    def volume_at(self, price: int) -> int:
        """Lots resting at ``price`` (either side; 0 if no level there)."""
        return int(analytics.volume_at(self._levels, self._meta, int(price)))

    def sweep_cost(self, side: int, qty: int) -> SweepCost:
        """Cost of a hypothetical market order of ``qty`` lots (not executed).

        Args:
            side: Taker side (+1 walks the asks, -1 walks the bids).
            qty: Lots to sweep.

        Returns:
            :class:`SweepCost`; slippage is relative to the mid, or to the best
            opposite price when the own side is empty.
        """
        if side != 1 and side != -1:
            raise ValueError(f"side must be +1 or -1, got {side!r}")
        filled, notional, vwap, slip = analytics.sweep_cost(
            self._levels, self._meta, int(side), int(qty)
        )
        return SweepCost(int(filled), int(notional), float(vwap), float(slip))

    # --- orders, fills, positions ---------------------------------------------------
    def order_remaining(self, order_id: int) -> int:
        """Remaining lots of a live order, 0 if it is not live."""
        return int(kernels.order_remaining(self._orders, self._table, int(order_id)))

    def live_orders(self) -> np.ndarray:
        """All live orders as a ``LIVE_ORDER_DTYPE`` array sorted by id."""
        o = self._orders
        live = o[o[:, O_ID] >= 0]
        live = live[np.argsort(live[:, O_ID], kind="stable")]
        out = np.empty(live.shape[0], LIVE_ORDER_DTYPE)
        for name, col in (
            ("order_id", O_ID),
            ("side", O_SIDE),
            ("price", O_PRICE),
            ("remaining", O_REM),
            ("owner", O_OWNER),
            ("flags", O_FLAGS),
        ):
            out[name] = live[:, col]
        return out

    def live_orders_of(self, owner: int) -> np.ndarray:
        """Ids of one owner's live orders, in increasing id order.

        The same ids as ``live_orders()["order_id"][live_orders()["owner"] ==
        owner]``, read from the per-owner index: the cost is the owner's own
        number of live orders, not the size of the book.

        Args:
            owner: Owner id (an id the book never saw has no orders).

        Returns:
            A new int64 array (empty when the owner has no live order).

        Raises:
            ValueError: On a negative owner.
            TypeError: On a non-integer owner.
        """
        if owner.__class__ is not int and not _all_int(owner):
            raise TypeError(f"owner must be an integer, got {owner!r}")
        if owner < 0:
            raise ValueError(f"owner must be >= 0, got {owner!r}")
        if owner >= self._by_owner.shape[0]:
            return np.empty(0, np.int64)
        out = np.empty(int(self._by_owner[owner, W_COUNT]), np.int64)
        if out.shape[0]:
            kernels.owner_order_ids(self._orders, self._by_owner, int(owner), out)
        return out

    def n_live_orders_of(self, owner: int) -> int:
        """Number of one owner's live orders (0 for an owner the book never saw)."""
        if owner < 0:
            raise ValueError(f"owner must be >= 0, got {owner!r}")
        if owner >= self._by_owner.shape[0]:
            return 0
        return int(self._by_owner[owner, W_COUNT])

    @property
    def n_live_orders(self) -> int:
        """Number of resting orders on both sides."""
        return int(self._meta[M_N_BID_ORDERS] + self._meta[M_N_ASK_ORDERS])

    @property
    def n_fills(self) -> int:
        """Number of fills in the log."""
        return int(self._meta[M_N_FILLS])

    def fills_since(self, k: int) -> np.ndarray:
        """Copy of fill-log rows ``k .. n_fills - 1`` as a ``FILL_DTYPE`` array.

        Args:
            k: First row (a value of :attr:`n_fills` remembered earlier), >= 0.
        """
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k!r}")
        return self._fill_view[k : self.n_fills].copy()

    @property
    def next_order_id(self) -> int:
        """Id the next LIMIT or MARKET order will get."""
        return int(self._meta[M_NEXT_ID])

    @property
    def step(self) -> int:
        """Current step, stamped on every fill."""
        return int(self._meta[M_STEP])

    @step.setter
    def step(self, value: int) -> None:
        self._meta[M_STEP] = value

    @property
    def stp(self) -> int:
        """Self-trade prevention mode (``STP_*``)."""
        return int(self._meta[M_STP])

    @property
    def submitted_qty(self) -> int:
        """Lots of all accepted LIMIT/MARKET orders (before reduce-only clipping)."""
        return int(self._meta[M_SUBMITTED_QTY])

    @property
    def cancelled_qty(self) -> int:
        """Lots removed without trading: cancels, expiries, STP, reduce-only clips.

        Conservation: ``submitted_qty == 2 * traded + resting + cancelled_qty``,
        where traded is the sum of fill quantities (each fill consumes it from
        both the maker and the taker) and resting the sum of live remainders.
        """
        return int(self._meta[M_CANCELLED_QTY])

    @property
    def positions(self) -> np.ndarray:
        """Copy of the net position (lots) of owners ``0 .. n_owners - 1``."""
        return self._positions[: self._meta[M_N_OWNERS]].copy()

    def set_positions(self, positions: np.ndarray) -> None:
        """Overwrite all positions (e.g. after off-book transfers).

        Args:
            positions: Net lots per owner; owners beyond its length get 0.
        """
        arr = np.asarray(positions, dtype=np.int64).ravel()
        self._grow_positions(arr.shape[0])
        self._positions[: arr.shape[0]] = arr
        self._positions[arr.shape[0] :] = 0
        self._meta[M_N_OWNERS] = max(int(self._meta[M_N_OWNERS]), arr.shape[0])

    def set_position(self, owner: int, lots: int) -> None:
        """Overwrite one owner's net position.

        Args:
            owner: Owner id, >= 0.
            lots: New net position in lots.
        """
        if owner < 0:
            raise ValueError(f"owner must be >= 0, got {owner!r}")
        self._grow_positions(owner + 1)
        self._positions[owner] = lots
        self._meta[M_N_OWNERS] = max(int(self._meta[M_N_OWNERS]), owner + 1)

    @property
    def state(self) -> BookState:
        """The raw state arrays (replaced on growth: do not keep across calls)."""
        return BookState(
            self._orders,
            self._table,
            self._levels,
            self._fills,
            self._positions,
            self._by_owner,
            self._meta,
        )

    def __repr__(self) -> str:
        return (
            f"OrderBook(best_bid={self.best_bid()}, best_ask={self.best_ask()}, "
            f"live_orders={self.n_live_orders}, fills={self.n_fills}, stp={self.stp})"
        )
