"""Options in the simulated world: marks, listing, expiry at the TWAP, outputs, liquidation."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest

import sim
from sim.config import load_config
from sim.model import MarketModel
from sim.venue.options import settlement_payoff

OPTION_WORLD = [
    "market=btc_eth_options",
    "scenario=calm",
    "steps=45",
    "agents.noise.n=20",
    "agents.fundamentalist.n=5",
    "agents.momentum.n=5",
    "agents.leveraged.n=5",
    "agents.option_books.enter_steps=10",
    "market.options.expiry_hour=0.5",  # the first daily expiry falls at step 30
    "output.figures=false",
    "progress=false",
]


@pytest.fixture(scope="module")
def stepped():
    """A model stepped to the step before the first expiry, with positions recorded."""
    model = MarketModel(load_config([*OPTION_WORLD, "check_invariants=true"]))
    for _ in range(29):
        model.step()
    return model


def _pairs(model):
    """(call slot, put slot) of every listed strike of every group."""
    o = model.options
    out = []
    for g in range(len(o.chain.group_key)):
        ks = o.chain.group_slots(g)
        calls = {o.chain.slots[k].strike_index: k for k in ks if o.is_call[k]}
        puts = {o.chain.slots[k].strike_index: k for k in ks if not o.is_call[k]}
        out += [(calls[i], puts[i]) for i in calls if o.listed()[calls[i]]]
    return out


def test_put_call_parity_holds_on_every_simulated_mark(stepped):
    m = stepped
    o = m.options
    tte = o.time_to_expiry(m.steps)
    pairs = _pairs(m)
    assert len(pairs) >= 20
    for kc, kp in pairs:
        f = m.asset_prices[o.asset[kc]]
        k = o.chain.strike[kc]
        assert o.chain.strike[kp] == k and tte[kc] == tte[kp]
        c, p = m.marks[o.slots[kc]], m.marks[o.slots[kp]]
        assert c - p == pytest.approx(math.exp(-o.rate * tte[kc]) * (f - k), abs=1e-9 * f)
        assert m.implied_vols[o.slots[kc]] == m.implied_vols[o.slots[kp]]


def test_expiry_settles_at_the_index_twap_and_pays_q_times_payoff(stepped):
    m = stepped
    o = m.options
    due = [k for k in range(len(o.slots)) if o.chain.expiry_step[k] == 30]
    assert due, "a daily expiry at step 30"
    cols = o.slots[due]
    held = m.ledger.position[:, cols].copy()
    realised = m.ledger.realised_pnl[:, cols].copy()
    assert (held != 0).any(), "somebody holds an expiring option"
    strikes = o.chain.strike[due].copy()
    m.step()  # step 30: expiry, settlement, relisting
    twap = {a: m.price_history[1:31, a].mean() for a in (1, 2)}
    ev = pd.DataFrame(o.events)
    settled = ev[(ev["kind"] == "settle") & (ev["step"] == 30)]
    assert sorted(settled["instrument"]) == sorted(cols.tolist())
    for c, (j, k) in enumerate(zip(cols, due, strict=True)):
        row = settled[settled["instrument"] == j].iloc[0]
        a = int(o.asset[k])
        assert row["settlement_price"] == pytest.approx(twap[a], rel=1e-12)
        payoff = settlement_payoff(twap[a], strikes[c], bool(o.is_call[k]), False)
        assert row["payoff"] == pytest.approx(payoff, rel=1e-12)
        paid = m.ledger.realised_pnl[:, j] - realised[:, c]
        np.testing.assert_allclose(paid, held[:, c] * payoff, rtol=1e-12, atol=1e-9)
    # the slots hold new contracts, later than step 30, with strikes around the index now
    assert (o.chain.expiry_step[due] > 30).all()
    # conservation was checked every step (check_invariants=true), settlement included
    m.conservation.check(m.ledger, m.marks, step=m.steps)
    assert m.conservation.report()["ok"]


def test_a_run_with_options_is_deterministic(tmp_path):
    def digest(d):
        return {f: hashlib.sha256((d / f).read_bytes()).hexdigest()
                for f in ("timeseries.parquet", "trades.parquet", "option_events.parquet",
                          "liquidations.parquet", "summary.json", "accounts.parquet")}

    over = [*OPTION_WORLD, "steps=40", "output.accounts_every=20"]
    a = sim.run(over, out_dir=tmp_path / "a")
    b = sim.run(over, out_dir=tmp_path / "b")
    assert digest(a.out_dir) == digest(b.out_dir)
    names = set(a.trades["instrument"])
    assert any("-T30-" in n for n in names), "option fills carry their contract's name"
    assert a.summary["options"]["alpha.BTC"]["contracts_settled"] == 10  # 5 strikes x C/P


def test_dealer_greeks_and_accounts_table_reconcile_with_the_ledger():
    model = MarketModel(load_config([*OPTION_WORLD, "steps=20", "output.accounts_every=10"]))
    for _ in range(20):
        model.step()
    acc = pd.DataFrame(model.accounts_table())
    assert set(acc["step"]) == {0, 10, 20}
    assert {"OptionMarketMaker", "OptionBookPopulation:covered_call"} <= set(acc["agent"])
    last = acc[acc["step"] == 20].set_index("account")
    rows, result = model.margin_state[0]
    np.testing.assert_array_equal(last.loc[rows, "equity"].to_numpy(), result.equity)
    np.testing.assert_array_equal(last.loc[rows, "initial"].to_numpy(), result.initial)
    value = model.ledger.account_value(model.asset_prices, model.marks)[rows]
    np.testing.assert_array_equal(last.loc[rows, "value"].to_numpy(), value)
    o, g = model.options, model.option_greeks
    btc_slots = o.slots[o.asset == 1]
    pos = model.ledger.position
    perps = [i.index for i in model.instruments if i.is_perp and i.base == 1]
    want = (model.ledger.collateral[rows, 1] + pos[rows][:, perps].sum(axis=1)
            + pos[rows][:, btc_slots] @ g.delta[o.asset == 1])
    np.testing.assert_allclose(last.loc[rows, "delta_BTC"].to_numpy(), want, rtol=1e-12)
    dealers = model.option_dealers
    gamma = (pos[dealers][:, btc_slots] * g.gamma[o.asset == 1]).sum()
    assert model.metrics["alpha.BTC.opt_dealer_gamma"] == pytest.approx(gamma)
    assert gamma != 0.0


def test_an_account_short_options_below_maintenance_has_them_closed():
    model = MarketModel(load_config(OPTION_WORLD))
    for _ in range(5):
        model.step()
    o = model.options
    k = next(k for k in range(len(o.slots)) if o.listed()[k] and o.is_call[k]
             and o.asset[k] == 1)
    j = int(o.slots[k])
    row = int(model.option_books[0].accounts[0])
    maker = int(model.option_dealers[0])
    lg = model.ledger
    # the trader sells 3 BTC of calls to the maker at the mark (no margin check)
    lg.settle_fills(j, [maker], [row], [-1], [float(model.marks[j])], [3.0], 0.0, 0.0,
                    model.protocols[0].treasury)
    cash = float(lg.collateral[row, 0])
    lg.transfer(row, model.protocols[0].insurance, 0, cash - 1_000.0)  # leave 1,000 USD
    model.step()
    ev = pd.DataFrame(model.liquidation.events)
    mine = ev[(ev["account"] == row) & ev["kind"].isin(["option_close", "option_takeover"])]
    assert len(mine) >= 1
    assert abs(mine["size"].sum() + 3.0) < 1e-9 or lg.position[row, j] == 0.0
    assert lg.position[row, j] == 0.0


def test_inverse_premium_trades_and_settles_in_the_coin():
    model = MarketModel(load_config([*OPTION_WORLD, "market.options.premium=inverse",
                                     "check_invariants=true"]))
    o = model.options
    assert (o.quote == o.asset).all()  # every inverse option is quoted in its underlying
    for _ in range(31):  # through the step-30 expiry; conservation checked every step
        model.step()
    f = model.asset_prices[o.asset]
    np.testing.assert_allclose(model.marks[o.slots] * f, model.engine_marks[o.slots], rtol=1e-12)
    ev = pd.DataFrame(o.events)
    done = ev[ev["kind"] == "settle"]
    for _, row in done.iterrows():
        k = int(np.flatnonzero(o.slots == row["instrument"])[0])
        s, strike = row["settlement_price"], row["strike"]
        want = (max(s - strike, 0.0) if o.is_call[k] else max(strike - s, 0.0)) / s
        assert row["payoff"] == pytest.approx(want, rel=1e-12)
    assert (done["paid_to_longs"] > 0).any()
    trades = pd.DataFrame(model.trades_table())
    assert trades["instrument"].str.contains("-T").any()
    clearing = model.protocols[0].option_clearing
    assert set(clearing) == {1, 2}  # one clearing row per coin
    for a, row in clearing.items():
        assert abs(model.ledger.collateral[row, a]) < 1e-9


def test_a_volatility_spike_lifts_and_a_crash_skews_the_surface():
    base = [*OPTION_WORLD, "steps=40", "agents.option_books.counts.directional=0"]
    spike = ["scenario=vol_spike", "scenario.params.start_step=5", "scenario.params.end_step=40",
             "scenario.params.multiplier=4.0"]
    crash = ["scenario=jump_crash", "scenario.params.start_step=5", "scenario.params.crash=0.2",
             "scenario.params.duration_steps=5"]
    iv, skew = {}, {}
    for name, extra in (("calm", []), ("spike", spike), ("crash", crash)):
        model = MarketModel(load_config([*base, *extra]))
        for _ in range(30):
            model.step()
        iv[name] = model.metrics["alpha.BTC.opt_atm_iv_30d"]
        skew[name] = model.metrics["alpha.BTC.opt_skew"]
    assert iv["spike"] > 1.2 * iv["calm"]
    assert skew["crash"] < skew["calm"] - 0.05
    assert skew["spike"] == pytest.approx(skew["calm"], abs=0.02)
