"""Config composition and validation: one-line errors naming the key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from margin.regimes.cross import CrossMarginEngine
from margin.methods.tiers import flat_table
from sim.config import ConfigError, load_config
from sim.model import MarketModel


def test_default_config_composes_and_validates():
    cfg = load_config()
    assert cfg.steps == 1440
    assert [a.name for a in cfg.market.assets] == ["BTC", "ETH"]
    assert cfg.protocols[0].name == "alpha"
    assert cfg.margin.name == "cross"


@pytest.mark.parametrize("regime", ["static", "cross", "portfolio", "adaptive"])
def test_every_regime_group_composes(regime):
    assert load_config([f"margin={regime}"]).margin.name == regime


class FlatUserEngine(CrossMarginEngine):
    """A user's own engine: cross margin at a flat IM rate, MM half of it."""

    name = "user-flat"

    def __init__(self, asset_names, imr=0.2):
        super().__init__([None] + [flat_table(imr, imr / 2) for _ in asset_names[1:]])
        self.imr = imr


USER = ["margin._target_=tests.sim.test_config.FlatUserEngine", "margin.name=user",
        "~margin.params.tiers"]


def test_user_engine_by_class_path():
    cfg = load_config([*USER, "+margin.params.imr=0.3", "steps=3", "agents.noise.n=5"])
    model = MarketModel(cfg)
    engine = model.protocols[0].engine
    assert isinstance(engine, FlatUserEngine) and engine.imr == 0.3
    model.step()


def test_user_engine_with_a_bad_parameter_is_a_one_line_error():
    with pytest.raises(ConfigError) as info:
        load_config([*USER, "+margin.params.colour=1"])
    assert "colour" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("steps=0", "steps"),
        ("steps=abc", "steps"),
        ("market.assets.0.vol=-0.1", "market.assets[0].vol"),
        ("market.correlation=[[1.0,1.5],[1.5,1.0]]", "market.correlation"),
        ("protocols.0.stp=sometimes", "protocols[0].stp"),
        ("agents.noise.order_prob=1.5", "agents.noise.order_prob"),
        ("+margin.params.mmr=0.5", "margin (cross)"),
        (
            "margin.params.tiers=flat,+margin.params.imr=0.1,+margin.params.mmr=0.5",
            "margin (cross)",
        ),
        ("+margin.params.colour=1", "margin (cross)"),
        ("margin=static", None),
        ("nonsense=1", "nonsense"),
        ("margin=nope", "margin"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(override, key):
    overrides = override.split(",+")
    overrides = overrides[:1] + ["+" + o for o in overrides[1:]]
    if key is None:  # a valid override, for contrast
        load_config(overrides)
        return
    with pytest.raises(ConfigError) as info:
        load_config(overrides)
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


# ------------------------------------------------- per-protocol margin overrides
def test_protocol_margin_is_settable_from_a_none_slot():
    cfg = load_config(["protocols.0.margin=portfolio"])
    assert cfg.protocols[0].margin.name == "portfolio"
    assert cfg.protocols[0].margin.params.mm_factor == 0.8
    cfg = load_config(["protocols.0.margin.params.tiers=flat", "+protocols.0.margin.params.imr=0.2",
                       "+protocols.0.margin.params.mmr=0.1"])
    m = cfg.protocols[0].margin  # a copy of the run's margin, then the keys
    assert (m.name, m.params.tiers, m.params.imr) == ("cross", "flat", 0.2)
    assert cfg.margin.params.tiers == "binance"
    from sim.model import MarketModel

    engine = MarketModel(load_config(["protocols.0.margin=static", "agents=minimal",
                                      "agents.noise.n=0", "steps=1"])).protocols[0].engine
    assert engine.name == "static"


def test_hyperliquid_venue_composes_with_its_tiers_and_liquidation_rules():
    from margin.methods.tiers import HYPERLIQUID_BTC, HYPERLIQUID_ETH

    cfg = load_config(["protocols=hyperliquid", "agents=minimal", "agents.noise.n=0", "steps=1"])
    p = cfg.protocols[0]
    assert (p.name, p.margin.name, p.margin.params.tiers) == ("hyperliquid", "cross",
                                                               "hyperliquid")
    liq = p.liquidation
    assert (liq.close_in_book, liq.close_factor, liq.bad_debt, liq.insurance_cover) == (
        True, 0.2, "adl_queue", False)
    assert liq.backstop == "insurance" and liq.backstop_threshold == pytest.approx(2 / 3)
    engine = MarketModel(cfg).protocols[0].engine
    assert engine.tables[1:] == [HYPERLIQUID_BTC, HYPERLIQUID_ETH]


def test_protocol_margin_switches_regime_on_two_venues_and_reverts():
    cfg = load_config(["protocols=two_venues", "protocols.1.margin=cross",
                       "protocols.1.margin.haircuts={USD: 0.0, BTC: 0.2}"])
    assert cfg.protocols[1].margin.name == "cross"
    assert dict(cfg.protocols[1].margin.haircuts) == {"USD": 0.0, "BTC": 0.2}
    assert cfg.protocols[0].margin.name == "cross"
    assert (
        load_config(["protocols=two_venues", "protocols.1.margin=null"]).protocols[1].margin is None
    )


@pytest.mark.parametrize(("override", "key"), [
    ("protocols.3.margin=cross", "protocols.3.margin"),
    ("protocols.0.margin=nope", "nope"),
    ("protocols.0.margin.nme=cross", "protocols.0.margin.nme"),
    ("protocols.0.margin.params.tiers=nonsense", "protocols[0].margin"),
])
def test_bad_protocol_margin_overrides_are_one_line_errors(override, key):
    with pytest.raises(ConfigError) as info:
        load_config([override])
    assert key in str(info.value) and "\n" not in str(info.value)


def test_cli_sets_a_protocols_margin(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sim", "protocols=two_venues",
                           "protocols.1.margin=cross", "steps=2", "agents=minimal",
                           "agents.noise.n=0", "output.figures=false", "progress=false",
                           f"hydra.run.dir={tmp_path}"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    import yaml

    written = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert written["protocols"][1]["margin"]["name"] == "cross"
    assert written["protocols"][1]["margin"]["params"] == {"tiers": "binance"}
