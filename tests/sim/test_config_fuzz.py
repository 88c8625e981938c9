"""Every bad value of every leaf of the run config stops at the door: one line, the key named.

The cases (``tests/sim/config_fuzz_cases.py``) cover every leaf of the composed
default config and of the preset worlds with other groups' params (about 1,200
values). Each is applied as Hydra applies a command-line override, then given
to :func:`sim.config.finish_config`, the rest of what :func:`sim.config.load_config`
does; a sample goes through ``sim.output.cli.main`` in-process (exit status 2 before
the run starts) and a few through ``python -m sim`` in a subprocess.
"""

from __future__ import annotations

import copy
import random
import subprocess
import sys

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser

from sim.config import ConfigError, finish_config, load_config
from tests.sim.config_fuzz_cases import WORLDS, cases


@pytest.fixture(scope="module")
def composed():
    return {w: load_config(ov) for w, ov in WORLDS.items()}


@pytest.fixture(scope="module")
def all_cases(composed):
    return cases(composed)


def _names_key(message: str, key: str) -> bool:
    norm = message.replace("[", ".").replace("]", "")
    return key in norm or key.rsplit(".", 1)[-1] in norm


def _door(cfg, override: str) -> ConfigError | None:
    """Apply ``override`` as Hydra's composition does, then the rest of the door."""
    try:
        ConfigLoaderImpl._apply_overrides_to_config(
            OverridesParser.create().parse_overrides([override]), cfg)
    except Exception as exc:  # noqa: BLE001 - composition refused it: load_config's one line
        return ConfigError(str(exc).splitlines()[0])
    try:
        finish_config(cfg, [override])
    except ConfigError as exc:
        return exc
    return None


def test_the_cases_cover_every_leaf_kind(all_cases):
    assert len(all_cases) > 1000
    keys = {key for _, _, key in all_cases}
    for expected in ("steps", "agents.noise.order_prob", "market.assets.0.tick_size",
                     "protocols.0.liquidation.close_factor", "margin.params.mm_factor",
                     "scenario.params.multiplier", "protocols.0.issues.supply",
                     "agents.market_maker.withdrawal.usage_pull", "contagion.fire_sales"):
        assert expected in keys


def test_every_bad_value_is_refused_with_one_line_naming_the_key(composed, all_cases):
    accepted, unnamed = [], []
    for world, override, key in all_cases:
        err = _door(copy.deepcopy(composed[world]), override)
        if err is None:
            accepted.append((world, override))
        elif "\n" in str(err) or not _names_key(str(err), key):
            unnamed.append((world, override, str(err)))
    assert not accepted, f"{len(accepted)} bad values accepted, e.g. {accepted[:5]}"
    assert not unnamed, f"{len(unnamed)} errors without the key, e.g. {unnamed[:3]}"


def test_the_cli_exits_2_before_the_run(all_cases, monkeypatch, capsys):
    import sim.output.cli

    def never(*_a, **_k):
        raise AssertionError("the run started")

    monkeypatch.setattr(sim.output.cli, "_app", never)
    sample = random.Random(7).sample(all_cases, 25)
    for world, override, key in sample:
        monkeypatch.setattr(sys, "argv", ["marginsim", *WORLDS[world], override])
        with pytest.raises(SystemExit) as exit_info:
            sim.output.cli.main()
        assert exit_info.value.code == 2, override
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("marginsim: config error:"), err
        assert _names_key(err, key), (override, err)


@pytest.mark.parametrize("override", [
    "agents.noise.usd=inf", "market.step_seconds=inf", "market.assets.0.tick_size=inf",
    "+agents.noise.order_probb=0.5", "progress=2", "margin=[cross,static]", "~steps",
    "steps=${oops}", "margin=portfolio", "steps=100000000",
])
def test_python_m_sim_refuses_with_one_line(tmp_path, override):
    extra = ["margin.params.underlyings=5"] if override == "margin=portfolio" else []
    out = tmp_path / "run"
    res = subprocess.run([sys.executable, "-m", "sim", override, *extra, f"hydra.run.dir={out}"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith("marginsim: config error:")
    assert not out.exists()  # nothing written
