"""A small, plainly written pure-Python order book with the numba book's semantics.

The baseline of the book benchmark (:mod:`experiments.bench.book`) and the
oracle of the book's differential tests (``tests/sim/book/``), which import it
from here (a benchmark never imports tests).  It favours obviousness over speed: a
``SortedDict`` of price levels per side (best level first), each level an
``OrderedDict`` of order id -> order in arrival order (FIFO with O(1) cancel),
and a dict of live orders.  Every rule below mirrors
:func:`sim.market.book.kernels.process_event`; if the two disagree, one of them is
wrong.

The bottom of the module holds utilities shared by the tests and the benchmark
(building event arrays, checking book invariants).  Needs ``sortedcontainers``
(the ``[bench]`` and ``[test]`` extras).
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict

import numpy as np
from sortedcontainers import SortedDict

from sim.market.book.constants import (
    CANCEL,
    EVENT_DTYPE,
    FILL_DTYPE,
    IOC,
    LIMIT,
    MARKET,
    POST_ONLY,
    REDUCE_ONLY,
    STATUS_CANCELLED,
    STATUS_EXPIRED,
    STATUS_FILLED,
    STATUS_NOT_FOUND,
    STATUS_REJECTED_INVALID,
    STATUS_REJECTED_POST_ONLY,
    STATUS_REJECTED_REDUCE_ONLY,
    STATUS_RESTING,
    STATUS_STP_EXPIRED,
    STP_CANCEL_BOTH,
    STP_CANCEL_RESTING,
    STP_CANCEL_TAKER,
    STP_NONE,
)

BUY = 1
SELL = -1


class RefOrder:
    """A resting order."""

    __slots__ = ("flags", "order_id", "owner", "price", "remaining", "side")

    def __init__(self, order_id, side, price, remaining, owner, flags):
        self.order_id = order_id
        self.side = side
        self.price = price
        self.remaining = remaining
        self.owner = owner
        self.flags = flags


class ReferenceBook:
    """Pure-Python price-time-priority book (see module docstring).

    Args:
        stp: Self-trade prevention mode (``STP_*``).
    """

    def __init__(self, stp=STP_CANCEL_RESTING):
        self.stp = stp
        # Keys are chosen so that the first item is the best level.
        self.bids = SortedDict()  # -price -> OrderedDict[id, RefOrder]
        self.asks = SortedDict()  # +price -> OrderedDict[id, RefOrder]
        self.orders = {}  # live id -> RefOrder
        self.pos = defaultdict(int)
        self.fills = []  # FILL_DTYPE-ordered tuples
        self.next_id = 0
        self.step = 0
        self.submitted_qty = 0
        self.cancelled_qty = 0

    # --- entry points ---------------------------------------------------------
    def process(self, kind, side, price, qty, owner, flags, target):
        """Apply one event; returns ``(order_id, status, filled_qty)``."""
        if kind == CANCEL:
            if self._cancel(target):
                return target, STATUS_CANCELLED, 0
            return target, STATUS_NOT_FOUND, 0
        if kind not in (LIMIT, MARKET):
            return -1, STATUS_REJECTED_INVALID, 0

        oid = self.next_id
        self.next_id += 1
        valid = side in (BUY, SELL) and qty > 0 and owner >= 0 and flags & ~7 == 0
        if kind == LIMIT:
            valid = valid and price >= 1 and not (flags & IOC and flags & POST_ONLY)
        else:
            valid = valid and not flags & POST_ONLY
        if not valid:
            return oid, STATUS_REJECTED_INVALID, 0

        remaining = qty
        if flags & REDUCE_ONLY:
            reducible = max(-side * self.pos[owner], 0)
            if reducible == 0:
                return oid, STATUS_REJECTED_REDUCE_ONLY, 0
            remaining = min(qty, reducible)
        opposite = self.asks if side == BUY else self.bids
        if flags & POST_ONLY and opposite:
            best = abs(opposite.peekitem(0)[0])
            if (side == BUY and best <= price) or (side == SELL and best >= price):
                return oid, STATUS_REJECTED_POST_ONLY, 0
        self.submitted_qty += qty
        self.cancelled_qty += qty - remaining

        filled = 0
        stp_hit = False
        while remaining > 0 and opposite:
            key, level = opposite.peekitem(0)
            level_price = abs(key)
            if kind == LIMIT and (
                (side == BUY and level_price > price) or (side == SELL and level_price < price)
            ):
                break
            while remaining > 0 and level:
                maker = next(iter(level.values()))
                if maker.owner == owner and self.stp != STP_NONE:
                    if self.stp in (STP_CANCEL_RESTING, STP_CANCEL_BOTH):
                        self.cancelled_qty += maker.remaining
                        self._remove(maker, level)
                    if self.stp in (STP_CANCEL_TAKER, STP_CANCEL_BOTH):
                        stp_hit = True
                        break
                    continue
                if maker.flags & REDUCE_ONLY:
                    reducible = max(-maker.side * self.pos[maker.owner], 0)
                    if maker.remaining > reducible:
                        self.cancelled_qty += maker.remaining - reducible
                        maker.remaining = reducible
                    if maker.remaining == 0:
                        self._remove(maker, level)
                        continue
                q = min(remaining, maker.remaining)
                self.fills.append(
                    (self.step, maker.order_id, oid, maker.owner, owner, level_price, q, side)
                )
                self.pos[owner] += side * q
                self.pos[maker.owner] -= side * q
                remaining -= q
                filled += q
                maker.remaining -= q
                if maker.remaining == 0:
                    self._remove(maker, level)
            if not level:
                del opposite[key]
            if stp_hit:
                break

        if stp_hit:
            self.cancelled_qty += remaining
            return oid, STATUS_STP_EXPIRED, filled
        if remaining == 0:
            return oid, STATUS_FILLED, filled
        if kind == MARKET or flags & IOC:
            self.cancelled_qty += remaining
            return oid, STATUS_EXPIRED, filled
        own = self.bids if side == BUY else self.asks
        key = -price if side == BUY else price
        if key not in own:
            own[key] = OrderedDict()
        order = RefOrder(oid, side, price, remaining, owner, flags)
        own[key][oid] = order
        self.orders[oid] = order
        return oid, STATUS_RESTING, filled

    def limit(self, side, price, qty, owner, flags=0):
        """Per-call limit order; returns ``(order_id, fills)`` (list of tuples)."""
        n = len(self.fills)
        oid, _, _ = self.process(LIMIT, side, price, qty, owner, flags, -1)
        return oid, self.fills[n:]

    def market(self, side, qty, owner, flags=0):
        """Per-call market order; returns ``(order_id, fills)``."""
        n = len(self.fills)
        oid, _, _ = self.process(MARKET, side, 0, qty, owner, flags, -1)
        return oid, self.fills[n:]

    def cancel(self, order_id):
        """Cancel; True if the order was live."""
        return self.process(CANCEL, 0, 0, 0, 0, 0, order_id)[1] == STATUS_CANCELLED

    def apply_events(self, events):
        """Apply an ``EVENT_DTYPE`` array; returns a list of result tuples."""
        return [self.process(*map(int, row)) for row in events.tolist()]

    # --- internals ------------------------------------------------------------------
    def _remove(self, order, level):
        del level[order.order_id]
        del self.orders[order.order_id]

    def _cancel(self, order_id):
        order = self.orders.get(order_id)
        if order is None:
            return False
        book = self.bids if order.side == BUY else self.asks
        key = -order.price if order.side == BUY else order.price
        level = book[key]
        self._remove(order, level)
        if not level:
            del book[key]
        self.cancelled_qty += order.remaining
        return True

    # --- queries ----------------------------------------------------------------------
    def best_bid(self):
        """Best bid or None."""
        return -self.bids.peekitem(0)[0] if self.bids else None

    def best_ask(self):
        """Best ask or None."""
        return self.asks.peekitem(0)[0] if self.asks else None

    def depth(self, n_levels):
        """``(bids, asks)`` as lists of ``(price, qty)``, best first."""
        out = []
        for book in (self.bids, self.asks):
            rows = []
            for key, level in book.items()[:n_levels]:
                rows.append((abs(key), sum(o.remaining for o in level.values())))
            out.append(rows)
        return out[0], out[1]

    def order_remaining(self, order_id):
        """Remaining lots of a live order, else 0."""
        order = self.orders.get(order_id)
        return 0 if order is None else order.remaining

    def live_orders(self):
        """Sorted list of ``(id, side, price, remaining, owner, flags)``."""
        return sorted(
            (o.order_id, o.side, o.price, o.remaining, o.owner, o.flags)
            for o in self.orders.values()
        )

    def positions_array(self, n):
        """Positions of owners ``0..n-1`` as an int64 array."""
        return np.array([self.pos.get(i, 0) for i in range(n)], dtype=np.int64)

    def set_position(self, owner, lots):
        """Overwrite one owner's position."""
        self.pos[owner] = lots

    def fills_array(self):
        """The fill log as a ``FILL_DTYPE`` array."""
        return np.array(self.fills, dtype=FILL_DTYPE)


