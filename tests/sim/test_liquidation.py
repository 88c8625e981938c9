"""Liquidation rounds, backstop and the bad-debt waterfall, on tiny hand-computed worlds.

Worlds: one protocol, perps only, flat cross margin (IM 10 %, MM 5 %), no
market makers or noise traders. Liquidity is a fixed ladder posted by a rich
liquidity provider around the index (0.5 BTC every 5 USD), so sweep costs are
known. Positions are opened by settling a fee-free trade directly in the
ledger, so that until a liquidator trades the book mid is the index and there
is no last trade: the mark equals the index exactly.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.config import LiquidatorConfig
from sim.config import load_config
from sim.ledger import check_conservation
from sim.market.book import CANCEL, LIMIT
from sim.model import MarketModel
from sim.venue.liquidation import (
    LiquidationConfig,
    LiquidationEngine,
    bankruptcy_prices,
    close_fraction,
    offer_qty,
)
from sim.venue.liquidation.waterfall import stable_order
from sim.world import build_liquidators


def _rounds(engine, step):
    """Run one step's liquidation rounds; their events (``run`` returns the margins)."""
    engine.run(step)
    return engine.step_events

BASE = ["agents=minimal", "scenario=calm", "agents.noise.n=0", "output.figures=false",
        "protocols.0.spot=false", "protocols.0.mark_price=median",
        "margin.params.tiers=flat", "+margin.params.imr=0.1", "+margin.params.mmr=0.05",
        "agents.market_maker.per_book=0"]
BTC = 0  # the BTC perpetual's instrument index
LOT = 0.001


@functools.lru_cache(maxsize=1)
def _cfg():
    return load_config(BASE)


def world(liq=None, liquidators=None, insurance=1_000_000.0):
    """A fresh model with a liquidation engine, optional liquidators and a BTC ladder."""
    model = MarketModel(_cfg())
    model.lp = model.open_trader(0, 999, 1e9, 0.0)
    ladder(model, 60_000.0)
    engine = LiquidationEngine(model, [liq or LiquidationConfig()])
    model.liquidators = build_liquidators(model, liquidators) if liquidators else []
    ins = model.protocols[0].insurance
    lg = model.ledger
    lg.withdraw(ins, 0, float(lg.collateral[ins, 0]))
    if insurance:
        lg.deposit(ins, 0, insurance)
    return model, engine


def trade(model, buyer, seller, qty, price, j=BTC):
    """A fee-free fill settled in the ledger (and known to the book's reduce-only positions)."""
    lg = model.ledger
    treasury = model.protocols[0].treasury
    lg.settle_fills(j, [seller], [buyer], [1], [price], [qty], 0.0, 0.0, treasury)
    lot = model.instruments[j].lot_size
    for r in (buyer, seller):
        model.books[j].set_position(r, int(round(lg.position[r, j] / lot)))  # noqa: RUF046 - numpy floats


def ladder(model, center, levels=20, spacing=5.0, qty=0.5, j=BTC):
    """Replace the provider's quotes by ``levels`` bids and asks of ``qty`` every ``spacing``."""
    book = model.books[j]
    live = book.live_orders()
    mine = live["order_id"][live["owner"] == model.lp]
    inst = model.instruments[j]
    ev = model.view.new_events(len(mine) + 2 * levels)
    ev["kind"][: len(mine)] = CANCEL
    ev["order_id"][: len(mine)] = mine
    k = np.arange(1, levels + 1)
    new = ev[len(mine):]
    new["kind"] = LIMIT
    new["owner"] = model.lp
    new["side"] = np.repeat([1, -1], levels)
    new["price"] = inst.ticks(np.concatenate([center - spacing * k, center + spacing * k]))
    new["qty"] = inst.lots(qty)
    ev[len(mine):] = new
    res = model.submit(j, ev)
    assert (res["status"][len(mine):] == 0).all()


def shock(model, price, asset=1):
    """Move the index, re-centre the ladder, re-mark and re-evaluate."""
    model.asset_prices[asset] = price
    model.fundamental[asset] = price
    ladder(model, price)
    model.update_marks()
    return model.evaluate_margins()


def margin_of(model, row):
    eq, im, mm = model.view.margin(np.array([row]))
    return float(eq[0]), float(im[0]), float(mm[0])


def value(model, row):
    return float(model.ledger.account_value(model.asset_prices, model.marks)[row])


def leveraged_long(model, wallet=4000.0, entry=60000.0, qty=1.0):
    """Account A (long ``qty`` at ``entry`` on ``wallet`` USD) and a rich short S."""
    a = model.open_trader(0, 900, wallet, 0.0)
    s = model.open_trader(0, 901, 10_000_000.0, 0.0)
    trade(model, a, s, qty, entry)
    model.evaluate_margins()
    return a, s


def check(model, engine):
    check_conservation(model.ledger, model.marks)
    engine.check_bad_debt()


