"""Leveraged traders: reach the target leverage.

Top up, deleverage or sit near maintenance; re-enter after a close-out.
"""

from __future__ import annotations

import mesa
import numpy as np
import pytest

from agents.config import LeveragedConfig
from agents.leveraged import LeveragedTraderPopulation
from sim.config import load_config
from sim.config.agents import validate_leveraged_config
from sim.ledger import check_conservation
from sim.market.view import CANCEL, LIMIT, STATUS_RESTING
from sim.model import MarketModel
from tests.agents.fixed_path import FixedPath


class Ladder(mesa.Agent):
    """Test liquidity: a deep symmetric ladder around the index, replaced every step.

    Unlike the Avellaneda-Stoikov maker it neither skews for inventory nor
    withdraws, so the book mid follows the index exactly.
    """

    def __init__(self, model: MarketModel, j: int, levels: int = 20, spacing_bps: float = 2.0,
                 notional: float = 50_000.0) -> None:
        super().__init__(model)
        self.j, self.levels, self.notional = j, levels, notional
        self.spacing = spacing_bps * 1e-4
        self.account = model.open_trader(model.instruments[j].protocol, self.unique_id, 1e9, 0.0)
        self._live = np.zeros(0, np.int64)
        self.step()

    def step(self) -> None:
        view = self.model.view
        inst = view.instruments[self.j]
        s = view.underlying_price(self.j)
        k = np.arange(1, self.levels + 1)
        n_old = len(self._live)
        ev = view.new_events(n_old + 2 * self.levels)
        ev["kind"][:n_old] = CANCEL
        ev["order_id"][:n_old] = self._live
        new = ev[n_old:]
        new["kind"], new["owner"] = LIMIT, self.account
        new["side"] = np.repeat([1, -1], self.levels)
        new["price"] = np.concatenate([inst.ticks(s * (1 - self.spacing * k), 1),
                                       inst.ticks(s * (1 + self.spacing * k), -1)])
        new["qty"] = inst.lots(self.notional / s)
        ev[n_old:] = new
        res = view.submit(self.j, ev)[n_old:]
        self._live = res["order_id"][res["status"] == STATUS_RESTING]


def _world(rule: str = "top_up", n: int = 6, leverage: float = 10.0, long_share: float = 1.0,
           **kw) -> tuple[MarketModel, LeveragedTraderPopulation, FixedPath]:
    """Perps only, flat 5 % / 3 % requirements (dYdX v4 large caps), ladder liquidity."""
    cfg = load_config(
        [
            "agents=minimal",
            "scenario=calm",
            "agents.noise.n=0",
            "agents.market_maker.per_book=0",
            "protocols.0.spot=false",
            "margin.params.tiers=flat",
            "output.figures=false",
        ]
    )
    model = MarketModel(cfg, check_invariants=True)
    path = FixedPath(model)
    for inst in model.instruments:
        Ladder(model, inst.index)
    lcfg = LeveragedConfig(**{"n": n, "usd": 10_000.0, "leverage_min": leverage,
                              "leverage_max": leverage, "long_share": long_share,
                              "trade_prob": 1.0, "rule": rule, "reopen_prob": 0.0, **kw})
    pop = LeveragedTraderPopulation(model, [i.index for i in model.instruments], lcfg)
    pop.accounts = np.array([model.open_trader(0, pop.unique_id, lcfg.usd, 0.0)
                             for _ in range(n)], np.int64)
    model.evaluate_margins()
    return model, pop, path


def _steps(model: MarketModel, k: int) -> None:
    for _ in range(k):
        model.step()


def _ratio(model: MarketModel, pop: LeveragedTraderPopulation) -> np.ndarray:
    e, _im, mm = model.view.margin(pop.accounts)
    return e / mm


def test_traders_reach_their_target_leverage():
    model, pop, _ = _world(n=8, leverage=5.0, long_share=0.5, max_order_notional=15_000.0)
    assert set(pop.direction.tolist()) == {1, -1}
    _steps(model, 8)
    lev = pop.leverage_now()
    assert lev == pytest.approx(np.full(8, 5.0), rel=0.03)
    assert np.all(np.sign(pop._positions()) == pop.direction)
    check_conservation(model.ledger, model.marks)


