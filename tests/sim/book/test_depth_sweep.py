"""L2 depth, volume at a price, and the sweep cost of a hypothetical market order."""

import math

import numpy as np
import pytest
from numba import njit

from sim.market.book import OrderBook, Side, best_price, depth_side, sweep_cost
from experiments.bench.reference_book import ReferenceBook

BUY, SELL = Side.BUY, Side.SELL


def _book():
    book = OrderBook()
    for price, qty in ((100, 2), (101, 3), (105, 10), (101, 1)):
        book.limit(SELL, price, qty, owner=1)
    for price, qty in ((98, 1), (97, 4), (90, 2)):
        book.limit(BUY, price, qty, owner=2)
    return book


def test_depth_best_first_and_truncated():
    bids, asks = _book().depth(2)
    assert bids.dtype == np.int64 and bids.shape == (2, 2)
    assert bids.tolist() == [[98, 1], [97, 4]]
    assert asks.tolist() == [[100, 2], [101, 4]]
    bids, asks = _book().depth(100)
    assert bids.shape == (3, 2) and asks.shape == (3, 2)
    empty_bids, empty_asks = OrderBook().depth(5)
    assert empty_bids.shape == (0, 2) and empty_asks.shape == (0, 2)


def test_volume_at():
    book = _book()
    assert book.volume_at(101) == 4 and book.volume_at(97) == 4
    assert book.volume_at(99) == 0 and book.volume_at(10**12) == 0


def test_sweep_cost_walks_the_opposite_side_against_the_mid():
    book = _book()
    cost = book.sweep_cost(BUY, 4)
    assert cost.filled_qty == 4 and cost.notional == 2 * 100 + 2 * 101
    assert cost.vwap == pytest.approx(100.5)
    assert cost.slippage == pytest.approx((100.5 - 99.0) / 99.0)
    cost = book.sweep_cost(SELL, 3)
    assert cost.notional == 98 + 2 * 97
    assert cost.slippage == pytest.approx(-(cost.vwap - 99.0) / 99.0)
    assert cost.slippage > 0


def test_sweep_cost_on_a_thin_or_empty_book():
    book = _book()
    cost = book.sweep_cost(BUY, 1000)
    assert cost.filled_qty == 16 and cost.notional == 200 + 404 + 1050
    cost = OrderBook().sweep_cost(BUY, 5)
    assert cost.filled_qty == 0 and cost.notional == 0
    assert math.isnan(cost.vwap) and math.isnan(cost.slippage)


def test_sweep_cost_slippage_is_against_the_best_price_without_a_mid():
    book = OrderBook()
    book.limit(SELL, 100, 2, owner=1)
    book.limit(SELL, 110, 2, owner=1)
    cost = book.sweep_cost(BUY, 4)
    assert cost.vwap == pytest.approx(105.0)
    assert cost.slippage == pytest.approx(0.05)


def test_sweep_cost_does_not_trade_and_matches_a_real_sweep():
    book, ref = _book(), ReferenceBook()
    before = book.depth(10)
    cost = book.sweep_cost(BUY, 5)
    assert [a.tolist() for a in book.depth(10)] == [b.tolist() for b in before]
    assert book.n_fills == 0
    _, fills = book.market(BUY, 5, owner=3)
    assert int((fills["price"] * fills["qty"]).sum()) == cost.notional
    assert ref.best_ask() is None


def test_sweep_cost_rejects_bad_side():
    with pytest.raises(ValueError, match="side must be"):
        OrderBook().sweep_cost(0, 5)


@njit
def _liquidation_cost(levels, meta, qty):
    slippage = sweep_cost(levels, meta, -1, qty)[3]
    top = depth_side(levels, meta, 1, 1)
    return slippage, best_price(levels, meta, 1), top[0, 1]


def test_kernels_are_callable_from_other_njit_code():
    book = _book()
    state = book.state
    slippage, best_bid, top_qty = _liquidation_cost(state.levels, state.meta, 3)
    assert slippage == pytest.approx(book.sweep_cost(SELL, 3).slippage)
    assert best_bid == 98 and top_qty == 1
    empty = OrderBook().state
    assert best_price(empty.levels, empty.meta, 1) == -1
    assert best_price(empty.levels, empty.meta, -1) == -1