# ------------------------------------------------------------------ liquidation
def test_leveraged_long_is_liquidated_after_a_known_shock():
    model, engine = world(liquidators=LiquidatorConfig(n=2))
    a, _ = leveraged_long(model)  # long 1 BTC @ 60,000 on 4,000 USD: E 4,000 >= MM 3,000
    eq, _, mm = margin_of(model, a)
    assert eq == pytest.approx(4000.0) and mm == pytest.approx(3000.0) and eq > mm
    shock(model, 58_500.0)  # -2.5 %: E 2,500 < MM 2,925 (but > 2/3 MM: no backstop)
    assert model.marks[BTC] == 58_500.0
    eq, _, mm = margin_of(model, a)
    assert eq == pytest.approx(2500.0) and mm == pytest.approx(2925.0)
    check(model, engine)
    ins = model.protocols[0].insurance
    ins0 = float(model.ledger.collateral[ins, 0])
    events = _rounds(engine, 1)
    check(model, engine)
    assert len(events) == 1
    ev = events[0]
    taker = ev["taker"]
    assert taker in {liq.accounts[0] for liq in model.liquidators}
    assert ev["kind"] == "liquidator" and ev["account"] == a and ev["instrument"] == BTC
    assert ev["size"] == pytest.approx(0.5)  # close factor 50 % (Aave)
    assert ev["price"] == 58_500.0
    fee = 0.01 * 0.5 * 58_500.0  # 292.5, half to the liquidator, half to the fund
    assert ev["bonus"] == pytest.approx(fee / 2) and ev["fee"] == pytest.approx(fee / 2)
    assert ev["shortfall"] == 0.0 and ev["round"] == 1 and ev["step"] == 1
    lg = model.ledger
    assert lg.position[a, BTC] == pytest.approx(0.5)
    # 4,000 - realised 0.5 x 1,500 - fee 292.5
    assert lg.collateral[a, 0] == pytest.approx(4000.0 - 750.0 - fee)
    assert lg.collateral[ins, 0] == pytest.approx(ins0 + fee / 2)
    # the liquidator sold what it took into the bids: flat, and it made money
    assert abs(lg.position[taker, BTC]) < LOT
    assert lg.collateral[taker, 0] > 1_000_000.0
    assert model.last_price[BTC] < 58_500.0
    eq, _, mm = margin_of(model, a)  # re-evaluated after the round: healthy again
    assert eq > mm
    stats = engine.step_stats[0]
    assert stats["liquidations"] == 1 and stats["rounds"] == 1
    assert stats["notional"] == pytest.approx(0.5 * 58_500.0)
    assert engine.events == events


def test_no_liquidatable_accounts_no_events():
    model, engine = world(liquidators=LiquidatorConfig(n=2))
    leveraged_long(model)
    remarks = []
    update = model.update_marks
    model.update_marks = lambda: remarks.append(1) or update()
    assert _rounds(engine, 0) == []
    assert remarks == []  # a quiet first round ends the phase: no re-mark
    for _ in range(3):
        model.step()
        assert _rounds(engine, model.steps) == []
    assert engine.events == [] and all(v == 0 for v in engine.totals[0].values())
    check(model, engine)


@pytest.mark.parametrize("price, expect_deficit", [(56_500.0, 0.0), (55_500.0, 500.0)])
def test_deficit_only_when_closed_past_the_bankruptcy_price(price, expect_deficit):
    # long 1 @ 60,000 on 4,000: bankruptcy price 56,000
    model, engine = world()
    a, _ = leveraged_long(model)
    shock(model, price)
    ins = model.protocols[0].insurance
    ins0 = float(model.ledger.collateral[ins, 0])
    events = _rounds(engine, 1)
    check(model, engine)
    assert engine.step_stats[0]["insolvency"] == pytest.approx(expect_deficit)
    assert engine.bad_debt[0] == 0.0  # the fund covers it
    lg = model.ledger
    assert lg.position[a, BTC] == 0.0 and lg.position[ins, BTC] == pytest.approx(1.0)
    assert value(model, a) == pytest.approx(0.0, abs=1e-6)
    if expect_deficit:  # bankrupt: the fund pays 500 and takes the position
        assert [e["kind"] for e in events] == ["insurance"]
        assert events[0]["amount"] == pytest.approx(500.0)
        assert lg.collateral[ins, 0] == pytest.approx(ins0 - 500.0)
    else:  # solvent but under 2/3 MM: backstop takes position and the 500 margin left
        assert [(e["kind"], e["instrument"], e["asset"]) for e in events] == [
            ("backstop", BTC, -1), ("backstop", -1, 0)]
        assert events[0]["size"] == 1.0 and events[0]["price"] == price
        assert events[1]["fee"] == pytest.approx(500.0)
        assert lg.collateral[ins, 0] == pytest.approx(ins0 + 500.0)


# ------------------------------------------------------------ bad-debt waterfall
def tiny_world(rule, insurance):
    """A long 1 BTC (avg 61,500.

    Wallet 3,000) against S1 (0.5 @ 62,000, wallet 5,000) and S2 (0.5 @ 61,000, wallet 2,000); the
    index then falls to 55,000.

    A's value is 3,000 - 6,500 = -3,500; its bankruptcy price is 58,500. At 55,000
    S1 has uPnL 3,500 and value 8,500; S2 uPnL 3,000 and value 5,000.
    """
    model, engine = world(LiquidationConfig(bad_debt=rule), insurance=insurance)
    a = model.open_trader(0, 900, 3000.0, 0.0)
    s1 = model.open_trader(0, 901, 5000.0, 0.0)
    s2 = model.open_trader(0, 902, 2000.0, 0.0)
    trade(model, a, s1, 0.5, 62_000.0)
    trade(model, a, s2, 0.5, 61_000.0)
    shock(model, 55_000.0)
    assert value(model, a) == pytest.approx(-3500.0)
    return model, engine, a, s1, s2


