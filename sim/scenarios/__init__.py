"""Exogenous scenarios: what drives the fundamental prices each step.

``build_scenario`` maps ``scenario.name`` from the config to a driver with an
``advance(rng) -> prices`` method. Only ``calm`` (correlated GBM) exists so far;
crash, replay and liquidity scenarios belong to the agents-and-liquidation work.
"""

from __future__ import annotations

from typing import Any

from sim.scenarios.gbm import CorrelatedGBM

__all__ = ["CorrelatedGBM", "build_scenario"]


def build_scenario(scenario_cfg: Any, market_cfg: Any) -> CorrelatedGBM:
    """The fundamental-price driver named by ``scenario_cfg.name``.

    Raises:
        ValueError: Unknown scenario name (the message lists the valid ones).
    """
    if scenario_cfg.name == "calm":
        return CorrelatedGBM.from_config(market_cfg)
    raise ValueError(f"unknown scenario {scenario_cfg.name!r}; valid: calm")
