"""The contract's defaults: ``pretrade`` from ``evaluate`` alone, order booking, kinds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from margin import (
    BINANCE_BTCUSDT,
    BINANCE_ETHUSDT,
    OPTION,
    PERP,
    SPOT,
    CrossMarginEngine,
    MarginEngine,
    MarginInputs,
    MarginResult,
)
from margin.engine import apply_order, reduces_exposure
from margin.testing import sample_inputs


class EvaluateOnly(MarginEngine):
    """Cross margin's numbers through the default pretrade."""

    name = "evaluate-only"

    def __init__(self) -> None:
        self.cross = CrossMarginEngine([None, BINANCE_BTCUSDT, BINANCE_ETHUSDT])

    def evaluate(self, inputs: MarginInputs) -> MarginResult:
        return self.cross.evaluate(inputs)


def test_instrument_kinds():
    assert (SPOT, PERP, OPTION) == (0, 1, 2)


def test_an_engine_needs_only_evaluate():
    engine = EvaluateOnly()  # not abstract: pretrade and stress have defaults
    inputs = sample_inputs(4)
    assert engine.pretrade(inputs, [], [], [], [], 0.0).shape == (0,)
    assert engine.stress(inputs, np.zeros((1, 3))).shape == (4, 1)


@pytest.mark.parametrize("seed", range(8))
def test_default_pretrade_decides_as_cross_margin(seed):
    """Same decisions as ``margin.regimes.cross``'s incremental kernel on mixed batches."""
    rng = np.random.default_rng(seed)
    inputs = sample_inputs(10, kinds=(SPOT, PERP), seed=seed)
    m = 150
    rows = rng.integers(0, 10, m)
    inst = rng.integers(0, 4, m)
    value = np.maximum(inputs.collateral, 0.0) @ inputs.asset_prices
    ref = inputs.asset_prices[inputs.specs.underlying[inst]]
    delta = rng.choice([-1.0, 1.0], m) * rng.uniform(0.0, 20.0, m) * value[rows] / ref
    delta[rng.random(m) < 0.05] = 0.0
    price = inputs.marks[inst] * (1.0 + rng.normal(0.0, 2e-3, m))
    cross = EvaluateOnly().cross.pretrade(inputs, rows, inst, delta, price, 5e-4)
    default = EvaluateOnly().pretrade(inputs, rows, inst, delta, price, 5e-4)
    np.testing.assert_array_equal(default, cross)
    assert 0 < cross.sum() < m


def _one(kind, position=0.0, entry=0.0, usd=10_000.0, btc=0.0):
    specs_inputs = sample_inputs(1, kinds=(SPOT, PERP, OPTION))
    collateral = np.array([[usd, btc, 0.0]])
    positions = np.zeros((1, 6))
    entries = np.zeros((1, 6))
    j = {SPOT: 0, PERP: 2, OPTION: 4}[kind]
    positions[0, j], entries[0, j] = position, entry
    return MarginInputs(collateral, positions, entries, specs_inputs.asset_prices,
                        specs_inputs.marks, specs_inputs.specs, specs_inputs.haircuts,
                        implied_vols=specs_inputs.implied_vols), j


def test_apply_order_books_perps_as_the_ledger_at_the_worse_price():
    inputs, j = _one(PERP, position=1.0, entry=50_000.0)  # mark 60,000
    # add 1 at 61,000 (worse than the mark): entry averages at the fill price
    add = apply_order(inputs, 0, j, 1.0, 61_000.0, 0.001)
    assert add.positions[0, j] == 2.0 and add.entry_prices[0, j] == 55_500.0
    assert add.collateral[0, 0] == 10_000.0 - 61.0
    # sell 1.5 at 62,000 (better than the mark, not credited): realise 1 at the mark, flip
    flip = apply_order(inputs, 0, j, -1.5, 62_000.0, 0.0)
    assert flip.positions[0, j] == -0.5 and flip.entry_prices[0, j] == 60_000.0
    assert flip.collateral[0, 0] == 10_000.0 + 10_000.0
    close = apply_order(inputs, 0, j, -1.0, 60_000.0, 0.0)
    assert close.positions[0, j] == 0.0 and close.collateral[0, 0] == 20_000.0
    np.testing.assert_array_equal(inputs.positions[0], np.eye(6)[j])  # inputs kept