def _waterfall(rule, insurance=1000.0):
    """:func:`tiny_world` after one checked liquidation step; S1's and S2's values before it."""
    model, engine, a, s1, s2 = tiny_world(rule, insurance=insurance)
    v1, v2 = value(model, s1), value(model, s2)
    events = _rounds(engine, 1)
    check(model, engine)
    return model, engine, a, s1, s2, v1, v2, events


@pytest.mark.parametrize("rule", ["socialise", "adl_queue", "adl_prorata"])
def test_insurance_fund_covers_first(rule):
    model, engine, _a, s1, s2 = tiny_world(rule, insurance=1_000_000.0)
    v1, v2 = value(model, s1), value(model, s2)
    events = _rounds(engine, 1)
    check(model, engine)
    assert [e["kind"] for e in events] == ["insurance"]
    assert events[0]["amount"] == pytest.approx(3500.0) and events[0]["size"] == pytest.approx(1.0)
    ins = model.protocols[0].insurance
    assert model.ledger.collateral[ins, 0] == pytest.approx(1_000_000.0 - 3500.0)
    assert model.ledger.position[ins, BTC] == pytest.approx(1.0)
    assert value(model, s1) == pytest.approx(v1) and value(model, s2) == pytest.approx(v2)
    assert engine.step_stats[0]["insolvency"] == pytest.approx(3500.0)
    assert engine.bad_debt[0] == 0.0


def test_adl_queue_ranks_by_profit_times_leverage():
    # fund 1,000: takes 2/7 BTC at the mark and pays 1,000; 5/7 BTC left at p_b = 58,500.
    # ranks: S1 (3,500/8,500) x (27,500/8,500) = 1.33; S2 (3,000/5,000) x (27,500/5,000) = 3.3
    # -> S2 closes all 0.5 (loses 0.5 x 3,500 = 1,750), then S1 closes 3/14 (loses 750).
    model, engine, a, s1, s2, v1, v2, events = _waterfall("adl_queue")
    assert [e["kind"] for e in events] == ["insurance", "adl", "adl"]
    ins_ev, first, second = events
    assert ins_ev["size"] == pytest.approx(2 / 7) and ins_ev["amount"] == pytest.approx(1000.0)
    assert first["taker"] == s2 and second["taker"] == s1
    assert first["price"] == pytest.approx(58_500.0) and second["price"] == pytest.approx(58_500.0)
    assert first["size"] == pytest.approx(0.5) and second["size"] == pytest.approx(3 / 14)
    assert first["amount"] == pytest.approx(1750.0) and second["amount"] == pytest.approx(750.0)
    lg = model.ledger
    assert lg.position[s2, BTC] == pytest.approx(0.0, abs=1e-12)
    assert lg.position[s1, BTC] == pytest.approx(-0.5 + 3 / 14)
    assert value(model, s2) == pytest.approx(v2 - 1750.0)
    assert value(model, s1) == pytest.approx(v1 - 750.0)
    assert lg.position[a, BTC] == 0.0 and value(model, a) == pytest.approx(0.0, abs=1e-6)
    assert engine.step_stats[0]["adl_loss"] == pytest.approx(2500.0)
    assert engine.bad_debt[0] == 0.0


def test_events_record_both_sides_entry_before_the_move():
    # A is long 1 @ 61,500 (avg); S1 short 0.5 @ 62,000, S2 short 0.5 @ 61,000; the fund is flat
    _model, _engine, _a, s1, s2, _v1, _v2, events = _waterfall("adl_queue")
    ins_ev, first, second = events
    assert ins_ev["entry"] == pytest.approx(61_500.0) and np.isnan(ins_ev["taker_entry"])
    assert (first["taker"], first["entry"], first["taker_entry"]) == (s2, pytest.approx(61_500.0),
                                                                      61_000.0)
    assert (second["taker"], second["entry"], second["taker_entry"]) == (
        s1, pytest.approx(61_500.0), 62_000.0)
    # both counterparties were in profit at the mark (55,000): short, entry above it
    assert all(e["taker_entry"] > 55_000.0 for e in (first, second))


def test_liquidator_and_book_close_events_record_the_entry():
    model, engine = world(liquidators=LiquidatorConfig(n=1))
    leveraged_long(model)  # long 1 @ 60,000
    shock(model, 58_500.0)
    ev = _rounds(engine, 1)[0]
    assert ev["kind"] == "liquidator" and ev["entry"] == 60_000.0
    assert np.isnan(ev["taker_entry"])  # the liquidator was flat
    model, engine = world(LiquidationConfig(close_in_book=True))
    leveraged_long(model)
    shock(model, 58_500.0)
    ev = _rounds(engine, 1)[0]
    assert ev["kind"] == "book_close" and ev["entry"] == 60_000.0 and np.isnan(ev["taker_entry"])
    assert set(engine.events_table()) >= {"entry", "taker_entry"}


