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
    assert (res.timeseries["alpha:BTC-PERP.leveraged_oi_share"].iloc[1:] == 0.0).all()


def test_leveraged_share_of_open_interest_is_read_off_the_ledger():
    from sim.config import load_config
    from sim.model import MarketModel

    model = MarketModel(load_config(["steps=40", "output.figures=false"]))
    for _ in range(40):
        model.step()
    ts = model.datacollector.get_model_vars_dataframe()
    lev = np.concatenate([p.accounts for p in model.leveraged])
    pos = model.ledger.position
    for inst in model.instruments:
        if not inst.is_perp:
            continue
        held = np.abs(pos[lev, inst.index]).sum()
        oi = np.maximum(pos[:, inst.index], 0.0).sum()  # longs = shorts
        assert held > 0.0 and oi > held / 2
        assert ts[f"{inst.name}.leveraged_oi_share"].iloc[-1] == pytest.approx(held / (2 * oi))
        assert ts[f"{inst.name}.open_interest"].iloc[-1] == pytest.approx(oi)


@pytest.mark.parametrize("regime", ["static", "cross", "portfolio", "adaptive"])
def test_every_regime_runs_the_default_crash(regime, tmp_path):
    res = sim.run([*CRASH, f"margin={regime}", "steps=620"], out_dir=tmp_path)
    ts = res.timeseries
    assert np.isfinite(ts["alpha.initial_margin"]).all()
    assert res.summary["n_trades"] > 0
