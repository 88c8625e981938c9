"""The default world.

A crash with every agent type liquidates, conserves value, and runs under every regime; without
leveraged traders nobody is liquidated.
"""

from __future__ import annotations

import numpy as np
import pytest

import sim

CRASH = ["steps=640", "output.figures=false", "check_invariants=true"]  # crash at step 600


def test_crash_liquidates_and_conserves(tmp_path):
    res = sim.run(CRASH, out_dir=tmp_path)  # the conservation check runs every step
    ev = res.liquidations
    assert len(ev) > 0
    assert set(ev["kind"]) <= {
        "liquidator",
        "backstop",
        "insurance",
        "adl",
        "socialised",
        "bad_debt",
    }
    assert (ev["step"] >= 600).all()  # nothing before the crash
    assert (tmp_path / "liquidations.parquet").is_file()
    s = res.summary["liquidation"]["alpha"]
    assert s["events"] == len(ev)
    # the shock is −30 % on both assets; the book's drawdown is at least that
    for name, inst in res.summary["instruments"].items():
        assert inst["max_drawdown"] >= 0.29, name
        assert inst["amplification"] >= 0.97, name


def test_no_leveraged_traders_no_liquidations(tmp_path):
    res = sim.run([*CRASH, "agents.leveraged.n=0"], out_dir=tmp_path)
    assert len(res.liquidations) == 0
    assert res.summary["liquidation"]["alpha"]["bad_debt_total"] == 0.0


@pytest.mark.parametrize("regime", ["static", "cross", "portfolio", "adaptive"])
def test_every_regime_runs_the_default_crash(regime, tmp_path):
    res = sim.run([*CRASH, f"margin={regime}", "steps=620"], out_dir=tmp_path)
    ts = res.timeseries
    assert np.isfinite(ts["alpha.initial_margin"]).all()
    assert res.summary["n_trades"] > 0