def test_without_insurance_cover_the_whole_deficit_goes_to_adl():
    # Hyperliquid: the fund (1M here) pays nothing; A's whole 1 BTC is ADL'd at its
    # bankruptcy price 55,000 + 3,500 = 58,500: S2 (rank 3.3) closes 0.5, S1 the other 0.5.
    model, engine, a, s1, s2 = tiny_world("adl_queue", insurance=1_000_000.0)
    engine.cfgs[0] = LiquidationConfig(bad_debt="adl_queue", insurance_cover=False)
    v1, v2 = value(model, s1), value(model, s2)
    events = _rounds(engine, 1)
    check(model, engine)
    assert [(e["kind"], e["taker"]) for e in events] == [("adl", s2), ("adl", s1)]
    for e in events:
        assert e["price"] == pytest.approx(58_500.0) and e["size"] == pytest.approx(0.5)
        assert e["amount"] == pytest.approx(1750.0)
    ins = model.protocols[0].insurance
    assert model.ledger.collateral[ins, 0] == pytest.approx(1_000_000.0)
    assert engine.step_stats[0]["insurance_paid"] == 0.0
    assert engine.step_stats[0]["adl_loss"] == pytest.approx(3500.0)
    assert value(model, s1) == pytest.approx(v1 - 1750.0)
    assert value(model, s2) == pytest.approx(v2 - 1750.0)
    assert value(model, a) == pytest.approx(0.0, abs=1e-6) and engine.bad_debt[0] == 0.0


def test_adl_prorata_spreads_by_size():
    model, _engine, a, s1, s2, v1, v2, events = _waterfall("adl_prorata")
    assert [e["kind"] for e in events] == ["insurance", "adl", "adl"]
    adl = events[1:]
    assert {e["taker"] for e in adl} == {s1, s2}
    for e in adl:  # 5/7 BTC split 50:50 at 58,500: 5/14 each, loss 1,250 each
        assert e["size"] == pytest.approx(5 / 14) and e["amount"] == pytest.approx(1250.0)
    assert value(model, s1) == pytest.approx(v1 - 1250.0)
    assert value(model, s2) == pytest.approx(v2 - 1250.0)
    assert model.ledger.position[s1, BTC] == pytest.approx(-0.5 + 5 / 14)
    assert value(model, a) == pytest.approx(0.0, abs=1e-6)


def test_socialise_charges_profit_pro_rata():
    # fund takes the whole 1 BTC at 55,000 and pays 1,000; 2,500 is charged to
    # min(profit, value): S1 3,500, S2 3,000 -> 2,500 x 35/65 and 2,500 x 30/65.
    model, engine, a, s1, s2, v1, v2, events = _waterfall("socialise")
    assert [e["kind"] for e in events] == ["insurance", "socialised", "socialised"]
    assert events[0]["size"] == pytest.approx(1.0)
    charged = {e["taker"]: e["amount"] for e in events[1:]}
    assert charged[s1] == pytest.approx(2500 * 35 / 65)
    assert charged[s2] == pytest.approx(2500 * 30 / 65)
    assert value(model, s1) == pytest.approx(v1 - 2500 * 35 / 65)
    assert value(model, s2) == pytest.approx(v2 - 2500 * 30 / 65)
    lg = model.ledger  # positions of the profitable side untouched
    assert lg.position[s1, BTC] == -0.5 and lg.position[s2, BTC] == -0.5
    assert value(model, a) == pytest.approx(0.0, abs=1e-6)
    assert engine.step_stats[0]["socialised"] == pytest.approx(2500.0)


def test_write_off_skips_adl_and_records_bad_debt():
    # a lending pool: the fund pays 1,000, the other 2,500 is bad debt; S1, S2 untouched
    model, engine, a, s1, s2, v1, v2, events = _waterfall("write_off")
    assert [e["kind"] for e in events] == ["insurance", "insurance", "bad_debt"]
    assert events[-1]["shortfall"] == pytest.approx(2500.0)
    assert engine.bad_debt[0] == pytest.approx(2500.0)
    assert value(model, s1) == pytest.approx(v1) and value(model, s2) == pytest.approx(v2)
    assert model.ledger.position[s1, BTC] == -0.5 and model.ledger.position[s2, BTC] == -0.5
    assert value(model, a) == pytest.approx(0.0, abs=1e-6)


def test_adl_of_a_bankrupt_short_is_below_the_mark():
    # short 1 @ 60,000 on 3,000; at 64,000 value -1,000, bankruptcy price 63,000:
    # the profitable long sells 1 BTC to it at 63,000, 1,000 under the mark.
    model, engine = world(LiquidationConfig(bad_debt="adl_queue"), insurance=0.0)
    a = model.open_trader(0, 900, 3000.0, 0.0)
    long_ = model.open_trader(0, 901, 10_000.0, 0.0)
    trade(model, long_, a, 1.0, 60_000.0)
    shock(model, 64_000.0)
    v = value(model, long_)
    events = _rounds(engine, 1)
    check(model, engine)
    assert [(e["kind"], e["taker"]) for e in events] == [("adl", long_)]
    assert events[0]["size"] == -1.0 and events[0]["price"] == pytest.approx(63_000.0)
    assert events[0]["amount"] == pytest.approx(1000.0)
    assert value(model, long_) == pytest.approx(v - 1000.0)
    assert value(model, a) == pytest.approx(0.0, abs=1e-6)
    assert model.ledger.position[long_, BTC] == 0.0


