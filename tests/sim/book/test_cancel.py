"""Cancels: O(1) removal from the FIFO, level cleanup, ids not consumed."""

import pytest

from sim.market.book import (
    CANCEL,
    LIMIT,
    STATUS_CANCELLED,
    STATUS_NOT_FOUND,
    STATUS_RESTING,
    OrderBook,
    Side,
)
from experiments.bench.reference_book import assert_book_invariants, make_events

BUY, SELL = Side.BUY, Side.SELL


def test_cancel_live_then_dead_then_unknown():
    book = OrderBook()
    oid, _ = book.limit(BUY, 100, 5, owner=0)
    assert book.cancel(oid) is True
    assert book.last_status == STATUS_CANCELLED
    assert book.cancel(oid) is False
    assert book.last_status == STATUS_NOT_FOUND
    assert book.cancel(12345) is False and book.cancel(-1) is False
    with pytest.raises(TypeError):
        book.cancel(0.0)
    assert book.best_bid() is None and book.n_live_orders == 0
    assert book.cancelled_qty == 5


def test_cancel_in_the_middle_keeps_fifo_of_the_others():
    book = OrderBook()
    ids = [book.limit(SELL, 100, 1, owner=k)[0] for k in range(5)]
    assert book.cancel(ids[2])
    assert book.cancel(ids[0])
    assert book.volume_at(100) == 3
    _, fills = book.market(BUY, 3, owner=9)
    assert fills["maker_order"].tolist() == [ids[1], ids[3], ids[4]]


def test_cancel_tail_then_append_links_correctly():
    book = OrderBook()
    a, _ = book.limit(SELL, 100, 1, owner=1)
    b, _ = book.limit(SELL, 100, 1, owner=2)
    book.cancel(b)
    c, _ = book.limit(SELL, 100, 1, owner=3)
    _, fills = book.market(BUY, 5, owner=9)
    assert fills["maker_order"].tolist() == [a, c]


def test_cancel_last_order_removes_the_level_anywhere_in_the_book():
    book = OrderBook()
    for price in (90, 95, 99):
        book.limit(BUY, price, 1, owner=0)
    book.cancel(1)  # the 95 level, between the others
    bids, _ = book.depth(10)
    assert bids.tolist() == [[99, 1], [90, 1]]
    book.cancel(2)  # the best level
    assert book.best_bid() == 90
    assert_book_invariants(book)


def test_cancel_partially_filled_order():
    book = OrderBook()
    oid, _ = book.limit(BUY, 100, 10, owner=0)
    book.market(SELL, 4, owner=1)
    assert book.order_remaining(oid) == 6
    assert book.cancel(oid)
    assert book.cancelled_qty == 6
    assert_book_invariants(book)


def test_cancel_events_consume_no_id():
    book = OrderBook()
    events = make_events(
        [
            (LIMIT, 1, 100, 2, 0, 0, -1),
            (CANCEL, 0, 0, 0, 0, 0, 0),
            (CANCEL, 0, 0, 0, 0, 0, 0),
            (CANCEL, 0, 0, 0, 0, 0, 77),
            (LIMIT, -1, 101, 2, 0, 0, -1),
        ]
    )
    assert book.apply_events(events).tolist() == [
        (0, STATUS_RESTING, 0),
        (0, STATUS_CANCELLED, 0),
        (0, STATUS_NOT_FOUND, 0),
        (77, STATUS_NOT_FOUND, 0),
        (1, STATUS_RESTING, 0),
    ]


def test_many_cancels_through_a_grown_table():
    book = OrderBook(order_capacity=1)
    ids = []
    for k in range(500):  # bids at 1000..1006, asks at 2000..2006: nothing crosses
        side, price = (BUY, 1000 + k % 7) if k % 2 else (SELL, 2000 + k % 7)
        ids.append(book.limit(side, price, 1, owner=k % 3)[0])
    for oid in ids[::3]:
        assert book.cancel(oid)
    live = {int(x) for x in book.live_orders()["order_id"]}
    assert live == set(ids) - set(ids[::3])
    assert all(book.order_remaining(i) == (0 if i in ids[::3] else 1) for i in ids)
    assert_book_invariants(book)
