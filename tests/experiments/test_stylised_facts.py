"""Stylised-fact statistics: reference cases, and loose checks on a calm default run."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from experiments.stylised_facts import autocorrelation, facts_table, hill_tail_index, stylised_facts


def test_statistics_on_known_series():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(200_000)
    assert autocorrelation(x, 1) == pytest.approx(0.0, abs=0.01)
    ar = np.empty(50_000)
    ar[0] = 0.0
    for t in range(1, len(ar)):
        ar[t] = 0.6 * ar[t - 1] + rng.standard_normal()
    assert autocorrelation(ar, 1) == pytest.approx(0.6, abs=0.02)
    # Pareto tail with alpha = 3: |X| = U^(-1/3)
    pareto = rng.random(200_000) ** (-1 / 3)
    assert hill_tail_index(pareto) == pytest.approx(3.0, rel=0.1)
    prices = np.exp(np.cumsum(0.01 * rng.standard_normal(20_000)))
    f = stylised_facts(prices)
    assert f.excess_kurtosis == pytest.approx(0.0, abs=0.2)
    assert abs(f.acf_abs_1) < 0.05


def test_calm_default_run_has_loose_stylised_facts(tmp_path):
    res = sim.run(["agents=minimal", "scenario=calm", "steps=3000", "agents.noise.n=100",
                   "output.figures=false"], out_dir=tmp_path)
    table = facts_table(res.timeseries)
    mids = table[table.index.str.endswith(".mid")]
    # returns of the book mid: little linear autocorrelation (bid-ask bounce allowed),
    # heavier tails than Gaussian, finite tail index in a broad band
    assert (mids["acf1"].abs() < 0.5).all()
    assert (mids["excess_kurtosis"] > 0.0).all()
    assert mids["hill_alpha"].between(1.5, 8.0).all()
