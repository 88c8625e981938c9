"""The conformance suite: every registered engine keeps the contract; broken engines are caught.

Properties a built-in regime does not promise are skipped for it with the
reason (its numbers are the regime's published rules, not a bug):

* ``static`` — ``ordering``: when a position is liquidatable, ``maintenance``
  is placed above equity (``equity + shortfall``) so that ``below_maintenance``
  is "some position is liquidatable"; it may exceed the summed IM.
  ``pretrade``: Binance isolated mode accepts an order when the free quote
  balance covers the IM top-up plus the fee; the new position's equity may fall
  short of its IM by the execution slippage.
* ``portfolio``, ``adaptive`` — ``pretrade_reducing``: a risk-reducing order is
  one that lowers the portfolio IM (Deribit portfolio margin), not a
  reduce-only order: cutting one leg of an offsetting portfolio can raise the
  IM and is refused when equity does not cover it.

Each regime is checked on the instrument kinds it margins: ``aave`` on spot
only, every other regime on spot, perpetuals and options, with the options
quoted in USD (linear) and in BTC (inverse: the premium moves BTC).
"""

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
    AaveLendingEngine,
    AdaptiveMarginEngine,
    CrossMarginEngine,
    MarginEngine,
    MarginInputs,
    MarginResult,
    PortfolioMarginEngine,
    StaticIsolatedEngine,
    available_engines,
)
from margin.testing import PROPERTIES, check_engine, sample_inputs

ISOLATED_MM = ("isolated: a liquidatable account's maintenance is equity + shortfall, which "
               "may exceed its summed IM (margin.regimes.static)")
ISOLATED_PRETRADE = ("isolated: accepts when free quote covers the IM top-up plus fee, so "
                     "the position's equity may miss its IM by the slippage (Binance isolated)")
PM_REDUCING = ("portfolio margin: risk-reducing means lowering the IM (Deribit PM), so "
               "cutting one leg of a hedge that raises IM is refused")

CASES = {
    "cross": (lambda: CrossMarginEngine([None, BINANCE_BTCUSDT, BINANCE_ETHUSDT]),
              (SPOT, PERP, OPTION), {}),
    "static": (StaticIsolatedEngine, (SPOT, PERP, OPTION),
               {"ordering": ISOLATED_MM, "pretrade": ISOLATED_PRETRADE}),
    "aave": (AaveLendingEngine, (SPOT,), {}),
    "portfolio": (PortfolioMarginEngine, (SPOT, PERP, OPTION), {"pretrade_reducing": PM_REDUCING}),
    "adaptive": (AdaptiveMarginEngine, (SPOT, PERP, OPTION), {"pretrade_reducing": PM_REDUCING}),
}
"""Registered name -> (engine factory, instrument kinds it margins, skipped properties)."""


def test_every_registered_engine_has_a_conformance_case():
    assert set(available_engines()) == set(CASES)


@pytest.mark.parametrize("name", available_engines())
@pytest.mark.parametrize(("n", "seed"), [(12, 0), (5, 1), (30, 2)])
def test_registered_engine_passes(name, n, seed):
    factory, kinds, skip = CASES[name]
    check_engine(factory(), sample_inputs(n, kinds=kinds, seed=seed), skip=skip)


@pytest.mark.parametrize("name", [n for n in CASES if OPTION in CASES[n][1]])
@pytest.mark.parametrize("seed", [0, 4])
def test_registered_engine_passes_with_inverse_options(name, seed):
    factory, kinds, skip = CASES[name]
    check_engine(factory(), sample_inputs(12, kinds=kinds, seed=seed, option_quote=1), skip=skip)


@pytest.mark.parametrize("name", [n for n in CASES if OPTION in CASES[n][1]])
def test_option_regimes_pass_without_options(name):
    factory, _kinds, skip = CASES[name]
    check_engine(factory(), sample_inputs(kinds=(SPOT, PERP), seed=3), skip=skip)


def test_every_regime_but_lending_margins_options():
    assert {n for n in CASES if OPTION in CASES[n][1]} == set(available_engines()) - {"aave"}


# ---------------------------------------------------------------------- a user's engine


class TenFive(MarginEngine):
    """A user's engine: IM 10 % / MM 5 % of perpetual notional; only evaluate."""

    name = "ten-five"

    def evaluate(self, inputs: MarginInputs) -> MarginResult:
        perp = inputs.specs.kind == PERP
        size = inputs.positions * inputs.specs.contract_size
        pnl = np.where(perp, size * (inputs.marks - inputs.entry_prices), 0.0).sum(axis=1)
        kept = np.where(inputs.collateral > 0, 1.0 - inputs.haircuts, 1.0) * inputs.collateral
        notional = np.where(perp, np.abs(size) * inputs.marks, 0.0).sum(axis=1)
        return MarginResult(kept @ inputs.asset_prices + pnl, 0.1 * notional, 0.05 * notional)


