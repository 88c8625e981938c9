"""Replicate seeds and the tail-risk study on a tiny world."""

from __future__ import annotations

import pandas as pd

from experiments.stats import replicate_seeds
from experiments.tail_risk import run_replicates


def test_replicate_seeds_are_distinct_and_reproducible():
    a = replicate_seeds(7, 5)
    assert a == replicate_seeds(7, 5)
    assert len(set(a)) == 5
    assert a != replicate_seeds(8, 5)
    assert replicate_seeds(7, 6)[:5] == a  # spawning more keeps the first ones


def test_run_replicates_collects_one_row_per_run_and_protocol(tmp_path):
    table = run_replicates(["steps=615", "agents.noise.n=20"], 2, 3, tmp_path, progress=False)
    assert isinstance(table, pd.DataFrame) and len(table) == 2
    assert set(table.columns) >= {"insolvent_debt", "liquidation_volume", "seed"}
    assert table["seed"].nunique() == 2
    assert (table["liquidation_volume"] > 0).all()  # the default crash liquidates someone
