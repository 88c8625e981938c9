"""Portfolio-margin engine: SPAN worked example, Deribit values, offsets, add-ons, contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin import (
    OPTION,
    PERP,
    SPOT,
    CrossMarginEngine,
    InstrumentSpecs,
    MarginInputs,
    flat_table,
    make_engine,
)
from margin.engine import MarginEngine
from margin.methods.pricing import black76_delta, black76_price
from margin.methods.scenarios import (
    JointScenarios,
    correlated_scenarios,
    deribit_grid,
    span_scenarios,
)
from margin.regimes.portfolio import (
    DERIBIT_BTC,
    DERIBIT_ETH,
    PortfolioMarginEngine,
    UnderlyingParams,
)

# ----------------------------------------------------------------------------- SPAN §1.7

# McMillan (margin_methods.md §1.7) gives the risk arrays but not the option inputs. Fitting
# Black-76 with a one-day look-ahead to the 14 regular entries of the call's array gives
# F = 413.75, σ = 16.88 %, 21 days to expiry, VSR = 2.86 vol points (RMS error $7, i.e. the
# book's $10 rounding). The book's "futures at 408, call at 8" (p. 671) is a separate
# illustration and does not reproduce the array (RMS error ~$750).
MC_F, MC_K, MC_T, MC_IV, MC_VSR = 413.75, 410.0, 21 / 365, 0.1688, 0.0286
MC_BOOK_CALL = np.array([460, -610, 2640, 1730, -1270, -2340, 5210, 4540, -2540, -3430,
                         8060, 7640, -3380, -3990, 3130, -1500], dtype=float)  # long call, profit +


def mcmillan_inputs(positions):
    specs = InstrumentSpecs(kind=np.array([PERP, OPTION]), underlying=np.array([1, 1]),
                            quote=np.array([0, 0]), contract_size=np.array([500.0, 500.0]),
                            strike=np.array([0.0, MC_K]), expiry=np.array([0.0, MC_T]),
                            is_call=np.array([False, True]))
    n = len(positions)
    call = black76_price(MC_F, MC_K, MC_T, 0.0, MC_IV, True)
    return MarginInputs(np.zeros((n, 2)), np.asarray(positions, float), np.full((n, 2), MC_F),
                        np.array([1.0, MC_F]), np.array([MC_F, call]), specs, np.zeros(2),
                        implied_vols=np.array([0.0, MC_IV]), time=0.0, rate=0.0)


def mcmillan_engine():
    # PSR = $10,000 = 20 S&P points at $500/point; classic 2x / 35 % extremes
    grid = span_scenarios(20.0 / MC_F, MC_VSR, extreme_multiple=2.0, extreme_fraction=0.35,
                          lookahead=1 / 365)
    return PortfolioMarginEngine([None, UnderlyingParams(grid)], mm_factor=1.0)


def test_mcmillan_covered_write_scan_risk():
    res = mcmillan_engine().evaluate(mcmillan_inputs([[1.0, -1.0], [0.0, 1.0], [1.0, 0.0]]))
    covered, long_call, future = res.extra["scan"]
    # book: 6,620 (down 3/3, vol up); full revaluation with the fitted inputs: 6,627.83
    assert covered == pytest.approx(6627.83, abs=0.01)
    assert abs(covered - 6620.0) < 10.0  # within the book's $10 rounding
    assert long_call == pytest.approx(3990.0, abs=15.0)  # book: 3,990 (down 3/3, vol down)
    assert future == pytest.approx(10_000.0)  # PSR
    assert res.initial[0] == covered  # no add-ons configured


def test_mcmillan_call_risk_array_matches_the_book():
    engine = mcmillan_engine()
    inputs = mcmillan_inputs([[0.0, 1.0]])
    prep = engine._prepare(inputs)
    call_pnl = -prep.scan_loss[1]  # profit-positive, as printed in the book
    np.testing.assert_allclose(call_pnl[:14], MC_BOOK_CALL[:14], atol=16.0)
    fut_pnl = -prep.scan_loss[0]
    np.testing.assert_allclose(fut_pnl, [0, 0, 3333.3, 3333.3, -3333.3, -3333.3, 6666.7, 6666.7,
                                         -6666.7, -6666.7, 1e4, 1e4, -1e4, -1e4, 7000, -7000],
                               atol=0.05)
    # The book's up-extreme (+3,130) is below a call's intrinsic gain at +40 points (0.35 x ~36
    # points x $500 ~ $6,300): the printed array is illustrative there; ours gives 6,139.5.
    assert call_pnl[15] == pytest.approx(MC_BOOK_CALL[15], abs=15.0)


# ----------------------------------------------------------------------------- Deribit §3.1

def test_deribit_eth_short_perp_linear_analogue():
    # Live X:PM example: short 0.999487 ETH-PERPETUAL at index 1949.34 (inverse there; linear
    # here): worst case at +18 %, roll shock = 0.005 x size, MM = 0.8 x IM.
    n, p = 0.999487, 1949.34
    specs = InstrumentSpecs(kind=np.array([PERP]), underlying=np.array([1]), quote=np.array([0]),
                            contract_size=np.ones(1))
    inputs = MarginInputs(np.array([[1000.0, 0.0]]), np.array([[-n]]), np.array([[p]]),
                          np.array([1.0, p]), np.array([p]), specs, np.zeros(2))
    res = PortfolioMarginEngine([None, DERIBIT_ETH]).evaluate(inputs)
    assert res.extra["scan"][0] == pytest.approx(n * p * 0.18)
    assert res.extra["roll_shock"][0] == pytest.approx(0.005 * n * p)
    assert res.initial[0] == pytest.approx(n * p * 0.185)
    assert res.maintenance[0] == pytest.approx(0.8 * res.initial[0])


# ----------------------------------------------------------------------------- a BTC/ETH book

# assets: 0 USD, 1 BTC, 2 ETH; instruments: BTC spot, BTC perp, BTC perp (venue B), ETH perp,
# BTC 65k call 30d, BTC 55k put 30d
KIND = np.array([SPOT, PERP, PERP, PERP, OPTION, OPTION])
SPECS = InstrumentSpecs(kind=KIND, underlying=np.array([1, 1, 1, 2, 1, 1]),
                        quote=np.zeros(6, np.int64), contract_size=np.ones(6),
                        strike=np.array([0, 0, 0, 0, 65_000.0, 55_000.0]),
                        expiry=np.array([0, 0, 0, 0, 30 / 365, 30 / 365]),
                        is_call=np.array([0, 0, 0, 0, 1, 0], bool))
PRICES = np.array([1.0, 60_000.0, 3_000.0])
IV = np.array([0.0, 0.0, 0.0, 0.0, 0.6, 0.65])
OPT_MARKS = [black76_price(60_000.0, 65_000.0, 30 / 365, 0.0, 0.6, True),
             black76_price(60_000.0, 55_000.0, 30 / 365, 0.0, 0.65, False)]
MARKS = np.array([60_000.0, 60_000.0, 60_000.0, 3_000.0, *OPT_MARKS])
NO_SHOCK = {"max_delta_shock": 0.0}
BTC_NOSHOCK = UnderlyingParams(DERIBIT_BTC.grid, short_option_minimum=0.01, som_mode="add",
                               roll_shock=0.01, **NO_SHOCK)
ETH_NOSHOCK = UnderlyingParams(DERIBIT_ETH.grid, roll_shock=0.005, **NO_SHOCK)


def book_inputs(collateral, positions, haircuts=(0.0, 0.05, 0.10), depth=None):
    collateral = np.atleast_2d(np.asarray(collateral, float))
    positions = np.atleast_2d(np.asarray(positions, float))
    entry = np.where(KIND == PERP, MARKS, 0.0) * np.ones_like(positions)
    return MarginInputs(collateral, positions, entry, PRICES.copy(), MARKS.copy(), SPECS,
                        np.array(haircuts, float), implied_vols=IV.copy(), depth=depth)


def test_registered_and_defaults():
    engine = make_engine("portfolio")
    assert isinstance(engine, PortfolioMarginEngine)
    res = engine.evaluate(book_inputs([[1e5, 0, 0]], [[0, 1, 0, -10, 0, 0]]))
    assert res.extra["scan"][0] == pytest.approx(60_000 * 0.16 + 30_000 * 0.18)
    assert res.extra["scan_1"][0] == pytest.approx(60_000 * 0.16)  # per scanned asset
    assert res.extra["scan_2"][0] == pytest.approx(30_000 * 0.18)
    with pytest.raises(ValueError, match="unknown portfolio preset"):
        PortfolioMarginEngine([None, "deribit_doge"])


def test_equity_conventions():
    # 2 BTC at 5 % haircut, -1,000 USD borrow, short one call: equity = 114,000 - 1,000 - call value
    inputs = book_inputs([[-1000.0, 2.0, 0.0]], [[0, 0, 0, 0, -1, 0]])
    res = make_engine("portfolio").evaluate(inputs)
    assert res.equity[0] == pytest.approx(2 * 60_000 * 0.95 - 1000.0 - OPT_MARKS[0])


def test_hedged_book_needs_far_less_than_separate_legs():
    engine = PortfolioMarginEngine([None, DERIBIT_BTC, DERIBIT_ETH])
    cross = CrossMarginEngine([None, flat_table(0.10, 0.05), flat_table(0.10, 0.05)])
    venues = book_inputs([[1e5, 0, 0]] * 3,
                         [[0, 1, -1, 0, 0, 0], [0, 1, 0, 0, 0, 0], [0, 0, -1, 0, 0, 0]])
    hedged, leg_a, leg_b = engine.evaluate(venues).initial
    assert hedged == pytest.approx(2 * 0.01 * 60_000)  # only the roll (basis) contingency
    assert hedged < 0.1 * (leg_a + leg_b)
    assert hedged < 0.25 * cross.evaluate(venues).initial[0]  # cross: 10 % per leg, no offsets
    # long spot / short perp: only the 5 % haircut of the spot leg is unhedged
    spot_perp = book_inputs([[1e5, 1.0, 0]], [[0, 0, -1, 0, 0, 0]])
    spot = engine.evaluate(spot_perp)
    assert spot.extra["scan"][0] == pytest.approx(0.05 * 60_000 * 0.16)
    assert spot.initial[0] < 0.25 * cross.evaluate(spot_perp).initial[0]


def _joint(seed=5, n=400):
    corr = np.array([[1, 0, 0], [0, 1, 0.82], [0, 0.82, 1.0]])
    moves = correlated_scenarios((np.array([0.0, 0.6, 0.8]), corr), n, horizon=2 / 365,
                                 rng=np.random.default_rng(seed))
    return JointScenarios(moves, confidence=0.99, measure="es", horizon=2 / 365)


position = st.floats(-3.0, 3.0, allow_nan=False).map(lambda v: round(v, 3))
book = st.lists(position, min_size=6, max_size=6)


@settings(max_examples=30, deadline=None)
@given(a=book, b=book, correlated=st.booleans(), floor=st.booleans())
def test_adding_a_position_never_costs_more_than_the_parts(a, b, correlated, floor):
    # zero haircuts: with haircuts the adjusted balance of a sum is not the sum of adjusted balances
    a[0] = b[0] = 0.0
    btc = UnderlyingParams(DERIBIT_BTC.grid, short_option_minimum=0.01, roll_shock=0.01,
                           som_mode="floor" if floor else "add", **NO_SHOCK)
    joint = _joint() if correlated and not floor else None
    engine = PortfolioMarginEngine([None, btc, ETH_NOSHOCK], correlated=joint)
    ba, bb = np.array(a), np.array(b)
    coll = np.array([[1e6, 0.5, -2.0], [1e6, -0.2, 1.0], [2e6, 0.3, -1.0]])
    res = engine.evaluate(book_inputs(coll, np.stack([ba, bb, ba + bb]), haircuts=(0, 0, 0)))
    im_a, im_b, im_ab = res.initial
    assert im_ab <= im_a + im_b + 1e-6 * (1 + im_a + im_b)


@settings(max_examples=20, deadline=None)
@given(a=book, scale=st.floats(0.1, 10.0), correlated=st.booleans())
def test_requirements_scale_linearly_without_size_add_ons(a, scale, correlated):
    joint = _joint() if correlated else None
    engine = PortfolioMarginEngine([None, BTC_NOSHOCK, ETH_NOSHOCK], correlated=joint)
    base = np.array(a)
    coll = np.array([[1e6, 0.4, -1.5]])
    res = engine.evaluate(book_inputs(np.vstack([coll, coll * scale]),
                                      np.stack([base, base * scale])))
    assert res.initial[1] == pytest.approx(scale * res.initial[0], rel=1e-9, abs=1e-6)
    assert res.maintenance[1] == pytest.approx(0.8 * res.initial[1])


def test_correlated_offsets_are_capped_and_floored_by_es():
    positions = [[0, 1, 0, -20, 0, 0]]  # long 1 BTC, short 20 ETH (same notional, corr 0.82)
    inputs = book_inputs([[1e5, 0, 0]], positions)
    plain = PortfolioMarginEngine([None, BTC_NOSHOCK, ETH_NOSHOCK]).evaluate(inputs)
    scan = plain.extra["scan"][0]
    assert scan == pytest.approx(60_000 * 0.16 + 60_000 * 0.18)
    roll = plain.extra["roll_shock"][0]
    joint = _joint(n=2000)
    capped = PortfolioMarginEngine([None, BTC_NOSHOCK, ETH_NOSHOCK], correlated=joint,
                                   max_credit=0.5)
    res = capped.evaluate(inputs)
    assert 0.0 < res.extra["joint"][0] < 0.5 * scan  # the diversified ES is small
    assert res.initial[0] == pytest.approx(0.5 * scan + roll)  # the credit cap binds
    assert res.extra["credit"][0] == pytest.approx(0.5 * scan)
    full = capped.with_params(max_credit=1.0).evaluate(inputs)
    assert full.initial[0] == pytest.approx(full.extra["joint"][0] + roll)
    crash = JointScenarios(np.tile([0.0, -0.5, 0.4], (100, 1)))  # worse than any scan
    worst = capped.with_params(correlated=crash).evaluate(inputs)
    assert worst.initial[0] == pytest.approx(60_000 * 0.5 + 20 * 3_000 * 0.4 + roll)


# ----------------------------------------------------------------------------- add-ons

def _far_otm_call_inputs(q):
    specs = InstrumentSpecs(kind=np.array([OPTION]), underlying=np.array([1]), quote=np.array([0]),
                            contract_size=np.ones(1), strike=np.array([200_000.0]),
                            expiry=np.array([7 / 365]), is_call=np.array([True]))
    return MarginInputs(np.array([[1e5, 0.0]]), np.array([[q]]), np.zeros((1, 1)), PRICES[:2],
                        np.array([0.0]), specs, np.zeros(2), implied_vols=np.array([0.6]))


def test_short_option_minimum_floor_and_add():
    grid = span_scenarios(0.10, 0.15)
    floor = PortfolioMarginEngine([None, UnderlyingParams(grid, short_option_minimum=0.03)])
    res = floor.evaluate(_far_otm_call_inputs(-2.0))
    assert res.extra["scan"][0] < 1.0  # a 230 % OTM weekly call: its risk array is ~0
    assert res.extra["short_option_minimum"][0] == pytest.approx(2 * 0.03 * 60_000)
    assert res.initial[0] == pytest.approx(2 * 0.03 * 60_000)  # SPAN: max(scan, SOM)
    assert floor.evaluate(_far_otm_call_inputs(2.0)).extra["short_option_minimum"][0] == 0.0
    add = PortfolioMarginEngine(
        [None, UnderlyingParams(grid, short_option_minimum=0.03, som_mode="add")])
    res_add = add.evaluate(_far_otm_call_inputs(-2.0))
    assert res_add.initial[0] == pytest.approx(res_add.extra["scan"][0] + 2 * 0.03 * 60_000)


def test_liquidity_add_on_square_root_impact():
    params = UnderlyingParams(deribit_grid(), impact_vol=0.03)
    engine = PortfolioMarginEngine([None, params, ETH_NOSHOCK], liquidity_coeff=0.5,
                                   liquidity_threshold=0.5)
    depth = np.array([50.0, 10.0, 10.0, 100.0, 5.0, 5.0])
    res = engine.evaluate(book_inputs([[1e6, 0, 0]] * 3, [[0, 4, 0, 0, 0, 0], [0, 20, 0, 0, 0, 0],
                                                           [0, 20, 0, 0, 0, 0]], depth=depth))
    assert res.extra["liquidity"][0] == 0.0  # 4 BTC is below 0.5 x depth 10
    expected = 0.5 * 0.03 * 60_000 * (20**1.5 - 5**1.5) / math.sqrt(10.0)
    assert res.extra["liquidity"][1] == pytest.approx(expected)
    assert res.initial[1] == pytest.approx(res.initial[0] * 5 + expected)  # rest is linear in size
    none = engine.evaluate(book_inputs([[1e6, 0, 0]], [[0, 20, 0, 0, 0, 0]]))
    assert none.extra["liquidity"][0] == 0.0  # depth None: no add-on
    spot = engine.evaluate(book_inputs([[1e6, 100.0, 0]], [[0, 0, 0, 0, 0, 0]], depth=depth))
    assert spot.extra["liquidity"][0] == pytest.approx(
        0.5 * 0.03 * 60_000 * (100**1.5 - 25**1.5) / math.sqrt(50.0))  # spot book depth 50
    # options: delta-equivalent notional F x |delta| against the option's own depth (5)
    calls = engine.evaluate(book_inputs([[1e6, 0, 0]], [[0, 0, 0, 0, -20, 0]], depth=depth))
    notional = 60_000 * black76_delta(60_000.0, 65_000.0, 30 / 365, 0.0, 0.6, True)
    assert calls.extra["liquidity"][0] == pytest.approx(
        0.5 * 0.03 * notional * (20**1.5 - 2.5**1.5) / math.sqrt(5.0))


def test_delta_shock_above_threshold():
    params = UnderlyingParams(deribit_grid(), max_delta_shock=0.10, delta_shock_threshold=20e6)
    engine = PortfolioMarginEngine([None, params, ETH_NOSHOCK])
    res = engine.evaluate(book_inputs([[1e9, 0, 0]] * 2,
                                      [[0, 500, 0, 0, 0, 0], [0, 300, 0, 0, 0, 0]]))
    assert res.extra["delta_shock"][0] == pytest.approx(0.10 * (500 * 60_000 - 20e6))
    assert res.extra["delta_shock"][1] == 0.0


# ----------------------------------------------------------------------------- contract

def test_stress_reprices_options_and_matches_base_class_for_linear_books():
    engine = PortfolioMarginEngine([None, BTC_NOSHOCK, ETH_NOSHOCK])
    shocks = np.array([[0.0, -0.10, -0.12], [0.0, 0.05, 0.0], [0.0, 0.0, 0.0]])
    linear = book_inputs([[1e5, 1.0, -3.0], [1e5, 0.0, 2.0]],
                         [[0, -1, 0, 2, 0, 0], [0, 0, 1, -5, 0, 0]])
    base_class = MarginEngine.stress(engine, linear, shocks)  # marks move with the underlying
    np.testing.assert_allclose(engine.stress(linear, shocks), base_class)
    short_call = book_inputs([[1e5, 0, 0]], [[0, 0, 0, 0, -2, 0]])
    loss = engine.stress(short_call, shocks)[0]
    v0 = OPT_MARKS[0]
    expected = [-2 * (v0 - black76_price(60_000 * (1 + m), 65_000.0, 30 / 365, 0.0, 0.6, True))
                for m in (-0.10, 0.05, 0.0)]
    np.testing.assert_allclose(loss, expected, rtol=1e-12, atol=1e-9)


def test_pretrade_sequential_and_risk_reducing():
    engine = PortfolioMarginEngine([None, BTC_NOSHOCK, ETH_NOSHOCK])
    inputs = book_inputs([[12_000.0, 0, 0], [1_000.0, 0, 0]],
                         [[0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]])
    # account 0: 1 BTC perp needs 9,600 + 600 = 10,200; the second one would need 20,400
    rows = np.array([0, 0, 1, 1])
    ins = np.array([1, 1, 1, 1])
    # account 1 is under water: adding is refused, reducing allowed
    qty = np.array([1.0, 1.0, 0.5, -0.5])
    ok = engine.pretrade(inputs, rows, ins, qty, np.full(4, 60_000.0), 0.0)
    np.testing.assert_array_equal(ok, [True, False, False, True])
    # buying a call pays the premium from the quote balance
    call = engine.pretrade(inputs, np.array([0]), np.array([4]), np.array([1.0]),
                           np.array([OPT_MARKS[0] * 1.5]), 0.0)
    assert call[0]
    # spot: selling BTC that is not held is a borrow, margined as a short in the scan
    spot = engine.pretrade(book_inputs([[5_000.0, 0, 0]], [[0] * 6]), np.array([0, 0]),
                           np.array([0, 0]), np.array([-0.2, -1.0]), np.full(2, 60_000.0), 0.0)
    np.testing.assert_array_equal(spot, [True, False])


def _pretrade_one_at_a_time(engine, inputs, rows, instrument, delta, price, fee_rate):
    """Reference: one order at a time, each re-evaluating its account (the definition).

    Equity is carried forward by each accepted order's equity change (fills at a
    better price than the mark are not credited), IM is re-evaluated per order.
    """
    accept = np.zeros(len(rows), bool)
    coll, pos = inputs.collateral.copy(), inputs.positions.copy()
    state = engine.evaluate(inputs)
    equity, initial = state.equity.copy(), state.initial.copy()
    for e, (r, j, dq, p) in enumerate(zip(rows, instrument, delta, price, strict=True)):
        if dq == 0.0:
            continue
        c_row, p_row, d_eq = engine._order_effect(inputs, coll[r:r + 1], pos[r:r + 1], j, dq, p,
                                                  fee_rate)
        after = engine.evaluate(book_inputs(c_row, p_row)).initial[0]
        if equity[r] + d_eq >= after or after < initial[r]:
            accept[e] = True
            equity[r] += d_eq
            initial[r] = after
            coll[r], pos[r] = c_row[0], p_row[0]
    return accept


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 14))
def test_batched_pretrade_decides_as_one_order_at_a_time(seed, n):
    """Speculative batches give the sequential decisions, rejections included."""
    rng = np.random.default_rng(seed)
    engine = PortfolioMarginEngine([None, BTC_NOSHOCK, ETH_NOSHOCK])
    inputs = book_inputs([[12_000.0, 0, 0], [1_000.0, 0.1, 0], [30_000.0, 0, 2.0]],
                         [[0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], [0, -0.5, 0.5, 0, 0, 0]])
    rows = rng.integers(0, 3, n)
    instrument = rng.choice([0, 1, 2, 3], n)
    delta = rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], n) * np.where(instrument == 3, 10.0, 1.0)
    price = MARKS[instrument] * rng.uniform(0.99, 1.01, n)
    got = engine.pretrade(inputs, rows, instrument, delta, price, 0.0005)
    want = _pretrade_one_at_a_time(engine, inputs, rows, instrument, delta, price, 0.0005)
    np.testing.assert_array_equal(got, want)


def test_validation_errors():
    engine = PortfolioMarginEngine([None, BTC_NOSHOCK])
    with pytest.raises(ValueError, match="parameters for 2 assets"):
        engine.evaluate(book_inputs([[0, 0, 0]], [[0] * 6]))
    engine = PortfolioMarginEngine([None, BTC_NOSHOCK, None])
    with pytest.raises(ValueError, match=r"underlying asset\(s\) \[2\]"):
        engine.evaluate(book_inputs([[0, 0, 0]], [[0] * 6]))
    inputs = book_inputs([[0, 0, 0]], [[0] * 6])
    inputs.implied_vols = None
    with pytest.raises(ValueError, match="implied_vols"):
        make_engine("portfolio").evaluate(inputs)
    with pytest.raises(ValueError, match="som_mode"):
        UnderlyingParams(deribit_grid(), som_mode="max")
    with pytest.raises(ValueError, match="max_credit"):
        PortfolioMarginEngine(max_credit=1.5)


def test_hedged_book_needs_far_less_under_portfolio_than_static():
    from margin.regimes.static import StaticIsolatedEngine

    # long 1 BTC spot, short 1 BTC perpetual (a basis trader's hedged book)
    hedged = book_inputs([[1e5, 1.0, 0]], [[0, 0, -1, 0, 0, 0]])
    portfolio = make_engine("portfolio").evaluate(hedged).initial[0]
    static_tiers = StaticIsolatedEngine().evaluate(hedged).initial[0]
    static_10x = StaticIsolatedEngine(max_leverage=10.0).evaluate(hedged).initial[0]
    assert static_10x == pytest.approx(6_000.0)  # the perp alone at 1/L, spot not netted
    assert portfolio < 0.25 * static_10x
    assert static_tiers > 0


def test_parallel_kernel_path_matches_serial(monkeypatch):
    import margin.regimes.portfolio as mp

    rng = np.random.default_rng(4)
    n = 300
    positions = np.round(rng.normal(size=(n, 6)), 3)
    positions[:, [0, 3, 4, 5]] = 0.0  # spot column and options off: linear book
    balances = np.column_stack([np.full(n, 1e5), rng.random(n), rng.random(n)])
    inputs = book_inputs(balances, positions)
    engine = make_engine("portfolio")
    monkeypatch.setattr(mp, "PARALLEL_MIN_ACCOUNTS", 10**9)
    serial = engine.evaluate(inputs).initial
    monkeypatch.setattr(mp, "PARALLEL_MIN_ACCOUNTS", 0)
    parallel = engine.evaluate(inputs).initial
    np.testing.assert_allclose(parallel, serial, rtol=1e-12, atol=1e-9)


# ----------------------------------------------------------------------------- options by hand

def _perp_and_put(positions, iv=0.6, f=60_000.0, usd=100_000.0, put_quote=0, btc=0.0,
                  days=30.0):
    """USD, BTC; a BTC perpetual and an ATM ``days``-day BTC put (r = 0), marked by Black-76."""
    t = days / 365.0
    specs = InstrumentSpecs(kind=np.array([PERP, OPTION]), underlying=np.array([1, 1]),
                            quote=np.array([0, put_quote]), contract_size=np.ones(2),
                            strike=np.array([0.0, f]), expiry=np.array([0.0, t]),
                            is_call=np.array([False, False]))
    put = black76_price(f, f, t, 0.0, iv, False)
    n = len(positions)
    return MarginInputs(np.tile([usd, btc], (n, 1)), np.asarray(positions, float),
                        np.tile([f, put], (n, 1)), np.array([1.0, f]), np.array([f, put]), specs,
                        np.zeros(2), implied_vols=np.array([0.0, iv]), time=0.0, rate=0.0)


def _deribit_btc_by_hand(perp, put, f=60_000.0, k=60_000.0, iv=0.6, vol_up=0.5, vol_down=0.25,
                        days=30.0):
    """Deribit BTC portfolio IM of ``perp`` perpetuals and ``put`` puts, computed by hand.

    margin_methods.md §3.1: moves k × 16 % / 4 for k = −4..4, each with vol up / same / down
    (IV_up = max(IV (1 + 0.5 (30/DTE)^p), 0.5), IV_down = IV (1 − 0.25 (30/DTE)^p), p = 0.13
    at DTE = 30, so (30/DTE)^p = 1); extended moves at vol up weighted 0.16 / |move|; worst
    loss + roll shock 1 % of perp notional; no delta shock below $20M of net delta.
    """
    t = days / 365.0
    scale = (30.0 / days) ** (0.30 if days < 30.0 else 0.13)
    vols = {"up": max(iv * (1.0 + vol_up * scale), 0.5), "same": iv,
            "down": iv * (1.0 - vol_down * scale)}
    p0 = black76_price(f, k, t, 0.0, iv, False)

    def loss(move, vol):
        return -perp * f * move - put * (black76_price(f * (1.0 + move), k, t, 0.0, vol, False)
                                         - p0)

    cells = [loss(b * 0.16 / 4, vol) for b in range(-4, 5) for vol in vols.values()]
    cells += [min(0.16 / abs(m), 1.0) * loss(m, vols["up"])
              for m in (-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0)]
    return max(max(cells), 0.0) + 0.01 * abs(perp) * f


def test_perp_plus_put_portfolio_and_static_requirements_by_hand():
    from margin.regimes.static import StaticIsolatedEngine

    book = _perp_and_put([[1.0, 1.0]])
    pm = PortfolioMarginEngine([None, DERIBIT_BTC]).evaluate(book)
    want_pm = _deribit_btc_by_hand(1.0, 1.0)
    assert pm.initial[0] == pytest.approx(want_pm, rel=1e-9)
    assert pm.maintenance[0] == pytest.approx(0.8 * want_pm, rel=1e-9)
    assert pm.extra["delta_shock"][0] == 0.0 and pm.extra["roll_shock"][0] == 600.0
    # static at 20x: the perp needs notional / 20 = 3,000; the long put is paid in full and
    # has no loan value, so it adds its whole value (FINRA 4210 / Reg T strategy-based margin)
    put = black76_price(60_000.0, 60_000.0, 30.0 / 365.0, 0.0, 0.6, False)
    assert put == pytest.approx(4_112.36, abs=0.01)
    want_static = 60_000.0 / 20.0 + put
    static = StaticIsolatedEngine(max_leverage=20.0).evaluate(book)
    assert static.initial[0] == pytest.approx(want_static, rel=1e-12)
    # Cheaper under portfolio margin: long perp + long ATM put is a synthetic long call,
    # whose value is mostly lost within the ±16 % grid (worst cell −16 % at vol down:
    # 3,823.56), plus the 600 roll shock: 4,423.56 against static's 3,000 + 4,112.36
    assert want_pm == pytest.approx(4_423.557, abs=1e-3)
    assert static.initial[0] - pm.initial[0] == pytest.approx(want_static - want_pm, rel=1e-9)
    assert static.initial[0] - pm.initial[0] == pytest.approx(2_688.81, abs=0.01)
    # the portfolio regime sees the hedge: the perp alone needs 16 % + 1 % of notional
    alone = PortfolioMarginEngine([None, DERIBIT_BTC]).evaluate(_perp_and_put([[1.0, 0.0]]))
    assert alone.initial[0] == pytest.approx(_deribit_btc_by_hand(1.0, 0.0), rel=1e-9)
    assert alone.initial[0] == pytest.approx(0.17 * 60_000.0, rel=1e-12)
    assert pm.initial[0] < 0.5 * alone.initial[0]
    # while the unhedged perp is dearer under portfolio margin (17 % against 5 %)
    assert StaticIsolatedEngine(max_leverage=20.0).evaluate(
        _perp_and_put([[1.0, 0.0]])).initial[0] == 3_000.0


def test_perp_plus_short_dated_put_is_cheaper_under_portfolio_by_hand():
    # With one day to expiry the put's time value (what the grid can take: 753.7) is small,
    # so the hedged book needs the worst cell plus the roll shock, below static's 3,000.
    from margin.regimes.static import StaticIsolatedEngine

    book = _perp_and_put([[1.0, 1.0]], days=1.0)
    pm = PortfolioMarginEngine([None, DERIBIT_BTC]).evaluate(book).initial[0]
    want_pm = _deribit_btc_by_hand(1.0, 1.0, days=1.0)
    assert pm == pytest.approx(want_pm, rel=1e-9)
    static = StaticIsolatedEngine(max_leverage=20.0).evaluate(book).initial[0]
    put = black76_price(60_000.0, 60_000.0, 1.0 / 365.0, 0.0, 0.6, False)
    assert static == pytest.approx(3_000.0 + put, rel=1e-12)
    assert static - pm == pytest.approx(3_000.0 + put - want_pm, rel=1e-9)
    assert 0.0 < want_pm < 0.5 * static
    # the unhedged perp is not cheaper under portfolio margin (17 % against 5 %)
    alone = PortfolioMarginEngine([None, DERIBIT_BTC]).evaluate(
        _perp_and_put([[1.0, 0.0]], days=1.0)).initial[0]
    assert alone > StaticIsolatedEngine(max_leverage=20.0).evaluate(
        _perp_and_put([[1.0, 0.0]], days=1.0)).initial[0]


def test_short_straddle_requirement_rises_with_the_vol_shock():
    # short 1 ATM call + 1 ATM put: the vol-up cells dominate, so a larger shock costs more
    t = 30.0 / 365.0
    specs = InstrumentSpecs(kind=np.array([OPTION, OPTION]), underlying=np.array([1, 1]),
                            quote=np.zeros(2, np.int64), contract_size=np.ones(2),
                            strike=np.full(2, 60_000.0), expiry=np.full(2, t),
                            is_call=np.array([True, False]))
    marks = np.array([black76_price(60_000.0, 60_000.0, t, 0.0, 0.6, c) for c in (True, False)])
    straddle = MarginInputs(np.array([[1e5, 0.0]]), np.array([[-1.0, -1.0]]), np.zeros((1, 2)),
                            np.array([1.0, 60_000.0]), marks, specs, np.zeros(2),
                            implied_vols=np.full(2, 0.6))
    ims = [PortfolioMarginEngine([None, UnderlyingParams(deribit_grid(0.16, vol_range_up=up))])
           .evaluate(straddle).initial[0] for up in (0.25, 0.5, 1.0)]
    assert ims[0] < ims[1] < ims[2]


def test_inverse_put_premium_is_paid_in_coin():
    from margin.engine import apply_order

    # the put quoted in BTC: buying 2 at the mark pays 2 × mark / 60,000 BTC (and the fee)
    book = _perp_and_put([[0.0, 0.0]], put_quote=1, btc=1.0, usd=0.0)
    mark = float(book.marks[1])
    engine = PortfolioMarginEngine([None, DERIBIT_BTC])
    c_row, p_row, d_eq = engine._order_effect(book, book.collateral, book.positions, 1, 2.0, mark,
                                              1e-3)
    assert c_row[0, 1] == pytest.approx(1.0 - 2 * mark * 1.001 / 60_000.0, rel=1e-15)
    assert c_row[0, 0] == 0.0 and p_row[0, 1] == 2.0
    assert d_eq == pytest.approx(-2 * mark * 1e-3, rel=1e-9)  # no haircut: only the fee
    np.testing.assert_allclose(apply_order(book, 0, 1, 2.0, mark, 1e-3).collateral, c_row)
