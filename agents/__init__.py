"""Behaviour: Mesa agents that read the market view and send orders.

Agents hold strategy parameters and ledger row ids, never balances. A
population of simple traders acts as one vectorised agent.
"""

from agents.market_maker import AvellanedaStoikovMaker, avellaneda_stoikov_quotes
from agents.noise import NoiseTraderPopulation

__all__ = ["AvellanedaStoikovMaker", "NoiseTraderPopulation", "avellaneda_stoikov_quotes"]
