"""Config composition and validation: one-line errors naming the key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sim.config import ConfigError, load_config


def test_default_config_composes_and_validates():
    cfg = load_config()
    assert cfg.steps == 1440
    assert [a.name for a in cfg.market.assets] == ["BTC", "ETH"]
    assert cfg.protocols[0].name == "alpha"
    assert cfg.margin.name == "cross"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("steps=0", "steps"),
        ("steps=abc", "steps"),
        ("market.assets.0.vol=-0.1", "market.assets[0].vol"),
        ("market.correlation=[[1.0,1.5],[1.5,1.0]]", "market.correlation"),
        ("protocols.0.stp=sometimes", "protocols[0].stp"),
        ("agents.noise.order_prob=1.5", "agents.noise.order_prob"),
        ("margin.mmr=0.5", "margin.mmr"),
        ("nonsense=1", "nonsense"),
        ("margin=nope", "margin"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(override, key):
    with pytest.raises(ConfigError) as info:
        load_config([override])
    msg = str(info.value)
    assert key in msg
    assert "\n" not in msg


def test_cli_bad_value_exits_2_with_one_line_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sim", "steps=-5", f"hydra.run.dir={tmp_path}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr
    assert "steps" in err[0] and "Traceback" not in proc.stderr
