"""Reduce-only orders: clipped to the owner's reducible position, at entry and per fill."""

import numpy as np

from sim.market.book import (
    IOC,
    REDUCE_ONLY,
    STATUS_FILLED,
    STATUS_REJECTED_REDUCE_ONLY,
    STATUS_RESTING,
    STP_NONE,
    OrderBook,
    Side,
)
from experiments.bench.reference_book import (
    ReferenceBook,
    assert_book_invariants,
    assert_same_state,
)

BUY, SELL = Side.BUY, Side.SELL
A, B, C = 0, 1, 2


def test_reduce_only_with_nothing_to_reduce_is_rejected():
    book = OrderBook()
    oid, _ = book.limit(SELL, 100, 5, A, flags=REDUCE_ONLY)
    assert book.last_status == STATUS_REJECTED_REDUCE_ONLY and oid == 0
    book.set_position(A, 5)
    book.limit(BUY, 100, 5, A, flags=REDUCE_ONLY)  # would increase a long
    assert book.last_status == STATUS_REJECTED_REDUCE_ONLY
    assert book.n_live_orders == 0 and book.next_order_id == 2 and book.submitted_qty == 0


def test_reduce_only_is_clipped_at_entry():
    book = OrderBook()
    book.set_positions(np.array([5, -5]))
    oid, _ = book.limit(SELL, 100, 8, A, flags=REDUCE_ONLY)
    assert book.last_status == STATUS_RESTING
    assert book.order_remaining(oid) == 5
    assert book.submitted_qty == 8 and book.cancelled_qty == 3


def test_reduce_only_market_buy_closes_a_short():
    book = OrderBook()
    book.set_positions(np.array([-3, 3]))
    book.limit(SELL, 100, 10, B)
    _, fills = book.market(BUY, 10, A, flags=REDUCE_ONLY)
    assert fills["qty"].tolist() == [3]
    assert book.last_status == STATUS_FILLED
    assert book.positions.tolist() == [0, 0]


def test_resting_reduce_only_maker_is_clipped_when_the_position_shrank():
    book = OrderBook()
    book.set_positions(np.array([5, -5, 0]))
    maker, _ = book.limit(SELL, 100, 5, A, flags=REDUCE_ONLY)
    behind, _ = book.limit(SELL, 100, 4, B)  # queued behind A
    book.limit(BUY, 90, 3, C)
    book.market(SELL, 3, A)  # A sells 3 elsewhere: long 2 now
    assert book.positions[A] == 2
    assert book.order_remaining(maker) == 5  # clipping is applied when it trades
    _, fills = book.limit(BUY, 100, 10, C)
    assert fills["maker_order"].tolist() == [maker, behind]
    assert fills["qty"].tolist() == [2, 4]
    assert book.positions[A] == 0
    assert book.order_remaining(maker) == 0
    assert_book_invariants(book)


def test_resting_reduce_only_maker_with_nothing_left_to_reduce_is_cancelled():
    book = OrderBook()
    book.set_positions(np.array([5, -5, 0]))
    maker, _ = book.limit(SELL, 100, 5, A, flags=REDUCE_ONLY)
    other, _ = book.limit(SELL, 101, 4, B)
    book.set_positions(np.array([-1, 1, 0]))  # off-book transfer flipped A short
    _, fills = book.limit(BUY, 101, 3, C)
    assert fills["maker_order"].tolist() == [other]
    assert book.order_remaining(maker) == 0
    assert book.cancelled_qty == 5
    assert book.best_ask() == 101


def test_reduce_only_taker_self_trade_with_stp_none():
    book, ref = OrderBook(stp=STP_NONE), ReferenceBook(stp=STP_NONE)
    for b in (book, ref):
        b.set_position(A, 4)
        b.set_position(B, -4)
        b.limit(BUY, 99, 10, A)
        b.limit(SELL, 99, 10, A, flags=REDUCE_ONLY | IOC)
    assert book.last_status == STATUS_FILLED
    assert book.positions.tolist() == [4, -4]  # a self-trade does not change it
    assert book.order_remaining(0) == 6
    assert_same_state(book, ref)


def test_reduce_only_maker_self_trade_with_stp_none():
    book, ref = OrderBook(stp=STP_NONE), ReferenceBook(stp=STP_NONE)
    for b in (book, ref):
        b.set_position(A, 3)
        b.set_position(B, -3)
        b.limit(SELL, 100, 3, A, flags=REDUCE_ONLY)
        b.limit(BUY, 90, 2, C)
        b.market(SELL, 2, A)  # long 1 now
        b.limit(BUY, 100, 5, A)  # meets its own reduce-only ask: clipped to 1
    assert book.fills_since(0)["qty"].tolist() == [2, 1]
    assert book.order_remaining(3) == 4
    assert_same_state(book, ref)