@pytest.mark.parametrize("rule", ["socialise", "adl_queue", "adl_prorata", "write_off"])
def test_unabsorbed_deficit_is_recorded_bad_debt(rule):
    # A bought from the insurance row itself: no trader is on the profitable side,
    # and the fund is empty, so the 500 deficit at 55,500 is bad debt.
    model, engine = world(LiquidationConfig(bad_debt=rule), insurance=0.0)
    a = model.open_trader(0, 900, 4000.0, 0.0)
    ins = model.protocols[0].insurance
    trade(model, a, ins, 1.0, 60_000.0)
    shock(model, 55_500.0)
    events = _rounds(engine, 1)
    check(model, engine)
    assert events[-1]["kind"] == "bad_debt"
    assert events[-1]["shortfall"] == pytest.approx(500.0)
    assert engine.bad_debt[0] == pytest.approx(500.0)
    assert engine.step_stats[0]["bad_debt"] == pytest.approx(500.0)
    bad_row = engine.bad_debt_rows[0]
    assert model.ledger.collateral[bad_row, 0] == pytest.approx(-500.0)  # explicit, recorded
    assert value(model, a) == pytest.approx(0.0, abs=1e-6)
    assert model.ledger.position[a, BTC] == 0.0
    assert _rounds(engine, 2) == []  # written off once, not again


# ------------------------------------------------------------------ spot borrows
def spot_short(model, wallet=4000.0):
    """A sold 1 BTC it borrowed at 60,000: BTC -1, USD wallet + 60,000 (no perp)."""
    a = model.open_trader(0, 900, wallet, 0.0)
    s = model.open_trader(0, 901, 0.0, 0.0)
    lg = model.ledger
    lg.deposit(s, 1, 1.0)
    lg.transfer(a, s, 1, 1.0, allow_negative=True)
    lg.transfer(s, a, 0, 60_000.0, allow_negative=True)
    model.evaluate_margins()
    return a


def test_insolvent_spot_borrow_is_taken_over_once():
    # at 64,500 the borrow is worth 64,500 against 64,000 of USD: deficit 500
    model, engine = world(LiquidationConfig(bad_debt="adl_queue"))
    a = spot_short(model)
    ins = model.protocols[0].insurance
    shock(model, 64_500.0)
    events = _rounds(engine, 1)
    check(model, engine)
    assert [(e["kind"], e["asset"]) for e in events] == [("insurance", 1), ("insurance", 0)]
    assert events[0]["size"] == -1.0 and events[0]["price"] == 64_500.0
    assert events[1]["amount"] == pytest.approx(500.0)
    assert np.allclose(model.ledger.collateral[a], 0.0, atol=1e-6)  # nothing left to lose
    assert model.ledger.collateral[ins, 1] == -1.0  # the fund now owes the BTC
    shock(model, 70_000.0)
    assert _rounds(engine, 2) == []


def test_spot_borrow_under_two_thirds_mm_goes_to_the_backstop():
    # at 63,000: E = 64,000 - 63,000 = 1,000 < 2/3 x MM (5 % x 63,000 = 3,150) = 2,100
    model, engine = world(liquidators=LiquidatorConfig(n=1))
    a = spot_short(model)
    shock(model, 63_000.0)
    ins = model.protocols[0].insurance
    ins0 = float(model.ledger.collateral[ins, 0])
    events = _rounds(engine, 1)
    check(model, engine)
    assert [(e["kind"], e["asset"]) for e in events] == [("backstop", 1), ("backstop", 0)]
    assert events[1]["fee"] == pytest.approx(1000.0)  # the whole account value
    assert np.allclose(model.ledger.collateral[a], 0.0, atol=1e-6)
    # the fund paid nothing net: +63,000 for the borrow it assumed, +1,000 margin
    assert model.ledger.collateral[ins, 0] == pytest.approx(ins0 + 64_000.0)
    assert model.ledger.collateral[ins, 1] == -1.0


# ----------------------------------------------------------- backstop, latency
@pytest.mark.parametrize("price, backstop, expect", [
    (58_500.0, "insurance", []),            # E 2,500 >= 2/3 MM 1,950
    (57_000.0, "insurance", ["backstop"] * 2),  # E 1,000 < 2/3 MM 1,900: position, margin
    (57_000.0, "none", []),
])
def test_backstop_only_below_two_thirds_of_mm_without_liquidators(price, backstop, expect):
    model, engine = world(LiquidationConfig(backstop=backstop))
    a, _ = leveraged_long(model)
    shock(model, price)
    events = _rounds(engine, 1)
    check(model, engine)
    assert [e["kind"] for e in events] == expect
    if expect:
        ins = model.protocols[0].insurance
        assert events[0]["taker"] == ins and events[0]["price"] == price
        assert model.ledger.position[ins, BTC] == pytest.approx(1.0)
        assert model.ledger.collateral[a, 0] == 0.0  # margin not returned (Hyperliquid)
        assert events[1]["fee"] == pytest.approx(1000.0)
        assert engine.step_stats[0]["backstops"] == 1 and engine.step_stats[0]["liquidations"] == 1


