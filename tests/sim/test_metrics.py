"""Headline metric functions against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from sim.metrics import amplification, annualised_vol, max_drawdown, tail_metrics


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
    """The start-up build-up (margin from zero) would dominate peak-to-trough; the burn-in
    rows are left out before the first posted step is looked for."""
    import pandas as pd

    from margin.apc import peak_to_trough
    from sim.metrics import _posted

    im = pd.Series([0.0, 1.0, 10.0, 5.0, 20.0])
    assert peak_to_trough(_posted(im)) == 20.0
    assert _posted(im, 2).tolist() == [10.0, 5.0, 20.0]
    assert peak_to_trough(_posted(im, 2)) == 4.0
    assert _posted(im, 10).size == 0


def test_burn_in_is_validated():
    from sim.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="output.burn_in_steps"):
        load_config(["output.burn_in_steps=-1"])