def test_per_trader_targets_span_the_configured_range():
    _model, pop, _ = _world(n=200, leverage=2.0, leverage_max=20.0)
    assert pop.leverage.min() >= 2.0 and pop.leverage.max() <= 20.0
    assert np.median(pop.leverage) == pytest.approx(np.sqrt(40.0), rel=0.15)  # log-uniform
    assert len(set(pop.instrument.tolist())) == 2


def test_pareto_targets_have_the_configured_tail():
    # survival (L / L_min)^-alpha: with alpha 1.5, 1/8 of the traders above 4 x L_min = 8x,
    # 1/27 above 9 x = 18x; nobody above the 50x cap, and the cap holds the (1/25)^1.5 = 0.8 %
    from agents.leveraged import draw_leverage

    cfg = LeveragedConfig(leverage_min=2.0, leverage_max=50.0, leverage_dist="pareto",
                          leverage_tail=1.5)
    lev = draw_leverage(np.random.default_rng(5), 200_000, cfg)
    assert lev.min() >= 2.0 and lev.max() == 50.0
    assert (lev > 8.0).mean() == pytest.approx(1 / 8, rel=0.03)
    assert (lev > 18.0).mean() == pytest.approx(1 / 27, rel=0.05)
    assert (lev == 50.0).mean() == pytest.approx(25.0 ** -1.5, rel=0.1)
    # a heavier tail (smaller alpha) holds more highly levered traders
    heavy = draw_leverage(np.random.default_rng(5), 200_000,
                          LeveragedConfig(leverage_min=2.0, leverage_max=50.0,
                                          leverage_dist="pareto", leverage_tail=0.8))
    assert (heavy > 18.0).mean() > 2 * (lev > 18.0).mean()


def test_log_uniform_targets_are_the_default_draws():
    from agents.leveraged import draw_leverage

    cfg = LeveragedConfig(leverage_min=2.0, leverage_max=20.0)
    want = np.exp(np.random.default_rng(9).uniform(np.log(2.0), np.log(20.0), 50))
    np.testing.assert_array_equal(draw_leverage(np.random.default_rng(9), 50, cfg), want)


def test_entry_is_staggered_over_the_warm_up():
    model, pop, _ = _world(n=60, leverage=2.0, entry_steps=40)
    assert pop.entry_step.min() >= 0 and pop.entry_step.max() < 40
    assert len(set(pop.entry_step.tolist())) > 10
    first_open = np.full(60, -1)
    for step in range(1, 46):
        _steps(model, 1)
        opened = (pop._positions() != 0) & (first_open < 0)
        first_open[opened] = step
    # nobody opens before its entry step; everybody has opened soon after it (trade_prob 1)
    assert np.all(first_open > pop.entry_step)
    assert np.all(first_open <= pop.entry_step + 2)


def test_build_up_is_spread_over_steps():
    model, pop, _ = _world(n=100, leverage=2.0, trade_prob=0.3)
    _steps(model, 1)
    opened = (pop._positions() != 0).sum()
    assert 15 <= opened <= 45  # about trade_prob of the traders move per step
    _steps(model, 20)
    assert np.all(pop._positions() != 0)


def test_top_up_restores_the_target_ratio_from_outside():
    model, pop, path = _world("top_up", target_ratio=3.0, trigger_ratio=1.5)
    _steps(model, 6)
    world0 = model.ledger.collateral[0, 0]
    path.prices *= 0.935  # a 6.5 % fall: equity / MM of the 10x longs drops to about 1.25
    _steps(model, 1)
    assert np.all(_ratio(model, pop) < 1.5)
    q0 = pop._positions()
    _steps(model, 2)
    assert np.all(pop.topped_up > 0)
    assert _ratio(model, pop) == pytest.approx(np.full(6, 3.0), rel=0.02)
    assert np.array_equal(pop._positions(), q0)  # topping up trades nothing
    # the money came from outside the world, and is what the agents recorded
    assert world0 - model.ledger.collateral[0, 0] == pytest.approx(pop.topped_up.sum())
    check_conservation(model.ledger, model.marks)


