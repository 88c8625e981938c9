"""Paired-t interval, headline metrics, table writers, config overrides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.analysis import headline_metrics, write_table
from experiments.common import load_study_config
from experiments.stats import paired_ci


def test_paired_ci_known_difference_and_crn_benefit() -> None:
    rng = np.random.default_rng(3)
    common = rng.normal(100.0, 30.0, 12)           # shared noise (common random numbers)
    y = common + rng.normal(0, 0.5, 12)
    x = common + 2.0 + rng.normal(0, 0.5, 12)
    ci = paired_ci(x, y)
    assert ci["n"] == 12 and ci["ci_low"] < 2.0 < ci["ci_high"]
    assert ci["half_width"] < 1.0                   # the shared noise cancels
    assert ci["diff"] == pytest.approx(np.mean(x - y))


def test_paired_ci_coverage() -> None:
    rng = np.random.default_rng(11)
    hits = 0
    trials = 400
    for _ in range(trials):
        base = rng.normal(0, 5, 8)
        d = rng.normal(-1.5, 2.0, 8)
        ci = paired_ci(base + d, base, 0.95)
        hits += ci["ci_low"] <= -1.5 <= ci["ci_high"]
    assert 0.92 <= hits / trials <= 0.98


def test_paired_ci_edge_cases() -> None:
    one = paired_ci([1.0], [0.0])
    assert one["diff"] == 1.0 and np.isnan(one["ci_low"])
    nan = paired_ci([1.0, np.nan, 3.0], [0.0, 1.0, 1.0])
    assert nan["n"] == 2 and nan["diff"] == 1.5
    with pytest.raises(ValueError):
        paired_ci([1.0, 2.0], [1.0])


def test_headline_metrics_reduce_over_protocols_and_instruments() -> None:
    df = pd.DataFrame({
        "liquidation.a.notional": [1.0], "liquidation.b.notional": [2.0],
        "liquidation.a.liquidations": [3.0], "liquidation.a.insolvency": [4.0],
        "liquidation.a.bad_debt_total": [0.5],
        "instruments.a:BTC-PERP.amplification": [1.2],
        "instruments.a:ETH-PERP.amplification": [1.5],
        "instruments.a:BTC-PERP.final_open_interest": [2.0],
        "instruments.a:ETH-PERP.final_open_interest": [10.0],
        "assets.BTC.fundamental_end": [100.0], "assets.ETH.fundamental_end": [5.0],
        "protocols.a.capital_efficiency": [10.0], "protocols.a.margin_peak_to_trough": [3.0],
        "protocols.a.margin_max_60_step_increase": [0.2]})
    m = headline_metrics(df).iloc[0]
    assert m["liquidation_notional"] == 3.0 and m["liquidations"] == 3.0
    assert m["insolvency"] == 4.0 and m["bad_debt"] == 0.5
    assert m["amplification"] == 1.5 and m["capital_efficiency"] == 10.0
    assert m["open_interest"] == 2.0 * 100.0 + 10.0 * 5.0


def test_write_table_csv_md_tex(tmp_path: Path) -> None:
    df = pd.DataFrame({"scenario": ["a", "a", "b"], "metric": ["x_y", "z", "x_y"],
                       "mean": [1.5, np.nan, 12345.6]})
    files = write_table(df, tmp_path, "t", caption="T", group="scenario")
    assert pd.read_csv(files["csv"]).shape == (3, 3)
    md = files["md"].read_text()
    assert "## scenario: a" in md and "| x_y | 1.5 |" in md and "12,346" in md
    tex = files["tex"].read_text()
    assert tex.count(r"\begin{tabular}") == 2 and r"x\_y" in tex and r"\toprule" in tex


def test_study_config_overrides_replace_and_reject_unknown() -> None:
    cfg = load_study_config("compare_regimes", ["regimes=[cross,static]", "scenarios={calm: []}",
                                                "replicates=4"])
    assert list(cfg.regimes) == ["cross", "static"] and list(cfg.scenarios) == ["calm"]
    assert cfg.replicates == 4
    with pytest.raises(ValueError, match="unknown key"):
        load_study_config("compare_regimes", ["nope=1"])
