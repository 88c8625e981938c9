"""Static (isolated) margin engine against Binance reference values and its own contract."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin.regimes.cross import CrossMarginEngine
from margin.engine import OPTION, PERP, SPOT, InstrumentSpecs, MarginInputs, make_engine
from margin.regimes.static import StaticIsolatedEngine
from margin.methods.tiers import (
    BINANCE_BTCUSDT,
    BINANCE_ETHUSDT,
    flat_table,
    liquidation_price_isolated,
)

# assets: 0 = USD, 1 = BTC, 2 = ETH; instruments: 0 = BTC spot, 1 = BTC perp, 2 = ETH perp
SPECS = InstrumentSpecs(kind=np.array([SPOT, PERP, PERP]), underlying=np.array([1, 1, 2]),
                        quote=np.array([0, 0, 0]), contract_size=np.ones(3))


def inputs(collateral, positions, entry, margin=None, btc=50_000.0, eth=3_000.0, specs=SPECS):
    n = len(positions)
    pm = None if margin is None else np.asarray(margin, float).reshape(n, 3)
    return MarginInputs(np.asarray(collateral, float).reshape(n, 3),
                        np.asarray(positions, float).reshape(n, 3),
                        np.asarray(entry, float).reshape(n, 3), np.array([1.0, btc, eth]),
                        np.array([btc, btc, eth]), specs, np.zeros(3), position_margin=pm)


def long_btc(mark, qty=1.0, margin=5_000.0):
    return inputs([[10_000.0, 0, 0]], [[0, qty, 0]], [[0, 50_000.0, 0]], [[0, margin, 0]], btc=mark)


# ----------------------------------------------------------------- reference values


def test_isolated_long_reference_liquidation_price():
    # margin_methods.md §3.3: isolated long 1 BTC @ 50,000, 10x (WB 5,000) -> LP 45,180.72
    e = StaticIsolatedEngine()
    lp = e.evaluate(long_btc(50_000.0)).extra["liquidation_price"][0, 1]
    assert lp == pytest.approx(45_180.72, abs=0.005)
    at = e.evaluate(long_btc(lp))
    # equity (180.72) equals MM (notional x 0.4 %) at the liquidation price
    assert at.extra["position_equity"][0, 1] == pytest.approx(180.72, abs=0.01)
    assert at.extra["position_equity"][0, 1] == pytest.approx(at.extra["position_mm"][0, 1],
                                                              abs=1e-8)
    above, below = e.evaluate(long_btc(lp * (1 + 1e-7))), e.evaluate(long_btc(lp * (1 - 1e-7)))
    assert not above.below_maintenance[0] and not above.extra["position_liquidatable"][0, 1]
    assert below.below_maintenance[0] and below.extra["position_liquidatable"][0, 1]


def test_isolated_short_corrected_liquidation_price():
    # tiers module: the reference's 54,780.88 ignores the tier change; recomputed -> 54,776.12
    e = StaticIsolatedEngine()
    state = inputs([[10_000.0, 0, 0]], [[0, -1.0, 0]], [[0, 50_000.0, 0]], [[0, 5_000.0, 0]])
    lp = e.evaluate(state).extra["liquidation_price"][0, 1]
    assert lp == pytest.approx(54_776.12, abs=0.005)
    assert lp == pytest.approx(liquidation_price_isolated(-1, 1.0, 50_000.0, 5_000.0,
                                                          BINANCE_BTCUSDT))
    at = e.evaluate(inputs([[10_000.0, 0, 0]], [[0, -1.0, 0]], [[0, 50_000.0, 0]],
                           [[0, 5_000.0, 0]], btc=lp))
    assert at.extra["position_equity"][0, 1] == pytest.approx(at.extra["position_mm"][0, 1],
                                                              abs=1e-8)
    # tier 2 (0.5 %, cum 50) applies at the liquidation notional
    assert at.extra["position_mm"][0, 1] == pytest.approx(lp * 0.005 - 50.0)


def test_binance_tier_maintenance_via_engine():
    # §3.3 test values: MM(40k) = 160, MM(500k) = 3,700, MM(5M) = 108,700; vectorised over accounts
    qty = [0.8, 10.0, 100.0]
    state = inputs([[1e7, 0, 0]] * 3, [[0, q, 0] for q in qty], [[0, 50_000.0, 0]] * 3,
                   [[0, 1e6, 0]] * 3)
    res = StaticIsolatedEngine().evaluate(state)
    np.testing.assert_allclose(res.extra["position_mm"][:, 1], [160.0, 3_700.0, 108_700.0])
    np.testing.assert_allclose(res.extra["position_im"][:, 1],
                               BINANCE_BTCUSDT.initial(np.array(qty) * 50_000.0))
    np.testing.assert_allclose(res.initial, res.extra["position_im"][:, 1])
    assert np.all(res.extra["position_mm"] <= res.extra["position_im"])


def test_eth_perp_uses_eth_table():
    state = inputs([[1e6, 0, 0]], [[0, 0, 200.0]], [[0, 0, 3_000.0]], [[0, 0, 1e5]])
    res = StaticIsolatedEngine().evaluate(state)
    assert res.extra["position_mm"][0, 2] == pytest.approx(BINANCE_ETHUSDT.maintenance(600_000.0))


# ----------------------------------------------------------------- isolation


def test_profit_does_not_rescue_another_position():
    # long 1 BTC @ 50k and long 10 ETH @ 3k, 5,000 posted on each; BTC -> 60k, ETH -> 2,505
    state = inputs([[10_000.0, 0, 0]], [[0, 1.0, 10.0]], [[0, 50_000.0, 3_000.0]],
                   [[0, 5_000.0, 5_000.0]], btc=60_000.0, eth=2_505.0)
    static = StaticIsolatedEngine().evaluate(state)
    cross = CrossMarginEngine([None, BINANCE_BTCUSDT, BINANCE_ETHUSDT]).evaluate(state)
    assert not cross.below_maintenance[0]
    assert static.below_maintenance[0]
    np.testing.assert_allclose(static.extra["position_equity"][0], [0.0, 15_000.0, 50.0])
    assert static.extra["position_liquidatable"][0].tolist() == [False, False, True]
    # the account's shortfall is the ETH position's alone; BTC's surplus does not count
    mm_eth = 25_050.0 * 0.004
    assert static.maintenance[0] - static.equity[0] == pytest.approx(mm_eth - 50.0)
    assert static.extra["maintenance_sum"][0] == pytest.approx(250.0 + mm_eth)
    # same sum of equity as cross (quote 10,000 fully posted) yet liquidatable
    assert static.equity[0] == pytest.approx(cross.equity[0])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-5.0, 5.0), st.floats(-50.0, 50.0), st.floats(0.0, 20_000.0),
                          st.floats(0.0, 20_000.0)), min_size=1, max_size=6),
       st.floats(0.5, 1.5), st.floats(0.5, 1.5))
def test_account_flag_is_any_position(rows, btc_move, eth_move):
    pos = [[0.0, b, e] for b, e, _, _ in rows]
    pm = [[0.0, mb, me] for _, _, mb, me in rows]
    state = inputs([[0.0, 0, 0]] * len(rows), pos, [[0, 50_000.0, 3_000.0]] * len(rows), pm,
                   btc=50_000.0 * btc_move, eth=3_000.0 * eth_move)
    res = StaticIsolatedEngine().evaluate(state)
    assert np.array_equal(res.below_maintenance, res.extra["position_liquidatable"].any(axis=1))
    assert np.array_equal(res.extra["liquidatable"], res.below_maintenance)
    np.testing.assert_allclose(res.equity, res.extra["position_equity"].sum(axis=1))
    assert np.all(res.extra["position_mm"] <= res.extra["position_im"])


# ----------------------------------------------------------------- flat leverage


@pytest.mark.parametrize("lev", [2.0, 10.0, 20.0, 50.0])
def test_flat_leverage_im_mm(lev):
    e = StaticIsolatedEngine(max_leverage=lev)
    state = inputs([[1e6, 0, 0]], [[0, 0.7, -30.0]], [[0, 50_000.0, 3_000.0]],
                   [[0, 1e5, 1e5]], btc=52_000.0, eth=2_900.0)
    res = e.evaluate(state)
    notional = np.array([0.7 * 52_000.0, 30.0 * 2_900.0])
    np.testing.assert_allclose(res.extra["position_im"][0, 1:], notional / lev, rtol=1e-14)
    np.testing.assert_allclose(res.extra["position_mm"][0, 1:], notional / (2 * lev), rtol=1e-14)
    assert res.initial[0] == pytest.approx(notional.sum() / lev, rel=1e-14)


def test_mm_fraction_configurable():
    res = StaticIsolatedEngine(max_leverage=40, mm_to_im=0.5).evaluate(long_btc(50_000.0))
    # Hyperliquid 40x: MM 1.25 %; isolated long 1 @ 50,000 with 5,000 -> liq 45,569.62 (§3.3)
    assert res.extra["position_mm"][0, 1] == pytest.approx(625.0)
    assert res.extra["liquidation_price"][0, 1] == pytest.approx(45_569.62, abs=0.005)
    res = StaticIsolatedEngine(max_leverage=10, mm_to_im=0.6).evaluate(long_btc(50_000.0))
    assert res.extra["position_mm"][0, 1] == pytest.approx(0.06 * 50_000.0)


@settings(max_examples=60, deadline=None)
@given(st.floats(1.0, 125.0), st.floats(1e-3, 100.0), st.floats(0.1, 20.0),
       st.floats(1_000.0, 100_000.0))
def test_requirements_linear_in_size_under_flat_leverage(lev, qty, k, mark):
    e = StaticIsolatedEngine(max_leverage=lev)
    one = e.evaluate(inputs([[0.0, 0, 0]], [[0, qty, 0]], [[0, mark, 0]], [[0, 0, 0]], btc=mark))
    big = e.evaluate(inputs([[0.0, 0, 0]], [[0, k * qty, 0]], [[0, mark, 0]], [[0, 0, 0]],
                            btc=mark))
    assert big.initial[0] == pytest.approx(k * one.initial[0], rel=1e-12)
    assert big.extra["maintenance_sum"][0] == pytest.approx(k * one.extra["maintenance_sum"][0],
                                                            rel=1e-12)
    assert one.extra["position_mm"][0, 1] <= one.extra["position_im"][0, 1]


def test_tiered_requirements_not_linear():
    e = StaticIsolatedEngine()
    one = e.evaluate(inputs([[0.0, 0, 0]], [[0, 1.0, 0]], [[0, 50_000.0, 0]], [[0, 0, 0]]))
    big = e.evaluate(inputs([[0.0, 0, 0]], [[0, 100.0, 0]], [[0, 50_000.0, 0]], [[0, 0, 0]]))
    assert big.extra["maintenance_sum"][0] > 100 * one.extra["maintenance_sum"][0]


# ----------------------------------------------------------------- pre-trade


@pytest.mark.parametrize("lev", [5.0, 20.0, 33.0])
def test_pretrade_rejects_notional_above_leverage_times_free(lev):
    e = StaticIsolatedEngine(max_leverage=lev)
    # 1,000 quote, one position already posted 400 -> free 600
    state = inputs([[1_000.0, 0, 0]], [[0, 0, 1.0]], [[0, 0, 3_000.0]], [[0, 0, 400.0]])
    free = 600.0
    qty = lev * free / 50_000.0
    ok = e.pretrade(state, np.array([0, 0]), np.array([1, 1]),
                    np.array([qty * (1 - 1e-9), qty * (1 + 1e-9)]), np.array([50_000.0] * 2), 0.0)
    # orders are sequential: the first uses all free collateral, the second gets nothing
    assert ok.tolist() == [True, False]
    alone = e.pretrade(state, np.array([0]), np.array([1]), np.array([-qty * (1 + 1e-9)]),
                       np.array([50_000.0]), 0.0)
    assert not alone[0]
    # the fee counts against free collateral too
    with_fee = e.pretrade(state, np.array([0]), np.array([1]), np.array([qty * (1 - 1e-9)]),
                          np.array([50_000.0]), 0.0005)
    assert not with_fee[0]


def test_pretrade_sequential_and_reducing():
    e = StaticIsolatedEngine(max_leverage=10)
    # account 0: 1,000 free; account 1: 0.1 BTC posted at its IM (500), 100 free
    state = inputs([[1_000.0, 0, 0], [600.0, 0, 0]], [[0, 0, 0], [0, 0.1, 0]],
                   [[0, 0, 0], [0, 50_000.0, 0]], [[0, 0, 0], [0, 500.0, 0]])
    # 0.15 BTC needs 750 of 1,000; a second 0.15 needs 750 more. Account 1 halves its
    # position (releasing 250 -> 350 free), then adds 0.06 (IM 550, top-up 300), then
    # 0.05 more would need 250 of the 50 left.
    ok = e.pretrade(state, np.array([0, 0, 1, 1, 1]), np.array([1] * 5),
                    np.array([0.15, 0.15, -0.05, 0.06, 0.05]), np.array([50_000.0] * 5), 0.0)
    assert ok.tolist() == [True, False, True, True, False]
    # reducing is accepted even with no free collateral and a fee
    broke = inputs([[100.0, 0, 0]], [[0, 0.1, 0]], [[0, 50_000.0, 0]], [[0, 500.0, 0]])
    assert e.pretrade(broke, np.array([0]), np.array([1]), np.array([-0.05]),
                      np.array([40_000.0]), 0.001).tolist() == [True]
    # a flip to -0.2 releases the 500 posted (600 free) but needs 1,000 for the new short;
    # a flip to -0.1 needs 500
    flips = [e.pretrade(state, np.array([1]), np.array([1]), np.array([d]),
                        np.array([50_000.0]), 0.0)[0] for d in (-0.3, -0.2)]
    assert flips == [False, True]


def test_pretrade_adverse_fill_and_overposted_margin():
    e = StaticIsolatedEngine(max_leverage=10)
    fresh = inputs([[500.001, 0, 0]], [[0, 0, 0]], [[0, 0, 0]], [[0, 0, 0]])
    # IM 500 at the mark; buying 50 above the mark costs 0.1 x 50 = 5 more
    at_mark = e.pretrade(fresh, np.array([0]), np.array([1]), np.array([0.1]),
                         np.array([50_000.0]), 0.0)
    worse = e.pretrade(fresh, np.array([0]), np.array([1]), np.array([0.1]),
                       np.array([50_050.0]), 0.0)
    assert at_mark[0] and not worse[0]
    # a position posted at twice its IM can double without new collateral, not more
    over = inputs([[1_001.0, 0, 0]], [[0, 0.1, 0]], [[0, 50_000.0, 0]], [[0, 1_001.0, 0]])
    ok = e.pretrade(over, np.array([0, 0]), np.array([1, 1]), np.array([0.1, 0.01]),
                    np.array([50_000.0, 50_000.0]), 0.0)
    assert ok.tolist() == [True, False]


def test_pretrade_spot_is_cash_only():
    e = StaticIsolatedEngine(max_leverage=10)
    state = inputs([[60_000.0, 0.5, 0]], [[0, 1.0, 0]], [[0, 50_000.0, 0]], [[0, 10_000.0, 0]])
    # free quote 50,000 (10,000 is posted): one BTC spot fits, a second does not;
    # then 1.5 BTC is held and can be sold, but nothing beyond it (no borrowing)
    ok = e.pretrade(state, np.array([0, 0, 0, 0]), np.array([0, 0, 0, 0]),
                    np.array([1.0, 1.0, -1.5, -0.01]), np.array([50_000.0] * 4), 0.0)
    assert ok.tolist() == [True, False, True, False]


def test_pretrade_empty_batch():
    state = inputs([[1e6, 0, 0]], [[0, 0, 0]], [[0, 0, 0]], [[0, 0, 0]])
    e = StaticIsolatedEngine(max_leverage=10)
    assert e.pretrade(state, np.array([], np.int64), np.array([], np.int64), np.array([]),
                      np.array([]), 0.0).shape == (0,)


# ----------------------------------------------------------------- posted margin fallback


def test_fallback_posts_entry_im_then_pro_rata():
    e = StaticIsolatedEngine(max_leverage=10)
    rich = inputs([[10_000.0, 0, 0]], [[0, 1.0, -10.0]], [[0, 50_000.0, 3_000.0]], btc=48_000.0)
    res = e.evaluate(rich)
    # IM at the entry notional: 5,000 and 3,000; free quote 2,000
    np.testing.assert_allclose(res.extra["posted_margin"][0], [0.0, 5_000.0, 3_000.0])
    assert res.extra["free_quote"][0] == pytest.approx(2_000.0)
    assert res.extra["position_equity"][0, 1] == pytest.approx(3_000.0)
    poor = inputs([[4_000.0, 0, 0]], [[0, 1.0, -10.0]], [[0, 50_000.0, 3_000.0]])
    np.testing.assert_allclose(e.evaluate(poor).extra["posted_margin"][0],
                               [0.0, 2_500.0, 1_500.0])
    broke = inputs([[-10.0, 0, 0]], [[0, 1.0, 0]], [[0, 50_000.0, 0]])
    assert e.evaluate(broke).extra["posted_margin"][0, 1] == 0.0


def test_fallback_raise_and_argument_errors():
    state = inputs([[1e4, 0, 0]], [[0, 1.0, 0]], [[0, 50_000.0, 0]])
    cases = [
        (lambda: StaticIsolatedEngine(missing_margin="raise").evaluate(state), "position_margin"),
        (lambda: StaticIsolatedEngine(max_leverage=0.5), "max_leverage"),
        (lambda: StaticIsolatedEngine(tables=[None, BINANCE_BTCUSDT], max_leverage=5), "exclusive"),
        (lambda: StaticIsolatedEngine(mm_to_im=1.5), "mm_to_im"),
        (lambda: StaticIsolatedEngine(missing_margin="all"), "missing_margin"),
        (lambda: StaticIsolatedEngine(tables=[None, "btc"]), "tables"),
        (lambda: StaticIsolatedEngine(tables=[None, BINANCE_BTCUSDT]).evaluate(state), "asset 2"),
        (lambda: StaticIsolatedEngine().evaluate(
            inputs([[1e4, 0, 0]], [[0, 1.0, 0]], [[0, 5e4, 0]], [[0, -1.0, 0]])),
         "position_margin"),
    ]
    for fn, needle in cases:
        with pytest.raises(ValueError, match=needle) as exc:
            fn()
        assert "\n" not in str(exc.value)
    bad_shape = inputs([[1e4, 0, 0]], [[0, 1.0, 0]], [[0, 50_000.0, 0]])
    bad_shape.position_margin = np.zeros((1, 2))
    with pytest.raises(ValueError, match="position_margin"):
        StaticIsolatedEngine().evaluate(bad_shape)


def test_registry():
    e = make_engine("static", tables={1: flat_table(0.1, 0.05), 2: flat_table(0.2, 0.1)})
    assert isinstance(e, StaticIsolatedEngine)
    res = e.evaluate(long_btc(50_000.0))
    assert res.initial[0] == pytest.approx(5_000.0)


@settings(max_examples=80, deadline=None)
@given(st.sampled_from([1, -1]), st.floats(1e-3, 500.0), st.floats(1_000.0, 100_000.0),
       st.floats(0.01, 0.9))
def test_liquidation_price_matches_tiers_and_is_the_root(side, qty, ep, frac):
    wb = frac * qty * ep
    e = StaticIsolatedEngine()
    state = inputs([[0.0, 0, 0]], [[0, side * qty, 0]], [[0, ep, 0]], [[0, wb, 0]], btc=ep)
    lp = e.evaluate(state).extra["liquidation_price"][0, 1]
    assert lp == liquidation_price_isolated(side, qty, ep, wb, BINANCE_BTCUSDT)
    at = e.evaluate(inputs([[0.0, 0, 0]], [[0, side * qty, 0]], [[0, ep, 0]], [[0, wb, 0]],
                           btc=lp))
    gap = at.extra["position_equity"][0, 1] - at.extra["position_mm"][0, 1]
    assert gap == pytest.approx(0.0, abs=max(1e-9 * qty * ep, 1e-7))


# ----------------------------------------------------------------- options

# assets: 0 = USD, 1 = BTC, 2 = ETH; instruments: 0 = BTC perp, 1 = BTC 66,000 call quoted in
# USD, 2 = the same call quoted in BTC (inverse: premium and posted margin in coin)
OPT_SPECS = InstrumentSpecs(kind=np.array([PERP, OPTION, OPTION]), underlying=np.array([1, 1, 1]),
                            quote=np.array([0, 0, 1]), contract_size=np.ones(3),
                            strike=np.array([0.0, 66_000.0, 66_000.0]),
                            expiry=np.array([0.0, 30 / 365, 30 / 365]),
                            is_call=np.array([False, True, True]))


def opt_inputs(collateral, positions, entry=None, margin=None, call_mark=500.0):
    n = len(positions)
    entry = np.zeros((n, 3)) if entry is None else np.asarray(entry, float).reshape(n, 3)
    pm = None if margin is None else np.asarray(margin, float).reshape(n, 3)
    return MarginInputs(np.asarray(collateral, float).reshape(n, 3),
                        np.asarray(positions, float).reshape(n, 3), entry,
                        np.array([1.0, 60_000.0, 3_000.0]),
                        np.array([60_000.0, call_mark, call_mark]), OPT_SPECS, np.zeros(3),
                        position_margin=pm)


def test_short_call_isolated_by_hand():
    # short 2 calls K 66,000 at F 60,000 sold at 400, mark 500 (OTM 6,000: 10 % floor binds).
    # Posted at entry: IM with the mark at the entry premium, 2 × (6,000 + 400) = 12,800;
    # equity = 12,800 + (−2) × (500 − 400) = 12,600; IM 2 × 6,500, MM 2 × 5,000
    e = StaticIsolatedEngine(max_leverage=20)
    res = e.evaluate(opt_inputs([[20_000.0, 0, 0]], [[0, -2.0, 0]], [[0, 400.0, 0]]))
    assert res.extra["posted_margin"][0, 1] == 12_800.0
    assert res.extra["position_equity"][0, 1] == 12_600.0
    assert (res.initial[0], res.maintenance[0], res.equity[0]) == (13_000.0, 10_000.0, 12_600.0)
    assert not res.below_maintenance[0] and not res.extra["liquidatable"][0]
    assert np.isnan(res.extra["liquidation_price"][0, 1])
    # free quote: 20,000 − 12,800 posted − 800 of premium held by the short
    assert res.extra["free_quote"][0] == 6_400.0


def test_short_call_liquidated_when_its_mark_rises():
    # posted 11,000: equity 11,000 − 2 (m − 400) meets MM 2 (4,500 + m) at m = 700
    e = StaticIsolatedEngine(max_leverage=20)
    for mark, liquidatable in ((699.0, False), (701.0, True)):
        res = e.evaluate(opt_inputs([[20_000.0, 0, 0]], [[0, -2.0, 0]], [[0, 400.0, 0]],
                                    [[0, 11_000.0, 0]], call_mark=mark))
        assert res.extra["position_liquidatable"][0, 1] == liquidatable
        assert res.below_maintenance[0] == liquidatable
        assert res.extra["position_mm"][0, 1] == 2 * (4_500.0 + mark)


def test_long_option_is_its_premium_and_never_liquidatable():
    e = StaticIsolatedEngine(max_leverage=20)
    res = e.evaluate(opt_inputs([[0.0, 0, 0]], [[0, 3.0, 0]], [[0, 700.0, 0]], call_mark=20.0))
    assert res.extra["position_equity"][0, 1] == 60.0  # 3 × mark: the premium paid, marked
    # paid in full, no loan value: IM and MM are its value, so it frees nothing
    assert (res.initial[0], res.extra["maintenance_sum"][0]) == (60.0, 60.0)
    assert not res.below_maintenance[0]
    assert res.extra["posted_margin"][0, 1] == 0.0


def test_option_fallback_is_scaled_with_the_perps_when_underfunded():
    # perp long 1 @ 60,000 at 20x needs 3,000; the short calls 12,800; the USD balance less
    # the 800 of premium held is 7,900, so both are scaled by 7,900 / 15,800 = 1/2
    e = StaticIsolatedEngine(max_leverage=20)
    res = e.evaluate(opt_inputs([[8_700.0, 0, 0]], [[1.0, -2.0, 0]], [[60_000.0, 400.0, 0]]))
    np.testing.assert_allclose(res.extra["posted_margin"][0, :2], [1_500.0, 6_400.0])


def test_pretrade_short_and_long_calls_around_the_boundary():
    e = StaticIsolatedEngine(max_leverage=20)
    state = opt_inputs([[13_000.0, 0, 0]], [[0, 0, 0]])
    # selling 2 calls at the mark posts 2 × 6,500 = all the free USD (the premium received is
    # held by the short); 0.01 more does not fit; buying 1 back is reduce-only and frees
    # 6,500 (its posted margin; the 500 held pays the buy-back); then 0.99 more fits (6,435)
    ok = e.pretrade(state, np.zeros(4, np.int64), np.ones(4, np.int64),
                    np.array([-2.0, -0.01, 1.0, -0.99]), np.full(4, 500.0), 0.0)
    assert ok.tolist() == [True, False, True, True]
    assert e.pretrade(state, np.array([0]), np.array([1]), np.array([-2.01]),
                      np.array([500.0]), 0.0).tolist() == [False]
    # a buy pays premium + fee from free USD: 1,000 buys 2 calls at 499.75 + 0.05 % fee
    cash = opt_inputs([[1_000.0, 0, 0]], [[0, 0, 0]])
    ok = e.pretrade(cash, np.zeros(2, np.int64), np.ones(2, np.int64), np.array([2.0, 0.01]),
                    np.array([999.5 / 2, 500.0]), 5e-4)
    assert ok.tolist() == [True, False]


def test_pretrade_inverse_call_pays_premium_and_posts_margin_in_coin():
    e = StaticIsolatedEngine(max_leverage=20)
    # 0.02 BTC buys exactly 2 calls at 600 USD: 2 × 600 / 60,000 BTC; then nothing more
    coin = opt_inputs([[1e6, 0.02, 0]], [[0, 0, 0]])
    ok = e.pretrade(coin, np.zeros(2, np.int64), np.full(2, 2), np.array([2.0, 0.01]),
                    np.full(2, 600.0), 0.0)
    assert ok.tolist() == [True, False]
    assert e.pretrade(coin, np.array([0]), np.array([2]), np.array([2.01]), np.array([600.0]),
                      0.0).tolist() == [False]
    # a short posts its IM in BTC: 6,500 s / 60,000 ≤ 0.2 BTC  ⇔  s ≤ 1.846
    short = opt_inputs([[1e6, 0.2, 0]], [[0, 0, 0]])
    for s, want in ((1.84, True), (1.85, False)):
        assert e.pretrade(short, np.array([0]), np.array([2]), np.array([-s]),
                          np.array([500.0]), 0.0).tolist() == [want]
    # evaluated: the fallback posts the IM in BTC, the position equity is in USD
    res = e.evaluate(opt_inputs([[0.0, 0.5, 0]], [[0, 0, -1.0]], [[0, 0, 500.0]]))
    assert res.extra["posted_margin"][0, 2] == pytest.approx(6_500.0 / 60_000.0, rel=1e-15)
    assert res.extra["position_equity"][0, 2] == pytest.approx(6_500.0, rel=1e-15)
    assert res.extra["free_quote"][0] == pytest.approx((0.5 - 7_000.0 / 60_000.0) * 60_000.0)


def test_short_straddle_requirement_rises_with_the_mark():
    from margin.methods.pricing import black76_price

    t = 30 / 365
    specs = InstrumentSpecs(kind=np.array([PERP, OPTION, OPTION]), underlying=np.array([1, 1, 1]),
                            quote=np.zeros(3, np.int64), contract_size=np.ones(3),
                            strike=np.array([0.0, 60_000.0, 60_000.0]),
                            expiry=np.array([0.0, t, t]), is_call=np.array([False, True, False]))

    def straddle(iv):
        marks = np.array([60_000.0] + [black76_price(60_000.0, 60_000.0, t, 0.0, iv, c)
                                       for c in (True, False)])
        return MarginInputs(np.array([[1e5, 0.0, 0.0]]), np.array([[0.0, -1.0, -1.0]]),
                            np.tile(marks, (1, 1)), np.array([1.0, 60_000.0, 3_000.0]), marks,
                            specs, np.zeros(3)), marks[1:]

    e = StaticIsolatedEngine(max_leverage=20)
    (calm, m_calm), (wild, m_wild) = straddle(0.6), straddle(0.9)
    lo, hi = e.evaluate(calm), e.evaluate(wild)
    assert lo.initial[0] == pytest.approx(2 * 9_000.0 + m_calm.sum())
    assert hi.initial[0] - lo.initial[0] == pytest.approx(m_wild.sum() - m_calm.sum())
    assert hi.initial[0] > lo.initial[0]
