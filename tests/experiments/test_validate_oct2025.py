"""validate_oct2025: real figures from files, ratios on hand-made frames, arguments, a tiny run."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from experiments import validate_oct2025 as vo
from experiments.common import load_study_config

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = load_study_config("validate_oct2025", [])


# ------------------------------------------------------------------ the real figures
@pytest.fixture(scope="module")
def real():
    return vo.real_figures(DEFAULTS.event_window, DEFAULTS.calm_window, DEFAULTS.cascade_window)


def test_real_adl_figures_equal_the_data_readme(real) -> None:
    # data README: "ADL notional 2.103B USD", "99.4 % of ADL'd positions in profit",
    # "BTC: 620.9M USD ADL'd ...; ETH 458.0M"; the by-coin rows add up to the summary's total
    assert round(real["adl_notional"] / 1e9, 3) == 2.103
    assert real["adl_by_coin_total"] == pytest.approx(real["adl_notional"], rel=1e-12)
    assert round(real["adl_in_profit"]["value"] * 100, 1) == 99.4
    assert round(real["adl_by_asset"]["BTC"] / 1e6, 1) == 620.9
    assert round(real["adl_by_asset"]["ETH"] / 1e6, 1) == 458.0
    assert real["adl_over_liquidated"]["value"] == pytest.approx(2.103111430859329 / 5.511)
    assert round(real["long_share"]["value"], 2) == 0.88  # "(88 % long)"
    assert real["adl_delay_s"]["value"] == 61.7 and real["adl_confined"]["value"] == 1.0


def test_real_biggest_fall_in_the_event_window_from_the_bars(real) -> None:
    # 21:15-21:27: BTC open 112,209.36 -> low 102,000; ETH 3,731.16 -> 3,435 (5-minute bars)
    assert real["falls"]["BTC"] == pytest.approx(1 - 102_000 / 112_209.36)
    assert real["falls"]["ETH"] == pytest.approx(1 - 3_435 / 3_731.16)
    assert real["fell_most"] == "BTC"
    assert real["adl_on_biggest_fall"]["value"] == pytest.approx(
        real["adl_by_asset"]["BTC"] / (real["adl_by_asset"]["BTC"] + real["adl_by_asset"]["ETH"]))


def test_real_depth_matches_the_readme_bands(real) -> None:
    # data README: calm hours about 1.6-3.0k BTC within 1 % on the bid; in the cascade
    # (21:14-21:38) ask depth within 1 % fell to 0.6-1.5k BTC
    path = vo._data_path(vo.REAL_FILES["depth"], None)
    calm_bid = vo.real_depth(path, DEFAULTS.calm_window, DEFAULTS.cascade_window,
                             percentage=-1, column="depth")
    ask = vo.real_depth(path, DEFAULTS.calm_window, DEFAULTS.cascade_window, column="depth")
    assert 1_600 <= calm_bid["calm"] <= 3_000
    assert 600 <= ask["cascade"] <= 1_500
    assert ask["cascade_n"] == 48 and ask["calm_n"] > 1_700  # one sample about every 30 s
    usd = real["depth"]
    assert real["depth_ratio"]["value"] == usd["cascade"] / usd["calm"]
    assert 0.4 < real["depth_ratio"]["value"] < 0.6  # USD notional, ask side


# ------------------------------------------------------------------ ratios by hand
T0 = pd.Timestamp("2025-10-10 21:00", tz="UTC")
LAYOUT = vo.RunLayout(t0=T0, step_time=pd.Timedelta(seconds=60), step_seconds=60.0, steps=40,
                      perp_asset={1: "BTC", 3: "ETH"},
                      perp_name={"BTC": "v:BTC-PERP", "ETH": "v:ETH-PERP"})
WINDOWS = SimpleNamespace(event_window=["2025-10-10 21:10", "2025-10-10 21:20"],
                          calm_window=["2025-10-10 21:00", "2025-10-10 21:05"],
                          cascade_window=["2025-10-10 21:10", "2025-10-10 21:15"])


def _events(rows: list[tuple]) -> pd.DataFrame:
    cols = ["step", "kind", "instrument", "size", "price", "amount", "entry", "taker_entry"]
    ev = pd.DataFrame(rows, columns=cols)
    ev["notional"] = ev["size"].abs() * ev["price"]
    return ev


EVENTS = _events([
    (5, "adl", 1, 1.0, 100.0, 0.0, 100.0, 90.0),       # before the event window
    (10, "book_close", 1, 1.0, 100.0, 0.0, 110.0, np.nan),    # long, 100
    (11, "liquidator", 3, -2.0, 50.0, 0.0, 40.0, np.nan),     # short, 100
    (12, "backstop", 1, 0.5, 80.0, 0.0, 110.0, np.nan),       # long, 40
    (12, "backstop", -1, 40.0, 1.0, 0.0, np.nan, np.nan),     # the margin seized: no position
    # bankrupt long ADL'd at 90, loss 5 against the mark -> mark 80; it lost (entry 100);
    # the short counterparty (entry 85) was in profit
    (13, "adl", 1, 0.5, 90.0, 5.0, 100.0, 85.0),              # 45
    # bankrupt short ADL'd at 40, loss 2 -> mark 42; it had gained (entry 45): a loss made
    # elsewhere; the long counterparty (entry 43) was not in profit
    (14, "adl", 3, -1.0, 40.0, 2.0, 45.0, 43.0),              # 40
    (30, "book_close", 1, -1.0, 100.0, 0.0, 90.0, np.nan),    # short, 100, after the window
])


def _ts() -> pd.DataFrame:
    steps = np.arange(41)
    btc = np.full(41, 100.0)
    btc[12] = 70.0      # BTC falls 30 % inside the event window
    eth = np.full(41, 50.0)
    eth[13] = 45.0      # ETH 10 %
    depth = np.full(41, 7.0)
    depth[0:5] = 10.0   # calm
    depth[10:15] = 2.0  # cascade
    return pd.DataFrame({"step": steps, "BTC.index": btc, "ETH.index": eth,
                         "v:BTC-PERP.depth_ask_1pct": depth})


def test_window_steps_on_the_replay_clock() -> None:
    assert vo.window_steps(LAYOUT, WINDOWS.event_window) == (10, 20)
    assert vo.window_steps(LAYOUT, ["2025-10-10 20:00", "2025-10-10 21:00:30"]) == (0, 1)
    assert vo.window_steps(LAYOUT, ["2025-10-10 21:30", "2025-10-11 00:00"]) == (30, 41)
    assert vo.window_steps(LAYOUT, None) == (0, 41)
    assert LAYOUT.time_at(15) == T0 + pd.Timedelta(minutes=15)


def test_run_ratios_equal_hand_computed_values() -> None:
    got = vo.run_ratios(EVENTS, _ts(), LAYOUT, WINDOWS)
    assert got["sim.liquidated_notional"] == pytest.approx(240.0)
    assert got["sim.adl_notional"] == pytest.approx(85.0)
    assert got["sim.adl_over_liquidated"] == pytest.approx(85.0 / 240.0)
    assert got["sim.adl_in_profit"] == 0.5
    assert got["sim.long_share"] == pytest.approx(140.0 / 340.0)  # the whole run
    assert got["sim.depth_ratio"] == pytest.approx(0.2)
    assert got["sim.depth_calm"] == 10.0 and got["sim.depth_cascade"] == 2.0
    assert got["sim.adl_delay_s"] == 180.0  # liquidation at step 10, ADL at 13, 60 s steps
    assert got["sim.adl_confined"] == pytest.approx(45.0 / 85.0)
    assert got["sim.adl_on_biggest_fall"] == pytest.approx(45.0 / 85.0)  # BTC fell most
    assert got["sim.liquidated_notional_run"] == pytest.approx(340.0)
    assert got["sim.adl_notional_run"] == pytest.approx(185.0)


def test_undefined_ratios_are_nan_never_zero() -> None:
    ts = _ts()
    event = vo.window_steps(LAYOUT, WINDOWS.event_window)
    no_adl = EVENTS[EVENTS["kind"] != "adl"]
    assert vo.adl_over_liquidated(no_adl, LAYOUT, event) == 0.0  # liquidated, nothing ADL'd
    for f in (vo.adl_in_profit_share, vo.adl_delay_seconds, vo.adl_confined_share):
        assert math.isnan(f(no_adl, LAYOUT, event)), f.__name__
    assert math.isnan(vo.adl_share_on_biggest_fall(no_adl, ts, LAYOUT, event))
    only_adl = EVENTS[EVENTS["kind"] == "adl"]
    assert math.isnan(vo.adl_over_liquidated(only_adl, LAYOUT, event))  # nothing liquidated
    assert math.isnan(vo.long_share(only_adl, LAYOUT, event))
    assert math.isnan(vo.adl_delay_seconds(only_adl, LAYOUT, event))
    # an ADL before the first liquidation of the window does not count
    early = _events([(10, "adl", 1, 1.0, 90.0, 1.0, 100.0, 95.0),
                     (12, "book_close", 1, 1.0, 80.0, 0.0, 100.0, np.nan)])
    assert math.isnan(vo.adl_delay_seconds(early, LAYOUT, event))
    assert math.isnan(vo.depth_ratio(ts, "v:BTC-PERP.depth_ask_1pct", (100, 200), (10, 15)))


def test_validation_table_counts_failed_and_undefined_runs() -> None:
    real = {k: {"value": 0.5, "source": "test"} for k in vo.RATIOS}
    real["adl_delay_s"] = {"value": 61.7, "source": "test"}
    agg = pd.DataFrame({
        "run": ["r00", "r01", "r02", "r03"],
        "status": ["done", "done", "done", "failed"],
        "sim.adl_over_liquidated": [0.2, 0.4, np.nan, np.nan],
        "sim.adl_delay_s": [np.nan, np.nan, np.nan, np.nan],
        "sim.long_share": [0.9, 0.6, 0.3, 7.0],  # the failed run's value never counts
    })
    t = vo.validation_table(agg, real).set_index("ratio")
    assert list(t.index) == list(vo.RATIOS)
    row = t.loc["adl_over_liquidated"]
    assert (row["runs"], row["runs_undefined"], row["runs_failed"]) == (2, 1, 1)
    half = stats.t.ppf(0.975, 1) * np.std([0.2, 0.4], ddof=1) / math.sqrt(2)
    assert row["sim_mean"] == pytest.approx(0.3)
    assert row["ci_low_95%"] == pytest.approx(0.3 - half)
    assert row["ci_high_95%"] == pytest.approx(0.3 + half)
    assert row["sim_over_real"] == pytest.approx(0.6)
    assert t.loc["long_share", "sim_mean"] == pytest.approx(0.6)
    delay = t.loc["adl_delay_s"]
    assert math.isnan(delay["sim_mean"]) and math.isnan(delay["sim_over_real"])
    assert (delay["runs"], delay["runs_undefined"]) == (0, 3)
    assert math.isnan(t.loc["depth_ratio", "sim_mean"])  # no column at all: NaN, not 0


# ------------------------------------------------------------------ arguments
@pytest.mark.parametrize(("argv", "key"), [
    (["replicates=0"], "replicates"),
    (["event_window=[2025-10-10 21:27, 2025-10-10 21:15]"], "event_window"),
    (["calm_window=[2025-10-12 00:00, 2025-10-12 01:00]"], "calm_window"),
    (["start=2025-10-10 06:00", "end=2025-10-10 20:00"], "event_window"),
    (["start=2025-10-10 22:00", "end=2025-10-10 21:00"], "end"),
    (["start=yesterday"], "start"),
    (["overrides=[steps=10]"], "overrides"),
    (["overrides=[agents.noise.n=-1]"], "overrides"),
    (["protocol=nowhere"], "protocol"),
    (["bogus=1"], "bogus"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv, key, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        vo.main([*argv, f"output_dir={out}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2
    assert len(err) == 1 and err[0].startswith("validate_oct2025: argument error: ")
    assert key in err[0] and not out.exists()


def test_command_line_bad_argument_exit_2(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "experiments.validate_oct2025", "confidence=2",
                           f"output_dir={tmp_path / 'out'}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "confidence = 2" in lines[0]
    assert not (tmp_path / "out").exists()


def test_specs_share_the_world_and_differ_by_seed() -> None:
    cfg = load_study_config("validate_oct2025", ["replicates=3", "start=2025-10-10 21:00",
                                                 "end=2025-10-10 21:40"])
    specs = vo.build_specs(cfg)
    assert [s.name for s in specs] == ["r00", "r01", "r02"]
    assert len({s.meta["seed"] for s in specs}) == 3
    world = [o for o in specs[0].overrides if not o.startswith("seed=")]
    assert all([o for o in s.overrides if not o.startswith("seed=")] == world for s in specs)
    assert "protocols=hyperliquid" in world and "scenario=replay_oct2025" in world
    assert "steps=45" in world  # nine 5-minute bars, 21:00 .. 21:40, in real time


# ------------------------------------------------------------------ a tiny run
TINY = ["start=2025-10-10 21:00", "end=2025-10-10 21:40", "replicates=1", "workers=1",
        "event_window=[2025-10-10 21:15, 2025-10-10 21:27]",
        "calm_window=[2025-10-10 21:00, 2025-10-10 21:10]",
        "cascade_window=[2025-10-10 21:14, 2025-10-10 21:38]",
        "overrides=[agents.noise.n=20,agents.fundamentalist.n=5,agents.momentum.n=5]",
        "progress=false"]


def test_tiny_run_writes_the_tables_and_figures(tmp_path, capsys) -> None:
    out = tmp_path / "study"
    vo.main([*TINY, f"output_dir={out}"])
    printed = capsys.readouterr().out
    assert "adl_over_liquidated" in printed and "sim_over_real" in printed
    agg = pd.read_csv(out / "aggregated.csv")
    assert list(agg["run"]) == ["r00"] and list(agg["status"]) == ["done"]
    assert {f"sim.{k}" for k in vo.RATIOS} <= set(agg.columns)
    assert agg["sim.depth_ratio"].notna().all()
    for ext in ("csv", "md", "tex"):
        assert (out / "tables" / f"validation.{ext}").stat().st_size > 0
    for fig in ("validation", "timeline"):
        for ext in ("png", "pdf"):
            assert (out / "figures" / f"{fig}.{ext}").stat().st_size > 0
    table = pd.read_csv(out / "tables" / "validation.csv")
    assert list(table["ratio"]) == list(vo.RATIOS)
    assert (table["runs"] + table["runs_undefined"] == 1).all()
    assert (table["runs_failed"] == 0).all()
    real = vo.real_figures(["2025-10-10 21:15", "2025-10-10 21:27"],
                           ["2025-10-10 21:00", "2025-10-10 21:10"],
                           ["2025-10-10 21:14", "2025-10-10 21:38"])
    assert table.set_index("ratio").loc["depth_ratio", "real"] == pytest.approx(
        real["depth_ratio"]["value"])
    # resumed: the finished run is reused (same config and code), the tables are unchanged
    done = (out / "runs" / "r00" / "done.json").read_text()
    before = (out / "tables" / "validation.csv").read_text()
    vo.main([*TINY, f"output_dir={out}"])
    assert (out / "runs" / "r00" / "done.json").read_text() == done
    assert (out / "tables" / "validation.csv").read_text() == before
