"""Arbitrageur.

Narrows planted mispricings to the band, respects capital, unwinds, and closes cross-venue gaps.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.arbitrageur import Arbitrageur
from agents.config import ArbitrageurConfig
from sim.config import ProtocolConfig, load_config
from sim.config.agents import validate_arbitrageur_config
from sim.ledger import check_conservation
from sim.market.view import CANCEL, LIMIT, STATUS_RESTING
from sim.model import MarketModel
from tests.agents.fixed_path import FixedPath


def _world(two_venues: bool = False) -> MarketModel:
    cfg = load_config(
        [
            "agents=minimal",
            "scenario=calm",
            "agents.noise.n=0",
            "agents.market_maker.per_book=0",
            "output.figures=false",
        ]
    )
    if two_venues:
        cfg.protocols[0].spot = False
        cfg.protocols.append(ProtocolConfig(name="beta", spot=False))
    model = MarketModel(cfg, check_invariants=True)
    FixedPath(model)
    return model


class Planter:
    """A deep-pocketed account that rests hand-placed orders."""

    def __init__(self, model: MarketModel) -> None:
        self.model = model
        self.rows = {p.index: model.open_trader(p.index, 0, 1e9, 1e9) for p in model.protocols}
        self.live: dict[int, np.ndarray] = {}

    def plant(self, j: int, bid_bps: float, ask_bps: float, levels: int = 40,
              spacing_bps: float = 2.0, notional: float = 20_000.0) -> None:
        """Bids from ``index (1 + bid_bps)`` down, asks from ``index (1 + ask_bps)`` up."""
        model = self.model
        inst = model.instruments[j]
        v = model.asset_prices[inst.base]
        k = np.arange(levels) * spacing_bps
        ev = model.view.new_events(2 * levels)
        ev["kind"], ev["owner"] = LIMIT, self.rows[inst.protocol]
        ev["side"] = np.repeat([1, -1], levels)
        ev["price"] = np.concatenate([inst.ticks(v * (1 + (bid_bps - k) * 1e-4), 1),
                                      inst.ticks(v * (1 + (ask_bps + k) * 1e-4), -1)])
        ev["qty"] = inst.lots(notional / v)
        res = model.submit(j, ev)
        self.live[j] = res["order_id"][res["status"] == STATUS_RESTING]

    def clear(self, j: int) -> None:
        ids = self.live.pop(j)
        ev = self.model.view.new_events(len(ids))
        ev["kind"], ev["order_id"] = CANCEL, ids
        self.model.submit(j, ev)


def _arbitrageur(model: MarketModel, instruments: list[int], **kw) -> Arbitrageur:
    cfg = ArbitrageurConfig(**kw)
    arb = Arbitrageur(model, instruments, cfg)
    arb.accounts = {p.index: model.open_trader(p.index, arb.unique_id, cfg.usd, cfg.base_notional)
                    for p in model.protocols}
    model.evaluate_margins()
    return arb


def _dev_bps(model: MarketModel, j: int) -> float:
    v = model.view.underlying_price(j)
    return (model.view.mid(j) - v) / v * 1e4


def _fills(model: MarketModel, row: int, j: int) -> dict[str, np.ndarray]:
    t = model.trades_table()
    mine = (t["taker_account"] == row) & (t["instrument"] == model.instruments[j].name)
    return {k: v[mine] for k, v in t.items()}


@pytest.mark.parametrize(("kind", "sign"), [("perp", 1), ("spot", -1)])
def test_narrows_a_planted_mispricing_to_the_band(kind, sign):
    model = _world()
    j = next(i.index for i in model.instruments if i.base == 1 and (i.is_perp == (kind == "perp")))
    planter = Planter(model)
    # mid 50 bps below (sign +1) or above (sign -1) the index; the far side crosses the index
    planter.plant(j, -sign * 60 if sign > 0 else 40, -40 if sign > 0 else 60)
    before = _dev_bps(model, j)
    arb = _arbitrageur(model, [j], threshold_bps=15.0, band_bps=5.0, max_order_notional=1e7)
    model.step()
    after = _dev_bps(model, j)
    assert sign * before < -40 and abs(after) < abs(before) - 15
    v = model.view.underlying_price(j)
    if sign > 0:
        assert model.view.best_ask(j) >= v * (1 - 5e-4) - 1e-9  # everything cheaper was taken
    else:
        assert model.view.best_bid(j) <= v * (1 + 5e-4) + 1e-9
    fills = _fills(model, arb.accounts[0], j)
    assert len(fills["price"]) > 0 and np.all(fills["taker_side"] == sign)
    assert np.all(sign * (fills["price"] - v * (1 - sign * 5e-4)) <= 1e-9)  # never beyond the band
    check_conservation(model.ledger, model.marks)


def test_inside_the_threshold_it_does_nothing():
    model = _world()
    j = next(i.index for i in model.instruments if i.is_perp)
    Planter(model).plant(j, -14, -10)  # mid 12 bps below: under the 15 bps threshold
    _arbitrageur(model, [j], threshold_bps=15.0, unwind_bps=5.0)
    n0 = model.orders_submitted
    model.step()
    assert model.orders_submitted == n0


def test_inventory_cap_limits_the_trade():
    model = _world()
    j = next(i.index for i in model.instruments if i.is_perp and i.base == 1)
    Planter(model).plant(j, -60, -40, notional=200_000.0)
    arb = _arbitrageur(model, [j], max_inventory_notional=30_000.0)
    for _ in range(3):
        model.step()
    v = model.view.underlying_price(j)
    x = model.ledger.position[arb.accounts[0], j] * v
    assert 30_000.0 - v * 0.001 <= x <= 30_000.0  # filled up to the cap, not beyond
    assert _dev_bps(model, j) < -15  # so the mispricing outlasts the arbitrageur's capital


def test_equity_limits_gross_inventory():
    model = _world()
    perps = [i.index for i in model.instruments if i.is_perp]
    planter = Planter(model)
    for j in perps:
        planter.plant(j, -60, -40, notional=200_000.0)
    arb = _arbitrageur(model, perps, usd=20_000.0, base_notional=0.0, max_leverage=2.0)
    for _ in range(3):
        model.step()
    row = arb.accounts[0]
    gross = sum(abs(model.ledger.position[row, j]) * model.view.underlying_price(j) for j in perps)
    equity = model.view.margin(np.array([row]))[0][0]
    assert 0 < gross <= 2.0 * 20_000.0 * 1.01
    assert gross <= 2.0 * equity * 1.02
    check_conservation(model.ledger, model.marks)


def test_unwinds_once_prices_converge():
    model = _world()
    j = next(i.index for i in model.instruments if i.is_perp and i.base == 1)
    planter = Planter(model)
    planter.plant(j, -60, -40, levels=20)
    arb = _arbitrageur(model, [j], unwind_notional=50_000.0)
    model.step()
    v = model.view.underlying_price(j)
    q0 = model.ledger.position[arb.accounts[0], j]
    assert q0 * v > 150_000.0
    planter.clear(j)
    planter.plant(j, -1, 1, notional=100_000.0)  # the book is back at the index
    model.step()
    q1 = model.ledger.position[arb.accounts[0], j]
    assert (q0 - q1) * v == pytest.approx(50_000.0, rel=0.01)  # at most unwind_notional a step
    for _ in range(5):
        model.step()
    assert abs(model.ledger.position[arb.accounts[0], j]) < 1e-9
    # bought below the index, sold at it: the convergence trade made money
    e, _, _ = model.view.margin(np.array([arb.accounts[0]]))
    assert e[0] > arb.cfg.usd + arb.cfg.base_notional * 0.9
    check_conservation(model.ledger, model.marks)


@pytest.mark.parametrize("cross_venue", [True, False])
def test_closes_a_cross_venue_gap(cross_venue):
    model = _world(two_venues=True)
    a = next(i.index for i in model.instruments if i.protocol == 0 and i.base == 1)
    b = next(i.index for i in model.instruments if i.protocol == 1 and i.base == 1)
    planter = Planter(model)
    planter.plant(a, -14, -10)  # each mid within the index threshold, but b's bid is
    planter.plant(b, 10, 14, notional=7_000.0)  # 20 bps over a's ask; thinner
    arb = _arbitrageur(model, [a, b], threshold_bps=15.0, cross_venue=cross_venue)
    model.step()
    qa = model.ledger.position[arb.accounts[0], a]
    qb = model.ledger.position[arb.accounts[1], b]
    if not cross_venue:
        assert qa == 0 and qb == 0
        return
    assert qa > 0 and qb == -qa  # long the cheap venue, short the rich one, hedged
    v = model.view.underlying_price(a)
    # sized to the thinner side: b's six bids at or above the midpoint (= the index here)
    assert qa == pytest.approx(6 * 0.117)
    assert model.view.best_bid(b) < v and model.view.best_ask(a) < v
    check_conservation(model.ledger, model.marks)


@pytest.mark.parametrize(("key", "value"), [("band_bps", 20.0), ("unwind_bps", 30.0),
                                            ("max_leverage", -1.0), ("enabled", 1)])
def test_bad_config_names_the_key(key, value):
    with pytest.raises(ValueError, match=rf"^agents\.arbitrageur\.{key} = "):
        validate_arbitrageur_config(ArbitrageurConfig(**{key: value}))
