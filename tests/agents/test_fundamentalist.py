"""Value investors: side from the sign of the mispricing, deadband, value limit, caps."""

from __future__ import annotations

import numpy as np
import pytest

from agents.config import FundamentalistConfig
from agents.fundamentalist import FundamentalistPopulation
from sim.config import load_config
from sim.config.agents import validate_fundamentalist_config
from sim.ledger import check_conservation
from sim.market.view import LIMIT
from sim.model import MarketModel
from tests.agents.fixed_path import FixedPath


def _world(seed: int = 1) -> MarketModel:
    """Spot and perp books with no maker and no noise: the test sets the book by hand."""
    cfg = load_config(
        [
            "agents=minimal",
            "scenario=calm",
            "agents.noise.n=0",
            "agents.market_maker.per_book=0",
            "output.figures=false",
            f"seed={seed}",
        ]
    )
    model = MarketModel(cfg, check_invariants=True)
    FixedPath(model)
    return model


def _plant(model: MarketModel, j: int, bid_rel: float, ask_rel: float, levels: int = 10,
           spacing_rel: float = 2e-4, notional: float = 200_000.0) -> int:
    """Resting bids from ``index (1 + bid_rel)`` down and asks from ``index (1 + ask_rel)`` up."""
    owner = model.open_trader(0, owner=0, usd=1e9, base_notional=1e9)
    inst = model.instruments[j]
    v = model.asset_prices[inst.base]
    k = np.arange(levels)
    ev = model.view.new_events(2 * levels)
    ev["kind"], ev["owner"] = LIMIT, owner
    ev["side"] = np.repeat([1, -1], levels)
    ev["price"] = np.concatenate([inst.ticks(v * (1 + bid_rel - spacing_rel * k), 1),
                                  inst.ticks(v * (1 + ask_rel + spacing_rel * k), -1)])
    ev["qty"] = inst.lots(notional / v)
    model.submit(j, ev)
    return owner


def _population(model: MarketModel, **kw) -> FundamentalistPopulation:
    cfg = FundamentalistConfig(**{"n": 20, "trade_prob": 1.0, **kw})
    pop = FundamentalistPopulation(model, [i.index for i in model.instruments], cfg)
    pop.accounts = np.array([model.open_trader(0, pop.unique_id, cfg.usd, cfg.base_notional)
                             for _ in range(cfg.n)], np.int64)
    return pop


def _exposure(model: MarketModel, pop: FundamentalistPopulation, j: int, start: dict) -> np.ndarray:
    inst = model.instruments[j]
    if inst.is_perp:
        return model.ledger.position[pop.accounts, j].copy()
    return model.ledger.collateral[pop.accounts, inst.base] - start[inst.base]


def _start(model, pop):
    return {a: model.ledger.collateral[pop.accounts, a].copy()
            for a in range(1, len(model.asset_names))}


@pytest.mark.parametrize(("rel", "sign"), [(-0.003, 1), (0.003, -1)])
def test_buy_below_the_index_and_sell_above(rel, sign):
    model = _world()
    for inst in model.instruments:  # mid 30 bps below (above) the index, 4 bps wide
        _plant(model, inst.index, rel - 2e-4, rel + 2e-4)
    pop = _population(model)
    start = _start(model, pop)
    for _ in range(3):
        model.step()
    for inst in model.instruments:
        x = _exposure(model, pop, inst.index, start)
        assert np.all(sign * x >= 0), inst.name  # nobody trades the wrong way
        assert (sign * x > 0).sum() >= 3, inst.name
    trades = model.trades_table()
    mine = np.isin(trades["taker_account"], pop.accounts)
    assert mine.any() and np.all(trades["taker_side"][mine] == sign)
    check_conservation(model.ledger, model.marks)


def test_no_orders_inside_the_deadband():
    model = _world()
    for inst in model.instruments:  # mid 3 bps below the index, threshold 5 bps
        _plant(model, inst.index, -4e-4, -2e-4)
    pop = _population(model, threshold_bps=5.0)
    n0 = model.orders_submitted
    for _ in range(3):
        model.step()
    assert model.orders_submitted == n0
    assert len(model.trades_table()["price"]) == 0
    assert len(pop.accounts) == 20


def test_order_size_grows_with_the_mispricing():
    sizes = []
    for rel in (-0.002, -0.008):
        model = _world()
        perp = next(i.index for i in model.instruments if i.is_perp and i.base == 1)
        _plant(model, perp, rel - 2e-4, rel + 2e-4, levels=40, notional=1e6)
        pop = _population(model, max_order_notional=1e9, max_position_notional=1e9, market_prob=1.0)
        pop.instruments = np.array([perp])
        model.step()
        sizes.append(model.ledger.position[pop.accounts, perp].sum())
    assert sizes[0] > 0
    assert sizes[1] == pytest.approx(4 * sizes[0], rel=0.05)  # linear in |index - mid|


def test_limit_orders_never_pay_above_the_index():
    model = _world()
    perp = next(i.index for i in model.instruments if i.is_perp and i.base == 1)
    v = model.asset_prices[1]
    # mid about 40 bps below the index, but asks run up to 36 bps above it
    _plant(model, perp, -0.010, -0.002, levels=20, spacing_rel=2e-4, notional=5_000.0)
    pop = _population(model, market_prob=0.0, beta_min=500.0, beta_max=500.0,
                      max_order_notional=1e6, max_position_notional=1e9)
    pop.instruments = np.array([perp])
    model.step()
    trades = model.trades_table()
    mine = np.isin(trades["taker_account"], pop.accounts)
    assert mine.sum() > 5
    assert np.all(trades["price"][mine] <= v + 1e-9)
    assert model.books[perp].best_ask() * model.instruments[perp].tick_size > v  # swept to value


def test_position_cap_bounds_exposure():
    model = _world()
    for inst in model.instruments:
        _plant(model, inst.index, -0.0052, -0.0048, levels=40, notional=1e6)
    pop = _population(model, beta_min=200.0, beta_max=200.0, max_position_notional=15_000.0)
    start = _start(model, pop)
    for _ in range(6):
        model.step()
    for inst in model.instruments:
        x = _exposure(model, pop, inst.index, start) * model.asset_prices[inst.base]
        lot = inst.lot_size * model.asset_prices[inst.base]
        assert x.max() <= 15_000.0 + lot
        assert x.max() >= 15_000.0 - 2 * lot  # the cap binds
    check_conservation(model.ledger, model.marks)


def test_same_seed_same_orders():
    def run():
        model = _world(seed=5)
        for inst in model.instruments:
            _plant(model, inst.index, -0.0032, -0.0028)
        pop = _population(model, trade_prob=0.3)
        for _ in range(4):
            model.step()
        return model.ledger.position[pop.accounts].copy(), pop.beta.copy()

    (p1, b1), (p2, b2) = run(), run()
    assert np.array_equal(p1, p2) and np.array_equal(b1, b2)


@pytest.mark.parametrize(("key", "value"), [("trade_prob", 1.5), ("beta_max", 1.0), ("n", -1),
                                            ("max_order_notional", 0.0)])
def test_bad_config_names_the_key(key, value):
    cfg = FundamentalistConfig(**{key: value})
    with pytest.raises(ValueError, match=rf"^agents\.fundamentalist\.{key} = "):
        validate_fundamentalist_config(cfg)
