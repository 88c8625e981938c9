"""Read-only njit analytics over a book's state arrays: L2 depth and sweep cost.

These kernels take the raw ``levels`` and ``meta`` arrays (see
:mod:`sim.book.kernels` for the layout; :attr:`OrderBook.state
<sim.book.orderbook.OrderBook.state>` hands them out) so that other njit code —
margin liquidity add-ons, liquidator agents — can query a book without going
through Python.  They never modify the book.

The sweep cost is the cost of a hypothetical market order walking the opposite
side level by level (as in the liquidity/concentration add-ons of exchange
portfolio-margin methodologies): it sees aggregated level quantities and so
ignores self-trade prevention and the clipping of reduce-only makers, which
can only make a real sweep fill less.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.book.constants import ASK, BID, L_PRICE, L_QTY

__all__ = ["best_price", "depth_side", "sweep_cost", "volume_at"]


@njit(cache=True)
def best_price(levels, meta, side):
    """Best price of one side.

    Args:
        levels: Level array of a book.
        meta: Counter array of the book.
        side: +1 for the bids, -1 for the asks.

    Returns:
        The best tick, or -1 when the side is empty.
    """
    side_index = BID if side > 0 else ASK
    n = meta[side_index]
    if n == 0:
        return -1
    return levels[side_index, n - 1, L_PRICE]


@njit(cache=True)
def depth_side(levels, meta, side, n_levels):
    """L2 depth of one side, best level first.

    Args:
        levels: Level array of a book.
        meta: Counter array of the book.
        side: +1 for the bids, -1 for the asks.
        n_levels: Maximum number of levels to return (>= 0).

    Returns:
        int64 array of shape ``(k, 2)`` with rows ``[price, qty]``,
        ``k = min(n_levels, active levels)``.
    """
    side_index = BID if side > 0 else ASK
    n = meta[side_index]
    k = min(n, max(n_levels, 0))
    out = np.empty((k, 2), np.int64)
    for j in range(k):
        r = n - 1 - j
        out[j, 0] = levels[side_index, r, L_PRICE]
        out[j, 1] = levels[side_index, r, L_QTY]
    return out


@njit(cache=True)
def volume_at(levels, meta, price):
    """Total resting quantity at a price (on whichever side rests there).

    Args:
        levels: Level array of a book.
        meta: Counter array of the book.
        price: Tick.

    Returns:
        Lots resting at ``price`` (0 if no level).
    """
    total = 0
    for s in range(2):
        sgn = 1 - 2 * s
        lo = 0
        hi = meta[s]
        while lo < hi:
            mid = (lo + hi) >> 1
            if levels[s, mid, L_PRICE] * sgn < price * sgn:
                lo = mid + 1
            else:
                hi = mid
        if lo < meta[s] and levels[s, lo, L_PRICE] == price:
            total += levels[s, lo, L_QTY]
    return total


@njit(cache=True)
def sweep_cost(levels, meta, side, qty):
    """Cost of sweeping ``qty`` lots with a hypothetical market order.

    The order is not executed.  ``slippage = side * (vwap - ref) / ref`` where
    ``ref`` is the mid price when both sides are quoted, otherwise the best
    opposite price (the first level the sweep touches).  Positive slippage is
    a cost for either side.

    Args:
        levels: Level array of a book.
        meta: Counter array of the book.
        side: Taker side, +1 (buy: walks the asks) or -1 (sell: walks the bids).
        qty: Lots to sweep.

    Returns:
        ``(filled_qty, notional, vwap, slippage)``; ``filled_qty < qty`` when
        the book is too thin; ``vwap`` and ``slippage`` are NaN when nothing
        would fill.  ``notional`` is the exact integer sum of price * qty
        (int64: it must stay below 9.2e18 tick-lots).
    """
    oi = ASK if side > 0 else BID
    n = meta[oi]
    rem = qty
    filled = 0
    notional = 0
    r = n - 1
    while rem > 0 and r >= 0:
        lq = levels[oi, r, L_QTY]
        q = rem if rem < lq else lq
        notional += q * levels[oi, r, L_PRICE]
        filled += q
        rem -= q
        r -= 1
    if filled == 0:
        return 0, 0, np.nan, np.nan
    vwap = notional / filled
    best_opp = levels[oi, n - 1, L_PRICE]
    other = 1 - oi
    if meta[other] > 0:
        ref = 0.5 * (best_opp + levels[other, meta[other] - 1, L_PRICE])
    else:
        ref = float(best_opp)
    sgn = 1.0 if side > 0 else -1.0
    slippage = sgn * (vwap - ref) / ref
    return filled, notional, vwap, slippage
