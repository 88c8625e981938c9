"""The liquidator's take-over decision (profit, latency, capital, throughput) and its unwind.

World: one protocol, perps only, flat cross margin (IM 10 %), no makers or
noise traders; a liquidity provider posts 0.5 BTC every 5 USD around 58,500,
so the sweep cost of an offer is known by hand.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from agents.config import LiquidatorConfig
from agents.liquidator import Liquidator
from sim.config import load_config
from sim.config.agents import validate_liquidator_config
from sim.ledger import check_conservation
from sim.market.book import CANCEL, LIMIT, MARKET, REDUCE_ONLY
from sim.market.offer import Candidate
from sim.model import MarketModel
from sim.world import build_liquidators

BTC = 0
MID = 58_500.0


@functools.lru_cache(maxsize=1)
def _cfg():
    return load_config(
        [
            "agents=minimal",
            "scenario=calm",
            "agents.noise.n=0",
            "output.figures=false",
            "protocols.0.spot=false",
            "margin.params.tiers=flat",
            "+margin.params.imr=0.1",
            "+margin.params.mmr=0.05",
            "agents.market_maker.per_book=0",
        ]
    )


def post_ladder(model, levels=20, qty=0.5):
    inst = model.instruments[BTC]
    k = np.arange(1, levels + 1)
    ev = model.view.new_events(2 * levels)
    ev["kind"] = LIMIT
    ev["owner"] = model.lp
    ev["side"] = np.repeat([1, -1], levels)
    ev["price"] = inst.ticks(np.concatenate([MID - 5.0 * k, MID + 5.0 * k]))
    ev["qty"] = inst.lots(qty)
    assert (model.submit(BTC, ev)["status"] == 0).all()


def clear_book(model):
    live = model.books[BTC].live_orders()
    ev = model.view.new_events(len(live))
    ev["kind"] = CANCEL
    ev["order_id"] = live["order_id"]
    model.submit(BTC, ev)


def world(cfg=None, levels=20):
    """A model at index 58,500 with a ladder and one liquidator (returned)."""
    model = MarketModel(_cfg())
    model.asset_prices[1] = MID
    model.lp = model.open_trader(0, 999, 1e9, 0.0)
    post_ladder(model, levels)
    model.update_marks()
    model.liquidators = build_liquidators(model, cfg or LiquidatorConfig(n=1))
    model.evaluate_margins()
    return model, model.liquidators[0]


def offer(qty=1.0, position=None, step=5, first_seen=5, fee_rate=0.01, margin_left=2500.0):
    """A long (or short) of 1 BTC at 58,500 of an account with IM 10 % of notional."""
    position = qty if position is None else position
    return Candidate(step=step, round=1, protocol=0, account=99, instrument=BTC, position=position,
                     qty=qty, mark=MID, first_seen=first_seen, equity=2500.0,
                     initial=0.1 * MID * abs(position), maintenance=0.05 * MID * abs(position),
                     notional=MID * abs(position), margin_left=margin_left, fee_rate=fee_rate,
                     liquidator_share=0.5, lot_size=0.001)


def give(model, row, qty):
    """Open a position of ``qty`` BTC at 58,500 for ``row`` (fee-free, against a new account)."""
    lg = model.ledger
    other = model.open_trader(0, 998, 1e7, 0.0)
    buyer, seller = (row, other) if qty > 0 else (other, row)
    lg.settle_fills(BTC, [seller], [buyer], [1], [MID], [abs(qty)], 0.0, 0.0,
                    model.protocols[0].treasury)
    for r in (row, other):
        model.books[BTC].set_position(r, int(round(lg.position[r, BTC] / 0.001)))  # noqa: RUF046 - numpy floats


# Taking 1 BTC: bonus 0.5 x 1 % x 58,500 = 292.5; selling it walks 0.5 @ 58,495 and
# 0.5 @ 58,490: impact 2.5 + 5 = 7.5; taker fee 0.05 % x 58,492.5 = 29.24625.
PROFIT_1BTC = 292.5 - 7.5 - 0.0005 * 58_492.5


def test_accepts_a_profitable_offer():
    _model, liq = world()
    assert liq.offer(offer()) == pytest.approx(1.0)
    assert liq.offer(offer(-1.0)) == pytest.approx(1.0)  # a short: buys back from the asks


@pytest.mark.parametrize("min_profit, expected", [(PROFIT_1BTC - 0.01, 1.0),
                                                  (PROFIT_1BTC + 0.01, 0.0)])
def test_profit_threshold_is_bonus_minus_impact_minus_fee(min_profit, expected):
    # halving to 0.5 BTC earns 146.25 - 2.5 - 14.62 < the threshold: it passes
    _model, liq = world(LiquidatorConfig(n=1, min_profit=min_profit))
    assert liq.offer(offer()) == pytest.approx(expected)


def test_passes_without_a_bonus():
    _model, liq = world()
    assert liq.offer(offer(fee_rate=0.0)) == 0.0
    assert liq.offer(offer(margin_left=0.0)) == 0.0  # fee capped at a margin of zero


def test_sizes_to_what_the_book_absorbs_and_passes_on_an_empty_book():
    model, liq = world(levels=1)  # 0.5 BTC of bids
    assert liq.offer(offer()) == pytest.approx(0.5)
    clear_book(model)
    assert liq.offer(offer()) == 0.0


def test_latency_is_measured_from_first_seen():
    _model, liq = world(LiquidatorConfig(n=1, latency_steps=2))
    assert liq.offer(offer(step=6, first_seen=5)) == 0.0
    assert liq.offer(offer(step=7, first_seen=5)) == pytest.approx(1.0)


@pytest.mark.parametrize("capital, expected", [(0.0, 0.0), (3000.0, 0.512), (1e6, 1.0)])
def test_capital_limits_through_initial_margin(capital, expected):
    # headroom / (IM rate x mark) = 3,000 / (0.1 x 58,500) = 0.5128 BTC
    _model, liq = world(LiquidatorConfig(n=1, capital=capital))
    assert liq.offer(offer()) == pytest.approx(expected)


@pytest.mark.parametrize("evaluated", [True, False])
def test_inventory_still_held_uses_up_margin(evaluated):
    # capital 10,000 holding 1 BTC: IM 5,850 -> headroom 4,150 / 5,850 = 0.709 BTC,
    # whether or not the margin engine has seen the inventory yet
    model, liq = world(LiquidatorConfig(n=1, capital=10_000.0))
    give(model, liq.accounts[0], 1.0)
    if evaluated:
        model.evaluate_margins()
    assert liq.offer(offer()) == pytest.approx(0.709)


def test_throughput_cap_per_step():
    _model, liq = world(LiquidatorConfig(n=1, max_notional_per_step=30_000.0))
    assert liq.offer(offer(step=5)) == pytest.approx(0.512)  # 30,000 / 58,500
    assert liq.offer(offer(step=5)) == 0.0  # 48 USD of room left: less than a lot
    assert liq.offer(offer(step=6, first_seen=6)) == pytest.approx(0.512)


def test_unwind_closes_with_a_reduce_only_market_order():
    model, liq = world()
    row = liq.accounts[0]
    give(model, row, 1.0)
    n = model.books[BTC].n_fills
    sent = []
    submit = model.view.submit
    model.view.submit = lambda j, ev: sent.append(ev.copy()) or submit(j, ev)
    liq.unwind(BTC)
    assert len(sent) == 1 and sent[0]["flags"][0] & REDUCE_ONLY and sent[0]["kind"][0] == MARKET
    check_conservation(model.ledger, model.marks)
    assert model.ledger.position[row, BTC] == pytest.approx(0.0, abs=1e-12)
    fills = model.books[BTC].fills_since(n)
    assert (fills["taker_owner"] == row).all() and (fills["taker_side"] == -1).all()
    assert model.last_price[BTC] == pytest.approx(58_490.0)
    liq.unwind(BTC)  # nothing left: no order
    assert model.books[BTC].n_fills == n + len(fills)


def test_step_retries_inventory_the_book_could_not_take():
    model, liq = world()
    row = liq.accounts[0]
    give(model, row, -0.7)
    clear_book(model)
    liq.unwind(BTC)
    assert model.ledger.position[row, BTC] == pytest.approx(-0.7)
    post_ladder(model)
    liq.step()
    assert model.ledger.position[row, BTC] == pytest.approx(0.0, abs=1e-12)
    check_conservation(model.ledger, model.marks)


def test_unknown_protocol_passes():
    model, _ = world()
    loner = Liquidator(model, LiquidatorConfig(n=1))
    assert loner.offer(offer()) == 0.0


@pytest.mark.parametrize("field, bad", [("n", -1), ("capital", -5.0), ("latency_steps", 1.5),
                                        ("max_notional_per_step", -1.0), ("taker_fee", 0.5),
                                        ("min_profit", "x")])
def test_config_validation_names_the_field(field, bad):
    with pytest.raises(ValueError, match=rf"agents\.liquidator\.{field} = "):
        validate_liquidator_config(LiquidatorConfig(**{field: bad}))
