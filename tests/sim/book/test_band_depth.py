"""Band depth kernels: NumPy-order pairwise sums and per-band notional, against plain NumPy."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.market.book import OrderBook, Side
from sim.market.book.analytics import pairwise_sum

BANDS = np.array([0.0025, 0.005, 0.01, 0.02, 0.05])


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 2100), lo_frac=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_pairwise_sum_is_bit_identical_to_numpy(n, lo_frac, seed):
    rng = np.random.default_rng(seed)
    a = rng.exponential(1.0, n) * 10 ** rng.uniform(-3, 9, n)
    lo = int(lo_frac * n)
    assert pairwise_sum(a, lo, n - lo) == np.add.reduce(a[lo:])  # exact, not approximate


def test_pairwise_sum_differs_from_a_plain_loop_somewhere():
    """The NumPy order matters: a sequential loop gives other bits on some input."""
    rng = np.random.default_rng(3)
    a = rng.exponential(1.0, 1000) * 10 ** rng.uniform(-3, 9, 1000)
    seq = 0.0
    for x in a:
        seq += x
    assert pairwise_sum(a, 0, len(a)) == np.add.reduce(a) != seq


def _numpy_bands(book, side, mid, tick, lot):
    """The NumPy expression the kernel replaced (before the band kernel)."""
    bids, asks = book.depth(5000)
    levels = bids if side > 0 else asks
    dist = (levels[:, 0] - mid) / mid
    if side > 0:
        dist *= -1.0
    notional = levels[:, 0] * levels[:, 1] * tick * lot
    ends = np.searchsorted(dist, BANDS, side="right")
    return np.array([np.add.reduce(notional[:k]) for k in ends])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 400))
def test_band_notional_matches_numpy(seed, n):
    rng = np.random.default_rng(seed)
    book = OrderBook()
    for _ in range(n):
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        off = int(rng.integers(1, 800))
        book.limit(side, 100_000 - off if side == Side.BUY else 100_000 + off,
                   int(rng.integers(1, 50)), owner=1)
    mid = book.mid()
    if mid is None:
        return
    for side in (1, -1):
        got = book.band_notional(side, mid, BANDS, 0.1, 0.001, 5000)
        assert got.tobytes() == _numpy_bands(book, side, mid, 0.1, 0.001).tobytes()
        lo, hi = mid * 0.99, mid * 1.01
        bids, asks = book.depth(1000)
        want = bids[bids[:, 0] >= lo, 1].sum() + asks[asks[:, 0] <= hi, 1].sum()
        assert book.lots_within(lo, hi, 1000) == want


def test_band_notional_by_hand():
    book = OrderBook()
    book.limit(Side.BUY, 995, 2, owner=1)   # 0.5 % below the mid of 1000
    book.limit(Side.BUY, 980, 1, owner=1)   # 2 % below
    book.limit(Side.SELL, 1005, 3, owner=2)  # 0.5 % above
    bid = book.band_notional(1, 1000.0, BANDS, 1.0, 1.0, 5000)
    ask = book.band_notional(-1, 1000.0, BANDS, 1.0, 1.0, 5000)
    assert bid.tolist() == [0.0, 1990.0, 1990.0, 2970.0, 2970.0]
    assert ask.tolist() == [0.0, 3015.0, 3015.0, 3015.0, 3015.0]
    assert book.lots_within(990.0, 1010.0, 1000) == 5
