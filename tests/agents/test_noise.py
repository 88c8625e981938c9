"""Zero-intelligence population: order lifetime and the inventory cap."""

from __future__ import annotations

import numpy as np

from agents.noise import NoiseTraderPopulation
from sim.config import load_config
from sim.model import MarketModel


def _run(extra, steps=120):
    cfg = load_config(
        [
            "agents=minimal",
            "scenario=calm",
            "agents.noise.n=60",
            "output.figures=false",
            f"steps={steps}",
            *extra,
        ]
    )
    model = MarketModel(cfg)
    for _ in range(steps):
        model.step()
    return model


def _population(model):
    return next(a for a in model.agents if isinstance(a, NoiseTraderPopulation))


def test_resting_orders_expire_after_their_lifetime():
    model = _run(["agents.noise.lifetime_steps=5", "agents.noise.marketable_prob=0"])
    pop = _population(model)
    accounts = set(pop.accounts.tolist())
    for book in model.books:
        live = book.live_orders()
        noise_ids = live["order_id"][np.isin(live["owner"], list(accounts))]
        tracked = dict(zip(pop._live_id.tolist(), pop._live_expiry.tolist(), strict=True))
        for oid in noise_ids.tolist():
            assert (
                tracked.get(oid, -1) > model.steps
            )  # every live noise order is tracked, unexpired
    assert np.all(pop._live_expiry > model.steps)


def test_inventory_cap_bounds_perp_exposure():
    capped = _run(["agents.noise.max_position_notional=3000", "agents.noise.order_prob=0.3"])
    free = _run(["agents.noise.max_position_notional=1e12", "agents.noise.order_prob=0.3"])

    def max_exposure(model):
        pop = _population(model)
        perps = [i for i in model.instruments if i.is_perp]
        return max(np.abs(model.ledger.position[pop.accounts, i.index] * model.marks[i.index]).max()
                   for i in perps)

    assert max_exposure(capped) < 0.5 * max_exposure(free)
