"""Cross-margin engine against Binance reference values and its own contract."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin import (
    BINANCE_BTCUSDT,
    OPTION,
    PERP,
    SPOT,
    CrossMarginEngine,
    InstrumentSpecs,
    MarginInputs,
    flat_table,
    make_engine,
)
from margin.engine import apply_order

# assets: 0 = USD, 1 = BTC; instruments: 0 = BTC spot, 1 = BTC perp, 2 = BTC perp on a second venue
SPECS = InstrumentSpecs(kind=np.array([SPOT, PERP, PERP]), underlying=np.array([1, 1, 1]),
                        quote=np.array([0, 0, 0]), contract_size=np.ones(3))


def inputs(collateral, positions, entry, btc=50_000.0, haircut=0.0):
    n = len(collateral)
    return MarginInputs(np.asarray(collateral, float).reshape(n, 2),
                        np.asarray(positions, float).reshape(n, 3),
                        np.asarray(entry, float).reshape(n, 3), np.array([1.0, btc]),
                        np.array([btc, btc, btc]), SPECS, np.array([0.0, haircut]))


def engine(table=BINANCE_BTCUSDT):
    return CrossMarginEngine([None, table])


def test_binance_long_liquidation_boundary():
    # margin_methods.md §3.3: long 1 BTC @ 50,000 with 5,000 margin is liquidated at 45,180.72,
    # where equity (180.72) equals MM (notional x 0.4 % in tier 1).
    res = engine().evaluate(inputs([[5000.0, 0.0]], [[0, 1.0, 0]], [[0, 50_000.0, 0]],
                                   btc=45_180.72))
    assert res.equity[0] == pytest.approx(180.72, abs=0.01)
    assert res.maintenance[0] == pytest.approx(180.72, abs=0.01)


def test_tier_values_and_im_above_mm():
    res = engine().evaluate(inputs([[1e6, 0.0]], [[0, 10.0, 0]], [[0, 50_000.0, 0]]))
    # notional 500,000: MM = 500,000 x 1 % - 1,300 = 3,700 (reference test value)
    assert res.maintenance[0] == pytest.approx(3700.0)
    assert res.initial[0] > res.maintenance[0]
    assert res.equity[0] == pytest.approx(1e6)


def test_haircut_and_borrow():
    e = engine()
    long_btc = e.evaluate(inputs([[0.0, 1.0]], [[0, 0, 0]], [[0, 0, 0]], haircut=0.05))
    assert long_btc.equity[0] == pytest.approx(47_500.0)
    assert long_btc.initial[0] == 0.0
    short_btc = e.evaluate(inputs([[60_000.0, -1.0]], [[0, 0, 0]], [[0, 0, 0]], haircut=0.05))
    # the liability counts at full value and is margined like a short of the same notional
    assert short_btc.equity[0] == pytest.approx(10_000.0)
    assert short_btc.maintenance[0] == pytest.approx(BINANCE_BTCUSDT.maintenance(50_000.0))


def test_no_netting_across_instruments():
    e = engine(flat_table(0.1, 0.05))
    one = e.evaluate(inputs([[1e5, 0]], [[0, 1.0, 0]], [[0, 50_000.0, 0]]))
    hedged = e.evaluate(inputs([[1e5, 0]], [[0, 1.0, -1.0]], [[0, 50_000.0, 50_000.0]]))
    assert hedged.initial[0] == pytest.approx(2 * one.initial[0])
    assert one.initial[0] == pytest.approx(5000.0)


def test_pretrade_sequential_and_reducing_orders():
    e = engine(flat_table(0.1, 0.05))
    state = inputs([[1000.0, 0.0], [10.0, 0.0]], [[0, 0, 0], [0, 1.0, 0]],
                   [[0, 0, 0], [0, 60_000.0, 0]])
    # account 0: 0.15 BTC -> IM 750 + fee fits in 1,000; a second 0.15 would need 1,500
    ok = e.pretrade(state, np.array([0, 0]), np.array([1, 1]), np.array([0.15, 0.15]),
                    np.array([50_000.0, 50_000.0]), 0.0005)
    assert ok.tolist() == [True, False]
    # account 1 is deep under IM but may always reduce; it may not add
    ok = e.pretrade(state, np.array([1, 1]), np.array([1, 1]), np.array([-0.5, 0.1]),
                    np.array([50_000.0, 50_000.0]), 0.0005)
    assert ok.tolist() == [True, False]
    # buying above the mark is charged: 0.15 BTC at 52,000 loses 300 vs mark -> rejected
    ok = e.pretrade(state, np.array([0]), np.array([1]), np.array([0.15]),
                    np.array([52_000.0]), 0.0)
    assert ok.tolist() == [False]


def test_pretrade_spot_buy_limited_by_haircut():
    e = engine(flat_table(0.1, 0.05))
    state = inputs([[1000.0, 0.0]], [[0, 0, 0]], [[0, 0, 0]], haircut=0.5)
    # buying 0.03 BTC (1,500 of value) on borrowed USD loses 750 of adjusted equity: fine;
    # 0.05 BTC (2,500) loses 1,250 > 1,000: rejected
    ok = e.pretrade(state, np.array([0, 0]), np.array([0, 0]), np.array([0.03, 0.02]),
                    np.array([50_000.0, 50_000.0]), 0.0)
    assert ok.tolist() == [True, False]


def test_stress_loss_of_a_long():
    e = engine()
    state = inputs([[5000.0, 0.0]], [[0, 1.0, 0]], [[0, 50_000.0, 0]])
    loss = e.stress(state, np.array([[0.0, -0.1], [0.0, 0.1]]))
    assert loss[0].tolist() == pytest.approx([5000.0, -5000.0])


def test_factory_lists_valid_names():
    assert isinstance(make_engine("cross", tables=[None, BINANCE_BTCUSDT]), CrossMarginEngine)
    with pytest.raises(ValueError, match="valid: aave, adaptive, cross, portfolio, static"):
        make_engine("spanish")


@settings(max_examples=60, deadline=None)
@given(q=st.floats(-50, 50), scale=st.floats(0.1, 10), mark=st.floats(1_000, 200_000))
def test_flat_requirements_scale_linearly_and_mm_below_im(q, scale, mark):
    e = engine(flat_table(0.05, 0.03))
    a = e.evaluate(inputs([[1e6, 0]], [[0, q, 0]], [[0, mark, 0]], btc=mark))
    b = e.evaluate(inputs([[1e6, 0]], [[0, q * scale, 0]], [[0, mark, 0]], btc=mark))
    assert b.initial[0] == pytest.approx(a.initial[0] * scale, rel=1e-9, abs=1e-9)
    assert a.maintenance[0] <= a.initial[0] + 1e-9
    tiered = engine().evaluate(inputs([[1e6, 0]], [[0, q, 0]], [[0, mark, 0]], btc=mark))
    assert tiered.maintenance[0] <= tiered.initial[0] + 1e-9


# ----------------------------------------------------------------------------- options

# assets: 0 = USD, 1 = BTC; instruments: 0 = BTC perp, 1 = BTC 66,000 call quoted in USD,
# 2 = the same call quoted in BTC (inverse: premium paid in coin)
OPT_SPECS = InstrumentSpecs(kind=np.array([PERP, OPTION, OPTION]), underlying=np.array([1, 1, 1]),
                            quote=np.array([0, 0, 1]), contract_size=np.ones(3),
                            strike=np.array([0.0, 66_000.0, 66_000.0]),
                            expiry=np.array([0.0, 30 / 365, 30 / 365]),
                            is_call=np.array([False, True, True]))


def opt_inputs(collateral, positions, entry=None, btc=60_000.0, call_mark=500.0, haircut=0.0):
    n = len(positions)
    entry = np.zeros((n, 3)) if entry is None else np.asarray(entry, float).reshape(n, 3)
    return MarginInputs(np.asarray(collateral, float).reshape(n, 2),
                        np.asarray(positions, float).reshape(n, 3), entry,
                        np.array([1.0, btc]), np.array([btc, call_mark, call_mark]), OPT_SPECS,
                        np.array([0.0, haircut]), implied_vols=np.full(3, 0.6))


def test_short_call_equity_and_requirements_by_hand():
    # short 2 calls K 66,000 at F 60,000, mark 500: OTM 6,000, so the 10 % floor binds:
    # IM = 2 × (6,000 + 500) = 13,000; MM = 2 × (4,500 + 500) = 10,000;
    # equity = 20,000 USD − 2 × 500 (the option owed at its mark; entry is irrelevant)
    res = engine(flat_table(0.1, 0.05)).evaluate(
        opt_inputs([[20_000.0, 0.0]], [[0, -2.0, 0]], [[0, 400.0, 0]]))
    assert res.equity[0] == 19_000.0
    assert res.initial[0] == 13_000.0 and res.maintenance[0] == 10_000.0
    # a long call adds its value to equity and, paid in full with no loan value, the same
    # value to IM and MM (it supports nothing); the perp is margined as before
    res = engine(flat_table(0.1, 0.05)).evaluate(
        opt_inputs([[20_000.0, 0.0]], [[1.0, 3.0, 0]], [[60_000.0, 700.0, 0]]))
    assert res.equity[0] == 20_000.0 + 3 * 500.0
    assert res.initial[0] == 6_000.0 + 1_500.0 and res.maintenance[0] == 3_000.0 + 1_500.0
    # so the perp's margin call comes as if the call were not there: with 4,000 USD the
    # account is 1,000 above MM; the call's 1,500 does not lift it
    res = engine(flat_table(0.1, 0.05)).evaluate(
        opt_inputs([[2_999.0, 0.0]], [[1.0, 3.0, 0]], [[60_000.0, 700.0, 0]]))
    assert res.equity[0] - res.maintenance[0] == pytest.approx(-1.0)


def test_option_rates_are_parameters():
    e = CrossMarginEngine([None, flat_table(0.1, 0.05)], option_im_rate=0.2, option_im_floor=0.05,
                          option_mm_rate=0.1)
    res = e.evaluate(opt_inputs([[20_000.0, 0.0]], [[0, -1.0, 0]]))
    # 0.2 × 60,000 − 6,000 = 6,000 > 3,000 floor; MM 6,000 + 500
    assert (res.initial[0], res.maintenance[0]) == (6_500.0, 6_500.0)
    with pytest.raises(ValueError, match="option_im_rate"):
        CrossMarginEngine([None, None], option_im_rate=1.5)


@pytest.mark.parametrize("fused", [True, False])
def test_pretrade_short_call_around_the_im_boundary(fused, monkeypatch):
    if not fused:
        monkeypatch.setattr(CrossMarginEngine, "_fused", lambda *a: False)
    e = engine(flat_table(0.1, 0.05))
    state = opt_inputs([[13_000.0, 0.0]], [[0, 0, 0]])
    # selling at the mark leaves equity at 13,000 (premium in, option owed); IM 6,500 a call:
    # 2 calls fit exactly, 0.01 more does not; buying back is reduce-only and always accepted
    ok = e.pretrade(state, np.zeros(4, np.int64), np.array([1, 1, 1, 1]),
                    np.array([-2.0, -0.01, 1.0, -0.99]), np.full(4, 500.0), 0.0)
    assert ok.tolist() == [True, False, True, True]
    assert e.pretrade(state, np.array([0]), np.array([1]), np.array([-2.01]),
                      np.array([500.0]), 0.0).tolist() == [False]
    # selling below the mark costs the difference: 2 calls at 499 lose 2 of equity
    assert e.pretrade(state, np.array([0]), np.array([1]), np.array([-2.0]),
                      np.array([499.0]), 0.0).tolist() == [False]
    # a long is paid in full: it counts at its mark in equity and its mark in IM, so n calls
    # bought 100 above the mark need 13,000 − 100 n ≥ 500 n: 21.66 fit, 21.67 do not
    for n, want in ((21.66, True), (21.67, False)):
        assert e.pretrade(state, np.array([0]), np.array([1]), np.array([n]),
                          np.array([600.0]), 0.0).tolist() == [want]
    # with no USD the premium cannot be borrowed: one call at the mark is refused
    broke = opt_inputs([[0.0, 0.0]], [[0, 0, 0]])
    assert e.pretrade(broke, np.array([0]), np.array([1]), np.array([1.0]),
                      np.array([500.0]), 0.0).tolist() == [False]


@pytest.mark.parametrize("fused", [True, False])
def test_pretrade_inverse_call_pays_its_premium_in_coin(fused, monkeypatch):
    if not fused:
        monkeypatch.setattr(CrossMarginEngine, "_fused", lambda *a: False)
    e = engine(flat_table(0.1, 0.05))
    # 1 BTC (haircut 5 %: 57,000 of equity). Selling s inverse calls at the mark receives
    # s × 500 / 60,000 BTC, which counts at 95 % while the option is owed at 100 %:
    # equity 57,000 − 25 s ≥ IM 6,500 s  ⇔  s ≤ 57,000 / 6,525 = 8.7356
    state = opt_inputs([[0.0, 1.0]], [[0, 0, 0]], haircut=0.05)
    for s, want in ((8.73, True), (8.74, False)):
        got = e.pretrade(state, np.array([0]), np.array([2]), np.array([-s]),
                         np.array([500.0]), 0.0)
        assert got.tolist() == [want]
    # booked by the ledger rule: the premium and fee leave the BTC balance, USD is untouched
    after = apply_order(state, 0, 2, 2.0, 600.0, 0.001)
    assert after.collateral[0, 1] == pytest.approx(1.0 - 2 * 600.0 / 60_000.0 * 1.001, rel=1e-15)
    assert after.collateral[0, 0] == 0.0
    res = e.evaluate(after)
    assert res.equity[0] == pytest.approx((1.0 - 0.02002) * 60_000.0 * 0.95 + 2 * 500.0)


def test_option_orders_decide_as_booking_and_re_evaluating():
    from margin.engine import MarginEngine

    class EvaluateOnly(MarginEngine):
        def __init__(self):
            self.cross = engine(flat_table(0.1, 0.05))

        def evaluate(self, inputs):
            return self.cross.evaluate(inputs)

    rng = np.random.default_rng(3)
    state = opt_inputs(np.column_stack([rng.uniform(0, 3e4, 20), rng.uniform(0, 0.3, 20)]),
                       np.column_stack([rng.normal(0, 0.2, 20), rng.normal(0, 3, 20),
                                        rng.normal(0, 3, 20)]), haircut=0.05)
    m = 300
    rows = rng.integers(0, 20, m)
    inst = rng.integers(0, 3, m)
    delta = rng.normal(0.0, 8.0, m)
    price = np.where(inst == 0, 60_000.0, 500.0) * (1.0 + rng.normal(0.0, 0.01, m))
    want = EvaluateOnly().pretrade(state, rows, inst, delta, price, 5e-4)
    got = engine(flat_table(0.1, 0.05)).pretrade(state, rows, inst, delta, price, 5e-4)
    np.testing.assert_array_equal(got, want)
    assert 0 < got.sum() < m


def test_perp_and_spot_results_are_unchanged_by_option_support():
    # the same account with and without an (empty) option instrument: identical bits
    e = engine()
    plain = e.evaluate(inputs([[5_000.0, 0.3]], [[0, 1.0, -0.5]], [[0, 49_000.0, 51_000.0]]))
    specs = InstrumentSpecs(kind=np.array([SPOT, PERP, PERP, OPTION]),
                            underlying=np.array([1, 1, 1, 1]), quote=np.zeros(4, np.int64),
                            contract_size=np.ones(4), strike=np.array([0, 0, 0, 50_000.0]),
                            is_call=np.array([False, False, False, True]))
    with_opt = e.evaluate(MarginInputs(np.array([[5_000.0, 0.3]]),
                                       np.array([[0, 1.0, -0.5, 0.0]]),
                                       np.array([[0, 49_000.0, 51_000.0, 0.0]]),
                                       np.array([1.0, 50_000.0]),
                                       np.array([50_000.0] * 3 + [2_000.0]), specs,
                                       np.array([0.0, 0.0])))
    for name in ("equity", "initial", "maintenance"):
        assert getattr(with_opt, name)[0] == getattr(plain, name)[0]


def test_short_straddle_requirement_rises_with_the_mark():
    from margin.methods.pricing import black76_price

    t = 30 / 365
    specs = InstrumentSpecs(kind=np.array([OPTION, OPTION]), underlying=np.array([1, 1]),
                            quote=np.zeros(2, np.int64), contract_size=np.ones(2),
                            strike=np.full(2, 60_000.0), expiry=np.full(2, t),
                            is_call=np.array([True, False]))

    def straddle(iv):
        marks = np.array([black76_price(60_000.0, 60_000.0, t, 0.0, iv, c) for c in (True, False)])
        return MarginInputs(np.array([[1e5, 0.0]]), -np.ones((1, 2)), np.zeros((1, 2)),
                            np.array([1.0, 60_000.0]), marks, specs, np.zeros(2)), marks

    e = engine()
    (calm, m_calm), (wild, m_wild) = straddle(0.6), straddle(0.9)
    lo, hi = e.evaluate(calm), e.evaluate(wild)
    # ATM (OTM 0): IM = 0.15 F + mark and MM = 0.075 F + mark per leg, so both rise by the marks
    assert lo.initial[0] == pytest.approx(2 * 9_000.0 + m_calm.sum())
    assert hi.initial[0] - lo.initial[0] == pytest.approx(m_wild.sum() - m_calm.sum())
    assert hi.maintenance[0] - lo.maintenance[0] == pytest.approx(m_wild.sum() - m_calm.sum())
    assert hi.initial[0] > lo.initial[0] and hi.equity[0] < lo.equity[0]
