"""Calibration: the moments by hand, the objective, the search, the group, the command."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from experiments.calibrate import (
    MISSING_PENALTY,
    Calibration,
    Evaluation,
    Param,
    from_unit,
    objective,
    to_unit,
    write_group,
)
from experiments.moments import crash_moments, real_moments, return_moments, run_moments
from experiments.stylised_facts import autocorrelation

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------ moments
def test_return_moments_by_hand():
    rng = np.random.default_rng(4)
    r = rng.standard_t(4, 400) * 0.002
    p = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    got = return_moments(p)
    assert got["vol_5m"] == pytest.approx(r.std(ddof=1) * math.sqrt(365 * 288), rel=1e-9)
    assert got["kurtosis_5m"] == pytest.approx(stats.kurtosis(r), rel=1e-9)
    assert got["acf_abs_5m_12"] == pytest.approx(autocorrelation(np.abs(r), 12), rel=1e-9)
    assert math.isnan(return_moments(p[:20])["vol_5m"])  # too short: NaN, never 0


def _data_dir(tmp: Path) -> Path:
    """A shared-data layout holding tiny files with known values."""
    (tmp / "prices").mkdir(parents=True)
    (tmp / "depth").mkdir()
    t = pd.date_range("2025-10-01", "2025-10-11", freq="5min", inclusive="left")
    close = 100.0 * np.exp(np.cumsum(np.random.default_rng(2).standard_t(3, len(t)) * 0.001))
    pd.DataFrame({"timestamp_utc": t.strftime("%Y-%m-%d %H:%M:%S"), "open": close,
                  "high": close, "low": close, "close": close,
                  "volume": 2.0}).to_csv(tmp / "prices" /
                                         "binance_usdm_perp_BTCUSDT_5m_2025-10-01_2025-10-31.csv",
                                         index=False)
    rows = []
    for ts, bid, ask in (("2025-10-10 01:00:00", 600.0, 800.0), ("2025-10-10 02:00:00", 1000.0,
                                                                  1200.0),
                         ("2025-10-10 21:20:00", 50.0, 250.0), ("2025-10-10 23:00:00", 1.0, 1.0)):
        rows += [{"timestamp": ts, "percentage": -1, "depth": 0.0, "notional": bid},
                 {"timestamp": ts, "percentage": 1, "depth": 0.0, "notional": ask}]
    pd.DataFrame(rows).to_csv(tmp / "depth" / "binance_usdm_BTCUSDT_bookDepth_2025-10-10.csv",
                              index=False)
    pd.DataFrame({"timestamp_utc": ["2024-12-31 16:00:00", "2025-03-01 00:00:00",
                                    "2025-06-01 08:00:00"],
                  "funding_rate": [0.5, 0.0001, -0.0003]}).to_csv(
        tmp / "prices" / "binance_usdm_funding_BTCUSDT.csv", index=False)
    return tmp


def test_real_moments_from_known_files(tmp_path):
    got = real_moments(_data_dir(tmp_path))
    # calm bid notional (600 + 1000) / 2 over the 5-minute notional: volume 2 x close
    bars = pd.read_csv(tmp_path / "prices" /
                       "binance_usdm_perp_BTCUSDT_5m_2025-10-01_2025-10-31.csv")
    calm = bars[(bars.timestamp_utc >= "2025-10-10") & (bars.timestamp_utc < "2025-10-10 20:00")]
    assert got["depth_to_volume"] == pytest.approx(800.0 / (2.0 * calm.close).mean(), rel=1e-12)
    # cascade ask 250 over calm ask (800 + 1200) / 2; the 23:00 row is outside both windows
    assert got["depth_collapse"] == pytest.approx(250.0 / 1000.0, rel=1e-12)
    assert got["funding_abs"] == pytest.approx(0.0002, rel=1e-12)  # 2025 only
    returns = bars[bars.timestamp_utc < "2025-10-10"].close.to_numpy()
    assert got["kurtosis_5m"] == pytest.approx(return_moments(returns)["kurtosis_5m"], rel=1e-12)


def test_real_moments_of_the_shipped_data_match_the_readme():
    from sim.scenarios.replay import data_dir

    got = real_moments(data_dir())
    # shared/data/README.md: calm bid depth 1.6-3.0k BTC within 1 %, cascade ask depth
    # 0.6-1.5k BTC against a calm ask of about the same size as the bid: a fall to about half
    assert 0.2 < got["depth_collapse"] < 0.8
    assert got["kurtosis_5m"] > 3.0 and 2.0 < got["hill_5m"] < 5.0  # heavy tails
    assert 0.1 < got["acf_abs_5m_1"] < 0.5 and got["acf_abs_5m_12"] > 0.05  # clustering
    assert 0.0 < got["funding_abs"] < 0.001


def _timeseries(n=400, every=5):
    step = np.arange(n + 1)
    mid = 100.0 * np.exp(0.001 * np.sin(step / 3.0) + 0.0005 * step)
    return pd.DataFrame({
        "step": step, "alpha:BTC-PERP.mid": mid, "alpha:BTC-PERP.notional": np.full(n + 1, 10.0),
        "alpha:BTC-PERP.depth_bid_1pct": np.full(n + 1, 250.0),
        "alpha:BTC-PERP.depth_ask_1pct": np.where(step < 300, 400.0, 100.0),
        "alpha:BTC-PERP.funding_rate": np.where(step >= 240, -0.0004, 0.0002)})


def test_run_moments_by_hand():
    ts = _timeseries()
    got = run_moments(ts, "BTC", 60.0, skip_steps=20, funding_steps=120)
    kept = ts[ts.step > 20]
    want = return_moments(kept["alpha:BTC-PERP.mid"].to_numpy()[::5])
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-12) or (math.isnan(v) and math.isnan(got[k]))
    assert got["depth_to_volume"] == pytest.approx(250.0 / 50.0)  # 5 steps of 10 a bar
    # funding at steps 120, 240, 360: 0.0002, 0.0004, 0.0004
    assert got["funding_abs"] == pytest.approx((0.0002 + 0.0004 + 0.0004) / 3)
    assert crash_moments(ts, "BTC", 300, 320, 20)["depth_collapse"] == pytest.approx(0.25)
    assert math.isnan(crash_moments(ts.assign(**{"alpha:BTC-PERP.depth_ask_1pct": 0.0}),
                                    "BTC", 300, 320, 20)["depth_collapse"])


# ---------------------------------------------------------------- objective, search
def test_objective_and_unit_maps():
    t = {"a": 2.0, "b": -4.0}
    assert objective({"a": 3.0, "b": -2.0}, t, ["a", "b"]) == pytest.approx(0.25 + 0.25)
    assert objective({"a": float("nan"), "b": -4.0}, t, ["a", "b"]) == MISSING_PENALTY
    ps = [Param("x", 1.0, 100.0, "log"), Param("y", -1.0, 1.0)]
    assert from_unit(ps, [0.5, 0.25]) == pytest.approx([10.0, -0.5])
    assert to_unit(ps, [10.0, -0.5]) == pytest.approx([0.5, 0.25])
    assert to_unit(ps, [1e6, -9.0]) == [1.0, 0.0]  # clipped to the bounds


def test_search_finds_a_known_optimum(tmp_path):
    cfg = {"params": {"agents.noise.order_prob": {"low": 0.01, "high": 0.5, "scale": "log"},
                      "agents.market_maker.k": {"low": 100.0, "high": 10_000.0,
                                                "scale": "log"}},
           "start": {}, "fixed": [], "overrides": [], "moments": ["m1", "m2"],
           "base_seed": 1, "replicates": 1, "report_replicates": 2, "max_evals": 120,
           "initial_step": 0.25, "output_dir": str(tmp_path), "workers": 1,
           "executor": "serial", "dask_address": None, "progress": False}
    cal = Calibration(cfg, targets={"m1": 0.08, "m2": 900.0})

    def fake(values, seeds=None, record=True):  # the moments are the parameters themselves
        ev = Evaluation(list(values), "t", moments={"m1": values[0], "m2": values[1]})
        ev.objective = objective(ev.moments, cal.targets, cal.moments)
        cal.evaluations.append(ev)
        return ev

    cal.evaluate = fake
    best = cal.search()
    assert best.values == pytest.approx([0.08, 900.0], rel=0.02)
    assert cal.evaluations[0].values == pytest.approx([0.08, 2500.0])  # the config's values
    assert len(cal.evaluations) <= 125


def test_group_is_the_default_agents_with_the_fitted_values(tmp_path):
    path = write_group(tmp_path / "calibrated.yaml", {"agents.market_maker.k": 1234.5},
                       ["agents.leveraged.leverage_dist=pareto", "agents.noise.n=7"],
                       ["fitted here"])
    text = path.read_text()
    assert text.startswith("# fitted here\n")
    got = yaml.safe_load(text)
    default = yaml.safe_load((ROOT / "conf" / "agents" / "default.yaml").read_text())
    assert got["market_maker"]["k"] == 1234.5 and got["noise"]["n"] == 7
    assert got["leveraged"]["leverage_dist"] == "pareto"
    got["market_maker"]["k"] = default["market_maker"]["k"]
    got["noise"]["n"] = default["noise"]["n"]
    got["leveraged"]["leverage_dist"] = default["leveraged"]["leverage_dist"]
    assert got == default  # nothing else changed


# ------------------------------------------------------------------------ the command
def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "experiments.calibrate", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(("arg", "key"), [
    ("params={agents.noise.order_prob: {low: 0.5, high: 0.1}}",
     "params.agents.noise.order_prob.high"),
    ("fixed=[oracle.venue_weight=0.3]", "fixed[0]"),
    ("moments=[sharpe]", "moments[0]"),
    ("report_replicates=1", "report_replicates"),
    ("params={market.tick: {low: 0.1, high: 1.0}}", "params"),
])
def test_bad_arguments_are_one_line_and_exit_2(arg, key, tmp_path, capsys):
    from experiments.calibrate import main

    with pytest.raises(SystemExit) as exc:
        main([arg, f"output_dir={tmp_path / 'out'}"])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_the_command_exits_2_on_a_bad_argument(tmp_path):
    res = _cli("max_evals=0", f"output_dir={tmp_path / 'out'}")
    assert res.returncode == 2 and "max_evals" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_a_tiny_calibration_writes_its_report(tmp_path):
    from experiments.calibrate import main

    out = tmp_path / "cal"
    args = ["max_evals=1", "replicates=1", "report_replicates=2", "calm_steps=200",
            "skip_steps=20", "moments=[depth_to_volume, kurtosis_5m]", "group=null",
            "params={agents.noise.order_prob: {low: 0.02, high: 0.3, scale: log}}",
            "fixed=[]", "workers=1", f"output_dir={out}"]
    main(args)
    table = pd.read_csv(out / "tables" / "calibration.csv")
    assert list(table["moment"]) == ["depth_to_volume", "kurtosis_5m"]
    assert (table["runs"] == 2).all() and np.isfinite(table["achieved"]).all()
    evals = pd.read_csv(out / "evaluations.csv")
    assert len(evals) == 1 and evals["agents.noise.order_prob"].iloc[0] == pytest.approx(0.08)
    assert (out / "figures" / "calibration.png").is_file()
    assert not list((out / "runs").glob("*crash*"))  # no crash moment: no crash runs
    done = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/done.json")}
    main(args)  # resumed: the same evaluation reuses its runs
    assert pd.read_csv(out / "tables" / "calibration.csv").equals(table)
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/done.json")} == done