def test_user_engine_passes():
    check_engine(TenFive())
    check_engine(TenFive(), sample_inputs(7, seed=5))


# ---------------------------------------------------------------------- broken engines


class Float32(TenFive):
    def evaluate(self, inputs):
        r = super().evaluate(inputs)
        return MarginResult(r.equity.astype(np.float32), r.initial, r.maintenance)


class WrongShape(TenFive):
    def evaluate(self, inputs):
        r = super().evaluate(inputs)
        return MarginResult(r.equity, r.initial[:-1], r.maintenance)


class NotFinite(TenFive):
    def evaluate(self, inputs):
        r = super().evaluate(inputs)
        return MarginResult(r.equity, r.initial, np.full_like(r.maintenance, np.nan))


class MMAboveIM(TenFive):
    def evaluate(self, inputs):
        r = super().evaluate(inputs)
        return MarginResult(r.equity, r.initial, 2.0 * r.initial)


class PopulationScaled(TenFive):
    """Requirements depend on how many accounts are evaluated together."""

    def evaluate(self, inputs):
        r = super().evaluate(inputs)
        k = 1.0 + 0.01 * len(r.equity)
        return MarginResult(r.equity, k * r.initial, r.maintenance)


class Noisy(TenFive):
    def __init__(self):
        self.rng = np.random.default_rng()

    def evaluate(self, inputs):
        r = super().evaluate(inputs)
        return MarginResult(r.equity, r.initial * (1.0 + 1e-6 * self.rng.random()), r.maintenance)


class Mutating(TenFive):
    def evaluate(self, inputs):
        inputs.collateral[:, 0] += 0.0 if inputs.collateral.shape[0] == 1 else 1e-3
        return super().evaluate(inputs)


class AcceptsEverything(TenFive):
    def pretrade(self, inputs, rows, instrument, delta, price, fee_rate):
        return np.ones(len(rows), np.bool_)


class RefusesReducing(TenFive):
    def pretrade(self, inputs, rows, instrument, delta, price, fee_rate):
        ok = super().pretrade(inputs, rows, instrument, delta, price, fee_rate)
        held = np.asarray(inputs.positions)[np.asarray(rows), np.asarray(instrument)] != 0.0
        return ok & ~held


class BatchDependent(TenFive):
    def pretrade(self, inputs, rows, instrument, delta, price, fee_rate):
        ok = super().pretrade(inputs, rows, instrument, delta, price, fee_rate)
        return ok if len(rows) == 1 else np.zeros(len(rows), np.bool_)


class BadStress(TenFive):
    def stress(self, inputs, shocks):
        return super().stress(inputs, shocks) + 1.0


@pytest.mark.parametrize(
    ("engine", "prop", "words"),
    [
        (Float32(), "contract", "dtype float32"),
        (WrongShape(), "contract", "shape"),
        (NotFinite(), "contract", "not finite"),
        (MMAboveIM(), "ordering", "initial < maintenance"),
        (PopulationScaled(), "vectorisation", "evaluate of all"),
        (Noisy(), "determinism", "different initial"),
        (Mutating(), "purity", "evaluate changed inputs.collateral"),
        (AcceptsEverything(), "pretrade", "accepts the order"),
        (RefusesReducing(), "pretrade_reducing", "rejects the reduce-only order"),
        (BatchDependent(), "pretrade_batch", "in a batch"),
        (BadStress(), "stress", "zero shock"),
    ],
)
def test_broken_engine_is_caught_naming_the_property(engine, prop, words):
    with pytest.raises(AssertionError) as info:
        check_engine(engine)
    assert f"fails {prop!r}" in str(info.value) and words in str(info.value), str(info.value)
    assert type(engine).__name__ in str(info.value)


def test_a_skipped_property_is_not_checked():
    check_engine(MMAboveIM(), skip={"ordering": "this engine's MM is 2x IM by design"})


@pytest.mark.parametrize(("skip", "words"), [({"colour": "why"}, "unknown property"),
                                             ({"ordering": " "}, "reason")])
def test_skip_needs_a_known_property_and_a_reason(skip, words):
    with pytest.raises(ValueError, match=words):
        check_engine(TenFive(), skip=skip)


def test_properties_are_listed():
    assert PROPERTIES[0] == "contract" and len(set(PROPERTIES)) == len(PROPERTIES)


def test_sample_inputs_are_reproducible_and_varied():
    a, b = sample_inputs(seed=4), sample_inputs(seed=4)
    for name in ("collateral", "positions", "entry_prices", "price_history"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (a.collateral[:, 1:] < 0).any() and (a.positions == 0).all(axis=1).any()
    opt = sample_inputs(kinds=(PERP, OPTION))
    assert list(opt.specs.kind) == [PERP, PERP, OPTION, OPTION] and (opt.marks > 0).all()
    flat = replace(a, positions=np.zeros_like(a.positions))
    check_engine(TenFive(), flat)
