"""Universal cross-protocol margin and shared liquidator capital, on hand-computed two-venue worlds.

World: ``two_venues`` with perps only (instruments: alpha BTC 0, alpha ETH 1,
beta BTC 2, beta ETH 3), no issued token, flat cross margin IM 10 % / MM 5 %
on both protocols and as the run's (universal) regime, median marks and no
market makers or noise traders: with empty books (or a ladder centred on the
index) the mark is the index. Positions are opened by fee-free fills settled
directly in the ledger (``trade`` from the liquidation tests).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from sim.config import ConfigError, load_config
from sim.ledger import check_conservation
from sim.market.book import LIMIT
from sim.model import MarketModel
from tests.sim.test_liquidation import ladder, trade

FLAT = ["margin.params.tiers=flat", "+margin.params.imr=0.1", "+margin.params.mmr=0.05"]
FLAT += [f"++protocols.{i}.margin.params.{k}={v}" for i in (0, 1)
         for k, v in (("tiers", "flat"), ("imr", 0.1), ("mmr", 0.05))]
UM = ["protocols=two_venues", "agents=minimal", "scenario=calm", "agents.noise.n=0",
      "agents.market_maker.per_book=0", "output.figures=false", "protocols.0.issues=null",
      "protocols.1.margin=cross", "protocols.0.spot=false", "protocols.1.spot=false",
      "protocols.0.mark_price=median", "protocols.1.mark_price=median", *FLAT]
A_BTC, A_ETH, B_BTC, B_ETH = 0, 1, 2, 3
OWNER = 900


@functools.lru_cache(maxsize=8)
def _cfg(*extra: str):
    return load_config([*UM, *extra])


def world(universal: bool, *extra: str) -> MarketModel:
    model = MarketModel(_cfg(f"contagion.universal_margin={str(universal).lower()}", *extra))
    model.rich = [model.open_trader(p, 901 + p, 1e8, 0.0) for p in (0, 1)]
    return model


def owner_on_both(model, wallets, positions):
    """Owner ``OWNER`` with a sub-account per protocol; ``positions``: (j, qty, price) fills."""
    rows = [model.open_trader(p, OWNER, w, 0.0) for p, w in enumerate(wallets)]
    for j, qty, price in positions:
        p = model.instruments[j].protocol
        buyer, seller = (rows[p], model.rich[p]) if qty > 0 else (model.rich[p], rows[p])
        trade(model, buyer, seller, abs(qty), price, j=j)
    return rows


def figures(model, rows):
    eq, im, mm = model.view.margin(np.asarray(rows))
    return eq, im, mm


def test_universal_engine_nets_an_offsetting_cross_venue_pair():
    """Long 2 BTC on alpha, short 1 BTC on beta at 60,000, 10,000 USD on each venue.

    Siloed: IM = 10 % x 120,000 + 10 % x 60,000 = 18,000; MM 9,000.
    Universal: the netted position is long 1 BTC: IM 6,000, MM 3,000, plus the
    spread charge on the 1 BTC matched across venues, 1.75 % x 60,000 = 1,050:
    IM 7,050, MM 4,050; equity 20,000 (no P&L yet), split by footprint
    (10,000 + 6,000 : 10,000 + 3,000).
    """
    out = {}
    for universal in (False, True):
        model = world(universal)
        rows = owner_on_both(model, (10_000.0, 10_000.0),
                             [(A_BTC, 2.0, 60_000.0), (B_BTC, -1.0, 60_000.0)])
        model.evaluate_margins()
        out[universal] = figures(model, rows)
    eq, im, mm = out[False]
    assert im.sum() == pytest.approx(18_000.0) and mm.sum() == pytest.approx(9_000.0)
    assert eq.sum() == pytest.approx(20_000.0)
    eq, im, mm = out[True]
    assert im.sum() == pytest.approx(7_050.0) and mm.sum() == pytest.approx(4_050.0)
    assert eq.sum() == pytest.approx(20_000.0)
    w = np.array([16_000.0, 13_000.0]) / 29_000.0
    assert im == pytest.approx(7_050.0 * w) and eq == pytest.approx(20_000.0 * w)


def test_spread_charge_counts_matched_cross_venue_pairs_only():
    """Long 2 BTC on alpha, short 1 BTC on beta, long 3 ETH on beta.

    One BTC spread (ETH is on one side only), 2 % of 60,000 = 1,200; no charge at rate 0.
    """
    for rate, want in ((0.02, 1_200.0), (0.0, 0.0)):
        model = world(True, f"contagion.universal_spread_charge={rate}")
        rows = owner_on_both(model, (10_000.0, 10_000.0),
                             [(A_BTC, 2.0, 60_000.0), (B_BTC, -1.0, 60_000.0),
                              (B_ETH, 3.0, 3_000.0)])
        assert model.universal.spread_charge(np.asarray(rows)) == pytest.approx(want)
    with pytest.raises(ConfigError, match=r"contagion\.universal_spread_charge"):
        load_config([*UM, "contagion.universal_spread_charge=-0.1"])


def btc_on_alpha_short_on_beta(beta_haircut, btc, usd):
    """Owner figures: ``btc`` BTC on alpha (haircut 0), ``usd`` on beta, short 1 BTC there.

    Beta's haircut on BTC is ``beta_haircut``.
    """
    model = world(True, "protocols.0.margin.haircuts.BTC=0.0",
                  f"protocols.1.margin.haircuts.BTC={beta_haircut}")
    a = model.open_trader(0, OWNER, 0.0, 0.0)
    b = model.open_trader(1, OWNER, usd, 0.0)
    model.ledger.deposit(a, 1, btc)
    trade(model, model.rich[1], b, 1.0, 60_000.0, j=B_BTC)
    return model.universal.owner(np.array([a, b]))


def test_owner_figures_use_each_protocols_haircuts_through_the_allocation():
    """Collateral placed on a protocol's requirement counts at that protocol's haircut.

    Owner: beta sub-account short 1 BTC perp with no collateral; alpha
    sub-account holds 0.1 BTC (6,000 USD; alpha haircut 0, beta haircut 50 %).
    The netted IM 6,000 is all beta's share (alpha has no requirement), so the
    BTC is allocated to beta and counts 6,000 x (1 - 0.5) = 3,000 there:
    E_u = 3,000, shortfall 3,000 (siloed, alpha would show 6,000 of equity).
    """
    om = btc_on_alpha_short_on_beta(0.5, 0.1, 0.0)
    assert om.initial == pytest.approx(6_000.0) and om.maintenance == pytest.approx(3_000.0)
    assert om.equity == pytest.approx(3_000.0)
    assert om.shortfall == pytest.approx(3_000.0) and om.method == "closed-form"


def test_spare_collateral_counts_at_its_best_haircut_when_cash_covers_the_requirement():
    """Cash goes to beta's share first, so BTC not needed counts at alpha's haircut.

    Owner: alpha sub-account holds 0.2 BTC (12,000 USD; haircut 0 on alpha,
    10 % on beta); beta sub-account holds 5,000 USD and is short 1 BTC at
    60,000. Beta's share of the netted IM is 6,000: 5,000 USD and
    1,000 / 54,000 BTC cover it, the allocation that leaves the most value
    spare (margin.risk.optimisation, "Spare collateral"), so E_u = 6,000 +
    (0.2 − 1/54) x 60,000 = 16,888.89. Covering it with BTC only (an equally
    optimal LP vertex, the one HiGHS returns without ``keep_best``) would give
    6,000 + 5,000 + (0.2 − 1/9) x 60,000 = 16,333.33.
    """
    om = btc_on_alpha_short_on_beta(0.1, 0.2, 5_000.0)
    assert om.initial == pytest.approx(6_000.0)
    assert om.equity == pytest.approx(6_000.0 + (0.2 - 1 / 54) * 60_000.0)
    assert om.shortfall == pytest.approx(0.0, abs=1e-9)
    assert om.method == "closed-form"


@pytest.mark.parametrize("universal", [False, True])
def test_pretrade_accepts_a_hedge_only_with_universal_margin(universal):
    """Beta sub-account with 1,000 USD sells 1 BTC (IM 6,000 alone) against alpha's 1 BTC long."""
    model = world(universal)
    rows = owner_on_both(model, (10_000.0, 1_000.0), [(A_BTC, 1.0, 60_000.0)])
    model.evaluate_margins()
    inst = model.instruments[B_BTC]
    ev = model.view.new_events(1)
    ev["kind"], ev["side"], ev["owner"] = LIMIT, -1, rows[1]
    ev["qty"], ev["price"] = inst.lots(1.0), inst.ticks(60_000.0)
    rejected = model._pretrade(B_BTC, inst, model.protocols[1], ev, np.ones(1, np.bool_))
    assert (rejected is None) is universal


