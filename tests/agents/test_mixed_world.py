"""All trader populations together in the default world.

They trade, the ledger conserves, and a seed reproduces the run.

``build_traders`` is the construction ``sim.world.build_agents`` performs
for these agents (one population of each kind per protocol, one arbitrageur
with an account on every protocol).
"""

from __future__ import annotations

import numpy as np

from agents import (
    Arbitrageur,
    ArbitrageurConfig,
    FundamentalistConfig,
    FundamentalistPopulation,
    LeveragedConfig,
    LeveragedTraderPopulation,
    MomentumConfig,
    MomentumPopulation,
)
from sim.config import load_config
from sim.ledger import check_conservation
from sim.model import MarketModel


def build_traders(model: MarketModel, fund: FundamentalistConfig, mom: MomentumConfig,
                  lev: LeveragedConfig, arb: ArbitrageurConfig) -> dict[str, list]:
    """Create the populations and the arbitrageur on ``model`` and fund their accounts."""
    built: dict[str, list] = {"fundamentalist": [], "momentum": [], "leveraged": [],
                              "arbitrageur": []}
    for proto in model.protocols:
        insts = [i.index for i in proto.instruments]
        for key, cls, c in (("fundamentalist", FundamentalistPopulation, fund),
                            ("momentum", MomentumPopulation, mom)):
            if c.n > 0:
                pop = cls(model, insts, c)
                pop.accounts = np.array([model.open_trader(proto.index, pop.unique_id, c.usd,
                                                           c.base_notional)
                                         for _ in range(c.n)], np.int64)
                built[key].append(pop)
        if lev.n > 0 and any(model.instruments[j].is_perp for j in insts):
            pop = LeveragedTraderPopulation(model, insts, lev)
            pop.accounts = np.array([model.open_trader(proto.index, pop.unique_id, lev.usd, 0.0)
                                     for _ in range(lev.n)], np.int64)
            built["leveraged"].append(pop)
    if arb.enabled:
        agent = Arbitrageur(model, [i.index for i in model.instruments], arb)
        agent.accounts = {p.index: model.open_trader(p.index, agent.unique_id, arb.usd,
                                                     arb.base_notional)
                          for p in model.protocols}
        built["arbitrageur"].append(agent)
    return built


def _run(steps: int = 200):
    cfg = load_config(
        [
            "agents=minimal",
            "scenario=calm",
            "agents.noise.n=60",
            "output.figures=false",
            f"steps={steps}",
            "seed=3",
        ]
    )
    model = MarketModel(cfg, check_invariants=True)
    built = build_traders(model, FundamentalistConfig(n=20), MomentumConfig(n=20),
                          LeveragedConfig(n=20), ArbitrageurConfig())
    model.evaluate_margins()
    for _ in range(steps):
        model.step()
    return model, built


def test_every_population_trades_and_the_ledger_conserves():
    model, built = _run()
    trades = model.trades_table()
    for key, agents in built.items():
        assert len(agents) == 1, key
        a = agents[0]
        rows = list(a.accounts.values()) if isinstance(a.accounts, dict) else a.accounts
        assert np.isin(trades["taker_account"], rows).sum() > 10, key
    lev = built["leveraged"][0]
    assert np.nanmedian(lev.leverage_now() / lev.leverage) > 0.7  # built up toward targets
    check_conservation(model.ledger, model.marks)


def test_same_seed_same_run():
    a, _ = _run(60)
    b, _ = _run(60)
    ta, tb = a.trades_table(), b.trades_table()
    assert len(ta["price"]) > 0
    for key in ("price", "qty", "taker_account", "maker_account"):
        assert np.array_equal(ta[key], tb[key])
