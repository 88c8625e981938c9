"""Adaptive regime: margin follows realised volatility; APC bounds its rise."""

from __future__ import annotations

import numpy as np
import pytest

from margin import PERP, InstrumentSpecs, MarginInputs, make_engine
from margin.regimes.adaptive import AdaptiveMarginEngine
from margin.methods.apc import max_n_step_increase, peak_to_trough

SPECS = InstrumentSpecs(kind=np.array([PERP]), underlying=np.array([1]), quote=np.array([0]),
                        contract_size=np.ones(1))


def _path(vols, steps_per_vol=200, ppy=365.0):
    """Prices whose returns alternate +-sigma/sqrt(ppy): realised vol is exact, no noise."""
    sig = np.repeat(np.asarray(vols, float), steps_per_vol) / np.sqrt(ppy)
    signs = np.where(np.arange(len(sig)) % 2 == 0, 1.0, -1.0)
    logp = np.concatenate([[np.log(50_000.0)], np.log(50_000.0) + np.cumsum(sig * signs)])
    p = np.exp(logp)
    return np.column_stack([np.ones_like(p), p])


def _inputs(hist, q=1.0):
    price = hist[-1, 1]
    return MarginInputs(np.array([[1e6, 0.0]]), np.array([[q]]), np.array([[price]]),
                        hist[-1].copy(), np.array([price]), SPECS, np.zeros(2), price_history=hist)


def _engine(**kw):
    return AdaptiveMarginEngine(asset_names=["USD", "BTC"], periods_per_year=365.0, **kw)


def test_registered_and_rejects_bad_tool():
    assert isinstance(make_engine("adaptive", asset_names=["USD", "BTC"]), AdaptiveMarginEngine)
    with pytest.raises(ValueError, match="apc must be one of"):
        _engine(apc="sometimes")


def test_ewma_matches_riskmetrics_recursion():
    e = _engine(apc="none", lam=0.94, min_history=2)
    hist = _path([0.5], steps_per_vol=50)
    r = np.diff(np.log(hist[:, 1]))
    var = (0.6 / np.sqrt(365)) ** 2  # prior = base vol of BTC
    for x in r:
        var = 0.94 * var + 0.06 * x * x
    assert e.volatility_paths(hist)[-1, 1] == pytest.approx(np.sqrt(var * 365))


def test_margin_rises_with_realised_volatility():
    e = _engine(apc="none")
    calm = e.evaluate(_inputs(_path([0.3]))).initial[0]
    wild = e.evaluate(_inputs(_path([1.5]))).initial[0]
    assert wild > 2.5 * calm
    # linear in size for a perp (no add-ons without depth)
    assert e.evaluate(_inputs(_path([1.5]), q=3.0)).initial[0] == pytest.approx(3 * wild, rel=1e-9)


def test_haircuts_follow_volatility():
    e = _engine(apc="none", haircut_multiple=1.0)
    e.evaluate(_inputs(_path([0.3])))
    calm = e.last_state["haircut_floor"][1]
    e.evaluate(_inputs(_path([1.5])))
    assert e.last_state["haircut_floor"][1] > 3 * calm


@pytest.mark.parametrize("tool", ["buffer", "floor", "stressed_weight"])
def test_apc_tools_damp_the_margin_spike(tool):
    # an old stress, a long calm, then a volatility spike
    hist = _path([1.0, 0.3, 0.3, 1.5], steps_per_vol=150)
    series = {}
    for name in ("none", tool):
        e = _engine(apc=name, buffer_window=300)
        series[name] = np.array([e.evaluate(_inputs(hist[:t + 1])).initial[0]
                                 for t in range(300, len(hist), 5)])
    assert peak_to_trough(series[tool]) < peak_to_trough(series["none"])
    assert max_n_step_increase(series[tool], 10) < max_n_step_increase(series["none"], 10)
    assert np.all(series[tool] >= series["none"] * (1 - 1e-9))  # APC never lowers margin


def test_price_scan_range_is_capped_after_a_gap():
    """A one-step 60 % gap would put SPAN's extreme move (2 PSR) below -100 %.

    The PSR stops at ``max_price_scan_range`` instead, and the requirement is that
    of the capped grid.
    """
    hist = _path([0.5], steps_per_vol=50)
    hist = np.vstack([hist, hist[-1] * np.array([1.0, 0.4])])  # a 60 % gap in one step
    e = _engine(apc="none")
    assert e.sigma_multiple * e.effective_vols(hist)[0][1] * np.sqrt(1 / 365) > 0.5
    im = e.evaluate(_inputs(hist)).initial[0]
    assert e.last_state["price_scan_range"][1] == pytest.approx(0.45)
    # long 1 BTC: the worst scan loss is the full PSR move (the extreme move counts 35 % x 2)
    assert im == pytest.approx(0.45 * hist[-1, 1], rel=1e-3)
    for bad in (0.0, 0.5):
        with pytest.raises(ValueError, match="max_price_scan_range must lie in"):
            _engine(max_price_scan_range=bad)


def test_volatility_paths_continue_bit_for_bit_on_a_growing_history():
    """Extending the history continues the EWMA from the memo.

    The same bits as a fresh engine's full pass; a history that is not an
    extension is computed afresh.
    """
    rng = np.random.default_rng(7)
    p = 50_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 300)))
    hist = np.column_stack([np.ones_like(p), p])
    e = _engine(apc="none")
    for n in (5, 11, 12, 13, 40, 41, 41, 200, 300):
        got = e.volatility_paths(hist[:n])
        want = _engine(apc="none").volatility_paths(hist[:n])
        assert got.tobytes() == want.tobytes()
    other = hist[:250].copy()
    other[100, 1] *= 1.5  # same length class, different past: no reuse
    assert e.volatility_paths(other).tobytes() == \
        _engine(apc="none").volatility_paths(other).tobytes()
    shorter = e.volatility_paths(hist[:120])
    assert shorter.tobytes() == _engine(apc="none").volatility_paths(hist[:120]).tobytes()