@pytest.mark.parametrize("universal", [False, True])
def test_loss_on_alpha_liquidates_the_owners_beta_account_only_with_universal_margin(universal):
    """Alpha: long 10 BTC @ 60,000 on 36,000 USD; beta: long 10 ETH @ 3,000 on 10,000 USD.

    BTC falls to 57,000 (ETH unchanged). Siloed: alpha E 6,000 < 2/3 x MM
    28,500 (backstopped); beta E 10,000 >= MM 1,500 (untouched). Universal:
    E_u = 16,000 against MM_u = 5 % x (570,000 + 30,000) = 30,000, ratio
    0.533 < 2/3: both sub-accounts are backstopped (no liquidators).
    """
    model = world(universal)
    assert model.asset_prices[2] == pytest.approx(3_000.0)
    a, b = owner_on_both(model, (36_000.0, 10_000.0),
                         [(A_BTC, 10.0, 60_000.0), (B_ETH, 10.0, 3_000.0)])
    model.evaluate_margins()
    eq, _im, mm = figures(model, [a, b])
    assert (eq >= mm).all()
    model.asset_prices[1] = model.fundamental[1] = 57_000.0
    model.update_marks()
    model.evaluate_margins()
    eq, _im, mm = figures(model, [a, b])
    if universal:
        assert eq.sum() == pytest.approx(16_000.0) and mm.sum() == pytest.approx(30_000.0)
        assert eq / mm == pytest.approx([16 / 30, 16 / 30])
    else:
        assert eq == pytest.approx([6_000.0, 10_000.0]) and mm == pytest.approx([28_500.0, 1_500.0])
    model.liquidation.run(1)
    events = model.liquidation.step_events
    check_conservation(model.ledger, model.marks)
    model.liquidation.check_bad_debt()
    on_beta = [e for e in events if e["protocol"] == 1 and e["account"] == b]
    on_alpha = [e for e in events if e["protocol"] == 0 and e["account"] == a]
    assert on_alpha and on_alpha[0]["kind"] == "backstop"
    assert bool(on_beta) is universal
    if universal:
        assert on_beta[0]["kind"] == "backstop" and on_beta[0]["instrument"] == B_ETH
        assert model.ledger.position[b, B_ETH] == 0.0


