"""Small market configs for scenario tests (dataclasses, no Hydra)."""

from __future__ import annotations

from sim.config import AssetConfig, MarketConfig


def market(vol: float = 0.6, drift: float = 0.0, rho: float = 0.8,
           step_seconds: float = 60.0) -> MarketConfig:
    """BTC and ETH at 60,000 and 3,000 with the given vol, drift and correlation."""
    return MarketConfig(
        step_seconds=step_seconds,
        assets=[AssetConfig(name="BTC", price=60000.0, vol=vol, drift=drift),
                AssetConfig(name="ETH", price=3000.0, vol=vol, drift=drift, tick_size=0.01)],
        correlation=[[1.0, rho], [rho, 1.0]])
