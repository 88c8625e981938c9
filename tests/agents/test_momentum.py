"""Trend followers: follow the sign of the trend, stay put without one, normalised signal."""

from __future__ import annotations

import numpy as np
import pytest

from agents.config import MomentumConfig
from agents.momentum import MomentumPopulation
from sim.config import load_config
from sim.config.agents import validate_momentum_config
from sim.ledger import check_conservation
from sim.model import MarketModel


class TrendPath:
    """Pins the model's scenario to a fixed log return per step (0 = constant prices).

    The scenario object is kept (its oracle and liquidity hooks still apply);
    only its ``advance`` is replaced.
    """

    def __init__(self, model: MarketModel, drift_per_step: float) -> None:
        self.prices = model.scenario.prices
        self.drift = drift_per_step
        model.scenario.advance = self.advance

    def advance(self, rng: np.random.Generator) -> np.ndarray:
        self.prices *= np.exp(self.drift)
        return self.prices


def _run(drift: float, steps: int = 40, **kw) -> tuple[MarketModel, MomentumPopulation]:
    """Perp books quoted by the Avellaneda-Stoikov maker around a trending index."""
    cfg = load_config(
        [
            "agents=minimal",
            "scenario=calm",
            "agents.noise.n=0",
            "protocols.0.spot=false",
            "output.figures=false",
        ]
    )
    model = MarketModel(cfg, check_invariants=True)
    TrendPath(model, drift)
    mcfg = MomentumConfig(**{"n": 20, "trade_prob": 0.5, **kw})
    pop = MomentumPopulation(model, [i.index for i in model.instruments], mcfg)
    pop.accounts = np.array([model.open_trader(0, pop.unique_id, mcfg.usd, 0.0)
                             for _ in range(mcfg.n)], np.int64)
    for _ in range(steps):
        model.step()
    return model, pop


@pytest.mark.parametrize("sign", [1, -1])
def test_trend_followers_trade_with_the_trend(sign):
    model, pop = _run(sign * 3e-4)
    assert np.all(sign * pop.signal > 0)  # every trader sees the trend, whatever its lookback
    for inst in model.instruments:
        pos = model.ledger.position[pop.accounts, inst.index]
        assert np.all(sign * pos >= 0), inst.name
        assert (sign * pos > 0).sum() >= 10, inst.name
    check_conservation(model.ledger, model.marks)


def test_no_trend_no_trades():
    model, pop = _run(0.0, steps=30)
    assert np.all(pop.signal == 0.0)
    assert np.all(model.ledger.position[pop.accounts] == 0.0)


def test_nobody_trades_during_warm_up():
    model, pop = _run(3e-4, steps=10, warmup_steps=10, trade_prob=1.0)  # 9 returns seen
    assert np.all(model.ledger.position[pop.accounts] == 0.0)
    model.step()
    assert np.abs(model.ledger.position[pop.accounts]).sum() > 0


def test_signal_is_a_t_statistic_of_an_iid_series():
    # the EWMA t-statistic of i.i.d. returns is about N(0, 1) whatever the half-life
    cfg = load_config(
        [
            "agents=minimal",
            "scenario=calm",
            "agents.noise.n=0",
            "protocols.0.spot=false",
            "output.figures=false",
        ]
    )
    model = MarketModel(cfg)
    pop = MomentumPopulation(model, [model.instruments[0].index],
                             MomentumConfig(n=400, halflife_min_steps=3, halflife_max_steps=30,
                                            vol_halflife_steps=500, warmup_steps=2))
    pop.accounts = np.arange(400)
    rng = np.random.default_rng(0)
    price = [100.0]

    class _View:
        def reference_price(self, j):
            return price[0]

    model.view = _View()
    zs = []
    for t in range(20_000):
        price[0] *= np.exp(0.01 * rng.standard_normal())
        pop._observe()
        if t > 1000 and t % 50 == 0:
            zs.append(pop.signal[:, 0].copy())
    z = np.array(zs)  # (time, trader)
    short, long = pop.halflife < 6, pop.halflife > 20
    assert short.sum() > 50 and long.sum() > 50
    for group in (short, long):  # about unit variance for short and long lookbacks alike
        assert z[:, group].std() == pytest.approx(1.0, abs=0.15)
        assert abs(z[:, group].mean()) < 0.25


def test_order_notional_capped():
    model, pop = _run(1e-3, steps=25, notional_per_signal=1e6, max_order_notional=5_000.0,
                      max_position_notional=12_000.0, trade_prob=1.0)
    for inst in model.instruments:
        x = model.ledger.position[pop.accounts, inst.index] * model.asset_prices[inst.base]
        lot = inst.lot_size * model.asset_prices[inst.base]
        # the cap binds at order time; the price has risen by at most 2.5 % since
        assert x.max() <= 12_000.0 * np.exp(25e-3) + lot
    trades = model.trades_table()
    mine = np.isin(trades["taker_account"], pop.accounts)
    per_order = {}
    for key in zip(trades["instrument"][mine], trades["taker_order"][mine],
                   trades["notional"][mine], strict=True):
        per_order[key[:2]] = per_order.get(key[:2], 0.0) + key[2]
    assert max(per_order.values()) <= 5_000.0 * 1.02


@pytest.mark.parametrize(("key", "value"), [("halflife_max_steps", 1.0), ("threshold", -1.0),
                                            ("warmup_steps", 0)])
def test_bad_config_names_the_key(key, value):
    with pytest.raises(ValueError, match=rf"^agents\.momentum\.{key} = "):
        validate_momentum_config(MomentumConfig(**{key: value}))
