"""Scenario sets: SPAN's 16 scenarios, the Deribit grid, correlated joint moves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from margin.methods.scenarios import (
    ABSOLUTE,
    VEGA_POWER,
    JointScenarios,
    ScanGrid,
    correlated_scenarios,
    deribit_grid,
    shocked_vols,
    span_from_volatility,
    span_scenarios,
)

# margin_methods.md §1.2: (price move × PSR, vol move × VSR, fraction) of scenarios 1-16
SPAN_TABLE = [(0, 1, 1), (0, -1, 1), (1 / 3, 1, 1), (1 / 3, -1, 1), (-1 / 3, 1, 1), (-1 / 3, -1, 1),
              (2 / 3, 1, 1), (2 / 3, -1, 1), (-2 / 3, 1, 1), (-2 / 3, -1, 1), (1, 1, 1), (1, -1, 1),
              (-1, 1, 1), (-1, -1, 1), (2, 0, 0.35), (-2, 0, 0.35)]


def test_span_16_scenarios_match_the_reference_table():
    g = span_scenarios(0.12, 0.04)
    table = np.array(SPAN_TABLE)
    assert g.n_scenarios == 16
    np.testing.assert_allclose(g.price_moves, table[:, 0] * 0.12, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(g.vol_states, table[:, 1])
    np.testing.assert_array_equal(g.weights, table[:, 2])
    assert (g.vol_mode, g.vol_up, g.vol_down, g.lookahead) == (ABSOLUTE, 0.04, 0.04, 1 / 365)
    cme = span_scenarios(0.12, 0.04, extreme_multiple=3.0)  # CME's current 3x convention
    np.testing.assert_allclose(cme.price_moves[14:], [0.36, -0.36])


def test_span_vol_shift_is_additive_and_floored():
    g = span_scenarios(0.1, 0.05)
    vols = shocked_vols(g, np.array([0.2, 0.03]), np.array([0.1, 0.1]))
    np.testing.assert_allclose(vols[0], [0.25, 0.08])  # vol up
    np.testing.assert_allclose(vols[1], [0.15, 0.0])  # vol down, floored at 0
    np.testing.assert_allclose(vols[14], [0.2, 0.03])  # extreme: unchanged


def test_span_from_volatility_uses_the_nse_rule():
    g = span_from_volatility(0.60)
    assert g.price_moves[10] == pytest.approx(3.5 * 0.60 / math.sqrt(365))
    assert g.vol_up == pytest.approx(0.15)
    assert span_from_volatility(0.10).vol_up == 0.04  # VSR floor 4 %


def test_deribit_grid_structure_and_extended_weights():
    g = deribit_grid()  # BTC: ±16 %, 4 buckets
    assert g.n_scenarios == 27 + 8
    np.testing.assert_allclose(np.unique(g.price_moves[:27]), np.arange(-4, 5) * 0.04, atol=1e-15)
    np.testing.assert_array_equal(g.vol_states[:6], [1, 0, -1, 1, 0, -1])
    assert np.all(g.weights[:27] == 1.0) and np.all(g.vol_states[27:] == 1)
    np.testing.assert_allclose(g.price_moves[27:], [-0.66, -0.33, 0.5, 1, 2, 3, 4, 5])
    # Paradex's published weights 24 %, 48 %, 32 %, 16 %, 8 %, 5.33 %, 4 %, 3.2 % = 0.16/|move|
    paradex = [0.2424, 0.4848, 0.32, 0.16, 0.08, 0.0533, 0.04, 0.032]
    np.testing.assert_allclose(g.weights[27:], paradex, atol=1e-4)
    assert deribit_grid(extended_moves=None).n_scenarios == 27


def test_deribit_vega_power_vol_shock():
    g = deribit_grid()  # vol +50 % / -25 %, floor 0.5, powers 0.30 / 0.13
    iv = np.array([0.6, 0.6, 0.2])
    tte = np.array([10, 60, 60]) / 365
    vols = shocked_vols(g, iv, tte)
    up, same, down = vols[0], vols[1], vols[2]
    assert up[0] == pytest.approx(0.6 * (1 + 0.5 * 3.0 ** 0.30))
    assert up[1] == pytest.approx(0.6 * (1 + 0.5 * 0.5 ** 0.13))
    assert up[2] == 0.5  # min_vol_for_shock_up floor
    assert down[0] == pytest.approx(0.6 * (1 - 0.25 * 3.0 ** 0.30))
    np.testing.assert_array_equal(same, iv)
    assert g.vol_mode == VEGA_POWER


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"weights": [0.0, 1.0]}, "weights"),
    ({"vol_states": [2, 0]}, "vol_states"),
    ({"vol_states": [0.5, 0]}, "vol_states"),
    ({"price_moves": 0.1}, "price_moves"),
    ({"price_moves": [-1.5, 0.1]}, "price_moves"),
    ({"vol_mode": "sticky"}, "vol_mode"),
    ({"vol_up": -0.1}, "vol_up"),
])
def test_scan_grid_validation_names_the_field(kwargs, field):
    base = {"price_moves": [-0.1, 0.1], "vol_states": [0, 0], "weights": [1.0, 1.0]}
    with pytest.raises(ValueError, match=f"ScanGrid.{field}"):
        ScanGrid(**{**base, **kwargs})


def test_grid_arrays_are_read_only():
    g = span_scenarios(0.1, 0.05)
    with pytest.raises(ValueError):
        g.price_moves[0] = 1.0


def test_mc_scenarios_are_seeded_and_have_the_covariance():
    vols, corr = np.array([0.6, 0.8]), np.array([[1.0, 0.82], [0.82, 1.0]])
    a = correlated_scenarios((vols, corr), 20_000, horizon=1 / 365, rng=7)
    b = correlated_scenarios(np.outer(vols, vols) * corr, 20_000, horizon=1 / 365,
                             rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (20_000, 2) and np.all(a > -1.0)
    cov = np.cov(np.log1p(a).T) * 365
    np.testing.assert_allclose(cov, np.outer(vols, vols) * corr, rtol=0.05)
    with pytest.raises(ValueError, match="rng"):
        correlated_scenarios((vols, corr), 10)
    with pytest.raises(ValueError, match="positive definite"):
        correlated_scenarios(np.array([[1.0, 2.0], [2.0, 1.0]]), 10, rng=1)


def test_historical_scenarios_are_overlapping_windows():
    r = np.log(np.array([[1.01, 1.0], [0.98, 1.02], [1.03, 0.99], [1.0, 1.0]]))
    one = correlated_scenarios(None, None, horizon=1, method="historical", returns=r)
    np.testing.assert_allclose(one, np.exp(r) - 1)
    two = correlated_scenarios(None, 2, horizon=2, method="historical", returns=r)
    np.testing.assert_allclose(two, np.exp(r[1:3] + r[2:4]) - 1)  # the two most recent windows
    with pytest.raises(ValueError, match="method"):
        correlated_scenarios(None, 2, method="bootstrap")


def test_joint_scenarios_validation():
    JointScenarios(np.zeros((10, 2)), confidence=0.99)
    with pytest.raises(ValueError, match=r"JointScenarios\.confidence"):
        JointScenarios(np.zeros((10, 2)), confidence=1.0)
    with pytest.raises(ValueError, match=r"JointScenarios\.measure"):
        JointScenarios(np.zeros((10, 2)), measure="cvar")
    with pytest.raises(ValueError, match=r"JointScenarios\.moves"):
        JointScenarios(np.full((3, 2), -2.0))
