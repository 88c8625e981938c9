"""Bad input that used to pass the door: each now stops with one line naming the key.

Values that passed validation and crashed later or ran a dead market
(infinities, coarse ticks, raw replays far from the books' range, volatility
spikes that overflow, probabilities above 1, bars with high < low, runs too
long for memory), silent typos and merges (a ``+`` key the schema lacks,
integers as booleans, a list for a config group), tracebacks (interpolations,
deleted keys, malformed engine params), a valid integer correlation matrix
that was refused, an asset rename blamed on the haircuts, and the Hydra flags
that unpickle a file or write into the working directory.
"""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from sim.config import ConfigError, load_config
from sim.config.capacity import SimulationError, check_fundamentals, estimated_run_bytes

SMALL = ["agents=minimal", "scenario=calm", "steps=30", "agents.noise.n=10",
         "output.figures=false", "progress=false"]


def _refused(overrides: list[str], *needles: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(overrides)
    msg = str(info.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg
    return msg


@pytest.mark.parametrize(("override", "key"), [
    ("agents.noise.usd=inf", "agents.noise.usd"),
    ("agents.fundamentalist.beta_max=inf", "agents.fundamentalist.beta_max"),
    ("market.step_seconds=inf", "market.step_seconds"),
    ("market.assets.0.tick_size=inf", "market.assets[0].tick_size"),
    ("agents.noise.size_notional=-inf", "agents.noise.size_notional"),
    ("agents.noise.usd=1e300", "agents.noise.usd"),
])
def test_infinities_and_magnitudes_past_any_use_are_refused(override, key):
    _refused([override], key)


def test_a_tick_coarser_than_one_percent_of_the_price_is_refused():
    _refused(["market.assets.0.tick_size=1000"], "market.assets[0].tick_size", "1 %")
    load_config(["market.assets.0.tick_size=600"])  # exactly 1 % of 60,000


def _bars(path, scale: float, broken_row: int | None = None):
    t = pd.date_range("2022-01-01", periods=48, freq="h")
    p = scale * np.exp(np.cumsum(np.r_[0.0, np.random.default_rng(1).normal(0, 0.01, 47)]))
    df = pd.DataFrame({"timestamp_utc": t.strftime("%Y-%m-%d %H:%M:%S"), "open": p,
                       "high": p * 1.001, "low": p * 0.999, "close": p, "volume": 1.0})
    if broken_row is not None:
        df.loc[broken_row, "high"] = df.loc[broken_row, "low"] * 0.5
    df.to_csv(path, index=False)
    return [f"scenario.params.files.BTC={path}", "scenario=replay",
            "scenario.params.start=2022-01-01T00:00", "scenario.params.end=2022-01-02T23:00",
            "steps=200"]


@pytest.mark.parametrize("scale", [1e20, 1e-20])
def test_raw_replays_outside_the_books_range_are_refused(tmp_path, scale):
    ov = _bars(tmp_path / "bars.csv", scale)
    _refused([*ov, "scenario.params.normalise=false"], "scenario.params.files.BTC",
             "normalise")
    load_config(ov)  # normalised to the configured price: fine


def test_bars_with_high_below_low_are_refused(tmp_path):
    ov = _bars(tmp_path / "bars.csv", 60000.0, broken_row=5)
    _refused(ov, "files.BTC", "data row 6", "high")


def test_a_volatility_spike_past_what_the_run_represents_is_refused():
    _refused(["scenario=vol_spike", "scenario.params.multiplier=700"],
             "scenario.params.multiplier", "at most 10")
    load_config(["scenario=vol_spike", "scenario.params.multiplier=10"])


def test_a_run_whose_prices_leave_the_books_range_stops_with_one_line():
    from sim.model import MarketModel

    model = MarketModel(load_config(SMALL))
    model.step()
    model.scenario.advance = lambda rng: np.array([1e30, 3000.0])
    with pytest.raises(
        SimulationError, match=r"step \d+: the BTC fundamental price 1e\+30"
    ) as info:
        model.step()
    assert "\n" not in str(info.value)
    with pytest.raises(SimulationError, match="ETH"):
        check_fundamentals(3, np.array([100.0, np.nan]), ["BTC", "ETH"], np.ones(2),
                           np.full(2, 1e6))


@pytest.mark.parametrize(("override", "key"), [
    ("agents.market_maker.withdrawal.usage_pull=1.5", "usage_pull"),
    ("agents.leveraged.top_up_budget_frac=1.5", "top_up_budget_frac"),
])
def test_shares_above_one_are_refused(override, key):
    _refused([override], key)


def test_a_run_too_long_for_memory_is_refused_naming_steps():
    msg = _refused(["steps=100000000"], "steps = 100000000", "GB")
    assert "must be <=" in msg
    cfg = load_config(["steps=1000"])
    one, ten = estimated_run_bytes(cfg), estimated_run_bytes(load_config(["steps=10000"]))
    assert ten == pytest.approx(10 * one)  # linear in steps


def test_a_key_the_schema_lacks_is_refused_with_the_closest_name():
    _refused(["+agents.noise.order_probb=0.5"], "agents.noise.order_probb",
             "did you mean order_prob")


@pytest.mark.parametrize("override", ["progress=2", "check_invariants=2", "output.figures=0",
                                      "contagion.fire_sales=2", "protocols.0.spot=1"])
def test_integers_are_not_booleans(override):
    _refused([override], override.split("=")[0], "true or false")


def test_a_list_for_a_config_group_is_refused():
    _refused(["margin=[cross,static]"], "margin", "one margin preset")


@pytest.mark.parametrize(("overrides", "needle"), [
    (["steps=${oops}"], "steps is invalid"),
    (["~steps"], "steps is invalid: the key was deleted"),
    (["margin=portfolio", "margin.params.underlyings=5"], "margin.params.underlyings"),
    (["margin=portfolio", "margin.params.underlyings.BTC=nope"], "margin.params.underlyings.BTC"),
    (["margin=adaptive", "margin.params.buffer_window=1.5"], "margin.params.buffer_window"),
])
def test_what_gave_a_traceback_gives_one_line(overrides, needle):
    _refused(overrides, needle)


def test_an_integer_correlation_matrix_is_accepted_as_floats():
    ints = load_config(["market.correlation=[[1,0.82],[0.82,1]]"])
    floats = load_config(["market.correlation=[[1.0,0.82],[0.82,1.0]]"])
    assert np.array_equal(np.asarray(ints.market.correlation, dtype=float),
                          np.asarray(floats.market.correlation, dtype=float))
    _refused(["market.correlation=[[1,0.82],[0.82,2]]"], "market.correlation[1][1]")


def test_renaming_an_asset_names_the_rename_and_the_haircut_to_move():
    msg = _refused(["market.assets.0.name=XBT"], "market.assets[0].name", "margin.haircuts.XBT")
    assert "~margin.haircuts.BTC" in msg
    cfg = load_config(["market.assets.0.name=XBT", "~margin.haircuts.BTC",
                       "+margin.haircuts.XBT=0.05"])
    assert cfg.market.assets[0].name == "XBT"


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True,
                          timeout=120, check=False, cwd=cwd)


class _Marker:
    """Unpickling this writes a file: the proof that a pickle ran code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_experimental_rerun_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    crafted = tmp_path / "config.pickle"
    crafted.write_bytes(pickle.dumps(_Marker(str(marker))))
    res = _cli("--experimental-rerun", str(crafted))
    assert res.returncode == 2
    assert res.stderr.strip().startswith("marginsim: argument error: --experimental-rerun")
    assert len(res.stderr.strip().splitlines()) == 1
    assert not marker.exists()


@pytest.mark.parametrize("override", ["hydra.run.dir=", "hydra.run.dir=.", "hydra.sweep.dir="])
def test_an_empty_output_directory_is_refused(tmp_path, override):
    res = _cli(*SMALL, override, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().startswith(f"marginsim: argument error: {override.split('=')[0]}")
    assert list(tmp_path.iterdir()) == []  # nothing written into the working directory


def test_validation_runs_once_per_run(tmp_path, monkeypatch):
    import sim
    import sim.config.validation as validation

    calls = []
    real = validation._check_all
    monkeypatch.setattr(validation, "_check_all", lambda cfg: (calls.append(1), real(cfg)))
    monkeypatch.setattr(validation, "_PASSED", {})
    sim.run([*SMALL, "seed=11"], out_dir=tmp_path / "run")  # load_config, execute, the model
    assert len(calls) == 1
    with pytest.raises(ConfigError):  # another config is checked again, and refused
        load_config([*SMALL, "seed=11", "steps=-3"])
    assert len(calls) == 2
