"""Historical replay: knots at bar boundaries, interpolation, files, shipped windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from margin.risk.calibration import load_price_csv
from sim.config import ScenarioConfig, load_config
from sim.scenarios import Replay, build_scenario, data_dir
from sim.scenarios.replay import resolve_data_path

from .helpers import market

BTC_1H = "prices/binance_spot_BTCUSDT_1h.csv"
ETH_1H = "prices/binance_spot_ETHUSDT_1h.csv"
MAR2020 = {"start": "2020-03-11 12:00", "end": "2020-03-13 23:00"}

needs_data = pytest.mark.skipif(not (data_dir() / BTC_1H).is_file(),
                                reason="shared/data price files not present")


def write_csv(path: Path, opens, highs, lows, closes, start="2024-01-01", freq="1h",
              drop=()) -> Path:
    """A small OHLCV file; ``drop`` removes columns or (ints) rows."""
    index = pd.date_range(start, periods=len(closes), freq=freq)
    frame = pd.DataFrame({"timestamp_utc": index.strftime("%Y-%m-%d %H:%M:%S"),
                          "open": opens, "high": highs, "low": lows, "close": closes,
                          "volume": 1.0})
    frame = frame.drop(index=[d for d in drop if isinstance(d, int)])
    frame = frame.drop(columns=[d for d in drop if isinstance(d, str)])
    frame.to_csv(path, index=False)
    return path


def closes_csv(path: Path, closes, **kw) -> Path:
    """Bars whose open is the previous close (the first opens at closes[0] / 1.01)."""
    closes = np.asarray(closes, dtype=float)
    opens = np.concatenate([[closes[0] / 1.01], closes[:-1]])
    return write_csv(path, opens, np.maximum(opens, closes) * 1.02,
                     np.minimum(opens, closes) * 0.98, closes, **kw)


def build(market_cfg, **params) -> Replay:
    scen = build_scenario(ScenarioConfig("replay", params), market_cfg)
    assert isinstance(scen, Replay)
    return scen


def run(scen, steps, seed=0):
    rng = np.random.default_rng(seed)
    return np.vstack([scen.prices.copy()] + [scen.advance(rng).copy() for _ in range(steps)])


# ---------------------------------------------------------------- real data
@needs_data
def test_reproduces_the_csv_closes_at_bar_boundaries(gbm_market):
    scen = build(gbm_market, files={"BTC": BTC_1H, "ETH": ETH_1H}, **MAR2020)
    assert scen.steps_per_bar == 60  # hourly bars on one-minute steps: real time
    path = run(scen, scen.n_steps)
    for col, rel in enumerate((BTC_1H, ETH_1H)):
        bars = load_price_csv(data_dir() / rel).loc["2020-03-11 12:00":"2020-03-13 23:00"]
        assert len(bars) == 60 and scen.n_steps == 3600
        scale = (60000.0, 3000.0)[col] / bars["open"].iloc[0]
        assert path[0, col] == pytest.approx((60000.0, 3000.0)[col], rel=1e-12)
        np.testing.assert_allclose(path[60::60, col], bars["close"].to_numpy() * scale,
                                   rtol=1e-12)


@needs_data
def test_mar2020_btc_drawdown_matches_the_data_readme(gbm_market):
    # README: BTC spot hourly 7,980 -> 3,782.13 (-52.6 %) on 12-13 Mar 2020
    scen = build(gbm_market, files={"BTC": BTC_1H}, column="ohlc", **MAR2020)
    path = run(scen, scen.n_steps)
    assert scen.fundamental_drawdown(0) == pytest.approx(1 - 3782.13 / 7980.0, abs=1e-9)
    assert path[:, 0].min() / scen.scale[0] == pytest.approx(3782.13, rel=1e-9)
    # closes alone miss the intrabar low: 4,130.64 at 01:00 on 13 Mar
    close_only = build(gbm_market, files={"BTC": BTC_1H}, **MAR2020)
    run(close_only, close_only.n_steps)
    assert 0.45 < close_only.fundamental_drawdown(0) < 0.50


SHIPPED = {  # README drawdown (high -> low) inside each shipped window
    "replay_mar2020": 1 - 3782.13 / 7980.0,
    "replay_may2021": 1 - 30000.0 / 45799.29,
    "replay_may2022": 1 - 26700.0 / 34243.15,  # the 35,514 high was on 8 May
    "replay_nov2022": 1 - 15588.0 / 21069.77,
    "replay_oct2025": 0.176,
    "replay": None,
}


@needs_data
@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_replay_configs_load_and_give_finite_paths(name):
    cfg = load_config([f"scenario={name}"])  # runs validation, which builds it
    scen = build_scenario(cfg.scenario, cfg.market)
    path = run(scen, scen.n_steps + 5)
    assert np.all(np.isfinite(path)) and np.all(path > 0)
    assert 1440 <= scen.n_steps <= 6000  # about one to four days of one-minute steps
    np.testing.assert_allclose(path[0], [a.price for a in cfg.market.assets])
    np.testing.assert_array_equal(path[-1, scen.replayed], path[-6, scen.replayed])  # hold
    if SHIPPED[name] is not None:
        assert scen.fundamental_drawdown(0) == pytest.approx(SHIPPED[name], abs=0.002)


# ---------------------------------------------------------------- synthetic files
def test_interpolation_is_monotone_between_bars(tmp_path):
    closes = [100.0, 90.0, 95.0, 95.0, 120.0, 60.0]
    f = closes_csv(tmp_path / "x.csv", closes)
    scen = build(market(), files={"BTC": str(f)}, start="2024-01-01", end="2024-01-02")
    spb = scen.steps_per_bar
    path = run(scen, scen.n_steps)[:, 0] / scen.scale[0]
    knots = np.concatenate([[closes[0] / 1.01], closes])
    np.testing.assert_allclose(path[::spb], knots, rtol=1e-12)
    for b in range(len(closes)):
        seg = np.diff(path[b * spb:(b + 1) * spb + 1])
        sign = np.sign(knots[b + 1] - knots[b])
        assert np.all(seg * sign >= 0) and (sign != 0 or np.all(seg == 0))
        # log-linear: equal log steps within a bar
        np.testing.assert_allclose(np.diff(np.log(path[b * spb:(b + 1) * spb + 1])),
                                   np.log(knots[b + 1] / knots[b]) / spb, atol=1e-12)


def test_ohlc_visits_low_then_high_on_an_up_bar(tmp_path):
    f = write_csv(tmp_path / "x.csv", [100.0, 105.0], [110.0, 106.0], [95.0, 90.0],
                  [105.0, 92.0])
    scen = build(market(), files={"BTC": str(f)}, start="2024-01-01", end="2024-01-02",
                 column="ohlc", steps_per_bar=6, normalise=False)
    path = run(scen, 12)[:, 0]
    # bar 0 closed up: open 100 -> low 95 (step 2) -> high 110 (step 4) -> close 105
    # bar 1 closed down: high 106 (step 8) -> low 90 (step 10) -> close 92
    np.testing.assert_allclose(path[[0, 2, 4, 6, 8, 10, 12]],
                               [100, 95, 110, 105, 106, 90, 92], rtol=1e-12)
    assert scen.fundamental_drawdown(0) == pytest.approx(1 - 90 / 110)


def test_one_bar_per_step_compresses_time(tmp_path):
    closes = [10.0, 11.0, 12.0, 9.0]
    f = closes_csv(tmp_path / "x.csv", closes)
    scen = build(market(), files={"BTC": str(f)}, start="2024-01-01", end="2024-01-02",
                 steps_per_bar=1, normalise=False)
    assert scen.n_steps == 4
    np.testing.assert_allclose(run(scen, 4)[1:, 0], closes, rtol=1e-12)
    assert scen.time_at(2) == pd.Timestamp("2024-01-01 02:00", tz="UTC")


def test_real_time_steps_per_bar_follow_the_bar_interval(tmp_path):
    f = closes_csv(tmp_path / "x.csv", [1.0, 2.0, 3.0], freq="5min")
    assert build(market(), files={"BTC": str(f)}, start="2024-01-01",
                 end="2024-01-02").steps_per_bar == 5
    assert build(market(step_seconds=300.0), files={"BTC": str(f)}, start="2024-01-01",
                 end="2024-01-02").steps_per_bar == 1


def test_window_selects_bars_and_gaps_are_bridged(tmp_path):
    closes = [100.0, 101.0, 102.0, 103.0, 104.0, 105.0]
    f = closes_csv(tmp_path / "x.csv", closes, drop=(3,))  # an outage: bar 03:00 missing
    scen = build(market(), files={"BTC": str(f)}, start="2024-01-01 01:00",
                 end="2024-01-01 04:00", steps_per_bar=2, normalise=False)
    # bars 01:00, 02:00, (gap), 04:00: knots open 100, 101, 102, open 103 at step 6, 104
    assert scen.n_steps == 8
    np.testing.assert_allclose(scen.knot_steps, [0, 2, 4, 6, 8])
    np.testing.assert_allclose(run(scen, 8)[[0, 2, 4, 5, 6, 8], 0],
                               [100.0, 101.0, 102.0, np.sqrt(102.0 * 103.0), 103.0, 104.0],
                               rtol=1e-12)


def test_after_the_window_hold_or_continue_as_gbm(tmp_path):
    f = closes_csv(tmp_path / "x.csv", [100.0, 90.0])
    kw = {"files": {"BTC": str(f), "ETH": str(f)}, "start": "2024-01-01", "end": "2024-01-02",
          "steps_per_bar": 2}
    hold = run(build(market(), **kw), 10)
    np.testing.assert_array_equal(hold[4:], np.tile(hold[4], (7, 1)))
    gbm = run(build(market(), after="gbm", **kw), 10)
    np.testing.assert_array_equal(gbm[:5], hold[:5])
    assert np.all(gbm[5:] != hold[5:])


def test_free_assets_follow_gbm_conditioned_on_the_replay(tmp_path):
    # BTC falls 30 % in one hour; ETH (absent from files, rho 0.8, same vol) follows
    # with beta 0.8 in log terms, up to a conditional noise of ~0.004
    f = write_csv(tmp_path / "x.csv", [100.0, 70.0], [100.0, 70.0], [70.0, 70.0],
                  [70.0, 70.0])
    falls = []
    for seed in range(5):
        scen = build(market(vol=0.6, rho=0.8), files={"BTC": str(f)}, start="2024-01-01",
                     end="2024-01-01 00:00")
        assert scen.n_steps == 60
        path = run(scen, 60, seed=seed)
        falls.append(np.log(path[-1, 1] / path[0, 1]))
    np.testing.assert_allclose(falls, 0.8 * np.log(0.7), atol=0.02)
    assert np.std(falls) > 0  # still random
    uncorrelated = build(market(rho=0.0), files={"BTC": str(f)}, start="2024-01-01",
                         end="2024-01-01 00:00")
    assert abs(np.log(run(uncorrelated, 60)[-1, 1] / 3000.0)) < 0.05


def test_replay_randomness_comes_only_from_the_generator(tmp_path):
    f = closes_csv(tmp_path / "x.csv", [100.0, 90.0, 95.0])
    kw = {"start": "2024-01-01", "end": "2024-01-02", "steps_per_bar": 5}
    only_btc = {"files": {"BTC": str(f)}, **kw}
    np.testing.assert_array_equal(run(build(market(), **only_btc), 20, seed=1),
                                  run(build(market(), **only_btc), 20, seed=1))
    assert not np.allclose(run(build(market(), **only_btc), 20, seed=1)[:, 1],
                           run(build(market(), **only_btc), 20, seed=2)[:, 1])
    both = {"files": {"BTC": str(f), "ETH": str(f)}, **kw}  # nothing random left
    np.testing.assert_array_equal(run(build(market(), **both), 20, seed=1),
                                  run(build(market(), **both), 20, seed=2))


def test_brownian_bridge_noise_is_pinned_at_the_knots(tmp_path):
    f = closes_csv(tmp_path / "x.csv", [100.0, 90.0, 95.0])
    kw = {"files": {"BTC": str(f)}, "start": "2024-01-01", "end": "2024-01-02",
          "normalise": False}
    plain = run(build(market(), **kw), 180)[:, 0]
    noisy = run(build(market(), bridge_vol=2.0, **kw), 180)[:, 0]
    np.testing.assert_allclose(noisy[::60], plain[::60], rtol=1e-12)
    assert np.abs(np.log(noisy / plain)).max() > 1e-3


def test_data_dir_env_and_absolute_paths(tmp_path, monkeypatch):
    f = closes_csv(tmp_path / "mine.csv", [5.0, 6.0])
    monkeypatch.setenv("MARGINSIM_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path and resolve_data_path("mine.csv") == f
    kw = {"start": "2024-01-01", "end": "2024-01-02", "normalise": False}
    rel = build(market(), files={"BTC": "mine.csv"}, **kw)
    monkeypatch.delenv("MARGINSIM_DATA_DIR")
    assert data_dir().name == "data" and data_dir().parent.name == "shared"
    absolute = build(market(), files={"BTC": str(f)}, **kw)
    np.testing.assert_array_equal(run(rel, 120), run(absolute, 120))


def test_csv_missing_a_column_is_a_one_line_error(tmp_path):
    f = write_csv(tmp_path / "x.csv", [1.0], [1.0], [1.0], [1.0], drop=("volume",))
    with pytest.raises(ValueError) as info:
        build(market(), files={"BTC": str(f)}, start="2024-01-01", end="2024-01-02")
    msg = str(info.value)
    assert msg.startswith("params.files.BTC") and "volume" in msg and "\n" not in msg


@pytest.mark.parametrize(("params", "key"), [
    ({"files": []}, "params.files"),
    ({"files": {"SOL": "x.csv"}}, "params.files.SOL"),
    ({"files": {"BTC": "no/such/file.csv"}}, "params.files.BTC"),
    ({"start": "yesterday-ish"}, "params.start"),
    ({"end": "2023-12-31"}, "params.end"),
    ({"column": "vwap"}, "params.column"),
    ({"steps_per_bar": 0}, "params.steps_per_bar"),
    ({"column": "ohlc", "steps_per_bar": 2}, "params.steps_per_bar"),
    ({"normalise": "yes"}, "params.normalise"),
    ({"after": "loop"}, "params.after"),
    ({"bridge_vol": -1}, "params.bridge_vol"),
    ({"start": "2030-01-01", "end": "2030-02-01"}, "params.files.BTC"),
    ({"speed": 2}, "params.speed"),
    ({"files": None}, "params.files"),
])
def test_bad_replay_params_are_one_line_errors(tmp_path, params, key):
    f = closes_csv(tmp_path / "x.csv", [1.0, 2.0])
    base = {"files": {"BTC": str(f)}, "start": "2024-01-01", "end": "2024-01-02"}
    with pytest.raises(ValueError) as info:
        build(market(), **{**base, **params})
    msg = str(info.value)
    assert msg.startswith(key) and "\n" not in msg


def test_files_with_different_bar_intervals_are_rejected(tmp_path):
    a = closes_csv(tmp_path / "a.csv", [1.0, 2.0, 3.0])
    b = closes_csv(tmp_path / "b.csv", [1.0, 2.0, 3.0], freq="5min")
    with pytest.raises(ValueError, match=r"^params\.files\.ETH .*interval"):
        build(market(), files={"BTC": str(a), "ETH": str(b)}, start="2024-01-01",
              end="2024-01-02")
