"""The scenario contract: windows, drawdown tracking, the calm GBM and dispatch."""

from __future__ import annotations

import numpy as np
import pytest

from sim.config import ScenarioConfig
from sim.scenarios import SCENARIOS, CorrelatedGBM, Scenario, Window, build_scenario


class Scripted(Scenario):
    """Moves through a given path, one row per step."""

    def __init__(self, path):
        self.path = np.asarray(path, dtype=float)
        super().__init__(self.path[0], 1.0)

    def _move(self, rng):
        self.prices[:] = self.path[self.steps + 1]


def test_drawdown_of_a_known_path():
    # asset 0: 100 -> 120 -> 90 (-25 %) -> 130 -> 104 (-20 %): max 25 %
    # asset 1: 50 -> 40 (-20 %) -> 60 -> 30 (-50 %) -> 70: max 50 %
    path = [[100, 50], [120, 40], [90, 60], [130, 30], [104, 70]]
    s = Scripted(path)
    rng = np.random.default_rng(0)
    s.advance(rng)
    s.advance(rng)
    assert s.drawdowns == pytest.approx([0.25, 0.2])
    s.advance(rng)
    s.advance(rng)
    assert s.drawdowns == pytest.approx([0.25, 0.5])
    assert s.fundamental_drawdown() == pytest.approx(0.5)
    assert s.fundamental_drawdown(0) == pytest.approx(0.25)
    assert s.steps == 4


def test_default_hooks_describe_a_normal_market():
    s = Scripted([[1.0], [1.0]])
    assert s.liquidity(5) == 1.0
    assert s.oracle_latency(5) is None
    assert s.oracle_stale(5) is False
    assert s.max_oracle_latency == 0
    assert s.fundamental_drawdown() == 0.0


def test_window_is_half_open():
    w = Window(10, 20)
    assert 9 not in w and 10 in w and 19 in w and 20 not in w
    with pytest.raises(ValueError, match="end_step"):
        Window(10, 10)


def test_calm_matches_the_exact_gbm_discretisation(gbm_market):
    s = build_scenario(ScenarioConfig("calm"), gbm_market)
    assert isinstance(s, CorrelatedGBM)
    corr = np.array([[1.0, 0.8], [0.8, 1.0]])
    np.testing.assert_allclose(s.chol @ s.chol.T, corr, atol=1e-12)
    dt = 60.0 / (365 * 24 * 3600)
    assert s.dt == pytest.approx(dt)
    rng, ref = np.random.default_rng(3), np.random.default_rng(3)
    expected = np.array([60000.0, 3000.0])
    for _ in range(50):
        s.advance(rng)
        z = s.chol @ ref.standard_normal(2)
        expected *= np.exp(-0.5 * 0.36 * dt + 0.6 * np.sqrt(dt) * z)
    np.testing.assert_allclose(s.prices, expected, rtol=1e-12)
    np.testing.assert_array_equal(s.initial, [60000.0, 3000.0])


def test_calm_is_deterministic_per_seed(gbm_market):
    def path(seed):
        s = build_scenario(ScenarioConfig("calm"), gbm_market)
        rng = np.random.default_rng(seed)
        return np.array([s.advance(rng).copy() for _ in range(20)])

    np.testing.assert_array_equal(path(1), path(1))
    assert not np.allclose(path(1), path(2))


def test_unknown_scenario_lists_the_valid_names(gbm_market):
    with pytest.raises(ValueError) as info:
        build_scenario(ScenarioConfig("moon"), gbm_market)
    msg = str(info.value)
    assert "moon" in msg and "\n" not in msg
    for name in SCENARIOS:
        assert name in msg


def test_calm_takes_no_params(gbm_market):
    with pytest.raises(ValueError, match=r"params\.drift"):
        build_scenario(ScenarioConfig("calm", {"drift": 1.0}), gbm_market)