def test_an_account_holding_only_quote_dust_is_not_offered(monkeypatch):
    # no position and no risky balance: nothing to close; a negative quote balance within the
    # round-off tolerance is neither liquidatable nor bankrupt (it used to be re-offered, to no
    # effect, in every round of every step)
    model, engine = world()
    a = model.open_trader(0, 905, 0.0, 0.0)
    model.ledger.transfer(a, model.protocols[0].insurance, 0, 1e-9, allow_negative=True)
    b = model.open_trader(0, 906, 0.0, 0.0)  # borrowed quote held as BTC: the backstop's
    model.ledger.transfer(b, model.protocols[0].insurance, 0, 600.0, allow_negative=True)
    model.ledger.transfer(model.protocols[0].insurance, b, 1, 0.01, allow_negative=True)
    model.evaluate_margins()
    offered = []
    monkeypatch.setattr(engine, "_liquidate", lambda proto, row, *a: offered.append(row))
    engine.run(1)
    assert a not in offered and b in offered


# ------------------------------------------------------ the venue's book close-out
def test_venue_closes_in_the_book_first_and_reports_the_path():
    model, engine = world(LiquidationConfig(close_in_book=True),
                          liquidators=LiquidatorConfig(n=2))
    a, _ = leveraged_long(model)
    shock(model, 58_500.0)  # E 2,500 < MM 2,925: half the position is offered
    ins = model.protocols[0].insurance
    ins0 = float(model.ledger.collateral[ins, 0])
    events = _rounds(engine, 1)
    check(model, engine)
    # the venue sold 0.5 BTC into the best bid (58,495, 0.5 BTC) itself: no liquidator
    assert [e["kind"] for e in events] == ["book_close"]
    ev = events[0]
    assert ev["size"] == pytest.approx(0.5) and ev["price"] == 58_500.0 and ev["taker"] == -1
    assert model.ledger.position[a, BTC] == pytest.approx(0.5)
    assert model.last_price[BTC] == pytest.approx(58_495.0)
    fee = 0.01 * 0.5 * 58_500.0  # the liquidation fee on the notional at the mark
    assert ev["fee"] == pytest.approx(fee)
    assert model.ledger.collateral[ins, 0] == pytest.approx(ins0 + fee)
    stats = engine.step_stats[0]
    assert stats["book_notional"] == pytest.approx(0.5 * 58_500.0) == stats["notional"]
    paths = engine.summary()[model.protocols[0].name]["paths"]
    assert paths["traded"]["notional"] == pytest.approx(0.5 * 58_500.0)
    assert paths["traded"]["share"] == 1.0 and paths["backstopped"]["notional"] == 0.0


@pytest.mark.parametrize("price, kinds", [
    (58_500.0, []),                        # nothing within the slippage; E above 2/3 MM
    (57_000.0, ["backstop", "backstop"]),  # below 2/3 MM: the fund takes what did not trade
])
def test_book_close_is_limited_by_its_slippage(price, kinds):
    # the best bid is 5 USD under the mark; a 1e-5 slippage limit (0.57-0.59 USD) cannot reach it
    model, engine = world(LiquidationConfig(close_in_book=True, book_slippage=1e-5))
    leveraged_long(model)
    shock(model, price)
    events = _rounds(engine, 1)
    check(model, engine)
    assert [e["kind"] for e in events] == kinds
    paths = engine.summary()[model.protocols[0].name]["paths"]
    assert paths["traded"]["notional"] == 0.0
    if kinds:
        assert paths["backstopped"]["notional"] == pytest.approx(price)
        assert paths["backstopped"]["share"] == 1.0
    else:
        assert paths["backstopped"]["share"] is None


def test_book_close_that_fills_part_leaves_the_rest_to_liquidators():
    # full mode offers the whole 1 BTC; with a 0.00015 slippage the limit (58,491.2) reaches
    # only the first bid level (58,495, 0.5 BTC): the venue trades 0.5, a liquidator takes 0.5
    model, engine = world(LiquidationConfig(close_in_book=True, book_slippage=1.5e-4,
                                            mode="full"), liquidators=LiquidatorConfig(n=1))
    a, _ = leveraged_long(model)
    shock(model, 58_500.0)
    events = _rounds(engine, 1)
    check(model, engine)
    assert [e["kind"] for e in events] == ["book_close", "liquidator"]
    assert [e["size"] for e in events] == pytest.approx([0.5, 0.5])
    assert model.ledger.position[a, BTC] == 0.0


def test_backstop_does_not_act_when_a_liquidator_does():
    model, engine = world(liquidators=LiquidatorConfig(n=1))
    leveraged_long(model)
    shock(model, 57_000.0)
    events = _rounds(engine, 1)
    check(model, engine)
    assert events and {e["kind"] for e in events} == {"liquidator"}


