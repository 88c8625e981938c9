"""The fill log, positions and the step counter."""

import numpy as np
import pytest

from sim.market.book import FILL_DTYPE, OrderBook, Side

BUY, SELL = Side.BUY, Side.SELL


def test_fill_log_is_append_only_with_a_running_count():
    book = OrderBook(fill_capacity=1)
    book.limit(SELL, 100, 1, owner=1)
    book.limit(SELL, 101, 1, owner=1)
    assert book.n_fills == 0
    book.market(BUY, 1, owner=2)
    k = book.n_fills
    _, fills = book.market(BUY, 1, owner=3)
    assert book.n_fills == k + 1 == 2
    since = book.fills_since(k)
    assert since.dtype == FILL_DTYPE and since.tolist() == fills.tolist()
    assert since[0]["maker_order"] == 1 and since[0]["taker_owner"] == 3
    assert book.fills_since(0).shape == (2,)
    assert book.fills_since(5).shape == (0,)
    with pytest.raises(ValueError):
        book.fills_since(-1)


def test_fills_since_is_a_copy_and_call_fills_are_read_only():
    book = OrderBook()
    book.limit(SELL, 100, 2, owner=1)
    _, fills = book.market(BUY, 2, owner=2)
    assert not fills.flags.writeable
    copy = book.fills_since(0)
    copy["qty"] = 99
    assert book.fills_since(0)["qty"].tolist() == [2]


def test_returned_fills_survive_later_growth():
    book = OrderBook(fill_capacity=1)
    book.limit(SELL, 100, 1, owner=1)
    _, first = book.market(BUY, 1, owner=2)
    for _ in range(20):
        book.limit(SELL, 100, 1, owner=1)
        book.market(BUY, 1, owner=2)
    assert first.tolist() == [(0, 0, 1, 1, 2, 100, 1, 1)]


def test_positions_follow_every_fill_and_sum_to_zero():
    book = OrderBook()
    book.limit(SELL, 100, 3, owner=0)
    book.limit(BUY, 99, 2, owner=1)
    book.market(BUY, 2, owner=2)
    book.market(SELL, 5, owner=3)
    assert book.positions.tolist() == [-2, 2, 2, -2]
    assert book.positions.sum() == 0


def test_positions_is_a_copy_and_can_be_overwritten():
    book = OrderBook(owner_capacity=2)
    pos = book.positions
    assert pos.shape == (0,)
    book.set_positions(np.array([3, -1, -2]))
    assert book.positions.tolist() == [3, -1, -2]
    book.positions[0] = 99
    assert book.positions[0] == 3
    book.set_position(6, 4)
    assert book.positions.tolist() == [3, -1, -2, 0, 0, 0, 4]
    book.set_positions(np.array([1]))
    assert book.positions.tolist() == [1, 0, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError):
        book.set_position(-1, 0)


def test_step_stamps_fills():
    book = OrderBook()
    book.limit(SELL, 100, 3, owner=0)
    book.step = 5
    _, fills = book.market(BUY, 1, owner=1)
    assert fills["step"].tolist() == [5]
    _, fills = book.market(BUY, 1, owner=1, step=9)
    assert fills["step"].tolist() == [9] and book.step == 9
    _, fills = book.market(BUY, 1, owner=1)
    assert fills["step"].tolist() == [9]


def test_repr():
    assert "best_bid=None" in repr(OrderBook())
