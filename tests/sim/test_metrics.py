"""Headline metric functions against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from sim.output.metrics import amplification, annualised_vol, max_drawdown, tail_metrics


def test_max_drawdown_and_amplification():
    assert max_drawdown(np.array([100.0, 120.0, 60.0, 90.0, 130.0])) == pytest.approx(0.5)
    assert max_drawdown(np.array([1.0, 2.0, 3.0])) == 0.0
    assert max_drawdown(np.array([np.nan, 10.0, 5.0])) == pytest.approx(0.5)
    assert amplification(0.3, 0.2) == pytest.approx(1.5)
    assert np.isnan(amplification(0.3, 0.0))


def test_gauntlet_var_and_lar_are_95th_percentiles():
    debt = np.arange(101, dtype=float)  # 0..100
    vol = 10 * np.arange(101, dtype=float)
    m = tail_metrics(debt, vol)
    assert m["VaR"] == pytest.approx(95.0) and m["LaR"] == pytest.approx(950.0)
    with pytest.raises(ValueError, match="q must lie"):
        tail_metrics(debt, vol, q=1.5)


def test_annualised_vol_of_a_known_path():
    r = np.tile([0.01, -0.01], 500)
    p = 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    assert annualised_vol(p, 1 / 365) == pytest.approx(0.01 * np.sqrt(365), rel=1e-3)


def test_procyclicality_measures_skip_the_burn_in():
    """The start-up build-up (margin from zero) would dominate peak-to-trough.

    The burn-in rows are left out before the first posted step is looked for.
    """
    import pandas as pd

    from margin.methods.apc import peak_to_trough
    from sim.output.metrics import _posted

    im = pd.Series([0.0, 1.0, 10.0, 5.0, 20.0])
    assert peak_to_trough(_posted(im)) == 20.0
    assert _posted(im, 2).tolist() == [10.0, 5.0, 20.0]
    assert peak_to_trough(_posted(im, 2)) == 4.0
    assert _posted(im, 10).size == 0


def test_burn_in_is_validated():
    from sim.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"output\.burn_in_steps"):
        load_config(["output.burn_in_steps=-1"])


def test_capital_efficiency_counts_spot_and_haircuts(tmp_path):
    """spot_notional / haircut_margin by a plain loop over the protocol's rows.

    The summary ratio is (perp + spot notional) / (IM + haircut margin), means over the run.
    """
    from sim.output.runner import run

    r = run(["agents=minimal", "scenario=calm", "steps=30", "agents.noise.n=20",
             "output.figures=false"], out_dir=tmp_path)
    ts = r.timeseries
    from sim.config import load_config
    from sim.model import MarketModel

    model = MarketModel(load_config(["agents=minimal", "scenario=calm", "steps=30",
                                     "agents.noise.n=20"]))
    for _ in range(3):
        model.step()
    rows = model.protocols[0].accounts
    spot = cut = 0.0
    for row in rows:
        for a in range(1, len(model.asset_names)):
            b = model.ledger.collateral[row, a]
            spot += abs(b) * model.asset_prices[a]
            cut += max(b, 0.0) * model.asset_prices[a] * model.haircuts[a]
    mt = model.metrics
    assert mt["alpha.spot_notional"] == pytest.approx(spot, rel=1e-12)
    assert mt["alpha.haircut_margin"] == pytest.approx(cut, rel=1e-12)
    p = r.summary["protocols"]["alpha"]
    want = ((ts["alpha.gross_notional"].mean() + ts["alpha.spot_notional"].mean())
            / (ts["alpha.initial_margin"].mean() + ts["alpha.haircut_margin"].mean()))
    assert p["capital_efficiency"] == pytest.approx(want, rel=1e-9)
    assert p["perp_capital_efficiency"] == pytest.approx(
        ts["alpha.gross_notional"].mean() / ts["alpha.initial_margin"].mean(), rel=1e-9)