def test_liquidator_latency_is_respected():
    model, engine = world(liquidators=LiquidatorConfig(n=1, latency_steps=2))
    leveraged_long(model)
    shock(model, 58_500.0)
    assert _rounds(engine, 10) == []
    assert _rounds(engine, 11) == []
    events = _rounds(engine, 12)
    assert [e["kind"] for e in events] == ["liquidator"] and events[0]["step"] == 12
    check(model, engine)


def test_latency_restarts_when_the_account_recovers():
    model, engine = world(liquidators=LiquidatorConfig(n=1, latency_steps=2))
    leveraged_long(model)
    shock(model, 58_500.0)
    assert _rounds(engine, 10) == []  # first seen at 10
    shock(model, 60_000.0)
    assert _rounds(engine, 11) == []  # healthy again: forgotten
    shock(model, 58_500.0)
    assert _rounds(engine, 12) == []  # a new spell starts at 12, not 10
    assert _rounds(engine, 13) == []
    assert [e["step"] for e in _rounds(engine, 14)] == [14]


def test_liquidator_without_capital_passes():
    model, engine = world(liquidators=LiquidatorConfig(n=2, capital=0.0))
    leveraged_long(model)
    shock(model, 58_500.0)
    assert _rounds(engine, 1) == []
    shock(model, 57_000.0)
    assert {e["kind"] for e in _rounds(engine, 2)} == {"backstop"}
    check(model, engine)


# ---------------------------------------------------------------- sizes, rounds
def test_partial_and_full_sizes():
    def first_size(liq):
        model, engine = world(liq, liquidators=LiquidatorConfig(n=1))
        leveraged_long(model)
        shock(model, 58_500.0)
        events = _rounds(engine, 1)
        check(model, engine)
        return events[0]["size"]

    assert first_size(LiquidationConfig(mode="full")) == pytest.approx(1.0)
    assert first_size(LiquidationConfig(mode="partial")) == pytest.approx(0.5)
    assert first_size(LiquidationConfig(close_factor=0.2)) == pytest.approx(0.2)
    # target 1.25 x MM: phi = (1.25 x 2,925 - 2,500) / (1.25 x 2,925 - 0.01 x 58,500) = 0.37647
    size = first_size(LiquidationConfig(target_margin_ratio=1.25))
    assert size == pytest.approx(0.377)
    equity = 2500.0 - 0.01 * size * 58_500.0
    assert equity >= 1.25 * 0.05 * (1.0 - size) * 58_500.0


@pytest.mark.parametrize("max_rounds, rounds", [(3, 3), (10, 7)])
def test_cascade_rounds_stop_at_max_rounds(max_rounds, rounds):
    # 20 % per round with a 1 % fee from E = 2 % of notional: 7 rounds until healthy
    liq = LiquidationConfig(close_factor=0.2, max_rounds=max_rounds)
    model, engine = world(liq, liquidators=LiquidatorConfig(n=1))
    a, _ = leveraged_long(model, wallet=2670.0)
    shock(model, 58_500.0)
    events = _rounds(engine, 1)
    check(model, engine)
    assert [e["round"] for e in events] == list(range(1, rounds + 1))
    assert all(e["account"] == a for e in events)
    assert engine.step_stats[0]["rounds"] == rounds
    eq, _, mm = margin_of(model, a)
    assert (eq < mm) == (rounds == max_rounds)  # the cap, not quiet, ended the capped step
    if rounds == 3:
        assert model.ledger.position[a, BTC] == pytest.approx(0.8 ** 3, abs=2 * LOT)


def test_liquidation_trades_move_the_mark_and_cascade():
    # With the median mark rule (protocols.0.mark_price=median):
    # B sits 3 USD above maintenance at 58,500. The liquidator sells A's 1 BTC into
    # the bids (0.5 at 58,495 and 0.5 at 58,490): the mark becomes the median of
    # index 58,500, mid 58,495 and last 58,490 = 58,495, B's equity falls by 5 and
    # its MM by 0.25, so B is liquidated in round 2 at 58,495.
    model, engine = world(LiquidationConfig(mode="full"), liquidators=LiquidatorConfig(n=1))
    a, s = leveraged_long(model, wallet=2500.0)
    b = model.open_trader(0, 902, 4428.0, 0.0)
    trade(model, b, s, 1.0, 60_000.0)
    shock(model, 58_500.0)
    eq, _, mm = margin_of(model, b)
    assert eq - mm == pytest.approx(3.0)
    events = _rounds(engine, 1)
    check(model, engine)
    assert [(e["account"], e["round"]) for e in events] == [(a, 1), (b, 2)]
    assert events[0]["price"] == 58_500.0 and events[1]["price"] == pytest.approx(58_495.0)
    assert engine.step_stats[0]["rounds"] == 2
    assert model.marks[BTC] == pytest.approx(58_490.0)  # B's 1 BTC went at 58,485 and 58,480


