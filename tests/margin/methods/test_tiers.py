"""Tests for margin.methods.tiers: reference values from margin_methods.md §3.3 and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from margin.methods.tiers import (
    BINANCE_BTCUSDT,
    BINANCE_ETHUSDT,
    DYDX_LARGE_CAP,
    HYPERLIQUID_BTC,
    HYPERLIQUID_ETH,
    TierTable,
    flat_table,
    initial_margin,
    initial_margin_scalar,
    liquidation_price,
    liquidation_price_cross,
    liquidation_price_isolated,
    maintenance_margin,
    maintenance_margin_scalar,
    tier_index,
)

BTC = BINANCE_BTCUSDT
TABLES = [BINANCE_BTCUSDT, BINANCE_ETHUSDT, DYDX_LARGE_CAP, HYPERLIQUID_BTC, HYPERLIQUID_ETH]


def _mm(table: TierTable, notional: float) -> float:
    return maintenance_margin_scalar(notional, table.floors, table.mmr, table.mm_cum)


# ----------------------------------------------------------------- reference values


def test_binance_btc_reference_values():
    # margin_methods.md §3.3 "Test values"
    assert _mm(BTC, 40_000.0) == pytest.approx(160.0, abs=1e-9)
    assert _mm(BTC, 500_000.0) == pytest.approx(3_700.0, abs=1e-9)
    assert _mm(BTC, 5_000_000.0) == pytest.approx(108_700.0, abs=1e-6)
    out = maintenance_margin(np.array([40e3, 500e3, 5e6]), BTC.floors, BTC.mmr, BTC.mm_cum)
    np.testing.assert_allclose(out, [160.0, 3_700.0, 108_700.0])
    np.testing.assert_allclose(BTC.maintenance(np.array([40e3, 5e6])), [160.0, 108_700.0])
    assert BTC.maintenance(40e3) == pytest.approx(160.0)


def test_binance_btc_cum_column_matches_reference_table():
    expected = [0, 50, 1_300, 16_300, 266_300, 1_266_300, 2_516_300, 5_016_300, 25_016_300,
                100_016_300]
    np.testing.assert_allclose(BTC.mm_cum, expected)
    imr = [0.008, 0.01, 0.02, 0.05, 0.10, 0.20, 0.25, 1 / 3, 0.5, 1.0]
    np.testing.assert_allclose(BTC.imr, imr)
    assert BTC.n_tiers == 10
    assert BTC.max_notional == 500e6


def test_binance_eth_cum_matches_binance_snapshot():
    # 'cum' column of the Binance leverageBracket snapshot (freqtrade commit 01d10aeb)
    expected = [0, 50, 950, 11_450, 131_450, 381_450, 2_006_450, 9_506_450, 17_506_450,
                27_506_450, 80_506_450, 280_506_450]
    np.testing.assert_allclose(BINANCE_ETHUSDT.mm_cum, expected)


def test_hyperliquid_tiers_reference_values():
    # margin_methods.md §3.3: MMR = 1 / (2 x max leverage); BTC 40x to 150M then 20x with the
    # deduction 150M x (2.5 % - 1.25 %) = 1,875,000; ETH 25x to 100M then 15x
    np.testing.assert_allclose(HYPERLIQUID_BTC.mmr, [0.0125, 0.025])
    np.testing.assert_allclose(HYPERLIQUID_BTC.imr, [0.025, 0.05])
    np.testing.assert_allclose(HYPERLIQUID_BTC.mm_cum, [0.0, 1_875_000.0])
    np.testing.assert_allclose(HYPERLIQUID_ETH.mmr, [0.02, 1 / 30])
    np.testing.assert_allclose(HYPERLIQUID_ETH.imr, [0.04, 1 / 15])
    for t in (HYPERLIQUID_BTC, HYPERLIQUID_ETH):
        np.testing.assert_allclose(t.mmr, 1.0 / (2.0 * t.max_leverage))
    assert _mm(HYPERLIQUID_BTC, 100_000.0) == pytest.approx(1_250.0)
    assert _mm(HYPERLIQUID_BTC, 200e6) == pytest.approx(200e6 * 0.025 - 1_875_000.0)
    # the §3.3 liquidation-price example (40x, long 1 @ 50,000 on 5,000) holds with the table
    lp = liquidation_price_isolated(1, 1.0, 50_000.0, 5_000.0, HYPERLIQUID_BTC)
    assert lp == pytest.approx(45_569.62, abs=0.005)


def test_im_continuity_deductions():
    # im_cum_1 = 50,000 × (1% − 0.8%) = 100; IM(1M) = 1M × 5% − 32,600 = 17,400
    assert BTC.im_cum[1] == pytest.approx(100.0)
    assert initial_margin_scalar(1e6, BTC.floors, BTC.imr, BTC.im_cum) == pytest.approx(17_400.0)
    # 125x at 40k
    assert initial_margin_scalar(40e3, BTC.floors, BTC.imr, BTC.im_cum) == pytest.approx(320.0)
    np.testing.assert_allclose(
        initial_margin(np.array([0.0, 40e3, 1e6]), BTC.floors, BTC.imr, BTC.im_cum),
        [0.0, 320.0, 17_400.0],
    )


def test_flat_table_dydx_large_cap():
    t = flat_table(0.05, 0.03)
    assert t == DYDX_LARGE_CAP
    assert t.max_leverage[0] == pytest.approx(20.0)
    assert t.maintenance(100_000.0) == pytest.approx(3_000.0)
    assert t.initial(100_000.0) == pytest.approx(5_000.0)


# ----------------------------------------------------------------- tier_index


def test_tier_index_boundaries_inclusive_floor():
    f = BTC.floors
    assert tier_index(0.0, f) == 0
    assert tier_index(49_999.99, f) == 0
    assert tier_index(50_000.0, f) == 1
    assert tier_index(-5.0, f) == 0
    assert tier_index(1e12, f) == 9
    assert tier_index(300e6, f) == 9
    assert tier_index(299_999_999.0, f) == 8


@given(st.floats(min_value=-1e3, max_value=2e9, allow_nan=False))
def test_tier_index_matches_searchsorted(x):
    for t in TABLES:
        expected = max(int(np.searchsorted(t.floors, x, side="right")) - 1, 0)
        assert tier_index(x, t.floors) == expected


# ----------------------------------------------------------------- properties


@settings(max_examples=200)
@given(st.floats(min_value=0.0, max_value=1.5e9), st.floats(min_value=0.0, max_value=1e8))
def test_requirements_monotone_continuous_and_ordered(n, dn):
    for t in TABLES:
        mm0, mm1 = _mm(t, n), _mm(t, n + dn)
        im0 = initial_margin_scalar(n, t.floors, t.imr, t.im_cum)
        im1 = initial_margin_scalar(n + dn, t.floors, t.imr, t.im_cum)
        tol = 1e-9 * (1.0 + n + dn)
        # non-decreasing, Lipschitz with the largest rate => continuous
        assert -tol <= mm1 - mm0 <= t.mmr[-1] * dn + tol
        assert -tol <= im1 - im0 <= t.imr[-1] * dn + tol
        # MM ≤ IM ≤ IM at the bracket's own rate (Binance's discontinuous form)
        assert mm0 <= im0 + tol
        assert im0 <= n * t.imr[tier_index(n, t.floors)] + tol
        assert mm0 >= -tol


def test_continuity_at_every_floor():
    for t in TABLES:
        for i in range(1, t.n_tiers):
            f = t.floors[i]
            left = f * t.mmr[i - 1] - t.mm_cum[i - 1]
            right = f * t.mmr[i] - t.mm_cum[i]
            assert left == pytest.approx(right, rel=1e-12)
            left_im = f * t.imr[i - 1] - t.im_cum[i - 1]
            right_im = f * t.imr[i] - t.im_cum[i]
            assert left_im == pytest.approx(right_im, rel=1e-12)


def test_vector_kernels_match_scalar():
    rng = np.random.default_rng(7)
    n = rng.uniform(0, 6e8, size=500)
    mm = maintenance_margin(n, BTC.floors, BTC.mmr, BTC.mm_cum)
    im = initial_margin(n, BTC.floors, BTC.imr, BTC.im_cum)
    for k in range(0, 500, 37):
        assert mm[k] == maintenance_margin_scalar(n[k], BTC.floors, BTC.mmr, BTC.mm_cum)
        assert im[k] == initial_margin_scalar(n[k], BTC.floors, BTC.imr, BTC.im_cum)
    assert BTC.maintenance(n.reshape(20, 25)).shape == (20, 25)


@njit(cache=False)
def _portfolio_mm(notional, floors, mmr, mm_cum):
    total = 0.0
    for x in notional:
        total += maintenance_margin_scalar(x, floors, mmr, mm_cum)
    return total


def test_scalar_kernels_callable_from_njit():
    got = _portfolio_mm(np.array([40e3, 500e3]), BTC.floors, BTC.mmr, BTC.mm_cum)
    assert got == pytest.approx(3_860.0)


# ----------------------------------------------------------------- liquidation price


def _equity_minus_mm(side, qty, ep, wb, table, price, tmm=0.0, upnl=0.0):
    return wb - tmm + upnl + side * qty * (price - ep) - _mm(table, qty * price)


def test_isolated_long_reference_value():
    lp = liquidation_price_isolated(1, 1.0, 50_000.0, 5_000.0, BTC)
    assert lp == pytest.approx(45_180.72, abs=0.005)
    assert _equity_minus_mm(1, 1.0, 50_000.0, 5_000.0, BTC, lp) == pytest.approx(0.0, abs=1e-8)


def test_isolated_short_reference_value_and_tier_recompute():
    # Reference §3.3 quotes 54,780.88 = 55,000 / 1.004, i.e. tier-1 MMR 0.4%.
    # But 54,780.88 of notional lies in tier 2 (0.5%, cum 50), and the rule
    # "if LP falls in a different tier, recompute" gives 55,050 / 1.005.
    lp = liquidation_price_isolated(-1, 1.0, 50_000.0, 5_000.0, BTC)
    assert lp == pytest.approx(55_050.0 / 1.005, abs=1e-6)
    assert lp == pytest.approx(54_776.12, abs=0.005)
    assert _equity_minus_mm(-1, 1.0, 50_000.0, 5_000.0, BTC, lp) == pytest.approx(0.0, abs=1e-8)
    # at the reference's 54,780.88 the position is already below maintenance
    assert _equity_minus_mm(-1, 1.0, 50_000.0, 5_000.0, BTC, 54_780.88) < 0
    # without the tier change (one flat 0.4% tier) the reference number appears
    flat = flat_table(0.008, 0.004)
    lp_flat = liquidation_price_isolated(-1, 1.0, 50_000.0, 5_000.0, flat)
    assert lp_flat == pytest.approx(54_780.88, abs=0.005)


def test_liquidation_crosses_several_tiers():
    # 100 BTC long: LP ≈ 45,987 → notional 4.6M, tier 4 (2.5%)
    lp = liquidation_price_isolated(1, 100.0, 50_000.0, 500_000.0, BTC)
    assert tier_index(100 * lp, BTC.floors) == 3
    assert _equity_minus_mm(1, 100.0, 50_000.0, 500_000.0, BTC, lp) == pytest.approx(0.0, abs=1e-6)
    lp_s = liquidation_price_isolated(-1, 100.0, 50_000.0, 500_000.0, BTC)
    gap = _equity_minus_mm(-1, 100.0, 50_000.0, 500_000.0, BTC, lp_s)
    assert gap == pytest.approx(0.0, abs=1e-6)


def test_other_venues_reduce_to_same_root():
    # dYdX (§3.3): 10,000 USDC, long 2 BTC @ 50,000, MMF 3% -> 46,391.75
    lp = liquidation_price_cross(1, 2.0, 50_000.0, 10_000.0, DYDX_LARGE_CAP)
    assert lp == pytest.approx(46_391.75, abs=0.005)
    # Hyperliquid (§3.3): 40x (MM 1.25%), isolated long 1 @ 50,000, 5,000 margin -> 45,569.62
    hl = flat_table(1 / 40, 0.0125)
    lp = liquidation_price_isolated(1, 1.0, 50_000.0, 5_000.0, hl)
    assert lp == pytest.approx(45_569.62, abs=0.005)


def test_cross_variant_uses_other_positions():
    base = liquidation_price_cross(1, 1.0, 50_000.0, 5_000.0, BTC)
    assert base == pytest.approx(liquidation_price_isolated(1, 1.0, 50_000.0, 5_000.0, BTC))
    helped = liquidation_price_cross(
        1, 1.0, 50_000.0, 5_000.0, BTC, other_maintenance=100.0, other_upnl=2_000.0
    )
    assert helped < base
    # equivalent to an isolated position with WB − TMM1 + UPNL1
    assert helped == pytest.approx(liquidation_price_isolated(1, 1.0, 50_000.0, 6_900.0, BTC))
    gap = _equity_minus_mm(1, 1.0, 50_000.0, 5_000.0, BTC, helped, 100.0, 2_000.0)
    assert gap == pytest.approx(0, abs=1e-8)


def test_fully_collateralised_long_and_hopeless_short_return_zero():
    assert liquidation_price_isolated(1, 1.0, 50_000.0, 60_000.0, BTC) == 0.0
    assert liquidation_price_cross(-1, 1.0, 50_000.0, 1_000.0, BTC, other_upnl=-60_000.0) == 0.0


@settings(max_examples=200)
@given(
    st.sampled_from([1, -1]),
    st.floats(min_value=1e-3, max_value=5_000.0),
    st.floats(min_value=100.0, max_value=200_000.0),
    st.floats(min_value=0.005, max_value=0.9),
)
def test_liquidation_price_is_the_root(side, qty, ep, margin_frac):
    wb = margin_frac * qty * ep
    lp = liquidation_price_isolated(side, qty, ep, wb, BTC)
    assert np.isfinite(lp) and lp > 0
    scale = 1e-9 * qty * ep
    assert _equity_minus_mm(side, qty, ep, wb, BTC, lp) == pytest.approx(0.0, abs=max(scale, 1e-7))
    # one tick on the safe side is healthy, one tick beyond is liquidatable
    safe = lp * (1 + side * 1e-6)
    beyond = lp * (1 - side * 1e-6)
    assert _equity_minus_mm(side, qty, ep, wb, BTC, safe) > 0
    assert _equity_minus_mm(side, qty, ep, wb, BTC, beyond) < 0
    # kernel agrees with the wrapper
    assert liquidation_price(side, qty, ep, wb, 0.0, 0.0, BTC.floors, BTC.mmr, BTC.mm_cum) == lp


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"side": 0}, "side"),
        ({"qty": 0.0}, "qty"),
        ({"qty": -1.0}, "qty"),
        ({"entry_price": 0.0}, "entry_price"),
        ({"wallet_balance": float("nan")}, "wallet_balance"),
    ],
)
def test_liquidation_price_input_errors(kwargs, needle):
    args = {"side": 1, "qty": 1.0, "entry_price": 50_000.0, "wallet_balance": 5_000.0} | kwargs
    with pytest.raises(ValueError, match=needle) as exc:
        liquidation_price_isolated(table=BTC, **args)
    assert "\n" not in str(exc.value)


# ----------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"floors": [1.0, 10.0]}, "floors"),
        ({"floors": [0.0, 0.0]}, "floors"),
        ({"floors": []}, "floors"),
        ({"floors": [[0.0, 1.0]]}, "floors"),
        ({"floors": [0.0, float("nan")]}, "floors"),
        ({"max_leverage": [100.0]}, "max_leverage"),
        ({"max_leverage": [50.0, 100.0]}, "max_leverage"),
        ({"max_leverage": [0.5, 0.5]}, "max_leverage"),
        ({"mmr": [0.004]}, "mmr"),
        ({"mmr": [0.01, 0.005]}, "mmr"),
        ({"mmr": [-0.01, 0.005]}, "mmr"),
        ({"mmr": [0.004, 0.5]}, "mmr"),  # above imr = 1/50
        ({"max_notional": 5.0}, "max_notional"),
        ({"floors": "abc"}, "floors"),
    ],
)
def test_table_validation_names_field(kwargs, field):
    good = {"floors": [0.0, 50_000.0], "max_leverage": [125.0, 50.0], "mmr": [0.004, 0.01]}
    with pytest.raises(ValueError, match=rf"TierTable\.{field}") as exc:
        TierTable(**(good | kwargs))
    assert "\n" not in str(exc.value)


def test_table_is_frozen_readonly_and_hashable():
    with pytest.raises(AttributeError):
        BTC.mmr = np.zeros(10)  # type: ignore[misc]
    with pytest.raises(ValueError):
        BTC.mmr[0] = 1.0
    copy = TierTable(list(BTC.floors), list(BTC.max_leverage), list(BTC.mmr), max_notional=500e6)
    assert copy == BTC and hash(copy) == hash(BTC)
    assert copy != BINANCE_ETHUSDT
    assert {BTC: 1}[copy] == 1


def test_flat_table_rejects_bad_rate():
    with pytest.raises(ValueError, match="imr"):
        flat_table(0.0, 0.0)
    with pytest.raises(ValueError, match="mmr"):
        flat_table(0.05, 0.06)
