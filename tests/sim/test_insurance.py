"""The insurance fund valued at mark (sim.venue.insurance), tested on a forced rally.

A rally makes the fund's taken-over shorts lose far more than its cash, and the
outputs must say so.

The default world is run with its fundamental path multiplied by up to 10 over
steps 150-159 (a forced rally; the jump-crash scenario only falls). Leveraged
shorts are liquidated; the backstop and the waterfall leave their positions with
the fund, which keeps them.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest

import sim.model as sim_model
from sim.config import load_config
from sim.model import MarketModel
from sim.output.metrics import summarize
from sim.output.runner import run

RALLY = ["steps=260", "output.figures=false"]
START, RAMP, FACTOR = 150, 10, 10.0


@contextmanager
def forced_rally():
    """Multiply every fundamental by ``FACTOR ** (k / RAMP)`` from step ``START`` on."""
    real = sim_model.build_scenario

    def build(cfg, market):
        scenario = real(cfg, market)
        advance, calls = scenario.advance, [0]

        def rally(rng):
            calls[0] += 1  # one call per model step, from step 1
            k = min(max(calls[0] - START + 1, 0), RAMP)
            return advance(rng) * FACTOR ** (k / RAMP)

        scenario.advance = rally
        return scenario

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sim_model, "build_scenario", build)
        yield


@pytest.fixture(scope="module")
def rally_run(tmp_path_factory):
    """The forced rally through the runner: (RunResult, summary.json, timeseries.parquet)."""
    out = tmp_path_factory.mktemp("rally")
    with forced_rally():
        res = run(RALLY, out_dir=out)
    return res, json.loads((out / "summary.json").read_text()), pd.read_parquet(
        out / "timeseries.parquet")


@pytest.fixture(scope="module")
def rally_model():
    """The same rally stepped in a model, to value the fund's row independently."""
    with forced_rally():
        model = MarketModel(load_config(RALLY))
        for _ in range(model.cfg.steps):
            model.step()
    return model


def _row_value(model, row):
    """Balances at the index plus perp positions at the mark against their entry, by loops."""
    lg = model.ledger
    value = 0.0
    for a in range(lg.n_assets):
        value += float(lg.collateral[row, a]) * float(model.asset_prices[a])
    for j in range(lg.n_instruments):
        if lg.instrument_kind[j] == 1 and lg.position[row, j] != 0.0:
            q, e, m = (float(lg.position[row, j]), float(lg.entry_price[row, j]),
                       float(model.marks[j]))
            value += q * (m - e)
    return value


def test_rally_fund_holds_shorts_worth_far_less_than_its_cash(rally_run):
    """Shorts at mark, equity millions below cash, loss = initial - equity and its split."""
    _, summary, _ = rally_run
    p = summary["protocols"]["alpha"]
    shorts = {k: v for k, v in p["insurance_positions"].items() if v["size"] < 0}
    assert shorts, p["insurance_positions"]  # the fund took over liquidated shorts
    for e in shorts.values():
        assert e["notional"] == pytest.approx(abs(e["size"]) * e["mark"], rel=1e-9)
        assert e["unrealised_pnl"] < 0.0
    # the taken-over shorts lost millions; the cash alone hides it
    assert p["insurance_equity"] < p["insurance_cash"] - 5e6
    assert p["insurance_fund"] == p["insurance_cash"]  # kept for compatibility: the cash
    assert p["insurance_loss"] == pytest.approx(p["insurance_initial"] - p["insurance_equity"])
    assert p["insurance_loss"] > p["insurance_initial"]  # more than the whole fund
    split = p["insurance_paid_out"] - p["insurance_fee_income"] - p["insurance_takeover_pnl"]
    assert split == pytest.approx(p["insurance_loss"], rel=1e-9)
    assert p["insurance_position_notional"] == pytest.approx(
        sum(e["notional"] for e in p["insurance_positions"].values()), rel=1e-9)