# ----------------------------------------------------- whole runs
TWO = ["protocols=two_venues", "steps=30", "scenario=calm", "agents.noise.n=30",
       "agents.leveraged.n=10", "output.figures=false", "progress=false"]


def _run(*extra: str):
    model = MarketModel(load_config([*TWO, *extra]))
    for _ in range(int(model.cfg.steps)):
        model.step()
    return model


def _same(m1, m2):
    pd.testing.assert_frame_equal(m1.datacollector.get_model_vars_dataframe(),
                                  m2.datacollector.get_model_vars_dataframe(), check_exact=True)
    assert m1.liquidation.events == m2.liquidation.events


def test_universal_run_is_deterministic_conserves_and_differs_from_siloed():
    on = ["contagion.universal_margin=true", "agents.leveraged.all_venues=true",
          "check_invariants=true"]
    m1, m2 = _run(*on), _run(*on)
    _same(m1, m2)  # check_invariants: conservation across both protocols every step
    assert len(m1.universal.groups()) == 11  # 10 leveraged owners and the arbitrageur
    off = _run("agents.leveraged.all_venues=true")
    a = m1.datacollector.get_model_vars_dataframe()["alpha.initial_margin"]
    b = off.datacollector.get_model_vars_dataframe()["alpha.initial_margin"]
    assert not a.equals(b)


