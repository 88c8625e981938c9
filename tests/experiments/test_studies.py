"""compare_regimes end to end (tiny) with common random numbers; stress target set; backtest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments import compare_regimes, stress_sweep
from experiments.backtest_report import backtest_table, side_pnl
from experiments.common import load_study_config


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory):
    """2 regimes x 1 scenario x 2 replicates x 620 steps, run once for this module."""
    out = tmp_path_factory.mktemp("compare_regimes")
    cfg = load_study_config("compare_regimes", [
        "regimes=[cross,static]", "scenarios={jump_crash: []}", "replicates=2", "steps=620",
        "overrides=[agents.noise.n=20]", "workers=1", "progress=false",
        "metrics=[liquidation_notional,insolvency]", f"output_dir={out}"])
    return cfg, compare_regimes.run_study(cfg)


def test_compare_regimes_tiny_end_to_end(tiny_study) -> None:
    cfg, out = tiny_study
    specs = compare_regimes.build_specs(cfg)
    seeds = {(s.meta["regime"], s.meta["replicate"]): s.meta["seed"] for s in specs}
    assert seeds[("cross", 0)] == seeds[("static", 0)] != seeds[("cross", 1)]
    for ext in ("csv", "md", "tex"):
        assert (out / "tables" / f"compare_regimes.{ext}").stat().st_size > 0
        assert (out / "tables" / f"tail_risk.{ext}").exists()
    assert (out / "figures" / "insolvency.png").exists()
    assert (out / "figures" / "insolvency.pdf").exists()
    table = pd.read_csv(out / "tables" / "compare_regimes.csv")
    assert set(table["regime"]) == {"cross", "static"} and (table["n_pairs"] == 2).all()
    assert (table.loc[table["regime"] == "cross", "diff_vs_cross"] == 0).all()
    assert len(pd.read_csv(out / "aggregated.csv")) == 4
    # post-processing alone reproduces the tables without re-running
    before = (out / "tables" / "compare_regimes.csv").read_text()
    compare_regimes.report(out, cfg)
    assert (out / "tables" / "compare_regimes.csv").read_text() == before


def test_common_random_numbers_same_fundamental_across_regimes(tiny_study) -> None:
    _, out = tiny_study
    a = pd.read_parquet(out / "runs" / "jump_crash__cross__r00" / "timeseries.parquet")
    b = pd.read_parquet(out / "runs" / "jump_crash__static__r00" / "timeseries.parquet")
    c = pd.read_parquet(out / "runs" / "jump_crash__cross__r01" / "timeseries.parquet")
    assert not np.allclose(a["alpha.initial_margin"], b["alpha.initial_margin"])  # regimes differ
    assert not np.array_equal(a["BTC.fundamental"], c["BTC.fundamental"])  # replicates differ
    np.testing.assert_array_equal(a["BTC.fundamental"], b["BTC.fundamental"])


def _synthetic_agg() -> pd.DataFrame:
    rows = []
    for lev in (5.0, 10.0, 20.0):
        for fee in (0.01, 0.02):
            for k in range(20):
                debt = 0.0 if lev == 5.0 else (lev * 100.0 * (k + 1) / 20 / (fee * 100))
                rows.append({"param.lev": lev, "param.fee": fee, "replicate": k,
                             "insolvency": debt, "bad_debt": 0.0,
                             "liquidation_notional": lev * 1000.0 + k,
                             "open_interest": 1_000_000.0})
    return pd.DataFrame(rows)


def test_stress_target_set_selection(tmp_path: Path) -> None:
    cells = stress_sweep.cell_table(_synthetic_agg(), ["lev", "fee"], "insolvency", 0.95, 0.001)
    assert len(cells) == 6
    # 95th pct of debt/OI: lev 10 fee .01 -> 10*100*q/1 /1e6 ~ 0.00096 (in), fee .02 half of that;
    # lev 20 fee .01 -> ~0.0019 (out), fee .02 -> ~0.00096 (in); lev 5 -> 0 (in)
    chosen = stress_sweep.target_set(cells)
    got = {(r.lev, r.fee) for r in chosen.itertuples()}
    assert got == {(5.0, 0.01), (5.0, 0.02), (10.0, 0.01), (10.0, 0.02), (20.0, 0.02)}
    assert chosen["debt_ratio_q"].is_monotonic_increasing
    lar = cells.set_index(["lev", "fee"])["LaR"]
    assert lar[(20.0, 0.01)] == np.quantile(20_000.0 + np.arange(20), 0.95)
    files = stress_sweep.heatmap(cells, "lev", "fee", "debt_ratio_q", tmp_path, "h", "ratio",
                                 0.001)
    assert files["figure_h_pdf"].exists()


def test_stress_zero_open_interest_with_debt_fails_target() -> None:
    agg = pd.DataFrame({"param.a": [1, 1], "insolvency": [1.0, 0.0], "liquidation_notional": [0, 0],
                        "open_interest": [0.0, 0.0]})
    cells = stress_sweep.cell_table(agg, ["a"], "insolvency", 0.95, 0.001)
    assert not cells["meets_target"].iloc[0]


def test_backtest_side_pnl_and_table(tmp_path: Path) -> None:
    n = 41
    mark = np.full(n, 100.0)
    mark[30:] = 90.0                                 # a 10 % fall between steps 20 and 30
    ts = pd.DataFrame({"alpha:X-PERP.mark": mark, "alpha:X-PERP.open_interest": np.full(n, 2.0),
                       "alpha.initial_margin": np.full(n, 30.0),
                       "alpha.maintenance_margin": np.full(n, 10.0)})
    pnl, him, hmm = side_pnl(ts, "alpha", 10)
    np.testing.assert_allclose(pnl, [0.0, 0.0, -20.0, 0.0])
    assert (him == 15.0).all() and (hmm == 5.0).all()
    run = tmp_path / "r"
    run.mkdir()
    ts.to_parquet(run / "timeseries.parquet")
    t = backtest_table({"cross": run}, 10).set_index(["side", "margin"])
    assert t.loc[("long", "initial"), "exceedances"] == 1
    assert t.loc[("short", "initial"), "exceedances"] == 0
