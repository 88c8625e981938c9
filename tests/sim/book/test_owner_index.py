"""Orders by owner: ``live_orders_of`` against the whole book's live orders.

The owner index is a second intrusive list through the order pool, kept by
every operation that adds or removes a resting order (rest, fill, cancel,
self-trade prevention, reduce-only clipping, growth of the pool and of the
owner rows).  A hypothesis state machine drives the per-call API with the
pure-Python reference book in lockstep and checks, after every step, that each
owner's ``live_orders_of`` equals the owner's rows of ``live_orders()`` (and of
the reference), in id order; a second property does the same on the batched
path after random chunks of random event streams.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sim.market.book import (
    CANCEL,
    IOC,
    LIMIT,
    MARKET,
    POST_ONLY,
    REDUCE_ONLY,
    STP_CANCEL_RESTING,
    STP_NONE,
    OrderBook,
)
from experiments.bench.reference_book import ReferenceBook, assert_book_invariants, make_events
from tests.sim.book.test_properties import event_streams

N_OWNERS = 6
MID = 1000


def _filtered(book: OrderBook, owner: int) -> list[int]:
    live = book.live_orders()
    return live["order_id"][live["owner"] == owner].tolist()


def _assert_index(book: OrderBook, n_owners: int) -> None:
    live = book.live_orders()
    total = 0
    for owner in range(n_owners + 2):  # and owners the book never saw
        ids = book.live_orders_of(owner)
        assert ids.dtype == np.int64
        assert ids.tolist() == live["order_id"][live["owner"] == owner].tolist(), owner
        assert book.n_live_orders_of(owner) == len(ids)
        total += len(ids)
    assert total == book.n_live_orders


class OwnerIndexMachine(RuleBasedStateMachine):
    """Limits, market orders, fills, cancels and reduce-only clips on a tiny book."""

    @initialize(stp=st.integers(0, 3))
    def setup(self, stp):
        # capacities of one: the pool, the levels and the owner rows grow during the run
        self.book = OrderBook(stp=stp, order_capacity=1, level_capacity=1, fill_capacity=1,
                              owner_capacity=1)
        self.ref = ReferenceBook(stp=stp)

    def _both(self, kind, side, price, qty, owner, flags, target=-1):
        ev = make_events([(kind, side, price, qty, owner, flags, target)])
        got = self.book.apply_events(ev)[0]
        expected = self.ref.process(kind, side, price, qty, owner, flags, target)
        assert tuple(got.tolist()) == expected

    @rule(owner=st.integers(0, N_OWNERS - 1), buy=st.booleans(), offset=st.integers(1, 6),
          qty=st.integers(1, 5), flags=st.sampled_from([0, 0, POST_ONLY, REDUCE_ONLY]))
    def passive_limit(self, owner, buy, offset, qty, flags):
        side = 1 if buy else -1
        self._both(LIMIT, side, MID - side * offset, qty, owner, flags)

    @rule(owner=st.integers(0, N_OWNERS - 1), buy=st.booleans(), through=st.integers(0, 6),
          qty=st.integers(1, 12), flags=st.sampled_from([0, IOC, REDUCE_ONLY]))
    def marketable_limit(self, owner, buy, through, qty, flags):
        """Crosses up to ``through`` ticks: fills (partial and whole), the rest may rest."""
        side = 1 if buy else -1
        self._both(LIMIT, side, MID - side * 6 + side * 2 * through, qty, owner, flags)

    @rule(owner=st.integers(0, N_OWNERS - 1), buy=st.booleans(), qty=st.integers(1, 15),
          reduce_only=st.booleans())
    def market(self, owner, buy, qty, reduce_only):
        self._both(MARKET, 1 if buy else -1, 0, qty, owner, REDUCE_ONLY if reduce_only else 0)

    @rule(back=st.integers(0, 20))
    def cancel_recent(self, back):
        """Cancel an id near the newest: live, dead or never issued."""
        self._both(CANCEL, 0, 0, 0, 0, 0, self.ref.next_id - 1 - back)

    @rule(owner=st.integers(0, N_OWNERS - 1))
    def cancel_all_of_owner(self, owner):
        """What a liquidation does: cancel every live order of one owner."""
        for oid in self.book.live_orders_of(owner).tolist():
            self._both(CANCEL, 0, 0, 0, owner, 0, oid)
        assert self.book.live_orders_of(owner).size == 0
        assert self.book.n_live_orders_of(owner) == 0

    @rule(owner=st.integers(0, N_OWNERS + 3), lots=st.integers(-8, 8))
    def set_position(self, owner, lots):
        """Off-book transfer: reduce-only makers of this owner get clipped at their next fill."""
        self.book.set_position(owner, lots)
        self.ref.set_position(owner, lots)

    @invariant()
    def index_matches_live_orders(self):
        if not hasattr(self, "book"):
            return
        _assert_index(self.book, N_OWNERS + 4)
        assert self.book.live_orders().tolist() == self.ref.live_orders()
        for owner in range(N_OWNERS + 4):
            expected = sorted(o.order_id for o in self.ref.orders.values() if o.owner == owner)
            assert self.book.live_orders_of(owner).tolist() == expected


OwnerIndexMachine.TestCase.settings = settings(
    max_examples=120,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOwnerIndexMachine = OwnerIndexMachine.TestCase


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_streams(), st.lists(st.integers(1, 12), min_size=1, max_size=12))
def test_batched_chunks_keep_the_index(stream, chunks):
    events, stp, initial = stream
    book = OrderBook(stp=stp, order_capacity=1, level_capacity=1, fill_capacity=1,
                     owner_capacity=1)
    book.set_positions(initial)
    start = 0
    for size in [*chunks, events.shape[0]]:
        if start >= events.shape[0]:
            break
        book.apply_events(events[start : start + size])
        start += size
        _assert_index(book, len(initial))
    assert_book_invariants(book)


def test_owner_lists_are_in_id_order_across_levels_and_sides():
    book = OrderBook(stp=STP_NONE)
    ids = [book.limit(1 if k % 2 else -1, 100 + (-1 if k % 2 else 1) * (k % 5 + 1), 1,
                      owner=k % 3)[0] for k in range(30)]
    for owner in range(3):
        assert book.live_orders_of(owner).tolist() == ids[owner::3]
    book.market(1, 4, owner=9)  # takes the four best asks, whoever owns them
    for owner in range(3):
        assert book.live_orders_of(owner).tolist() == _filtered(book, owner)
    assert book.live_orders_of(9).size == 0


def test_self_trade_prevention_unlinks_the_resting_orders():
    book = OrderBook(stp=STP_CANCEL_RESTING)
    for k in range(3):
        book.limit(-1, 101 + k, 2, owner=1)
    book.limit(-1, 101, 2, owner=2)
    bid, fills = book.limit(1, 103, 10, owner=1)  # cancels owner 1's three asks
    assert fills["maker_owner"].tolist() == [2]
    assert book.live_orders_of(1).tolist() == [bid] == book.live_orders()["order_id"].tolist()
    assert book.live_orders_of(2).size == 0


def test_owner_rows_grow_with_the_positions():
    book = OrderBook(owner_capacity=1)
    assert book.live_orders_of(10**6).size == 0 and book.n_live_orders_of(10**6) == 0
    book.set_position(40, 3)  # grows positions and the owner index together
    oid, _ = book.limit(-1, 50, 1, owner=40, flags=REDUCE_ONLY)
    oid2, _ = book.limit(1, 10, 1, owner=300)  # the kernel asks for more owner rows
    assert book.live_orders_of(40).tolist() == [oid]
    assert book.live_orders_of(300).tolist() == [oid2]
    assert book.state.by_owner.shape[0] == book.state.positions.shape[0] > 300


def test_live_orders_of_checks_its_argument():
    book = OrderBook()
    with pytest.raises(ValueError, match="owner must be >= 0"):
        book.live_orders_of(-1)
    with pytest.raises(ValueError, match="owner must be >= 0"):
        book.n_live_orders_of(-1)
    with pytest.raises(TypeError, match="owner must be an integer"):
        book.live_orders_of(1.0)
    assert book.live_orders_of(np.int64(0)).size == 0
