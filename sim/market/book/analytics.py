"""Read-only njit analytics over a book's state arrays: L2 depth and sweep cost.

These kernels take the raw ``levels`` and ``meta`` arrays (see
:mod:`sim.market.book.kernels` for the layout; :attr:`OrderBook.state
<sim.market.book.orderbook.OrderBook.state>` hands them out) so that other njit code —
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

from sim.market.book.constants import ASK, BID, L_PRICE, L_QTY

__all__ = ["band_notional", "best_price", "depth_side", "lots_within", "pairwise_sum", "sweep_cost",
           "volume_at"]


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


@njit(cache=True)
def _block_sum(a, lo, n):
    """NumPy's pairwise-summation leaf (``n <= 128``): see :func:`pairwise_sum`."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = lo + 8
    stop = lo + n - n % 8
    while i < stop:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < lo + n:
        res += a[i]
        i += 1
    return res


@njit(cache=True)
def _half(n):
    n2 = n // 2
    return n2 - n2 % 8


@njit(cache=True)
def pairwise_sum(a, lo, n):
    """Sum of ``a[lo:lo + n]`` in NumPy's order, so bit-identical to ``np.add.reduce``.

    NumPy sums a contiguous float64 array by pairwise summation (Higham 1993,
    "The accuracy of floating point summation", SIAM J. Sci. Comput. 14(4)):
    below 8 elements a plain loop; up to 128 eight interleaved partial sums
    combined as ``((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))`` plus the remainder;
    above that, the sum of two halves split at a multiple of 8. Repeating that
    order lets a kernel report the same bits as the NumPy expression it
    replaces (tested against ``np.add.reduce`` over many lengths). The halving
    runs on an explicit stack: a self-recursive njit function breaks numba's
    on-disk cache (a cached caller segfaults when loaded).
    """
    if n <= 128:
        return _block_sum(a, lo, n)
    los = np.empty(64, np.int64)
    ns = np.empty(64, np.int64)
    state = np.zeros(64, np.int64)  # 0: unexpanded, 1: left half pending, 2: right half pending
    left = np.empty(64)
    top = 0
    los[0], ns[0] = lo, n
    v = 0.0
    have = False  # v holds a finished half for the node on top of the stack
    while True:
        if have:
            if top < 0:
                return v
            if state[top] == 1:
                left[top] = v
                state[top] = 2
                n2 = _half(ns[top])
                top += 1
                los[top], ns[top], state[top] = los[top - 1] + n2, ns[top - 1] - n2, 0
                have = False
            else:
                v = left[top] + v
                top -= 1
            continue
        m = ns[top]
        if m <= 128:
            v = _block_sum(a, los[top], m)
            top -= 1
            have = True
        else:
            state[top] = 1
            top += 1
            los[top], ns[top], state[top] = los[top - 1], _half(m), 0


@njit(cache=True)
def band_notional(levels, meta, side, mid, bands, tick_size, lot_size, max_levels):
    """Cumulative resting notional of one side within each relative distance of the mid.

    Walks at most ``max_levels`` levels from the best; a level is within band
    ``b`` when ``side * (mid - price) / mid <= b`` (the distance grows away from
    the best, so each band is a prefix of the side). Notional per level is
    ``price * qty * tick_size * lot_size``; sums use :func:`pairwise_sum`.

    Args:
        levels: Level array of a book.
        meta: Counter array of the book.
        side: +1 for the bids, -1 for the asks.
        mid: Mid price in ticks.
        bands: Non-decreasing float64 distances (fractions of the mid).
        tick_size: Price of one tick.
        lot_size: Base quantity of one lot.
        max_levels: Levels considered per side.

    Returns:
        float64 array, one cumulative notional per band.
    """
    side_index = BID if side > 0 else ASK
    total = meta[side_index]
    n = min(total, max(max_levels, 0))
    notional = np.empty(n)
    out = np.empty(len(bands))
    k = 0
    for b in range(len(bands)):
        while k < n:
            p = levels[side_index, total - 1 - k, L_PRICE]
            dist = (p - mid) / mid
            if side > 0:
                dist = -dist
            if not dist <= bands[b]:
                break
            notional[k] = p * levels[side_index, total - 1 - k, L_QTY] * tick_size * lot_size
            k += 1
        out[b] = pairwise_sum(notional, 0, k)
    return out


@njit(cache=True)
def lots_within(levels, meta, lo, hi, max_levels):
    """Lots resting at prices in ``[lo, hi]`` (ticks) among each side's best ``max_levels``."""
    total = 0
    for s in range(2):
        n = meta[s]
        for k in range(min(n, max(max_levels, 0))):
            p = levels[s, n - 1 - k, L_PRICE]
            if (s == BID and p >= lo) or (s == ASK and p <= hi):
                total += levels[s, n - 1 - k, L_QTY]
    return total
