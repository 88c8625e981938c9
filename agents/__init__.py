"""Behaviour: Mesa agents that read the market view and send orders.

Agents hold strategy parameters and ledger row ids, never balances. A
population of simple traders acts as one vectorised agent. Every agent's
config schema is in :mod:`agents.config` (pure data; its checks are
``sim.config.agents``); the helpers populations share are in
:mod:`agents.base`; one module per behaviour. Agents see the world only
through :mod:`sim.market` (the market view and the liquidation offer).
"""

from agents.arbitrageur import Arbitrageur
from agents.config import (
    AgentsConfig,
    ArbitrageurConfig,
    FundamentalistConfig,
    LeveragedConfig,
    LiquidatorConfig,
    LiquidityWithdrawalConfig,
    MarketMakerConfig,
    MomentumConfig,
    NoiseConfig,
)
from agents.fundamentalist import FundamentalistPopulation
from agents.leveraged import LeveragedTraderPopulation
from agents.liquidator import Liquidator
from agents.market_maker import (
    AvellanedaStoikovMaker,
    avellaneda_stoikov_quotes,
    withdrawal_factors,
)
from agents.momentum import MomentumPopulation
from agents.noise import NoiseTraderPopulation

__all__ = [
    "AgentsConfig",
    "Arbitrageur",
    "ArbitrageurConfig",
    "AvellanedaStoikovMaker",
    "FundamentalistConfig",
    "FundamentalistPopulation",
    "LeveragedConfig",
    "LeveragedTraderPopulation",
    "Liquidator",
    "LiquidatorConfig",
    "LiquidityWithdrawalConfig",
    "MarketMakerConfig",
    "MomentumConfig",
    "MomentumPopulation",
    "NoiseConfig",
    "NoiseTraderPopulation",
    "avellaneda_stoikov_quotes",
    "withdrawal_factors",
]