# --- test utilities -------------------------------------------------------------------
def make_events(rows):
    """Build an ``EVENT_DTYPE`` array.

    Args:
        rows: Iterable of ``(kind, side, price, qty, owner, flags, order_id)``.
    """
    return np.array([tuple(r) for r in rows], dtype=EVENT_DTYPE)


def assert_book_invariants(book):
    """Check structural invariants of a numba ``OrderBook``.

    * never crossed at rest: best bid < best ask;
    * levels strictly ordered and non-empty, and each level's quantity equals
      the sum of its live orders' remainders;
    * order counts and ``order_remaining`` agree with the live orders;
    * the owner index agrees with them: ``live_orders_of(owner)`` is the id
      column of the owner's rows of ``live_orders()`` (id order) for every
      owner seen and one beyond, and the per-owner counts add up;
    * conservation: submitted = 2 * traded + resting + cancelled;
    * positions sum to zero (valid while nobody called ``set_positions``);
    * price priority within each taker order and FIFO (non-decreasing maker
      ids) per price and maker side over the whole fill log.
    """
    bb, ba = book.best_bid(), book.best_ask()
    if bb is not None and ba is not None:
        assert bb < ba, f"crossed book: bid {bb} >= ask {ba}"
    bids, asks = book.depth(10**9)
    assert np.all(np.diff(bids[:, 0]) < 0), bids
    assert np.all(np.diff(asks[:, 0]) > 0), asks
    assert np.all(bids[:, 1] > 0) and np.all(asks[:, 1] > 0)
    live = book.live_orders()
    assert book.n_live_orders == live.shape[0]
    per_level = defaultdict(int)
    for row in live:
        assert row["remaining"] > 0
        assert book.order_remaining(int(row["order_id"])) == row["remaining"]
        per_level[(int(row["side"]), int(row["price"]))] += int(row["remaining"])
    n_owners = max(len(book.positions), int(live["owner"].max(initial=-1)) + 1)
    for owner in range(n_owners + 1):
        expected = live["order_id"][live["owner"] == owner].tolist()
        assert book.live_orders_of(owner).tolist() == expected, (owner, expected)
        assert book.n_live_orders_of(owner) == len(expected)
    from_depth = {(1, int(p)): int(q) for p, q in bids}
    from_depth.update({(-1, int(p)): int(q) for p, q in asks})
    assert dict(per_level) == from_depth
    fills = book.fills_since(0)
    traded = int(fills["qty"].sum())
    resting = int(live["remaining"].sum())
    assert book.submitted_qty == 2 * traded + resting + book.cancelled_qty
    assert int(book.positions.sum()) == 0
    assert_fill_priority(fills)