def test_apply_order_books_spot_and_options_in_cash():
    inputs, j = _one(SPOT)
    buy = apply_order(inputs, 0, j, 0.1, 60_000.0, 0.001)
    assert buy.collateral[0, 1] == 0.1 and buy.collateral[0, 0] == pytest.approx(4_000.0 - 6.0)
    inputs, j = _one(OPTION)
    opt = apply_order(inputs, 0, j, 2.0, 1_000.0, 0.0)
    assert opt.positions[0, j] == 2.0 and opt.collateral[0, 0] == 8_000.0
    assert opt.entry_prices[0, j] == 1_000.0


def test_apply_order_keeps_the_average_premium_of_options():
    inputs, j = _one(OPTION, position=-2.0, entry=1_000.0)
    add = apply_order(inputs, 0, j, -2.0, 1_500.0, 0.0)  # sell 2 more: average premium
    assert add.positions[0, j] == -4.0 and add.entry_prices[0, j] == 1_250.0
    assert add.collateral[0, 0] == 10_000.0 + 3_000.0
    part = apply_order(inputs, 0, j, 1.0, 800.0, 0.0)  # buy 1 back: entry kept, nothing realised
    assert part.entry_prices[0, j] == 1_000.0 and part.collateral[0, 0] == 10_000.0 - 800.0
    flip = apply_order(inputs, 0, j, 3.0, 900.0, 0.0)
    assert flip.positions[0, j] == 1.0 and flip.entry_prices[0, j] == 900.0
    close = apply_order(inputs, 0, j, 2.0, 900.0, 0.0)
    assert close.positions[0, j] == 0.0 and close.entry_prices[0, j] == 0.0


def test_apply_order_pays_an_inverse_option_premium_in_coin():
    inputs, j = _one(OPTION, btc=1.0)
    specs = replace(inputs.specs, quote=np.where(inputs.specs.kind == OPTION, 1, 0))
    inverse = replace(inputs, specs=specs)
    opt = apply_order(inverse, 0, j, 2.0, 1_200.0, 0.001)
    # size × price / BTC price = 2 × 1,200 / 60,000 BTC, the fee likewise; USD untouched
    assert opt.collateral[0, 1] == pytest.approx(1.0 - 0.04 - 0.00004, rel=1e-15)
    assert opt.collateral[0, 0] == 10_000.0


def test_reduce_only_orders():
    inputs, j = _one(PERP, position=1.0, entry=60_000.0)
    assert reduces_exposure(inputs, 0, j, -1.0, 60_000.0, 0.0)
    assert not reduces_exposure(inputs, 0, j, -1.5, 60_000.0, 0.0)  # a flip opens
    assert not reduces_exposure(inputs, 0, j, 0.5, 60_000.0, 0.0)
    inputs, j = _one(SPOT, btc=-0.2, usd=10_000.0)
    assert reduces_exposure(inputs, 0, j, 0.1, 60_000.0, 0.0)
    assert not reduces_exposure(inputs, 0, j, 0.3, 60_000.0, 0.0)  # buys beyond the borrow
    assert not reduces_exposure(inputs, 0, j, 0.2, 60_000.0, 0.0)  # pays with borrowed USD


def test_default_pretrade_applies_accepted_orders_in_sequence():
    inputs, j = _one(PERP, usd=1_000.0)
    engine = EvaluateOnly()
    # 0.1 BTC (6,000 notional) fits 1,000 USD of equity, 10 BTC more does not;
    # then closing what was bought: accepted (reduce-only)
    ok = engine.pretrade(inputs, [0, 0, 0, 0], [j, j, j, j], [0.1, 10.0, -0.1, 0.0],
                         [60_000.0] * 4, 0.0)
    assert ok.tolist() == [True, False, True, False]
