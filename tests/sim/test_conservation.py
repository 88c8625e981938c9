"""What the run's conservation checks measured, and how small a corruption they catch.

The default world holds about 1.1e8 USD of balances (deposits of every agent);
a relative tolerance against that total let a 0.1 USD corruption of one balance
pass. The tolerance is now the ledger's round-off bound (sim.ledger.invariants),
about 1e-4 USD after the default run, so a cent is caught.
"""

from __future__ import annotations

import json

import pytest

import sim
from sim.config import load_config
from sim.ledger import LedgerInvariantError, check_conservation
from sim.model import MarketModel

DEFAULT_SHORT = ["steps=60", "output.figures=false"]  # the default world, before its crash


@pytest.fixture(scope="module")
def default_model():
    """The default world after 60 steps (shared; tests repair what they corrupt)."""
    model = MarketModel(load_config(DEFAULT_SHORT))
    for _ in range(model.cfg.steps):
        model.step()
    return model


def _trader(model):
    return int(model.protocols[0].accounts[0])


@pytest.mark.parametrize("amount", [0.1, 0.01, -0.01])
def test_a_cent_on_one_balance_of_the_default_world_is_caught(default_model, amount):
    """0.1 and 0.01 USD on one trader's balance fail the supply check; repaired, it passes."""
    model, row = default_model, _trader(default_model)
    check_conservation(model.ledger, model.marks)  # honest: passes
    col = model.ledger._rows["collateral"]  # tests only: bypass the ledger's API
    col[row, 0] += amount
    try:
        with pytest.raises(LedgerInvariantError, match="supply invariant broken for asset USD"):
            check_conservation(model.ledger, model.marks)
        from sim.ledger import ConservationMonitor

        mon = ConservationMonitor()
        mon.check(model.ledger, model.marks, step=model.steps, raise_on_failure=False)
        rep = mon.report(model.asset_names)
        assert rep["ok"] is False and rep["assets"]["USD"]["ok"] is False
        assert rep["assets"]["USD"]["final"] == pytest.approx(amount, abs=1e-6)  # + round-off
        assert rep["assets"]["USD"]["worst_ratio"] > 1.0
        assert rep["assets"]["BTC"]["ok"] is True
    finally:
        col[row, 0] -= amount
    check_conservation(model.ledger, model.marks)
    (usd,) = [r for r in sim.ledger.conservation_residuals(model.ledger, model.marks)
              if r.subject == "asset USD"]
    assert usd.magnitude > 1e8 and usd.tolerance < 1e-3 and usd.ratio < 0.1


def test_run_records_the_measured_imbalance_every_step(tmp_path):
    """With check_invariants every step is measured; figures per asset and perp are recorded."""
    res = sim.run([*DEFAULT_SHORT, "steps=40", "check_invariants=true"], out_dir=tmp_path)
    cons = json.loads((tmp_path / "summary.json").read_text())["conservation"]
    assert cons == res.summary["conservation"]
    assert cons["ok"] is True and res.summary["ledger_conserved"] is True
    assert cons["steps_checked"] == 40 and cons["rtol"] == 0.0 and cons["tolerance_rule"]
    assert set(cons["assets"]) == {"USD", "BTC", "ETH"}
    assert set(cons["perps"]) == {"alpha:BTC-PERP", "alpha:ETH-PERP"}
    for group in ("assets", "perps"):
        for name, e in cons[group].items():
            assert e["ok"] is True, name
            assert 0.0 <= e["worst_abs"] <= e["final_tolerance"], name
            assert 0.0 <= e["worst_ratio"] < 0.1, name  # honest round-off: far inside
            assert e["worst_rel"] < 1e-13, name
            assert 1 <= e["worst_step"] <= 40, name
            assert abs(e["final"]) == pytest.approx(e["final_rel"] * e["final_magnitude"])
    assert cons["assets"]["USD"]["final_tolerance"] < 0.01
    assert cons["clearing"]["ok"] is True and cons["flows"]["ok"] is True


def test_without_per_step_checks_the_final_check_is_recorded(tmp_path):
    """Without per-step checks the report holds the final check only."""
    res = sim.run([*DEFAULT_SHORT, "steps=20"], out_dir=tmp_path)
    cons = res.summary["conservation"]
    assert cons["steps_checked"] == 1 and cons["ok"] is True
    assert cons["assets"]["USD"]["worst_step"] == 20
