"""Studies describe exactly the runs of their current config; failures are counted, never zeros."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from experiments import backtest_report, compare_regimes, stress_sweep
from experiments.common import RowCheckpoint, StudyRunsFailed, load_study_config

TINY = ["regimes=[cross]", "scenarios={calm: []}", "replicates=1", "steps=30",
        "overrides=[agents.noise.n=10]", "workers=1", "progress=false",
        "metrics=[liquidation_notional,insolvency]"]


def test_compare_regimes_rerun_with_new_parameters_reruns_and_tabulates_them(tmp_path: Path
                                                                               ) -> None:
    cfg = load_study_config("compare_regimes", [*TINY, f"output_dir={tmp_path}"])
    compare_regimes.run_study(cfg)
    # a leftover run of an older study in the same folder must not be tabulated
    old = tmp_path / "runs" / "calm__static__r00"
    old.mkdir()
    (old / "summary.json").write_text("{}")
    (old / "done.json").write_text(json.dumps({"name": old.name, "meta": {"regime": "static"}}))
    cfg2 = load_study_config("compare_regimes", [*TINY, "steps=40",
                                                 "overrides=[agents.noise.n=12]",
                                                 f"output_dir={tmp_path}"])
    compare_regimes.run_study(cfg2)
    agg = pd.read_csv(tmp_path / "aggregated.csv")
    assert list(agg["run"]) == ["calm__cross__r00"] and list(agg["status"]) == ["done"]
    assert list(agg["override.steps"]) == [40]
    assert "agents.noise.n=12" in agg["overrides"].iloc[0]
    assert OmegaConf.load(tmp_path / "study.yaml").steps == 40
    rec = json.loads((tmp_path / "runs" / "calm__cross__r00" / "done.json").read_text())
    assert "steps=40" in rec["overrides"] and rec["provenance"]["config_sha256"]
    table = pd.read_csv(tmp_path / "tables" / "compare_regimes.csv")
    assert set(table["regime"]) == {"cross"} and (table["runs"] == 1).all()
    # report_only under yet another config reuses nothing: every run "not run", exit path
    cfg3 = load_study_config("compare_regimes", [*TINY, "steps=50", "report_only=true",
                                                 f"output_dir={tmp_path}"])
    with pytest.raises(StudyRunsFailed) as exc:
        compare_regimes.run_study(cfg3)
    assert (exc.value.failed, exc.value.total) == (1, 1)
    agg = pd.read_csv(tmp_path / "aggregated.csv")
    assert list(agg["status"]) == ["not_run"] and agg["insolvency"].isna().all()


def test_backtest_scenario_change_reruns(tmp_path: Path) -> None:
    args = ["regimes=[cross]", "scenario_overrides=[]", "steps=30", "horizon=5",
            "overrides=[agents.noise.n=10]", "workers=1", "progress=false",
            f"output_dir={tmp_path}"]
    backtest_report.run_study(load_study_config("backtest_report", [*args, "scenario=calm"]))
    backtest_report.run_study(load_study_config("backtest_report",
                                                [*args, "scenario=flash_crash"]))
    rec = json.loads((tmp_path / "runs" / "cross" / "done.json").read_text())
    assert "scenario=flash_crash" in rec["overrides"]
    assert "flash_crash" in (tmp_path / "tables" / "backtest.md").read_text()


def test_backtest_every_regime_failing_exits_1_with_nan_rows(tmp_path: Path, capsys,
                                                             monkeypatch) -> None:
    # valid arguments (bad ones stop at the door with exit 2); every run then fails
    import experiments.sweep

    def failing_run(overrides, *, out_dir, progress=False):
        raise RuntimeError("the world broke")

    monkeypatch.setattr(experiments.sweep, "_sim_run", failing_run)
    args = ["regimes=[cross,static]", "steps=30", "overrides=[agents.noise.n=10]",
            "workers=1", "progress=false", f"output_dir={tmp_path}"]
    with pytest.raises(StudyRunsFailed) as exc:
        backtest_report.run_study(load_study_config("backtest_report", args))
    assert (exc.value.failed, exc.value.total) == (2, 2)
    assert exc.value.line().startswith("backtest_report: 2 of 2 runs failed; tables from 0 runs")
    table = pd.read_csv(tmp_path / "tables" / "backtest.csv")
    assert list(table["regime"]) == ["cross", "static"]
    assert table["exceedances"].isna().all() and (table["runs_failed"] == 1).all()
    with pytest.raises(SystemExit) as ex:
        backtest_report.main(args)
    assert ex.value.code == 1
    assert "2 of 2 runs failed" in capsys.readouterr().err


def test_stress_sweep_lists_failed_cell(tmp_path: Path) -> None:
    cfg = load_study_config("stress_sweep", [
        "grid={agents.noise.n: [10, -5]}", "heatmap=[agents.noise.n,agents.noise.n]",
        "scenario=calm", "replicates=1", "steps=30", "workers=1", "progress=false",
        f"output_dir={tmp_path}"])
    with pytest.raises(StudyRunsFailed) as exc:
        stress_sweep.run_study(cfg)
    assert (exc.value.failed, exc.value.total) == (1, 2)
    cells = pd.read_csv(tmp_path / "tables" / "cells.csv").set_index("agents.noise.n")
    assert list(cells.index) == [-5, 10]
    assert cells.loc[-5, "runs_failed"] == 1 and cells.loc[-5, "runs"] == 0
    assert np.isnan(cells.loc[-5, "VaR"]) and np.isnan(cells.loc[-5, "debt_ratio_q"])
    assert not cells.loc[-5, "meets_target"]
    assert cells.loc[10, "runs"] == 1 and cells.loc[10, "runs_failed"] == 0
    agg = pd.read_csv(tmp_path / "aggregated.csv")
    assert sorted(agg["status"]) == ["done", "failed"]


def _agg_with_failures() -> pd.DataFrame:
    return pd.DataFrame({
        "scenario": ["s"] * 6, "regime": ["cross"] * 3 + ["static"] * 3,
        "replicate": [0, 1, 2] * 2,
        "status": ["done", "done", "failed", "failed", "failed", "failed"],
        "insolvency": [100.0, 200.0, np.nan, np.nan, np.nan, np.nan],
        "liquidation_notional": [1.0, 3.0, np.nan, np.nan, np.nan, np.nan]})


def test_tables_show_failed_runs_as_nan_with_counts() -> None:
    agg = _agg_with_failures()
    tail = compare_regimes.tail_table(agg, 0.5).set_index("regime")
    assert tail.loc["cross", "VaR_50%_USD"] == 150.0  # not the median of [0, 100, 200]
    assert tail.loc["cross", "runs"] == 2 and tail.loc["cross", "runs_failed"] == 1
    assert np.isnan(tail.loc["static", "VaR_50%_USD"]) and tail.loc["static", "runs"] == 0
    comp = compare_regimes.comparison_table(agg, ["insolvency"], "cross").set_index("regime")
    assert comp.loc["cross", "mean"] == 150.0 and comp.loc["cross", "runs"] == 2
    assert np.isnan(comp.loc["static", "mean"]) and comp.loc["static", "runs_failed"] == 3


def test_contagion_matrix_shock_after_the_run_is_not_a_zero_result(tmp_path: Path) -> None:
    from experiments import contagion_matrix as cm
    from tests.experiments.test_contagion_matrix import TINY as MATRIX

    cfg = load_study_config("contagion_matrix", [*MATRIX, "seeds=[1]", "channels={all_on: []}",
                                                 f"output_dir={tmp_path}"])
    cfg.shock_step = 1000  # after the 20-step run: the shock never happens
    with pytest.raises(StudyRunsFailed) as exc:
        cm.run_study(cfg)
    assert exc.value.failed == exc.value.total == 2
    t = pd.read_csv(tmp_path / "tables" / "contagion_matrix.csv")
    assert t["mean"].isna().all() and (t["n"] == 0).all() and (t["runs_failed"] == 1).all()


def test_row_checkpoint_ignores_rows_of_other_code(tmp_path: Path, monkeypatch) -> None:
    import sim.output.provenance

    RowCheckpoint(tmp_path / "c.jsonl", {"a": 1}).add("k", {"v": 1})
    assert RowCheckpoint(tmp_path / "c.jsonl", {"a": 1}).get("k") == {"v": 1}
    monkeypatch.setattr(sim.output.provenance, "code_fingerprint", lambda: "other-code")
    assert RowCheckpoint(tmp_path / "c.jsonl", {"a": 1}).get("k") is None
