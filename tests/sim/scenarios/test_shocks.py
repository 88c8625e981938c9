"""Shock scenarios: exact crash profiles, vol ratio, liquidity and oracle hooks."""

from __future__ import annotations

import numpy as np
import pytest

from sim.config import ScenarioConfig
from sim.scenarios import Crash, ShockScenario, build_scenario

from .helpers import market


def run(scenario, steps, seed=0):
    """Prices after each step, row 0 the initial prices."""
    rng = np.random.default_rng(seed)
    return np.vstack([scenario.prices.copy()]
                     + [scenario.advance(rng).copy() for _ in range(steps)])


def build(name, market_cfg, **params):
    return build_scenario(ScenarioConfig(name, params), market_cfg)


@pytest.mark.parametrize("shape", ["log", "linear"])
def test_jump_crash_reaches_exactly_minus_x_after_k_steps(still_market, shape):
    s = build("jump_crash", still_market, start_step=5, crash=0.3, duration_steps=4,
              shape=shape)
    path = run(s, 12)
    np.testing.assert_array_equal(path[:5], np.tile([60000.0, 3000.0], (5, 1)))  # before
    assert np.all(np.diff(path[4:9, 0]) < 0)  # falls during steps 5..8
    np.testing.assert_allclose(path[8], [42000.0, 2100.0], rtol=1e-12)  # -30 % after 4 steps
    np.testing.assert_allclose(path[8:], np.tile(path[8], (5, 1)), rtol=1e-12)  # stays
    assert s.fundamental_drawdown() == pytest.approx(0.3, rel=1e-12)


def test_jump_crash_per_asset_sizes_and_asset_list(still_market):
    s = build("jump_crash", still_market, start_step=1, crash={"BTC": 0.1, "ETH": 0.5},
              duration_steps=2)
    np.testing.assert_allclose(run(s, 3)[-1], [54000.0, 1500.0], rtol=1e-12)
    s = build("jump_crash", still_market, start_step=1, crash=0.4, duration_steps=1,
              assets=["ETH"])
    np.testing.assert_allclose(run(s, 2)[-1], [60000.0, 1800.0], rtol=1e-12)


def test_jump_crash_is_the_calm_path_times_the_profile(gbm_market):
    calm = run(build("calm", gbm_market), 40, seed=9)
    crash = run(build("jump_crash", gbm_market, start_step=10, crash=0.25,
                      duration_steps=5), 40, seed=9)
    ratio = crash / calm
    np.testing.assert_allclose(ratio[:10], 1.0, rtol=1e-12)
    np.testing.assert_allclose(ratio[14:], 0.75, rtol=1e-12)  # GBM continues from the low


@pytest.mark.parametrize("shape", ["log", "linear"])
def test_flash_crash_recovers_the_stated_fraction(still_market, shape):
    s = build("flash_crash", still_market, start_step=3, crash=0.2, duration_steps=4,
              recovery=0.75, recovery_steps=6, shape=shape)
    path = run(s, 16)[:, 0]
    assert path[6] == pytest.approx(48000.0, rel=1e-12)  # bottom after steps 3..6
    assert np.all(np.diff(path[6:13]) > 0)  # recovery over steps 7..12
    # recovered 75 % of the 12,000 lost: 60,000 * (1 - 0.2 * 0.25) = 57,000
    assert path[12] == pytest.approx(57000.0, rel=1e-12)
    np.testing.assert_allclose(path[12:], 57000.0, rtol=1e-12)


def test_crash_profile_component():
    c = Crash(start_step=1, size=np.array([0.5]), duration_steps=2, recovery=1.0,
              recovery_steps=2, shape="linear")
    assert [float(c.multiplier(j)[0]) for j in range(5)] == pytest.approx(
        [1.0, 0.75, 0.5, 0.75, 1.0])
    assert c.log_factor(0) is None and c.log_factor(5) is None
    assert c.end_step == 5


def test_vol_spike_realised_vol_ratio():
    s = build("vol_spike", market(vol=0.5), start_step=3001, end_step=6001, multiplier=3.0)
    logs = np.log(run(s, 9000, seed=11))
    r = np.diff(logs, axis=0)  # r[t-1] is the return of step t
    inside, outside = r[3000:6000], np.vstack([r[:3000], r[6000:]])
    ratio = inside.std(axis=0) / outside.std(axis=0)
    np.testing.assert_allclose(ratio, 3.0, rtol=0.08)
    assert np.all(ratio > 2.7)


def test_vol_spike_only_on_selected_assets(gbm_market):
    calm = run(build("calm", gbm_market), 30, seed=4)
    spike = run(build("vol_spike", gbm_market, start_step=10, end_step=20, multiplier=4.0,
                      assets=["ETH"]), 30, seed=4)
    np.testing.assert_allclose(spike[:, 0], calm[:, 0], rtol=1e-12)  # BTC untouched
    np.testing.assert_allclose(spike[:10, 1], calm[:10, 1], rtol=1e-12)
    assert not np.allclose(spike[10:, 1], calm[10:, 1])


