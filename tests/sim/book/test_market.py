"""Market orders: sweep the opposite side, never rest."""

import pytest

from sim.market.book import (
    MARKET,
    POST_ONLY,
    STATUS_EXPIRED,
    STATUS_FILLED,
    STATUS_REJECTED_INVALID,
    OrderBook,
    Side,
)
from experiments.bench.reference_book import make_events

BUY, SELL = Side.BUY, Side.SELL


def test_market_order_sweeps_levels_and_cancels_the_remainder():
    book = OrderBook()
    book.limit(SELL, 101, 2, owner=1)
    book.limit(SELL, 105, 3, owner=2)
    book.limit(BUY, 90, 1, owner=3)
    oid, fills = book.market(BUY, 10, owner=4)
    assert oid == 3
    assert fills["price"].tolist() == [101, 105]
    assert fills["qty"].tolist() == [2, 3]
    assert book.last_status == STATUS_EXPIRED
    assert book.order_remaining(oid) == 0
    assert book.best_ask() is None and book.best_bid() == 90
    assert book.cancelled_qty == 5


def test_market_order_exactly_filled():
    book = OrderBook()
    book.limit(BUY, 100, 4, owner=1)
    _, fills = book.market(SELL, 4, owner=2)
    assert fills["qty"].sum() == 4
    assert book.last_status == STATUS_FILLED
    assert book.best_bid() is None


def test_market_order_on_empty_book_consumes_an_id_and_expires():
    book = OrderBook()
    oid, fills = book.market(SELL, 3, owner=0)
    assert oid == 0 and fills.shape == (0,)
    assert book.last_status == STATUS_EXPIRED
    assert book.next_order_id == 1 and book.n_live_orders == 0


def test_market_order_price_field_is_ignored_in_batch():
    book = OrderBook()
    book.limit(SELL, 10**9, 1, owner=1)
    results = book.apply_events(make_events([(MARKET, 1, 0, 1, 2, 0, -1)]))
    assert results.tolist() == [(1, STATUS_FILLED, 1)]


def test_post_only_market_is_invalid():
    book = OrderBook()
    with pytest.raises(ValueError, match="invalid market order"):
        book.market(BUY, 1, 0, flags=POST_ONLY)
    results = book.apply_events(make_events([(MARKET, 1, 0, 1, 0, POST_ONLY, -1)]))
    assert results.tolist() == [(0, STATUS_REJECTED_INVALID, 0)]