def test_siloed_outputs_do_not_depend_on_owner_ids_or_an_idle_switch():
    base = _run()
    _same(base, _run("agents.leveraged.all_venues=true"))
    idle = ["agents.arbitrageur.enabled=false"]
    _same(_run(*idle), _run(*idle, "contagion.universal_margin=true"))


# ----------------------------------------------- shared liquidator capital
@pytest.mark.parametrize("shared", [False, True])
def test_shared_liquidator_capital_lets_a_large_alpha_liquidation_starve_beta(shared):
    """One liquidator, 20,000 USD on each venue, capital locked for the step (IM 10 %).

    BTC falls to 57,000. Alpha account: long 16 BTC on 80,000 (E 32,000, MM
    45,600: liquidatable, ratio 0.70), offered 8 BTC. Beta account: long 6 BTC
    on 28,000 (E 10,000, MM 17,100, ratio 0.585 < 2/3), offered 3 BTC.
    Separate capital: alpha's take is capped at 20,000 / 5,700 = 3.5 BTC and
    beta's 3 BTC fit its own 20,000. Pooled: alpha takes 7.017 BTC
    (40,000 / 5,700), locking the pool; beta's candidate finds no capacity and
    the insurance fund backstops it.
    """
    model = world(False, "agents.liquidator.n=1", "agents.liquidator.capital=20000",
                  "agents.liquidator.lock_capital=true",
                  "agents.liquidator.max_notional_per_step=1e12",
                  f"contagion.shared_liquidator_capital={str(shared).lower()}")
    a = model.open_trader(0, 800, 80_000.0, 0.0)
    b = model.open_trader(1, 801, 28_000.0, 0.0)
    trade(model, a, model.rich[0], 16.0, 60_000.0, j=A_BTC)
    trade(model, b, model.rich[1], 6.0, 60_000.0, j=B_BTC)
    model.asset_prices[1] = model.fundamental[1] = 57_000.0
    for p, j in ((0, A_BTC), (1, B_BTC)):
        model.lp = model.open_trader(p, 990 + p, 1e9, 0.0)
        ladder(model, 57_000.0, j=j)
    model.update_marks()
    model.evaluate_margins()
    assert model.marks[A_BTC] == model.marks[B_BTC] == 57_000.0
    model.liquidation.run(1)
    events = model.liquidation.step_events
    check_conservation(model.ledger, model.marks)
    taken = {p: sum(abs(e["size"]) for e in events if e["protocol"] == p and e["round"] == 1
                    and e["kind"] == "liquidator") for p in (0, 1)}
    beta_backstop = [e for e in events if e["account"] == b and e["kind"] == "backstop"]
    first_alpha = next(e for e in events if e["account"] == a and e["kind"] == "liquidator")
    if shared:
        assert first_alpha["size"] == pytest.approx(7.017)
        assert taken[1] == 0.0 and beta_backstop
    else:
        assert first_alpha["size"] == pytest.approx(3.508)
        assert taken[1] == pytest.approx(3.0) and not beta_backstop


def test_contagion_switches_must_be_booleans():
    with pytest.raises(ConfigError, match=r"contagion\.universal_margin"):
        load_config(["contagion.universal_margin=maybe"])