def test_liquidity_drought_hook_and_inner_crash(still_market):
    s = build("liquidity_drought", still_market, start_step=10, end_step=20, level=0.1,
              crash=0.1, crash_start_step=12, crash_duration_steps=2)
    assert [s.liquidity(t) for t in (1, 9, 10, 15, 19, 20, 100)] == [
        1.0, 1.0, 0.1, 0.1, 0.1, 1.0, 1.0]
    path = run(s, 25)
    np.testing.assert_allclose(path[11], [60000.0, 3000.0], rtol=1e-12)
    np.testing.assert_allclose(path[13], [54000.0, 2700.0], rtol=1e-12)
    assert s.oracle_latency(15) is None and not s.oracle_stale(15)


def test_liquidity_drought_without_crash_is_calm(gbm_market):
    calm = run(build("calm", gbm_market), 30, seed=2)
    dry = run(build("liquidity_drought", gbm_market, start_step=5, end_step=10, level=0.0,
                    crash=0), 30, seed=2)
    np.testing.assert_array_equal(calm, dry)


def test_oracle_delay_hooks(still_market):
    s = build("oracle_delay", still_market, start_step=5, end_step=8, latency_steps=12,
              stale=True)
    assert [s.oracle_latency(t) for t in (4, 5, 7, 8)] == [None, 12, 12, None]
    assert [s.oracle_stale(t) for t in (4, 5, 7, 8)] == [False, True, True, False]
    assert s.max_oracle_latency == 12
    assert s.liquidity(6) == 1.0
    lag_only = build("oracle_delay", still_market, start_step=5, end_step=8, latency_steps=3)
    assert lag_only.oracle_latency(6) == 3 and not lag_only.oracle_stale(6)


def test_overlapping_shocks_combine(still_market):
    from sim.scenarios import LiquidityDrought, OracleOutage, Window

    s = ShockScenario.from_config(still_market, shocks=[
        LiquidityDrought(Window(1, 10), 0.5), LiquidityDrought(Window(5, 6), 0.2),
        OracleOutage(Window(1, 10), 4), OracleOutage(Window(3, 4), 9, stale=True)])
    assert [s.liquidity(t) for t in (1, 5, 6)] == [0.5, 0.2, 0.5]
    assert [s.oracle_latency(t) for t in (1, 3, 10)] == [4, 9, None]
    assert s.oracle_stale(3) and not s.oracle_stale(4)


@pytest.mark.parametrize("name", ["jump_crash", "flash_crash", "vol_spike",
                                  "liquidity_drought"])
def test_stochastic_shocks_are_deterministic_per_seed(gbm_market, name):
    params = {"start_step": 2} if name in ("jump_crash", "flash_crash") else {
        "start_step": 2, "end_step": 20}
    a = run(build(name, gbm_market, **params), 25, seed=5)
    b = run(build(name, gbm_market, **params), 25, seed=5)
    c = run(build(name, gbm_market, **params), 25, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize(("name", "params", "key"), [
    ("jump_crash", {"crash": 1.0}, "params.crash"),
    ("jump_crash", {"crash": -0.1}, "params.crash"),
    ("jump_crash", {"crash": {"SOL": 0.2}}, "params.crash.SOL"),
    ("jump_crash", {"duration_steps": 0}, "params.duration_steps"),
    ("jump_crash", {"start_step": 1.5}, "params.start_step"),
    ("jump_crash", {"assets": ["DOGE"]}, "params.assets"),
    ("jump_crash", {"shape": "cubic"}, "params.shape"),
    ("jump_crash", {"colour": 1}, "params.colour"),
    ("jump_crash", {"crash": {"BTC": 0.2}, "assets": ["ETH"]}, "params.assets"),
    ("flash_crash", {"recovery": 1.5}, "params.recovery"),
    ("flash_crash", {"recovery_steps": 0}, "params.recovery_steps"),
    ("vol_spike", {"multiplier": 0}, "params.multiplier"),
    ("vol_spike", {"start_step": 10, "end_step": 5}, "params.end_step"),
    ("liquidity_drought", {"level": 1.2}, "params.level"),
    ("liquidity_drought", {"crash": "big"}, "params.crash"),
    ("oracle_delay", {"latency_steps": -1}, "params.latency_steps"),
    ("oracle_delay", {"stale": "yes"}, "params.stale"),
    ("oracle_delay", {"latency_steps": None, "stale": False}, "params.latency_steps"),
])
def test_bad_params_are_one_line_errors_naming_the_param(gbm_market, name, params, key):
    with pytest.raises(ValueError) as info:
        build(name, gbm_market, **params)
    msg = str(info.value)
    assert msg.startswith(key) and "\n" not in msg
