"""Behaviour: Mesa agents that read the market view and send orders.

Agents hold strategy parameters and ledger row ids, never balances. A
population of simple traders acts as one vectorised agent. Each agent module
also defines its config dataclass and a ``validate_*`` function raising a
one-line ``ValueError`` that names the bad key.
"""

from agents.arbitrageur import Arbitrageur, ArbitrageurConfig, validate_arbitrageur_config
from agents.fundamentalist import (
    FundamentalistConfig,
    FundamentalistPopulation,
    validate_fundamentalist_config,
)
from agents.leveraged import (
    LeveragedConfig,
    LeveragedTraderPopulation,
    validate_leveraged_config,
)
from agents.market_maker import (
    AvellanedaStoikovMaker,
    LiquidityWithdrawalConfig,
    avellaneda_stoikov_quotes,
    validate_withdrawal_config,
    withdrawal_factors,
)
from agents.liquidator import Liquidator, LiquidatorConfig, validate_liquidator_config
from agents.momentum import MomentumConfig, MomentumPopulation, validate_momentum_config
from agents.noise import NoiseTraderPopulation

__all__ = [
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
    "MomentumConfig",
    "MomentumPopulation",
    "NoiseTraderPopulation",
    "avellaneda_stoikov_quotes",
    "validate_arbitrageur_config",
    "validate_fundamentalist_config",
    "validate_leveraged_config",
    "validate_liquidator_config",
    "validate_momentum_config",
    "validate_withdrawal_config",
    "withdrawal_factors",
]
