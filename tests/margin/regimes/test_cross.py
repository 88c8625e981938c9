"""Cross-margin engine against Binance reference values and its own contract."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin import (
    BINANCE_BTCUSDT,
    PERP,
    SPOT,
    CrossMarginEngine,
    InstrumentSpecs,
    MarginInputs,
    flat_table,
    make_engine,
)

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
