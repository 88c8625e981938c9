"""Limit orders: resting, crossing, price-time priority, validation, no price band."""

import numpy as np
import pytest

from sim.market.book import (
    FILL_DTYPE,
    IOC,
    LIMIT,
    POST_ONLY,
    STATUS_FILLED,
    STATUS_REJECTED_INVALID,
    STATUS_RESTING,
    OrderBook,
    Side,
)
from experiments.bench.reference_book import (
    ReferenceBook,
    assert_book_invariants,
    assert_same_state,
    make_events,
)

BUY, SELL = Side.BUY, Side.SELL


def test_resting_orders_get_sequential_ids_and_no_fills():
    book = OrderBook()
    assert book.limit(BUY, 99, 3, owner=0)[0] == 0
    oid, fills = book.limit(SELL, 101, 4, owner=1)
    assert oid == 1
    assert fills.dtype == FILL_DTYPE and fills.shape == (0,)
    assert book.last_status == STATUS_RESTING
    assert (book.best_bid(), book.best_ask(), book.mid(), book.spread()) == (99, 101, 100.0, 2)
    assert book.order_remaining(0) == 3 and book.order_remaining(1) == 4
    assert book.n_live_orders == 2 and book.next_order_id == 2


def test_crossing_limit_fills_best_price_first_at_maker_price_then_rests():
    book = OrderBook()
    book.limit(SELL, 102, 5, owner=1)  # id 0
    book.limit(SELL, 101, 2, owner=2)  # id 1
    book.limit(SELL, 104, 5, owner=3)  # id 2, beyond the limit
    oid, fills = book.limit(BUY, 103, 10, owner=4, step=7)
    assert oid == 3
    assert fills.tolist() == [
        (7, 1, 3, 2, 4, 101, 2, 1),
        (7, 0, 3, 1, 4, 102, 5, 1),
    ]
    assert book.last_status == STATUS_RESTING
    assert book.order_remaining(3) == 3
    assert book.best_bid() == 103 and book.best_ask() == 104
    assert book.positions.tolist() == [0, -5, -2, 0, 7]


def test_fifo_within_a_level_and_partial_maker_fill():
    book = OrderBook()
    for owner in (1, 2, 3):
        book.limit(SELL, 100, 2, owner=owner)  # ids 0, 1, 2
    _, fills = book.limit(BUY, 100, 5, owner=9)
    assert fills["maker_order"].tolist() == [0, 1, 2]
    assert fills["qty"].tolist() == [2, 2, 1]
    assert book.last_status == STATUS_FILLED
    assert book.order_remaining(2) == 1 and book.order_remaining(0) == 0
    assert book.volume_at(100) == 1
    # a later order at the same price queues behind order 2
    book.limit(SELL, 100, 4, owner=4)  # id 4
    _, fills = book.limit(BUY, 100, 2, owner=9)
    assert fills["maker_order"].tolist() == [2, 4]


def test_sell_side_matching_walks_bids_downwards():
    book = OrderBook()
    book.limit(BUY, 50, 1, owner=1)
    book.limit(BUY, 52, 1, owner=2)
    book.limit(BUY, 51, 1, owner=3)
    _, fills = book.limit(SELL, 51, 5, owner=4)
    assert fills["price"].tolist() == [52, 51]
    assert fills["taker_side"].tolist() == [-1, -1]
    assert book.best_ask() == 51 and book.best_bid() == 50


@pytest.mark.parametrize(
    ("side", "price", "qty", "owner", "flags"),
    [
        (BUY, 0, 1, 0, 0),
        (BUY, -5, 1, 0, 0),
        (BUY, 10, 0, 0, 0),
        (SELL, 10, -3, 0, 0),
        (0, 10, 1, 0, 0),
        (2, 10, 1, 0, 0),
        (BUY, 10, 1, -1, 0),
        (BUY, 10, 1, 0, IOC | POST_ONLY),
        (BUY, 10, 1, 0, 8),
    ],
)
def test_invalid_limit_raises_value_error_without_consuming_an_id(side, price, qty, owner, flags):
    book = OrderBook()
    with pytest.raises(ValueError, match="invalid limit order"):
        book.limit(side, price, qty, owner, flags)
    assert book.next_order_id == 0 and book.n_live_orders == 0


def test_non_integer_price_raises_type_error():
    book = OrderBook()
    with pytest.raises(TypeError):
        book.limit(BUY, 100.5, 1, 0)
    with pytest.raises(TypeError):
        book.limit(BUY, 100, 1.0, 0)
    # numpy integers are fine
    oid, _ = book.limit(np.int64(1), np.int64(100), np.int32(2), np.int64(0))
    assert book.order_remaining(oid) == 2


def test_invalid_limit_event_is_rejected_in_batch_and_consumes_an_id():
    book = OrderBook()
    events = make_events(
        [
            (LIMIT, 1, 0, 1, 0, 0, -1),  # price 0
            (LIMIT, 1, 10, 0, 0, 0, -1),  # qty 0
            (LIMIT, 1, 10, 1, 0, IOC | POST_ONLY, -1),
            (9, 1, 10, 1, 0, 0, -1),  # unknown kind: no id
            (LIMIT, 1, 10, 1, 0, 0, -1),
        ]
    )
    results = book.apply_events(events)
    assert results.tolist() == [
        (0, STATUS_REJECTED_INVALID, 0),
        (1, STATUS_REJECTED_INVALID, 0),
        (2, STATUS_REJECTED_INVALID, 0),
        (-1, STATUS_REJECTED_INVALID, 0),
        (3, STATUS_RESTING, 0),
    ]
    assert book.submitted_qty == 1


@pytest.mark.parametrize("price", [1, 2, 10**9, 10**15])
def test_extreme_prices_work(price):
    book = OrderBook()
    book.limit(SELL, price, 3, owner=1)
    if price > 1:
        book.limit(BUY, price - 1, 3, owner=2)
    _, fills = book.limit(BUY, price, 5, owner=3)
    assert fills["price"].tolist() == [price]
    assert book.best_bid() == price
    assert book.state.levels.shape[1] <= 256  # no ladder over the price range


def test_99_percent_crash_and_10x_rally_have_no_band():
    """Price moves 100_000 -> 1_000 -> 10_000 ticks through the same book."""
    book, ref = OrderBook(), ReferenceBook()

    def both(method, *args):
        getattr(book, method)(*args)
        getattr(ref, method)(*args)

    for k in range(100):  # a ladder of bids from 100_000 down to 1_000
        both("limit", BUY, 100_000 - 1_000 * k, 1, k % 5)
    both("limit", SELL, 100_001, 1, 7)
    assert book.mid() == 100_000.5
    both("market", SELL, 99, 8)  # the crash: sweeps 99 levels
    assert book.best_bid() == 1_000
    both("limit", SELL, 1_001, 4, 9)
    assert book.mid() == 1_000.5  # 99% below the start
    for k in range(61):  # asks from 1_002 up to 10_002
        both("limit", SELL, 1_002 + 150 * k, 2, 10 + k % 3)
    both("limit", BUY, 10_000, 10**6, 20)  # the rally: one marketable bid
    assert book.best_bid() == 10_000
    assert book.best_ask() == 10_002
    assert book.mid() == 10_001.0  # 10x the post-crash price
    assert_same_state(book, ref)
    assert_book_invariants(book)
    assert book.state.levels.shape[1] <= 256