def test_negative_fund_equity_is_bad_debt_at_mark(rally_run):
    """What the fund cannot cover at mark is bad debt at mark, beside the recorded."""
    _, summary, _ = rally_run
    p = summary["protocols"]["alpha"]
    recorded = summary["liquidation"]["alpha"]["bad_debt_total"]
    assert p["insurance_equity"] < 0.0
    assert p["bad_debt_uncovered_at_mark"] == pytest.approx(-p["insurance_equity"])
    assert p["bad_debt_uncovered_at_mark"] > 1e6
    assert p["bad_debt_recorded"] == pytest.approx(recorded)
    assert p["bad_debt_total_at_mark"] == pytest.approx(recorded + p["bad_debt_uncovered_at_mark"])
    liq = summary["liquidation"]["alpha"]
    assert liq["bad_debt_uncovered_at_mark"] == pytest.approx(p["bad_debt_uncovered_at_mark"])
    assert liq["bad_debt_total_at_mark"] == pytest.approx(p["bad_debt_total_at_mark"])


def test_fund_equity_is_the_value_of_its_ledger_row(rally_model):
    """Equity, cash and notional equal the fund row's values computed by loops."""
    model = rally_model
    p = model.protocols[0]
    want = _row_value(model, p.insurance)
    st = model.insurance_state(p)
    assert st.equity == pytest.approx(want, rel=1e-12)
    assert st.cash == float(model.ledger.collateral[p.insurance, 0])
    assert st.equity < st.cash - 5e6
    assert model.metrics["alpha.insurance_equity"] == pytest.approx(want, rel=1e-12)
    assert model.metrics["alpha.insurance_fund"] == pytest.approx(want, rel=1e-12)
    notional = sum(abs(float(model.ledger.position[p.insurance, j])) * float(model.marks[j])
                   for j in range(len(model.instruments)) if model.instruments[j].is_perp)
    assert model.metrics["alpha.insurance_position_notional"] == pytest.approx(notional, rel=1e-12)
    ts = model.datacollector.get_model_vars_dataframe().reset_index(drop=True)
    s = summarize(model, ts, pd.DataFrame(model.trades_table()))["protocols"]["alpha"]
    assert s["insurance_equity"] == pytest.approx(want, rel=1e-9)


def test_fund_columns_per_step_and_last_row_equals_summary(rally_run):
    """The per-step columns exist and their last row is the summary."""
    res, summary, ts = rally_run
    cols = ["insurance_cash", "insurance_equity", "insurance_position_notional", "insurance_loss",
            "bad_debt_uncovered_at_mark", "bad_debt_total_at_mark"]
    p = summary["protocols"]["alpha"]
    last = ts.iloc[-1]
    for c in cols:
        assert f"alpha.{c}" in ts.columns, c
        assert last[f"alpha.{c}"] == pytest.approx(p[c], rel=1e-9, abs=1e-6), c
    assert np.isfinite(ts["alpha.insurance_equity"]).all()
    # before the rally the fund is near its initial capital; after it, deep under water
    assert ts["alpha.insurance_equity"].iloc[START - 10] > 0.5 * p["insurance_initial"]
    assert (ts["alpha.bad_debt_uncovered_at_mark"] == np.maximum(
        -ts["alpha.insurance_equity"], 0.0)).all()
    assert (res.timeseries.columns == ts.columns).all()


def test_cli_table_shows_the_funds_marked_equity_and_loss(rally_run):
    """The CLI's summary line shows equity at mark, cash, loss and bad debt at mark."""
    from sim.output.cli import _summary_table

    res, summary, _ = rally_run
    p = summary["protocols"]["alpha"]
    table = _summary_table(res)
    assert f"equity at mark {p['insurance_equity']:,.0f}" in table
    assert f"loss {p['insurance_loss']:,.0f}" in table
    assert f"cash {p['insurance_cash']:,.0f}" in table
    assert f"at mark {p['bad_debt_total_at_mark']:,.0f}" in table
    assert "ledger conserved: True" in table