def test_resting_orders_of_a_liquidated_account_are_cancelled():
    model, engine = world(liquidators=LiquidatorConfig(n=1))
    a, _ = leveraged_long(model)
    ev = model.view.new_events(1)  # an offer far above the market (reduces exposure: accepted)
    ev["kind"], ev["side"], ev["qty"], ev["owner"] = LIMIT, -1, 100, a
    ev["price"] = model.instruments[BTC].ticks(70_000.0)
    model.submit(BTC, ev)
    assert (model.books[BTC].live_orders()["owner"] == a).any()
    shock(model, 58_500.0)
    _rounds(engine, 1)
    assert not (model.books[BTC].live_orders()["owner"] == a).any()
    check(model, engine)


# ------------------------------------------------------------------ integration
def _run_crash(seed):
    model, engine = world(LiquidationConfig(), liquidators=LiquidatorConfig(n=3))
    s = model.open_trader(0, 950, 50_000_000.0, 0.0)
    for k, wallet in enumerate([2600.0, 3000.0, 3500.0, 4500.0, 6500.0]):
        row = model.open_trader(0, 960 + k, wallet, 0.0)
        trade(model, row, s, 1.0, 60_000.0)
    model.rng = np.random.default_rng(seed)
    shock(model, 57_500.0)
    _rounds(engine, model.steps)
    check(model, engine)
    for _ in range(4):
        model.step()
        _rounds(engine, model.steps)
        check(model, engine)
    return model, engine


def test_crash_in_a_running_model_conserves_value_and_is_deterministic():
    model, engine = _run_crash(3)
    table = engine.events_table()
    assert "liquidator" in set(table["kind"]) and engine.totals[0]["rounds"] >= 2  # a cascade
    assert set(table["kind"]) <= {"liquidator", "backstop", "insurance", "adl", "bad_debt"}
    rows, res = model.margin_state[0]
    under = rows[res.below_maintenance]
    assert not model.ledger.position[under, BTC].any()  # nothing liquidatable is left
    again = _run_crash(3)[1].events_table()
    for col, values in table.items():
        assert np.array_equal(values, again[col], equal_nan=values.dtype.kind == "f"), col
    metrics: dict[str, float] = {}
    engine.write_metrics(metrics)
    assert set(metrics) == set(engine.metric_names())
    summary = engine.summary()["alpha"]
    assert summary["max_depth"] >= 2 and summary["events"] == len(table["kind"])
    absorbed = sum(summary[k] for k in ("insurance_paid", "adl_loss", "socialised", "bad_debt"))
    assert absorbed == pytest.approx(summary["insolvency"], abs=1e-6)


# ----------------------------------------------------------------- pure helpers
def test_bankruptcy_prices_zero_the_account():
    q = np.array([2.0, -10.0])
    marks = np.array([50_000.0, 3000.0])
    p = bankruptcy_prices(-1300.0, q, marks)
    assert float((q * (p - marks)).sum()) == pytest.approx(1300.0)  # closing at p_b recovers it
    assert p[0] > marks[0] and p[1] < marks[1]  # worse than the mark for the counterparties


def test_offer_rounds_up_to_lots_and_leaves_no_dust():
    assert offer_qty(1.0, 0.5, 0.001) == pytest.approx(0.5)
    assert offer_qty(-1.0, 0.3771, 0.001) == pytest.approx(-0.378)
    assert offer_qty(0.0015, 0.5, 0.001) == 0.0015  # 0.0005 would remain: all of it
    assert offer_qty(2 / 7, 1.0, 0.001) == 2 / 7


def test_close_fraction_rules():
    cfg = LiquidationConfig
    assert close_fraction(cfg(mode="full"), 100.0, 200.0, 4000.0) == 1.0
    assert close_fraction(cfg(), 100.0, 200.0, 4000.0) == 0.5
    assert close_fraction(cfg(), -1.0, 200.0, 4000.0) == 1.0  # nothing left: all of it
    phi = close_fraction(cfg(target_margin_ratio=1.5, liquidation_fee=0.0), 100.0, 200.0, 4000.0)
    assert phi == pytest.approx((300.0 - 100.0) / 300.0)


@pytest.mark.parametrize("field, bad", [
    ("max_rounds", 0), ("mode", "half"), ("close_factor", 0.0), ("close_factor", 1.5),
    ("target_margin_ratio", 0.9), ("liquidation_fee", -0.01), ("liquidator_share", 2.0),
    ("backstop", "vault"), ("backstop_threshold", 1.5), ("bad_debt", "haircut"),
    ("enabled", "yes"), ("close_in_book", 1), ("book_slippage", 0.0), ("book_slippage", 0.6),
    ("insurance_cover", "no"),
])
def test_config_validation_names_the_field(field, bad):
    with pytest.raises(ValueError, match=rf"liquidation\.{field} = ") as err:
        LiquidationConfig(**{field: bad})
    assert "\n" not in str(err.value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, np.inf, -np.inf, np.nan]),
                max_size=12))
def test_adl_queue_order_is_the_stable_sort(keys):
    """The lazy queue order equals ``np.argsort(kind="stable")``: ties, zeros, infinities, NaN."""
    key = np.array(keys, np.float64)
    assert list(stable_order(key)) == np.argsort(key, kind="stable").tolist()
    first = next(stable_order(key), None)
    assert first == (int(np.argsort(key, kind="stable")[0]) if len(key) else None)