def test_universal_pretrade_rejects_what_the_pooled_collateral_cannot_carry():
    """1,000 USD on each venue (2,000 pooled); two buys of 0.3 BTC on beta need IM 1,800 each.

    The first passes (2,000 - fee >= 1,800), the second (IM 3,600) is rejected.
    """
    model = world(True)
    rows = owner_on_both(model, (1_000.0, 1_000.0), [])
    model.evaluate_margins()
    inst = model.instruments[B_BTC]
    ev = model.view.new_events(2)
    ev["kind"], ev["side"], ev["owner"] = LIMIT, 1, rows[1]
    ev["qty"], ev["price"] = inst.lots(0.3), inst.ticks(60_000.0)
    rejected = model._pretrade(B_BTC, inst, model.protocols[1], ev, np.ones(2, np.bool_))
    assert rejected.tolist() == [1]
    om = model.universal.owner(np.asarray(rows))
    assert om.method == "uniform" and om.equity == pytest.approx(2_000.0)


def test_universal_regime_picks_the_netting_engine():
    """The universal regime picks the netting engine, whatever the run's top-level margin.

    ``contagion.universal_regime=portfolio`` gives the same owner figures as a run whose
    ``margin`` is that preset (the protocols' own engines are flat cross in both), and not
    the flat 6,000.
    """
    pair = [(A_BTC, 2.0, 60_000.0), (B_BTC, -1.0, 60_000.0)]
    proto_flat = [o for o in UM if not o.startswith(("margin.", "+margin."))]
    worlds = {
        "key": MarketModel(load_config([*UM, "contagion.universal_margin=true",
                                        "contagion.universal_regime=portfolio"])),
        "run": MarketModel(load_config([*proto_flat, "margin=portfolio",
                                        "contagion.universal_margin=true"])),
    }
    out = {}
    for name, model in worlds.items():
        model.rich = [model.open_trader(p, 901 + p, 1e8, 0.0) for p in (0, 1)]
        rows = owner_on_both(model, (10_000.0, 10_000.0), pair)
        model.evaluate_margins()
        assert model.universal.engine.name == "portfolio"
        out[name] = np.concatenate(figures(model, rows))
    assert out["key"].tobytes() == out["run"].tobytes()
    assert out["key"][2:4].sum() != pytest.approx(6_000.0)
    with pytest.raises(ConfigError, match=r"contagion\.universal_regime: margin preset 'spanish'"):
        load_config([*UM, "contagion.universal_regime=spanish"])


@pytest.mark.parametrize("cover", [True, False])
def test_bankrupt_sub_account_draws_on_the_owners_other_venue_first(cover):
    """Alpha: 5,000 USD, no position; beta: long 10 ETH @ 3,000 on 1,000 USD.

    ETH falls to 2,000: beta's sub-account is 9,000 short. With the cover the owner's 5,000 on alpha
    pays first and beta's fund 4,000; without it beta's fund pays all 9,000 and alpha keeps its
    cash. Value is conserved either way.
    """
    model = world(True, f"contagion.universal_cover={str(cover).lower()}")
    a, b = owner_on_both(model, (5_000.0, 1_000.0), [(B_ETH, 10.0, 3_000.0)])
    model.asset_prices[2] = model.fundamental[2] = 2_000.0
    model.update_marks()
    model.evaluate_margins()
    fund0 = float(model.ledger.collateral[model.protocols[1].insurance, 0])
    model.liquidation.run(1)
    events = model.liquidation.step_events
    check_conservation(model.ledger, model.marks)
    model.liquidation.check_bad_debt()
    paid = fund0 - float(model.ledger.collateral[model.protocols[1].insurance, 0])
    moved = [e for e in events if e["kind"] == "universal_cover"]
    if cover:
        assert paid == pytest.approx(4_000.0)
        assert len(moved) == 1 and moved[0]["taker"] == a and moved[0]["account"] == b
        assert moved[0]["amount"] == pytest.approx(5_000.0)
        assert model.ledger.collateral[a, 0] == pytest.approx(0.0)
        assert model.liquidation.totals[1]["insolvency"] == pytest.approx(4_000.0)
    else:
        assert paid == pytest.approx(9_000.0) and not moved
        assert model.ledger.collateral[a, 0] == pytest.approx(5_000.0)
        assert model.liquidation.totals[1]["insolvency"] == pytest.approx(9_000.0)
