"""Tests of ``sim.market.volsurface``: no-arbitrage shape, dynamics, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from margin.methods.pricing import black76_price_vec
from sim.market.volsurface import DAYS_PER_YEAR, VolSurface, VolSurfaceConfig

MINUTE = 60.0 / (DAYS_PER_YEAR * 86400.0)
DAY = 1.0 / DAYS_PER_YEAR


def _surface(assets=("BTC",), prices=None, **cfg) -> VolSurface:
    p = np.full(len(assets), 100.0) if prices is None else np.asarray(prices, dtype=float)
    return VolSurface(VolSurfaceConfig(**cfg), p, MINUTE, list(assets))


def _gbm(sigma: float, steps: int, seed: int, p0: float = 100.0) -> np.ndarray:
    z = np.random.default_rng(seed).standard_normal(steps)
    return p0 * np.exp(np.cumsum(sigma * np.sqrt(MINUTE) * z - 0.5 * sigma**2 * MINUTE))


def _crash(s: VolSurface, p0: float = 100.0, fall: float = 0.30, steps: int = 10,
           vol_factor=None) -> None:
    for p in p0 * (1.0 - fall) ** (np.arange(1, steps + 1) / steps):
        s.update(np.array([p]), vol_factor)


def _state(name: str, asset: str = "BTC") -> VolSurface:
    s = _surface((asset,))
    if name == "calm":
        for p in _gbm(0.5, 500, seed=1):
            s.update(np.array([p]))
    elif name == "crash":
        _crash(s)
    elif name == "crash_spike":
        _crash(s, vol_factor=np.array([3.0]))
    return s


def _iv_x(s: VolSurface, x: np.ndarray, t: float) -> np.ndarray:
    """Vols at standardised moneyness ``x`` (forward 1) for asset 0."""
    atm = s.atm_vol(np.zeros(1, dtype=int), np.array([t]))[0]
    k = np.exp(np.asarray(x) * atm * np.sqrt(t))
    return s.iv(np.zeros(k.shape, dtype=int), k, np.ones_like(k), np.full(k.shape, t))


# ------------------------------------------------------------------ no-arbitrage


@pytest.mark.parametrize("asset", ["BTC", "ETH"])
@pytest.mark.parametrize("state", ["start", "calm", "crash", "crash_spike"])
def test_total_variance_increases_with_expiry_at_fixed_moneyness(state, asset):
    s = _state(state, asset)
    t = np.geomspace(MINUTE, 2.0, 300)
    for k in np.linspace(-1.5, 1.5, 31):  # ln(K/F): 0.22F .. 4.5F
        sig = s.iv(np.zeros(t.size, dtype=int), np.full(t.size, np.exp(k)), np.ones(t.size), t)
        assert np.all(np.diff(sig**2 * t) > 0.0), (state, k)


def test_crash_inverts_the_atm_term_structure_without_calendar_arbitrage():
    s = _state("crash")
    t = np.geomspace(MINUTE, 2.0, 300)
    atm = s.atm_vol(np.zeros(t.size, dtype=int), t)
    assert atm[0] > 3.2 * 0.55  # far above the long-run level: a σ-space blend would fail
    assert np.all(np.diff(atm) < 0.0)
    assert np.all(np.diff(atm**2 * t) > 0.0)
    assert 0.55 < atm[-1] < 0.8  # reverting to the long-run level (average variance)


@pytest.mark.parametrize("asset", ["BTC", "ETH"])
@pytest.mark.parametrize("state", ["start", "calm", "crash", "crash_spike"])
@pytest.mark.parametrize("days", [1.0, 7.0, 30.0])
def test_call_prices_convex_and_decreasing_in_strike(state, asset, days):
    s = _state(state, asset)
    f = 100.0
    k = np.linspace(0.5 * f, 2.0 * f, 1501)
    t = np.full(k.size, days * DAY)
    sig = s.iv(np.zeros(k.size, dtype=int), k, np.full(k.size, f), t)
    c = black76_price_vec(np.full(k.size, f), k, t, 0.0, sig, np.ones(k.size, dtype=bool))
    assert np.all(np.diff(c) <= 1e-12 * f)
    assert np.all(np.diff(c, 2) >= -1e-12 * f)
    assert np.all(c >= np.maximum(f - k, 0.0) - 1e-12 * f)


# ------------------------------------------------------------------ dynamics


def test_ewma_matches_the_riskmetrics_worked_example():
    # margin_methods.md §5.2: σ_{t−1} = 1 %, r = 3 %, λ = 0.94 → σ_t = 1.2166 % (daily)
    sig0 = 0.01 * np.sqrt(DAYS_PER_YEAR)
    s = VolSurface(VolSurfaceConfig(long_vol={"BTC": sig0}, variance_risk_premium=1.0,
                                    ewma_interval_hours=24.0),
                   np.array([100.0]), DAY, ["BTC"])
    assert s.realised_vol[0] * np.sqrt(DAY) == pytest.approx(0.01, rel=1e-12)
    s.update(np.array([100.0 * np.exp(0.03)]))
    assert s.realised_vol[0] * np.sqrt(DAY) == pytest.approx(0.012166, abs=5e-7)


def test_ewma_decay_is_lambda_per_hour_whatever_the_step():
    # an hour of unchanged prices scales the variance by λ = 0.94 (ewma_interval_hours = 1)
    for steps_per_hour in (60, 1):
        s = VolSurface(VolSurfaceConfig(), np.array([100.0]), 60 * MINUTE / steps_per_hour,
                       ["BTC"])
        s.update(np.array([90.0]))
        v0 = s.realised_vol[0] ** 2
        for _ in range(steps_per_hour):
            s.update(np.array([90.0]))
        assert s.realised_vol[0] ** 2 == pytest.approx(0.94 * v0, rel=1e-9)


def test_atm_level_follows_realised_volatility():
    t = np.array([DAY])
    out = {}
    for sigma in (0.3, 1.2):
        s = _surface()
        start = s.atm_vol(np.zeros(1, dtype=int), t)[0]
        for p in _gbm(sigma, 2000, seed=7):
            s.update(np.array([p]))
        out[sigma] = (s.atm_vol(np.zeros(1, dtype=int), t)[0], s.realised_vol[0])
    assert start == pytest.approx(0.55)
    (lo_atm, lo_rv), (hi_atm, hi_rv) = out[0.3], out[1.2]
    assert 0.2 < lo_rv < 0.45
    assert 0.9 < hi_rv < 1.5
    assert 0.25 < lo_atm < 0.48  # down from 0.55 toward 0.3
    assert 0.9 < hi_atm < 1.6  # up from 0.55 toward 1.2


def test_crash_steepens_the_skew_and_the_put_premium():
    s = _surface()
    path = _gbm(0.5, 300, seed=2)
    for p in path:
        s.update(np.array([p]))
    before_skew = s.skew[0]
    x = np.array([-1.0, 1.0])
    v0 = _iv_x(s, x, 7 * DAY)
    atm0 = s.atm_vol(np.zeros(1, dtype=int), np.array([7 * DAY]))[0]
    _crash(s, p0=path[-1])
    v1 = _iv_x(s, x, 7 * DAY)
    atm1 = s.atm_vol(np.zeros(1, dtype=int), np.array([7 * DAY]))[0]
    assert before_skew < 0.0
    assert s.skew[0] < before_skew - 0.05
    assert s.drawdown[0] == pytest.approx(0.30, abs=0.03)
    assert v0[0] > v0[1]  # puts richer already when calm
    assert v1[0] - v1[1] > v0[0] - v0[1]
    # relative to the level too: the steepening is not only the level's rise
    assert (v1[0] - v1[1]) / atm1 > (v0[0] - v0[1]) / atm0 + 0.1


def test_drawdown_is_forgotten_after_the_lookback():
    lookback_steps = 30
    s = _surface(drawdown_lookback_days=lookback_steps * MINUTE / DAY)
    base = s.skew[0]
    s.update(np.array([80.0]))
    assert s.drawdown[0] == pytest.approx(0.2)
    assert s.skew[0] == pytest.approx(base - 0.08)
    for _ in range(lookback_steps - 2):
        s.update(np.array([80.0]))
    # the window holds the last 30 prices, the current one included: step 0's 100 is
    # still in it after 29 updates and leaves it with the 30th
    assert s.drawdown[0] == pytest.approx(0.2)
    s.update(np.array([80.0]))
    assert s.drawdown[0] == 0.0
    assert s.skew[0] == pytest.approx(base)


def test_vol_factor_lifts_the_level():
    calm, spiked, default = _surface(), _surface(), _surface()
    for p in _gbm(0.5, 500, seed=4):
        calm.update(np.array([p]), np.array([1.0]))
        spiked.update(np.array([p]), np.array([3.0]))
        default.update(np.array([p]))
    t = np.array([DAY])
    a0 = np.zeros(1, dtype=int)
    assert np.array_equal(calm.level, default.level)
    assert spiked.level[0] > 2.0 * calm.level[0] - 0.3  # realised part tripled
    assert spiked.atm_vol(a0, t)[0] > calm.atm_vol(a0, t)[0] + 0.4
    assert np.array_equal(spiked.realised_vol, calm.realised_vol)


# ------------------------------------------------------------------ bounds, shapes, determinism


def test_vols_stay_within_floor_and_cap_and_expired_options_are_finite():
    for state in ("start", "crash_spike"):
        s = _state(state)
        k = np.geomspace(1e-3, 1e3, 400)
        for t in (-1.0, 0.0, MINUTE / 10, MINUTE, DAY, 2.0):
            sig = s.iv(np.zeros(k.size, dtype=int), k, np.ones(k.size), np.full(k.size, t))
            assert np.all(np.isfinite(sig))
            assert np.all((sig >= 0.10) & (sig <= 6.0))
    s = _state("crash")
    a = np.zeros(3, dtype=int)
    k = np.array([80.0, 100.0, 120.0])
    f = np.full(3, 100.0)
    at_step = s.iv(a, k, f, np.full(3, MINUTE))
    assert np.array_equal(s.iv(a, k, f, np.zeros(3)), at_step)
    assert np.array_equal(s.iv(a, k, f, np.full(3, -0.5)), at_step)


def test_one_asset_and_two_asset_shapes_and_independence():
    one = _surface()
    two = _surface(("BTC", "ETH"), prices=[60000.0, 3000.0])
    assert one.level.shape == one.skew.shape == one.realised_vol.shape == (1,)
    assert two.level.shape == two.skew.shape == two.realised_vol.shape == (2,)
    assert two.level.tolist() == pytest.approx([0.55, 0.70])
    # crash ETH only: BTC's surface is untouched
    for p in 3000.0 * 0.7 ** (np.arange(1, 11) / 10):
        two.update(np.array([60000.0, p]))
    assert two.skew[0] == pytest.approx(-0.08) and two.skew[1] < -0.15
    assert two.level[0] == pytest.approx(0.7 * 1.1 * two.realised_vol[0] + 0.3 * 0.55)
    # broadcasting: a (3, 4) grid of strikes by expiries for each asset
    k = np.array([[0.8], [1.0], [1.25]])
    t = np.array([[DAY, 7 * DAY, 30 * DAY, 0.5]])
    for i, f in enumerate((60000.0, 3000.0)):
        sig = two.iv(np.full((3, 4), i), k * f, f, t)
        assert sig.shape == (3, 4)
        assert two.atm_vol(i, t).shape == (1, 4)
        np.testing.assert_allclose(sig[1], two.atm_vol(i, t)[0], rtol=1e-12)
    mixed = two.iv(np.array([0, 1]), np.array([60000.0, 3000.0]), np.array([60000.0, 3000.0]),
                   np.array([DAY, DAY]))
    assert mixed[1] > mixed[0]


def test_deterministic():
    path = np.column_stack([_gbm(0.6, 400, seed=5, p0=60000.0), _gbm(0.8, 400, seed=6, p0=3000.0)])
    runs = []
    for _ in range(2):
        s = _surface(("BTC", "ETH"), prices=[60000.0, 3000.0])
        for row in path:
            s.update(row, np.array([1.5, 1.0]))
        k = np.linspace(0.5, 2.0, 50)
        runs.append(np.concatenate([
            s.iv(np.zeros(50, dtype=int), k * 60000.0, np.full(50, 60000.0), np.full(50, DAY)),
            s.iv(np.ones(50, dtype=int), k * 3000.0, np.full(50, 3000.0), np.full(50, 7 * DAY)),
            s.level, s.skew, s.realised_vol, s.drawdown]))
    assert np.array_equal(runs[0], runs[1])


def test_properties_and_config_are_copies():
    cfg = VolSurfaceConfig()
    s = VolSurface(cfg, np.array([100.0]), MINUTE, ["BTC"])
    s.level[0] = 9.0
    s.skew[0] = 9.0
    cfg.crash_skew_gain = 0.5
    s.update(np.array([70.0]))
    assert s.level[0] < 9.0 and s.skew[0] == pytest.approx(-0.16)


@pytest.mark.parametrize("bad", [
    {"long_vol": {"ETH": 0.7}},  # no BTC entry
    {"curvature": {"BTC": 0.5}},  # total variance would fall with expiry in the wings
    {"base_skew": {"BTC": -0.5}},  # smile factor not positive on the put wing at a crash
    {"ewma_lambda": 1.0},
    {"vol_floor": 0.5, "vol_cap": 0.6},
])
def test_invalid_config_is_refused(bad):
    with pytest.raises(ValueError):
        _surface(**bad)
