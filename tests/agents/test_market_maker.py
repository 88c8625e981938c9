"""Avellaneda–Stoikov quotes: the closed form, and the agent in a model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.market_maker import avellaneda_stoikov_quotes
from sim.book import MARKET
from sim.config import load_config
from sim.model import MarketModel


def test_zero_inventory_quotes_are_symmetric_with_the_optimal_spread():
    s, gamma, sigma, tau, k = 100.0, 0.5, 0.01, 10.0, 200.0
    bid, ask = avellaneda_stoikov_quotes(s, 0.0, gamma, sigma, tau, k)
    assert (bid + ask) / 2 == pytest.approx(s)
    # Avellaneda & Stoikov (2008): spread = gamma sigma^2 (T-t) + (2/gamma) ln(1 + gamma/k)
    expected = gamma * sigma**2 * tau + (2 / gamma) * math.log(1 + gamma / k)
    assert (ask - bid) / s == pytest.approx(expected)


def test_inventory_skews_the_reservation_price():
    s, gamma, sigma, tau, k = 100.0, 0.5, 0.01, 10.0, 200.0
    b0, a0 = avellaneda_stoikov_quotes(s, 0.0, gamma, sigma, tau, k)
    b1, a1 = avellaneda_stoikov_quotes(s, 3.0, gamma, sigma, tau, k)
    shift = 3.0 * gamma * sigma**2 * tau * s
    assert b1 == pytest.approx(b0 - shift)
    assert a1 == pytest.approx(a0 - shift)
    bl, al = avellaneda_stoikov_quotes(s, -3.0, gamma, sigma, tau, k)
    assert bl > b0 and al > a0


def _maker_world(extra=()):
    cfg = load_config(["agents.noise.n=0", "output.figures=false", "protocols.0.spot=false", *extra])
    return MarketModel(cfg)


def test_maker_quotes_a_ladder_each_side():
    model = _maker_world(["agents.market_maker.levels=4"])
    for book in model.books:
        bids, asks = book.depth(10)
        assert len(bids) == 4 and len(asks) == 4
        assert bids[0, 0] < asks[0, 0]
    model.step()
    for book in model.books:  # replaced, not accumulated
        bids, asks = book.depth(10)
        assert len(bids) == 4 and len(asks) == 4


def test_maker_stops_quoting_the_side_beyond_its_inventory_limit():
    model = _maker_world(["agents.market_maker.inventory_limit_notional=1000"])
    taker = model.open_trader(0, owner=-1, usd=1e6, base_notional=0.0)
    j = next(i.index for i in model.instruments if i.is_perp)
    ev = model.view.new_events(1)
    ev["kind"], ev["side"], ev["qty"], ev["owner"] = MARKET, 1, 100, taker
    model.submit(j, ev)
    maker = next(m for m in model.makers if m.instrument == j)
    assert model.ledger.position[maker.account, j] < 0  # the maker sold
    model.step()
    bids, asks = model.books[j].depth(10)
    assert len(asks) == 0 and len(bids) > 0
    assert np.all(model.books[j].live_orders()["side"] > 0)
