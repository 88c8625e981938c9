"""Scenario, oracle and funding building blocks against their formulas."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.market.funding import FundingClock, funding_rate, mark_price
from sim.market.oracle import Oracle
from sim.scenarios.gbm import CorrelatedGBM


def test_gbm_recovers_vol_and_correlation():
    corr = np.array([[1.0, 0.8], [0.8, 1.0]])
    g = CorrelatedGBM(np.array([100.0, 50.0]), np.array([0.5, 0.9]), np.zeros(2), corr, 1 / 365)
    rng = np.random.default_rng(1)
    path = np.array([g.advance(rng).copy() for _ in range(20000)])
    r = np.diff(np.log(path), axis=0)
    vol = r.std(axis=0) * np.sqrt(365)
    assert vol == pytest.approx([0.5, 0.9], rel=0.03)
    assert np.corrcoef(r.T)[0, 1] == pytest.approx(0.8, abs=0.02)


def test_gbm_log_drift_is_mu_minus_half_sigma_squared():
    # one-year steps: iid log returns with mean mu - sigma^2/2 (standard error ~0.006 here)
    g = CorrelatedGBM(
        np.array([1.0, 1.0]), np.array([0.5, 0.9]), np.array([0.1, 0.3]), np.eye(2), 1.0
    )
    rng = np.random.default_rng(2)
    r = np.empty((20000, 2))
    for i in range(len(r)):
        g.prices[:] = 1.0
        r[i] = np.log(g.advance(rng))
    assert r.mean(axis=0) == pytest.approx([0.1 - 0.125, 0.3 - 0.405], abs=0.03)


def test_gbm_same_seed_same_path_different_seed_differs():
    def path(seed):
        g = CorrelatedGBM(np.array([1.0]), np.array([0.5]), np.zeros(1), np.eye(1), 1e-3)
        rng = np.random.default_rng(seed)
        return np.array([g.advance(rng).copy() for _ in range(50)])

    assert np.array_equal(path(3), path(3))
    assert not np.array_equal(path(3), path(4))


def test_oracle_latency_and_twap():
    o = Oracle(np.array([10.0]), latency_steps=2, twap_steps=2)
    seen = [o.publish(np.array([p]))[0] for p in (11.0, 12.0, 13.0, 14.0, 15.0)]
    # step k publishes mean(fundamental[k-2-1], fundamental[k-2]); before history: initial value
    assert seen == pytest.approx([10.0, 10.0, 10.5, 11.5, 12.5])
    plain = Oracle(np.array([1.0]))
    assert plain.publish(np.array([2.0]))[0] == 2.0
    with pytest.raises(ValueError, match="latency_steps"):
        Oracle(np.array([1.0]), latency_steps=-1)


@pytest.mark.parametrize("spot", [True, False])
def test_composite_index_blends_the_venues_mids(spot):
    from sim.config import load_config
    from sim.model import MarketModel

    v = 0.4
    model = MarketModel(load_config(["steps=5", "output.figures=false", f"oracle.venue_weight={v}",
                                     f"protocols.0.spot={str(spot).lower()}"]))
    for _ in range(3):
        model.step()
    kind = "SPOT" if spot else "PERP"  # the perpetual's mid where no venue lists spot
    mids = {a: model.view.mid(next(i.index for i in model.instruments
                                   if i.base == a and i.name.endswith(kind)))
            for a in (1, 2)}
    model.step()
    for a in (1, 2):
        outside = model.oracle.prices[a - 1]
        assert model.asset_prices[a] == pytest.approx((1 - v) * outside + v * mids[a], rel=1e-12)
        assert model.asset_prices[a] != pytest.approx(outside, rel=1e-9)


@pytest.mark.parametrize(
    ("premium", "expected"),
    [(0.0003, 0.0001), (0.0, 0.0001), (0.001, 0.0005), (-0.001, -0.0005), (0.05, 0.0075)],
)
def test_binance_funding_formula(premium, expected):
    # F = clamp(P + clamp(I - P, -0.05%, 0.05%), -cap, cap), I = 0.01% per 8 h
    assert funding_rate(premium, 0.0001, 0.0005, 0.0075) == pytest.approx(expected)


def test_funding_clock_averages_premium_over_interval():
    c = FundingClock(interval=3, interest_rate=0.0, premium_clamp=0.0005, cap=0.01)
    for mid in (101.0, 102.0, 103.0):
        c.sample(mid, 100.0)
    assert c.due(3) and not c.due(2)
    # average premium 2 % -> capped at 1 %
    assert c.settle() == pytest.approx(0.01)
    assert c.settle() == 0.0  # accumulator reset


def test_mark_is_median_with_index_fallbacks():
    assert mark_price(100.0, 101.0, 99.0) == 100.0
    assert mark_price(100.0, 105.0, 104.0) == 104.0
    assert mark_price(100.0, None, None) == 100.0


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-6, 1e9), st.one_of(st.none(), st.floats(1e-6, 1e9)),
       st.one_of(st.none(), st.floats(1e-6, 1e9)))
def test_mark_is_exactly_numpys_median(index, mid, last):
    values = [index, index if mid is None else mid, index if last is None else last]
    assert mark_price(index, mid, last) == float(np.median(values))


def test_binance_mark_resists_a_swept_book():
    c = FundingClock(interval=480, interest_rate=0.0001, premium_clamp=0.0005, cap=0.0075)
    for _ in range(30):
        c.sample(100.1, 100.0)  # a steady 0.1 basis
    assert c.basis_ma == pytest.approx(0.1)
    # the book was swept to a few ticks: mid and last near zero, the mark stays near the index
    c.sample(0.02, 100.0)
    assert c.mark(100.0, 0.02, step=100) == pytest.approx(100.0 + c.basis_ma, rel=1e-12)
    assert c.mark(100.0, 0.02, step=100) > 96.0  # one swept sample dents the 30-sample average only
    # calm: price1 = index (no funding yet), price2 = index + basis, last in between -> last
    c2 = FundingClock(interval=480, interest_rate=0.0001, premium_clamp=0.0005, cap=0.0075)
    c2.sample(100.2, 100.0)
    assert c2.mark(100.0, 100.1, step=1) == pytest.approx(100.1)
