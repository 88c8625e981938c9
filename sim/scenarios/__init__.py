"""Exogenous scenarios: what drives the fundamental prices each step.

Every scenario follows the contract of :class:`~sim.scenarios.base.Scenario`:
``prices``, ``initial``, ``dt``, ``advance(rng)`` and the hooks ``liquidity``,
``oracle_latency``, ``oracle_stale``, ``fundamental_drawdown``.
:func:`build_scenario` maps ``scenario.name`` from the config to one:

========================  ==================================================
``calm``                  correlated GBM (:mod:`sim.scenarios.gbm`)
``jump_crash``            GBM plus a fall of x % over k steps
``flash_crash``           a fall, then a recovery of a fraction of the loss
``vol_spike``             volatility times m in a window
``liquidity_drought``     market makers withdraw to a level in a window
``oracle_delay``          oracle latency raised and/or oracle frozen in a window
``replay``                historical paths from OHLCV CSVs (:mod:`.replay`)
========================  ==================================================

Parameters of each are documented in :mod:`sim.scenarios.shocks`,
:mod:`sim.scenarios.replay` and ``conf/scenario/<name>.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim.scenarios.base import Scenario, Window
from sim.scenarios.gbm import CorrelatedGBM
from sim.scenarios.params import Params
from sim.scenarios.replay import Replay, data_dir, replay
from sim.scenarios.shocks import (
    Crash,
    LiquidityDrought,
    OracleOutage,
    ShockScenario,
    VolSpike,
    flash_crash,
    jump_crash,
    liquidity_drought,
    oracle_delay,
    vol_spike,
)

__all__ = [
    "SCENARIOS",
    "CorrelatedGBM",
    "Crash",
    "LiquidityDrought",
    "OracleOutage",
    "Replay",
    "Scenario",
    "ShockScenario",
    "VolSpike",
    "Window",
    "build_scenario",
    "data_dir",
]


def _calm(params: Any, market_cfg: Any) -> CorrelatedGBM:
    """Scenario ``calm``: correlated GBM as configured in ``market`` (no params)."""
    Params("calm", params, ())
    return CorrelatedGBM.from_config(market_cfg)


#: Scenario name → factory ``(params, market_cfg) -> Scenario``.
SCENARIOS: dict[str, Callable[[Any, Any], Scenario]] = {
    "calm": _calm,
    "jump_crash": jump_crash,
    "flash_crash": flash_crash,
    "vol_spike": vol_spike,
    "liquidity_drought": liquidity_drought,
    "oracle_delay": oracle_delay,
    "replay": replay,
}


def build_scenario(scenario_cfg: Any, market_cfg: Any) -> Scenario:
    """The scenario named by ``scenario_cfg.name``, built with its ``params``.

    Args:
        scenario_cfg: A ``ScenarioConfig`` (``name`` and ``params``).
        market_cfg: A ``MarketConfig`` (assets, correlation, ``step_seconds``).

    Returns:
        A fresh scenario at step 0.

    Raises:
        ValueError: Unknown scenario name (the message lists the valid ones) or
            a bad param (one line naming it).
    """
    name = scenario_cfg.name
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; valid: {', '.join(SCENARIOS)}")
    return SCENARIOS[name](getattr(scenario_cfg, "params", None), market_cfg)
