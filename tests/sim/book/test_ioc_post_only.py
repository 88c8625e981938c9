"""IOC and post-only limit orders."""

from sim.market.book import (
    IOC,
    POST_ONLY,
    STATUS_EXPIRED,
    STATUS_FILLED,
    STATUS_REJECTED_POST_ONLY,
    STATUS_RESTING,
    STP_CANCEL_RESTING,
    OrderBook,
    Side,
)

BUY, SELL = Side.BUY, Side.SELL


def test_ioc_fills_what_crosses_and_cancels_the_rest():
    book = OrderBook()
    book.limit(SELL, 100, 2, owner=1)
    book.limit(SELL, 102, 2, owner=1)
    oid, fills = book.limit(BUY, 101, 5, owner=2, flags=IOC)
    assert fills["qty"].tolist() == [2]
    assert book.last_status == STATUS_EXPIRED
    assert book.order_remaining(oid) == 0
    assert book.best_bid() is None and book.best_ask() == 102
    assert book.cancelled_qty == 3


def test_ioc_fully_filled():
    book = OrderBook()
    book.limit(BUY, 100, 5, owner=1)
    _, fills = book.limit(SELL, 100, 5, owner=2, flags=IOC)
    assert fills["qty"].sum() == 5 and book.last_status == STATUS_FILLED


def test_ioc_that_does_not_cross_never_rests():
    book = OrderBook()
    book.limit(SELL, 100, 2, owner=1)
    _, fills = book.limit(BUY, 99, 5, owner=2, flags=IOC)
    assert fills.shape == (0,) and book.last_status == STATUS_EXPIRED
    assert book.best_bid() is None and book.next_order_id == 2


def test_post_only_rests_when_it_does_not_cross():
    book = OrderBook()
    book.limit(SELL, 100, 2, owner=1)
    oid, _ = book.limit(BUY, 99, 5, owner=2, flags=POST_ONLY)
    assert book.last_status == STATUS_RESTING and book.order_remaining(oid) == 5
    assert book.best_bid() == 99


def test_post_only_that_would_cross_is_rejected_entirely_without_sliding():
    book = OrderBook()
    book.limit(SELL, 100, 2, owner=1)
    for price in (100, 150):  # touching or through the ask
        oid, fills = book.limit(BUY, price, 5, owner=2, flags=POST_ONLY)
        assert fills.shape == (0,)
        assert book.last_status == STATUS_REJECTED_POST_ONLY
        assert book.order_remaining(oid) == 0
    assert book.best_bid() is None and book.volume_at(100) == 2
    assert book.next_order_id == 3  # rejected orders consumed ids 1 and 2
    assert book.submitted_qty == 2  # rejected orders are not counted


def test_post_only_sell_crossing_the_bid_is_rejected():
    book = OrderBook()
    book.limit(BUY, 100, 2, owner=1)
    book.limit(SELL, 100, 1, owner=2, flags=POST_ONLY)
    assert book.last_status == STATUS_REJECTED_POST_ONLY
    book.limit(SELL, 101, 1, owner=2, flags=POST_ONLY)
    assert book.last_status == STATUS_RESTING


def test_post_only_crossing_only_an_own_order_is_still_rejected():
    book = OrderBook(stp=STP_CANCEL_RESTING)
    book.limit(SELL, 100, 2, owner=1)
    book.limit(BUY, 100, 1, owner=1, flags=POST_ONLY)
    assert book.last_status == STATUS_REJECTED_POST_ONLY
    assert book.volume_at(100) == 2