def assert_fill_priority(fills):
    """Price priority within each taker and FIFO per (price, maker side)."""
    last_maker = {}
    last_price = {}
    for f in fills.tolist():
        _, maker, taker, _, _, price, qty, side = f
        assert qty > 0
        key = (price, -side)
        assert maker >= last_maker.get(key, -1), f"FIFO violated at {key}: {maker}"
        last_maker[key] = maker
        if taker in last_price:
            assert (price - last_price[taker]) * side >= 0, "price priority violated"
        last_price[taker] = price


def assert_same_state(book, ref):
    """Assert that a numba ``OrderBook`` and a ``ReferenceBook`` agree entirely.

    Compares the fill logs fill for fill, live orders, depth, positions, the
    next order id and the submitted/cancelled quantity counters.
    """
    fills = book.fills_since(0)
    expected = ref.fills_array()
    assert fills.shape == expected.shape, (fills, expected)
    assert np.array_equal(fills, expected), (fills, expected)
    assert book.live_orders().tolist() == ref.live_orders()
    bids, asks = book.depth(10**9)
    ref_bids, ref_asks = ref.depth(10**9)
    assert [tuple(r) for r in bids.tolist()] == ref_bids
    assert [tuple(r) for r in asks.tolist()] == ref_asks
    assert book.best_bid() == ref.best_bid() and book.best_ask() == ref.best_ask()
    pos = book.positions
    n = max(len(pos), max(ref.pos, default=-1) + 1)
    padded = np.zeros(n, np.int64)
    padded[: len(pos)] = pos
    assert np.array_equal(padded, ref.positions_array(n)), (padded, dict(ref.pos))
    assert book.next_order_id == ref.next_id
    assert book.submitted_qty == ref.submitted_qty
    assert book.cancelled_qty == ref.cancelled_qty
