"""The agent-model contagion-matrix study at a tiny size."""

from __future__ import annotations

import json

import pytest

from experiments import contagion_matrix as cm
from experiments.common import load_study_config

TINY = ["world=null", "overrides=[protocols=two_venues,steps=20,scenario=calm,agents.noise.n=10,"
        "agents.leveraged.n=5,agents.fundamentalist.n=5,agents.momentum.n=5,"
        "protocols.0.insurance_fund=0,protocols.1.insurance_fund=0,"
        "protocols.0.liquidation.bad_debt=write_off,protocols.1.liquidation.bad_debt=write_off,"
        "protocols.0.issues.supply=800000]",
        "shock_step=5", "size=200000", "seeds=[1,2]"]


def test_study_writes_matrix_table_and_figures(tmp_path):
    cfg = load_study_config("contagion_matrix", [*TINY, f"output_dir={tmp_path}"])
    out = cm.run_study(cfg)
    result = json.loads((out / "matrix.json").read_text())
    assert result["protocols"] == ["alpha", "beta"]
    assert set(result["runs"]) == {"all_on", "no_token_impairment"}
    import pandas as pd

    t = pd.read_csv(out / "tables" / "contagion_matrix.csv")
    assert len(t) == 2 * 3 * 4 and set(t["n"]) == {2}
    cell = t.set_index(["channels", "measure", "shocked", "at"])["mean"]
    # the whole 2e5 deficit is recorded at the shocked protocol (no fund, write-off)
    assert cell[("all_on", "bad_debt", "alpha", "alpha")] == pytest.approx(2e5)
    assert cell[("all_on", "bad_debt", "beta", "beta")] == pytest.approx(2e5)
    # the token carries alpha's loss to beta's traders only with impairment on
    assert cell[("all_on", "equity_loss", "alpha", "beta")] > 1e4
    assert cell[("no_token_impairment", "equity_loss", "alpha", "beta")] == 0.0
    figs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert len(figs) == 2 * 3 and "contagion_matrix_all_on_equity_loss.png" in figs


def test_bad_study_input_is_one_line(tmp_path):
    cfg = load_study_config("contagion_matrix", [*TINY, "shock=meteor", f"output_dir={tmp_path}"])
    with pytest.raises(ValueError, match="shock must be one of"):
        cm.run_matrices(cfg)
    cfg = load_study_config("contagion_matrix", [*TINY, "seeds=[]", f"output_dir={tmp_path}"])
    with pytest.raises(ValueError, match="seeds must list"):
        cm.run_matrices(cfg)


def test_study_resumes_per_channel_and_seed(tmp_path, monkeypatch):
    cfg = load_study_config("contagion_matrix", [*TINY, "seeds=[1]",
                                                 "channels={all_on: []}", f"output_dir={tmp_path}"])
    cm.run_study(cfg)
    table = (tmp_path / "tables" / "contagion_matrix.csv").read_bytes()
    import sim.contagion

    monkeypatch.setattr(sim.contagion, "run_with_shock",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("re-ran")))
    cm.run_study(cfg)  # everything from matrix_runs.jsonl
    assert (tmp_path / "tables" / "contagion_matrix.csv").read_bytes() == table
