"""Aave v3 lending engine and liquidation_call against hand-computed and reference values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin.regimes.aave import (
    AAVE_V3_RESERVES,
    AaveLendingEngine,
    AaveReserve,
    liquidation_call,
)
from margin.engine import PERP, SPOT, InstrumentSpecs, MarginInputs, make_engine

# assets: 0 = USD(C), 1 = BTC, 2 = ETH; instruments: 0 = BTC spot, 1 = ETH spot, 2 = BTC perp
SPECS = InstrumentSpecs(kind=np.array([SPOT, SPOT, PERP]), underlying=np.array([1, 2, 1]),
                        quote=np.array([0, 0, 0]), contract_size=np.ones(3))


def inputs(balances, btc=50_000.0, eth=2_000.0, positions=None):
    bal = np.asarray(balances, float).reshape(-1, 3)
    n = len(bal)
    pos = np.zeros((n, 3)) if positions is None else np.asarray(positions, float).reshape(n, 3)
    return MarginInputs(bal, pos, np.zeros((n, 3)), np.array([1.0, btc, eth]),
                        np.array([btc, eth, btc]), SPECS, np.zeros(3))


# reference §4.1 worked example: WETH LT 82.5 %, bonus 5 %, fee 10 %; 10 WETH vs 15,000 USDC
LT = [0.85, 0.75, 0.825]
BONUS = [0.05, 0.10, 0.05]


def weth_case(eth_price, rule="v3.0", **kw):
    return liquidation_call([0.0, 0.0, 10.0], [15_000.0, 0.0, 0.0], [1.0, 50_000.0, eth_price],
                            LT, BONUS, rule, 0, 2, **kw)


# ----------------------------------------------------------------- account data


def test_health_factor_hand_computed():
    e = AaveLendingEngine()  # USDC 80/85/5, WBTC 70/75/10, WETH 80/82.5/5 (§4.1)
    res = e.evaluate(inputs([[-15_000.0, 0.0, 10.0],        # 10 WETH @ 2,000 vs 15,000 debt
                             [-40_000.0, 1.0, 10.0],        # + 1 WBTC @ 50,000 vs 40,000
                             [5_000.0, 0.0, 0.0],           # no debt
                             [-1_000.0, 0.0, 0.0]]))        # debt, no collateral
    hf = res.extra["health_factor"]
    assert hf[0] == pytest.approx(16_500.0 / 15_000.0)      # 1.10
    assert hf[1] == pytest.approx((37_500.0 + 16_500.0) / 40_000.0)  # 1.35
    assert hf[2] == math.inf and hf[3] == 0.0
    np.testing.assert_allclose(res.extra["borrow_capacity"], [16_000.0, 51_000.0, 4_000.0, 0.0])
    np.testing.assert_allclose(res.extra["available_borrows"], [1_000.0, 11_000.0, 4_000.0, 0.0])
    np.testing.assert_allclose(res.extra["total_debt"], [15_000.0, 40_000.0, 0.0, 1_000.0])
    # equity is net worth; maintenance / initial are the (1 - LT) / (1 - LTV) buffers
    np.testing.assert_allclose(res.equity, [5_000.0, 30_000.0, 5_000.0, -1_000.0])
    np.testing.assert_allclose(res.maintenance, [3_500.0, 16_000.0, 750.0, 0.0])
    np.testing.assert_allclose(res.initial, [4_000.0, 19_000.0, 1_000.0, 0.0])
    assert res.below_maintenance.tolist() == [False, False, False, True]
    np.testing.assert_allclose(res.free_collateral[:3], [1_000.0, 11_000.0, 4_000.0])


def test_reference_worked_example_engine_view():
    e = AaveLendingEngine()
    res = e.evaluate(inputs([[-15_000.0, 0.0, 10.0]] * 3, eth=1_800.0))
    assert res.extra["health_factor"][0] == pytest.approx(0.99)
    assert res.below_maintenance[0]
    assert res.extra["close_factor"][0] == 0.5
    res = e.evaluate(inputs([[-15_000.0, 0.0, 10.0]], eth=1_700.0))
    assert res.extra["health_factor"][0] == pytest.approx(0.935)
    assert res.extra["close_factor"][0] == 1.0
    res = e.evaluate(inputs([[-15_000.0, 0.0, 10.0]], eth=2_000.0))
    assert res.extra["close_factor"][0] == 0.0 and not res.below_maintenance[0]


def test_close_factor_switches_at_095():
    # LT 50 % collateral: 1 unit @ price p against 1,000 debt -> HF = p / 2,000 exactly
    lt = [0.85, 0.5, 0.825]
    hfs, repaid = [], []
    for p in (1_920.0, 1_900.0, 1_880.0):
        r, _, _ = liquidation_call([0.0, 1.0, 0.0], [1_000.0, 0.0, 0.0], [1.0, p, 2_000.0], lt,
                                   0.05, "v3.0", 0, 1)
        hfs.append(p * 0.5 / 1_000.0)
        repaid.append(r)
    assert hfs == [0.96, 0.95, 0.94]
    assert repaid == [500.0, 1_000.0, 1_000.0]     # 50 % above 0.95, 100 % at or below
    reserves = [AAVE_V3_RESERVES["USDC"], AaveReserve(0.4, 0.5, 0.05), AAVE_V3_RESERVES["WETH"]]
    res = AaveLendingEngine(reserves).evaluate(
        inputs([[-1_000.0, 1.0, 0.0]], btc=1_900.0))
    assert res.extra["close_factor"][0] == 1.0
    res = AaveLendingEngine(reserves).evaluate(inputs([[-1_000.0, 1.0, 0.0]], btc=1_920.0))
    assert res.extra["close_factor"][0] == 0.5


# ----------------------------------------------------------------- liquidation_call


def test_liquidation_call_worked_example_without_cap():
    repaid, seized, fee = weth_case(1_800.0)
    assert repaid == pytest.approx(7_500.0)
    assert seized == pytest.approx(4.375)
    assert fee == pytest.approx(0.020833, abs=1e-6)
    assert seized - fee == pytest.approx(4.354167, abs=1e-6)
    # seized value = repaid x (1 + bonus); fee = 10 % of the bonus part
    assert seized * 1_800.0 == pytest.approx(repaid * 1.05)
    assert fee == pytest.approx(0.10 * (seized - seized / 1.05))
    hf_after = (10.0 - seized) * 1_800.0 * 0.825 / (15_000.0 - repaid)
    assert hf_after == pytest.approx(1.1138, abs=1e-4)
    repaid, seized, fee = weth_case(1_700.0)
    assert (repaid, seized) == (pytest.approx(15_000.0), pytest.approx(9.264706, abs=1e-6))
    assert fee == pytest.approx(0.044118, abs=1e-6)


def test_liquidation_call_with_collateral_cap():
    repaid, seized, fee = weth_case(1_400.0)
    assert seized == 10.0                                   # all the collateral
    assert repaid == pytest.approx(13_333.33, abs=0.005)    # recomputed: 10 x 1,400 / 1.05
    assert fee == pytest.approx(0.047619, abs=1e-6)
    assert seized * 1_400.0 == pytest.approx(repaid * 1.05)
    assert seized - fee == pytest.approx(9.952381, abs=1e-6)


def test_liquidation_call_partial_and_reverting_cases():
    assert weth_case(2_000.0) == (0.0, 0.0, 0.0)           # HF 1.10: not liquidatable
    repaid, seized, _ = weth_case(1_800.0, debt_to_cover=1_000.0)
    assert repaid == 1_000.0 and seized == pytest.approx(1_000.0 * 1.05 / 1_800.0)
    # no debt in the chosen reserve, or a collateral with LT 0
    assert liquidation_call([0, 0, 10.0], [15_000.0, 0, 0], [1, 5e4, 1_700.0], LT, BONUS,
                            "v3.0", 1, 2) == (0.0, 0.0, 0.0)
    assert liquidation_call([0, 1.0, 10.0], [15_000.0, 0, 0], [1, 5e4, 1_000.0], [0.85, 0.0, 0.825],
                            BONUS, "v3.0", 0, 1) == (0.0, 0.0, 0.0)
    # protocol fee 0 -> liquidator keeps the whole bonus
    assert weth_case(1_800.0, protocol_fee=0.0)[2] == 0.0


def test_v33_close_factor_rule():
    # large position at HF 0.99: 50 % of the total debt, as in v3.0
    assert weth_case(1_800.0, "v3.3")[0] == pytest.approx(7_500.0)
    # small debt (< $2,000): 100 % even at HF 0.99
    small = liquidation_call([0, 0, 1.0], [1_500.0, 0, 0], [1.0, 5e4, 1_800.0], LT, BONUS,
                             "v3.3", 0, 2)
    assert 1_800 * 0.825 / 1_500.0 == pytest.approx(0.99)
    assert small[0] == pytest.approx(1_500.0)
    assert liquidation_call([0, 0, 1.0], [1_500.0, 0, 0], [1.0, 5e4, 1_800.0], LT, BONUS,
                            "v3.0", 0, 2)[0] == pytest.approx(750.0)
    # two debt reserves: 10,000 USDC + 0.1 BTC (5,000); 20 WETH @ 900 -> HF 0.99.
    # The 50 % cap is on the TOTAL debt (7,500): the whole 5,000 BTC reserve can go.
    coll, debt, px = [0, 0, 20.0], [10_000.0, 0.1, 0], [1.0, 50_000.0, 900.0]
    assert liquidation_call(coll, debt, px, LT, BONUS, "v3.3", 1, 2)[0] == pytest.approx(0.1)
    assert liquidation_call(coll, debt, px, LT, BONUS, "v3.0", 1, 2)[0] == pytest.approx(0.05)
    assert liquidation_call(coll, debt, px, LT, BONUS, "v3.3", 0, 2)[0] == pytest.approx(7_500.0)
    # engine extra under v3.3 uses account totals
    res = AaveLendingEngine(close_factor_rule="v3.3").evaluate(
        inputs([[-1_500.0, 0.0, 1.0]], eth=1_800.0))
    assert res.extra["close_factor"][0] == 1.0


@settings(max_examples=100, deadline=None)
@given(st.floats(0.01, 100.0), st.floats(100.0, 100_000.0), st.floats(100.0, 5_000.0),
       st.floats(0.0, 0.15), st.floats(0.0, 1e6))
def test_liquidation_call_invariants(coll, debt, price, bonus, cover):
    lt = [0.85, 0.75, 0.8]
    repaid, seized, fee = liquidation_call([0, 0, coll], [debt, 0, 0], [1.0, 5e4, price], lt,
                                           [0.05, 0.1, bonus], "v3.0", 0, 2, debt_to_cover=cover)
    hf = coll * price * 0.8 / debt
    if hf >= 1.0:
        assert (repaid, seized, fee) == (0.0, 0.0, 0.0)
        return
    cf = 0.5 if hf > 0.95 else 1.0
    assert repaid <= min(cover, cf * debt) * (1 + 1e-12)
    assert seized <= coll
    assert seized * price == pytest.approx(repaid * (1 + bonus), rel=1e-9)
    assert fee == pytest.approx(0.10 * (seized - seized / (1 + bonus)), rel=1e-9, abs=1e-15)


# ----------------------------------------------------------------- mapping property


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-20.0, 20.0), st.floats(-200.0, 200.0)),
                min_size=1, max_size=8),
       st.floats(1_000.0, 100_000.0), st.floats(100.0, 5_000.0))
def test_equity_below_maintenance_iff_hf_below_one(rows, btc, eth):
    res = AaveLendingEngine().evaluate(inputs(rows, btc=btc, eth=eth))
    hf = res.extra["health_factor"]
    assert np.array_equal(res.equity < res.maintenance, hf < 1.0)
    over = res.extra["total_debt"] > res.extra["borrow_capacity"]
    assert np.array_equal(res.equity < res.initial, over)
    assert np.all(res.maintenance <= res.initial)
    assert np.all((res.extra["close_factor"] > 0) == (hf < 1.0))


def test_boundary_hf_exactly_one():
    # 1 unit at LT 50 % and price 2,000 against 1,000 debt: HF = 1 exactly -> not liquidatable
    reserves = [AAVE_V3_RESERVES["USDC"], AaveReserve(0.5, 0.5, 0.05), AAVE_V3_RESERVES["WETH"]]
    res = AaveLendingEngine(reserves).evaluate(inputs([[-1_000.0, 1.0, 0.0]], btc=2_000.0))
    assert res.extra["health_factor"][0] == 1.0
    assert not res.below_maintenance[0]
    assert res.equity[0] >= res.initial[0]      # debt == capacity is still allowed


# ----------------------------------------------------------------- pre-trade


def test_pretrade_borrow_limit():
    e = AaveLendingEngine()
    state = inputs([[0.0, 0.0, 10.0], [-15_000.0, 0.0, 10.0]], eth=1_800.0)
    # account 0: 10 WETH @ 1,800 -> capacity 14,400. Buying BTC with borrowed USDC adds WBTC
    # collateral (LTV 70 %), so debt V is allowed while V <= 14,400 + 0.7 V, i.e. V <= 48,000:
    # 0.95 BTC (47,500 debt, capacity 47,650) passes, 0.02 more (48,500 vs 48,350) does not.
    ok = e.pretrade(state, np.array([0, 0]), np.array([0, 0]), np.array([0.95, 0.02]),
                    np.array([50_000.0, 50_000.0]), 0.0)
    assert ok.tolist() == [True, False]
    # account 1 is liquidatable (HF 0.99): repaying by selling 1 WETH is allowed although
    # the account stays over its borrow limit; a new borrow is not
    ok = e.pretrade(state, np.array([1, 1]), np.array([1, 0]), np.array([-1.0, 0.001]),
                    np.array([1_800.0, 50_000.0]), 0.0005)
    assert ok.tolist() == [True, False]
    # perpetuals do not exist on a lending market
    assert not e.pretrade(state, np.array([0]), np.array([2]), np.array([0.1]),
                          np.array([50_000.0]), 0.0)[0]


def test_pretrade_collateral_swap_needs_hf_above_one():
    # 10,000 USDC supplied against 4 ETH borrowed @ 2,000: HF 1.0625, capacity 8,000 = debt.
    # Swapping USDC (LT 85 %) into WBTC (LT 75 %) borrows nothing but lowers HF:
    # 0.05 BTC keeps HF >= 1 (8,250 / 8,000) -> allowed; 0.2 BTC -> HF 0.9375 -> rejected.
    e = AaveLendingEngine()
    state = inputs([[10_000.0, 0.0, -4.0]], eth=2_000.0)
    small = e.pretrade(state, np.array([0]), np.array([0]), np.array([0.05]),
                       np.array([50_000.0]), 0.0)
    large = e.pretrade(state, np.array([0]), np.array([0]), np.array([0.2]),
                       np.array([50_000.0]), 0.0)
    assert small.tolist() == [True] and large.tolist() == [False]


# ----------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"ltv": 0.9, "lt": 0.8, "bonus": 0.05}, "ltv"),
        ({"ltv": 0.5, "lt": 1.0, "bonus": 0.05}, "lt"),
        ({"ltv": 0.5, "lt": 0.8, "bonus": 0.0}, "bonus"),
        ({"ltv": 0.9, "lt": 0.95, "bonus": 0.10}, "bonus"),     # LT x LB > 100 %
        ({"ltv": 0.5, "lt": 0.8, "bonus": 0.05, "protocol_fee": 1.5}, "protocol_fee"),
        ({"ltv": float("nan"), "lt": 0.8, "bonus": 0.05}, "ltv"),
    ],
)
def test_reserve_validation(kwargs, needle):
    with pytest.raises(ValueError, match=needle) as exc:
        AaveReserve(**kwargs)
    assert "\n" not in str(exc.value)


def test_engine_and_call_argument_errors():
    cases = [
        (lambda: AaveLendingEngine(["USDC", "DOGE", "WETH"]), "reserves"),
        (lambda: AaveLendingEngine(close_factor_rule="v2"), "close_factor_rule"),
        (lambda: AaveLendingEngine(["USDC", "WBTC"]).evaluate(inputs([[0, 0, 0]])), "reserves"),
        (lambda: AaveLendingEngine().evaluate(inputs([[0, 0, 0]], positions=[[0, 0, 1.0]])),
         "derivative"),
        (lambda: weth_case(1_800.0, "v4"), "close_factor_rule"),
        (lambda: liquidation_call([0, 0, -1.0], [1, 0, 0], [1, 1, 1], LT, BONUS, "v3.0", 0, 2),
         "collateral_amounts"),
        (lambda: liquidation_call([0, 0, 1.0], [1, 0, 0], [1, 0, 1], LT, BONUS, "v3.0", 0, 2),
         "prices"),
        (lambda: liquidation_call([0, 0, 1.0], [1, 0, 0], [1, 1, 1], LT, BONUS, "v3.0", 0, 3),
         "collateral_asset"),
        (lambda: liquidation_call([0, 0, 1.0], [1, 0], [1, 1, 1], LT, BONUS, "v3.0", 0, 2), "debt"),
    ]
    for fn, needle in cases:
        with pytest.raises(ValueError, match=needle) as exc:
            fn()
        assert "\n" not in str(exc.value)


def test_registry_and_liquidate_helper():
    e = make_engine("aave", close_factor_rule="v3.0")
    assert isinstance(e, AaveLendingEngine)
    assert e.liquidate([-15_000.0, 0.0, 10.0], [1.0, 50_000.0, 1_800.0], 0, 2) == pytest.approx(
        weth_case(1_800.0))
    assert [r.name for r in e.reserves] == ["USDC", "WBTC", "WETH"]
