"""Every scenario YAML composes and validates; config errors stay one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.config import ConfigError, ScenarioConfig, load_config
from sim.scenarios import SCENARIOS, build_scenario

from .helpers import market

CONF = Path(__file__).resolve().parents[3] / "conf" / "scenario"
STOCHASTIC = ["calm", "jump_crash", "flash_crash", "vol_spike", "liquidity_drought",
              "oracle_delay"]


def test_every_scenario_name_has_a_yaml():
    shipped = {p.stem for p in CONF.glob("*.yaml")}
    assert set(SCENARIOS) <= shipped


@pytest.mark.parametrize("name", STOCHASTIC)
def test_scenario_yaml_composes_and_runs(name):
    cfg = load_config([f"scenario={name}"])
    assert cfg.scenario.name == name
    scen = build_scenario(cfg.scenario, cfg.market)
    rng = np.random.default_rng(0)
    for _ in range(cfg.steps):
        scen.advance(rng)
    assert np.all(np.isfinite(scen.prices)) and np.all(scen.prices > 0)


@pytest.mark.parametrize("name", STOCHASTIC)
def test_python_defaults_build(name):
    build_scenario(ScenarioConfig(name), market())


def test_bad_scenario_param_is_a_one_line_config_error():
    with pytest.raises(ConfigError) as info:
        load_config(["scenario=jump_crash", "scenario.params.crash=1.5"])
    msg = str(info.value)
    assert "scenario (jump_crash)" in msg and "params.crash" in msg and "\n" not in msg


def test_unknown_scenario_name_is_a_config_error():
    with pytest.raises(ConfigError, match="valid: calm"):
        load_config(["scenario.name=sideways"])
