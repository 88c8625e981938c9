"""The gamma-squeeze study: dealers' hedging moves the perpetual book; paired, failures counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments import gamma_squeeze as gs

SMALL = ["steps=130", "scenario.params.start_step=90", "scenario.params.duration_steps=20",
         "agents.option_books.enter_steps=30", "agents.noise.n=30"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("squeeze")
    runs, table, failed = gs.run_study(2, 1, "BTC", SMALL, out, progress=False)
    return out, runs, table, failed


def test_hedging_sells_the_perpetual_below_the_index(study):
    out, runs, _table, failed = study
    assert failed == 0
    h = runs[runs["arm"] == "hedged"].set_index("replicate")
    u = runs[runs["arm"] == "unhedged"].set_index("replicate")
    assert (h["dealer_gamma"] < 0).all()  # the dealers are short gamma before the fall
    np.testing.assert_array_equal(h["dealer_gamma"], u["dealer_gamma"])  # same world till then
    assert (h["dealer_hedge_volume"] > 0).all() and (u["dealer_hedge_volume"] == 0).all()
    assert (h["basis_bps"] < u["basis_bps"]).all()
    assert (h["bid_depth_1pct"] < u["bid_depth_1pct"]).all()
    assert (out / "figures" / "gamma_squeeze.png").is_file()


def test_the_table_is_the_paired_difference_of_the_run_table(study):
    out, _runs, _table, _failed = study
    again = pd.read_csv(out / "gamma_squeeze.csv")
    t = pd.read_csv(out / "tables" / "gamma_squeeze.csv").set_index("metric")
    for m in gs.METRICS:
        h = again[again["arm"] == "hedged"].sort_values("replicate")[m].to_numpy()
        u = again[again["arm"] == "unhedged"].sort_values("replicate")[m].to_numpy()
        assert t.loc[m, "diff"] == pytest.approx((h - u).mean(), abs=1e-12)
        assert t.loc[m, "hedged"] == pytest.approx(h.mean(), abs=1e-12)
    assert (out / "tables" / "gamma_squeeze.md").is_file()
    assert (out / "tables" / "gamma_squeeze.tex").is_file()


def test_a_failed_run_is_counted_and_nan(tmp_path, monkeypatch):
    import sim

    real = sim.run

    def flaky(overrides, **kw):
        if any(o.startswith("agents.option_dealer.hedge_band") for o in overrides) \
                and "r01" in str(kw.get("out_dir")):
            raise RuntimeError("boom")
        return real(overrides, **kw)

    monkeypatch.setattr(sim, "run", flaky)
    runs, table, failed = gs.run_study(2, 1, "BTC", SMALL, tmp_path, progress=False)
    assert failed == 1
    bad = runs[(runs["arm"] == "unhedged") & (runs["replicate"] == 1)]
    assert bad[list(gs.METRICS)].isna().all(axis=None)
    row = table.set_index("metric").loc["basis_bps"]
    assert row["runs_failed"] == 1 and row["pairs"] == 1


def test_bad_arguments_stop_with_one_line_and_status_2(capsys):
    with pytest.raises(SystemExit) as e:
        gs.main(["--replicates", "1"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--replicates" in err[0]
