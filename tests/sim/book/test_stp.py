"""Self-trade prevention (after Binance EXPIRE_MAKER / EXPIRE_TAKER / EXPIRE_BOTH)."""

import pytest

from sim.market.book import (
    STATUS_FILLED,
    STATUS_RESTING,
    STATUS_STP_EXPIRED,
    STP_CANCEL_BOTH,
    STP_CANCEL_RESTING,
    STP_CANCEL_TAKER,
    STP_NONE,
    OrderBook,
    Side,
)
from experiments.bench.reference_book import assert_book_invariants

BUY, SELL = Side.BUY, Side.SELL
ME, OTHER = 1, 2


def _book(stp):
    """Asks: OTHER 2 @ 100 (id 0), ME 3 @ 100 (id 1), OTHER 4 @ 101 (id 2)."""
    book = OrderBook(stp=stp)
    book.limit(SELL, 100, 2, OTHER)
    book.limit(SELL, 100, 3, ME)
    book.limit(SELL, 101, 4, OTHER)
    return book


def test_default_mode_is_cancel_resting():
    assert OrderBook().stp == STP_CANCEL_RESTING


def test_stp_none_lets_the_owner_trade_with_itself():
    book = _book(STP_NONE)
    _, fills = book.limit(BUY, 101, 6, ME)
    assert fills["maker_order"].tolist() == [0, 1, 2]
    assert fills["qty"].tolist() == [2, 3, 1]
    assert book.last_status == STATUS_FILLED
    # the self-trade nets out: ME bought 6 and sold 3
    assert book.positions[ME] == 3 and book.positions[OTHER] == -3


def test_cancel_resting_cancels_own_maker_and_keeps_matching():
    book = _book(STP_CANCEL_RESTING)
    _, fills = book.limit(BUY, 101, 6, ME)
    assert fills["maker_order"].tolist() == [0, 2]
    assert fills["qty"].tolist() == [2, 4]
    assert book.order_remaining(1) == 0
    assert book.last_status == STATUS_FILLED
    assert book.cancelled_qty == 3
    assert_book_invariants(book)


def test_cancel_taker_cancels_the_takers_remainder_and_keeps_the_maker():
    book = _book(STP_CANCEL_TAKER)
    oid, fills = book.limit(BUY, 101, 6, ME)
    assert fills["maker_order"].tolist() == [0]
    assert book.last_status == STATUS_STP_EXPIRED
    assert book.order_remaining(oid) == 0
    assert book.order_remaining(1) == 3 and book.order_remaining(2) == 4
    assert book.best_bid() is None
    assert book.cancelled_qty == 4
    assert_book_invariants(book)


def test_cancel_both_cancels_maker_and_taker_remainder():
    book = _book(STP_CANCEL_BOTH)
    oid, fills = book.limit(BUY, 101, 6, ME)
    assert fills["maker_order"].tolist() == [0]
    assert book.last_status == STATUS_STP_EXPIRED
    assert book.order_remaining(oid) == 0 and book.best_bid() is None
    assert book.order_remaining(1) == 0 and book.order_remaining(2) == 4
    assert book.best_ask() == 101
    assert book.cancelled_qty == 3 + 4
    assert_book_invariants(book)


@pytest.mark.parametrize("stp", [STP_CANCEL_RESTING, STP_CANCEL_TAKER, STP_CANCEL_BOTH])
def test_no_stp_between_different_owners(stp):
    book = _book(stp)
    _, fills = book.market(BUY, 2, OTHER + 1)
    assert fills["maker_order"].tolist() == [0]


def test_stp_cancel_resting_on_the_last_own_level_lets_the_taker_rest():
    book = OrderBook(stp=STP_CANCEL_RESTING)
    book.limit(SELL, 100, 3, ME)
    _, fills = book.limit(BUY, 100, 2, ME)
    assert fills.shape == (0,)
    assert book.last_status == STATUS_RESTING
    assert book.best_bid() == 100 and book.best_ask() is None


def test_invalid_stp_mode():
    with pytest.raises(ValueError, match="stp must be one of"):
        OrderBook(stp=7)
