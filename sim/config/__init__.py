"""The run configuration: schema, validation, the override grammar and loading.

* :mod:`sim.config.schema` — the structured schema (dataclasses registered in
  Hydra's ConfigStore as ``base_run``; the agents' sections are
  :mod:`agents.config`);
* :mod:`sim.config.checks` — the one validation dialect (``ConfigError``,
  ``<key> = <value> is invalid: <rule>``);
* :mod:`sim.config.validation` and :mod:`sim.config.agents` — every value
  checked once, before the run; :mod:`sim.config.capacity` — what a run can
  represent (ticks, volatility, memory);
* :mod:`sim.config.overrides` — per-protocol margin overrides and the override
  checks composition needs;
* :mod:`sim.config.loading` — ``load_config`` (exactly what ``python -m sim``
  composes), ``plain_config``, ``to_container``.
"""

from sim.config.checks import ConfigError
from sim.config.loading import finish_config, load_config, plain_config, to_container
from sim.config.overrides import apply_protocol_margin_overrides, split_protocol_margin_overrides
from sim.config.schema import (
    AssetConfig,
    ContagionConfig,
    IssuedTokenConfig,
    MarginConfig,
    MarketConfig,
    OracleConfig,
    OutputConfig,
    ProtocolConfig,
    RunConfig,
    ScenarioConfig,
    register_configs,
)
from sim.config.validation import token_names, universal_margin_config, validate

__all__ = [
    "AssetConfig",
    "ConfigError",
    "ContagionConfig",
    "IssuedTokenConfig",
    "MarginConfig",
    "MarketConfig",
    "OracleConfig",
    "OutputConfig",
    "ProtocolConfig",
    "RunConfig",
    "ScenarioConfig",
    "apply_protocol_margin_overrides",
    "finish_config",
    "load_config",
    "plain_config",
    "register_configs",
    "split_protocol_margin_overrides",
    "to_container",
    "token_names",
    "universal_margin_config",
    "validate",
]