def test_top_up_stops_at_the_budget():
    model, pop, path = _world("top_up", top_up_budget_frac=0.1)
    _steps(model, 6)
    path.prices *= 0.935
    _steps(model, 4)
    assert pop.topped_up == pytest.approx(np.full(6, 1_000.0))
    assert np.all(pop.budget_left == pytest.approx(0.0, abs=1e-6))
    assert np.all(_ratio(model, pop) < 3.0)


def test_deleverage_sells_reduce_only_back_to_the_target_ratio():
    model, pop, path = _world("deleverage", target_ratio=3.0)
    _steps(model, 6)
    path.prices *= 0.935
    _steps(model, 1)
    q0 = pop._positions()
    _steps(model, 2)
    q1 = pop._positions()
    assert np.all((q1 > 0) & (q1 < 0.6 * q0))  # cut, still long
    assert np.all(_ratio(model, pop) > 0.95 * 3.0)
    assert np.all(pop.topped_up == 0)
    check_conservation(model.ledger, model.marks)


def test_rule_none_sits_below_the_trigger():
    model, pop, path = _world("none")
    _steps(model, 6)
    path.prices *= 0.935
    _steps(model, 1)
    q0 = pop._positions()
    _steps(model, 3)
    assert np.array_equal(pop._positions(), q0)
    assert np.all(pop.distressed) and np.all(_ratio(model, pop) < 1.5)


def _close_out(model: MarketModel, pop: LeveragedTraderPopulation) -> None:
    """What a liquidator does: take every position over at the mark."""
    ladder = next(a for a in model.agents if isinstance(a, Ladder))
    for i, row in enumerate(pop.accounts):
        j = int(pop.instrument[i])
        q = model.ledger.position[row, j]
        model.ledger.transfer_position(j, int(row), ladder.account, float(q),
                                       float(model.marks[j]))
    model.evaluate_margins()


@pytest.mark.parametrize("reopen_prob", [0.0, 1.0])
def test_reentry_after_a_close_out(reopen_prob):
    model, pop, path = _world("none", reopen_prob=reopen_prob)
    _steps(model, 6)
    path.prices *= 0.95
    _steps(model, 1)
    _close_out(model, pop)
    _steps(model, 1)
    assert np.all(pop.closeouts == 1) and not pop.active.any()
    assert np.all(pop._positions() == 0)
    _steps(model, 6)
    if reopen_prob == 0.0:
        assert np.all(pop._positions() == 0) and np.all(pop.refilled == 0)
    else:  # refilled to the initial equity by a new investor, then levered up again
        assert np.all(pop.refilled > 0)
        assert pop.leverage_now() == pytest.approx(np.full(6, 10.0), rel=0.03)
        e, _, _ = model.view.margin(pop.accounts)
        assert e == pytest.approx(np.full(6, 10_000.0), rel=0.02)
    check_conservation(model.ledger, model.marks)


def test_same_seed_same_population():
    a = _world(n=30, leverage=2.0, leverage_max=20.0, long_share=0.5)[1]
    b = _world(n=30, leverage=2.0, leverage_max=20.0, long_share=0.5)[1]
    assert np.array_equal(a.leverage, b.leverage) and np.array_equal(a.direction, b.direction)


@pytest.mark.parametrize(("key", "value"), [("rule", "pray"), ("leverage_max", 1.0),
                                            ("target_ratio", 1.0), ("long_share", 2.0),
                                            ("leverage_dist", "normal"), ("leverage_tail", 0.0),
                                            ("entry_steps", -1), ("entry_steps", 2.5)])
def test_bad_config_names_the_key(key, value):
    with pytest.raises(ValueError, match=rf"^agents\.leveraged\.{key} = "):
        validate_leveraged_config(LeveragedConfig(**{key: value}))
