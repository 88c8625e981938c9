"""Tests for margin.risk.calibration on the shared price files and on synthetic GBM data.

The shared data live beside the repository (``<repo>/../shared/data``); set
``MARGINSIM_DATA_DIR`` to point elsewhere.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from margin.risk.calibration import (
    PRICE_COLUMNS,
    align_closes,
    annualised_volatility,
    calibrate,
    correlation_matrix,
    covariance_matrix,
    ewma_next_variance,
    ewma_variance,
    ewma_variance_kernel,
    ewma_volatility,
    infer_interval,
    load_price_csv,
    log_returns,
    periods_per_year,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


def data_dir() -> Path:
    """Shared data directory: ``$MARGINSIM_DATA_DIR`` or ``<repo>/../shared/data``."""
    env = os.environ.get("MARGINSIM_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="module")
def prices_dir() -> Path:
    d = data_dir() / "prices"
    if not d.is_dir():
        pytest.fail(f"price data not found at {d}; set MARGINSIM_DATA_DIR to the shared data dir")
    return d


@pytest.fixture(scope="module")
def btc(prices_dir) -> pd.DataFrame:
    return load_price_csv(prices_dir / "binance_spot_BTCUSDT_1h.csv")


@pytest.fixture(scope="module")
def eth(prices_dir) -> pd.DataFrame:
    return load_price_csv(prices_dir / "binance_spot_ETHUSDT_1h.csv")


# ----------------------------------------------------------------- real data


def test_load_real_file(btc):
    assert list(btc.columns) == list(PRICE_COLUMNS[1:])
    assert all(dt == np.float64 for dt in btc.dtypes)
    assert str(btc.index.tz) == "UTC" and btc.index.name == "timestamp_utc"
    assert btc.index.is_monotonic_increasing and btc.index.is_unique
    assert btc.index[0] == pd.Timestamp("2018-01-01 00:00", tz="UTC")
    assert len(btc) > 70_000
    assert btc["close"].iloc[0] == pytest.approx(13_529.01)
    # 27 outage gaps do not change the median spacing
    assert infer_interval(btc.index) == pd.Timedelta(hours=1)


def test_real_btc_volatility_plausible(btc, eth):
    vol_btc = annualised_volatility(btc)
    vol_eth = annualised_volatility(eth)
    assert 0.3 < vol_btc < 1.5
    assert 0.3 < vol_eth < 2.0
    # the same number via an explicit interval and via daily closes
    assert annualised_volatility(btc["close"], interval="1h") == pytest.approx(vol_btc)
    daily = btc["close"].resample("1D").last().dropna()
    assert 0.3 < annualised_volatility(daily) < 1.5


def test_real_btc_eth_daily_correlation(prices_dir):
    cal = calibrate(
        {
            "BTC": prices_dir / "binance_spot_BTCUSDT_1h.csv",
            "ETH": prices_dir / "binance_spot_ETHUSDT_1h.csv",
        },
        start="2021-01-01",
        end="2025-02-20",
        resample="1D",
    )
    rho = cal.corr[0, 1]
    assert 0.6 < rho < 0.95
    assert rho == pytest.approx(0.82, abs=0.03)  # data README: 0.82 for 2021-01 -> 2025-02 daily
    assert cal.names == ("BTC", "ETH")
    assert cal.interval == pd.Timedelta(days=1) and cal.periods_per_year == pytest.approx(365.0)
    assert cal.start == pd.Timestamp("2021-01-01", tz="UTC")
    assert cal.end == pd.Timestamp("2025-02-20", tz="UTC")
    assert all(0.3 < v < 1.5 for v in cal.vol)
    assert np.all(cal.ewma_vol > 0.05)
    np.testing.assert_allclose(np.diag(cal.cov), cal.vol**2)
    np.testing.assert_allclose(cal.drift, cal.log_drift + 0.5 * cal.vol**2)
    low = cal.cholesky()
    np.testing.assert_allclose(low @ low.T, cal.corr, atol=1e-12)
    d = cal.to_dict()
    assert d["names"] == ["BTC", "ETH"] and len(d["corr"]) == 2
    assert cal.index("ETH") == 1


def test_real_calibrate_from_paths_uses_file_stems(btc, eth, prices_dir):
    files = [
        prices_dir / "binance_spot_BTCUSDT_1h.csv",
        prices_dir / "binance_usdm_perp_BTCUSDT_1h.csv",
    ]
    cal = calibrate(files, start="2022-01-01", end="2022-12-31")
    assert cal.names == ("binance_spot_BTCUSDT_1h", "binance_usdm_perp_BTCUSDT_1h")
    assert cal.interval == pd.Timedelta(hours=1)
    assert cal.corr[0, 1] > 0.98  # spot and perp of the same coin
    # aligned hourly data: matches the helpers used one by one
    frame = align_closes({"a": btc, "b": eth})
    expected = np.corrcoef(log_returns(frame).T.to_numpy())
    np.testing.assert_allclose(correlation_matrix(frame).to_numpy(), expected)


# ----------------------------------------------------------------- synthetic GBM


def _write_ohlcv(path: Path, index: pd.DatetimeIndex, close: np.ndarray) -> Path:
    frame = pd.DataFrame(
        {
            "timestamp_utc": index.strftime("%Y-%m-%d %H:%M:%S"),
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": 1.0,
        }
    )
    frame.to_csv(path, index=False)
    return path


def _gbm(
    n: int, vol: np.ndarray, corr: np.ndarray, ppy: float, mu: np.ndarray, seed: int
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = 1.0 / ppy
    z = rng.standard_normal((n, vol.size)) @ np.linalg.cholesky(corr).T
    r = (mu - 0.5 * vol**2) * dt + vol * math.sqrt(dt) * z
    return 100.0 * np.exp(np.vstack([np.zeros(vol.size), np.cumsum(r, axis=0)]))


def test_synthetic_gbm_recovers_vol_and_correlation(tmp_path):
    n = 20_000
    vol = np.array([0.8, 0.5])
    corr = np.array([[1.0, 0.6], [0.6, 1.0]])
    paths = _gbm(n, vol, corr, 8_760.0, np.array([0.1, 0.0]), seed=42)
    idx = pd.date_range("2020-01-01", periods=n + 1, freq="1h", tz="UTC")
    a = _write_ohlcv(tmp_path / "A.csv", idx, paths[:, 0])
    b = _write_ohlcv(tmp_path / "B.csv", idx, paths[:, 1])
    cal = calibrate([a, b])
    assert cal.names == ("A", "B") and cal.n_returns == n
    assert cal.periods_per_year == pytest.approx(8_760.0)
    # standard errors: vol ≈ σ/√(2n) ≈ 0.5% of σ; ρ ≈ (1−ρ²)/√n ≈ 0.005
    np.testing.assert_allclose(cal.vol, vol, rtol=0.03)
    assert cal.corr[0, 1] == pytest.approx(0.6, abs=0.03)
    assert annualised_volatility(load_price_csv(a)) == pytest.approx(0.8, rel=0.03)
    # EWMA vol at the end is a noisy but sane estimate of the same σ
    assert 0.4 < cal.ewma_vol[0] < 1.3
    # daily resampling: fewer, longer returns, same σ within sampling error
    daily = calibrate([a, b], resample="1D")
    assert daily.interval == pd.Timedelta(days=1) and daily.n_returns == 833
    np.testing.assert_allclose(daily.vol, vol, rtol=0.12)


def test_drift_and_vol_formulas_exact():
    # alternating log returns g ± e: mean g, sample variance n e² / (n − 1)
    n, g, e = 1_000, 0.001, 0.01
    r = g + e * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    idx = pd.date_range("2021-01-01", periods=n + 1, freq="1D", tz="UTC")
    close = pd.Series(100.0 * np.exp(np.r_[0.0, np.cumsum(r)]), index=idx)
    cal = calibrate({"X": close, "Y": close * 2.0})
    expected_vol = math.sqrt(n * e**2 / (n - 1) * 365.0)
    np.testing.assert_allclose(cal.vol, expected_vol, rtol=1e-9)
    np.testing.assert_allclose(cal.log_drift, g * 365.0, rtol=1e-9)
    np.testing.assert_allclose(cal.drift, g * 365.0 + 0.5 * expected_vol**2, rtol=1e-9)
    np.testing.assert_allclose(cal.corr, 1.0, atol=1e-12)
    cov = covariance_matrix(pd.DataFrame({"X": close}))
    assert cov.iloc[0, 0] == pytest.approx(expected_vol**2)
    per_bar = covariance_matrix(pd.DataFrame({"X": close}), annualise=False)
    assert per_bar.iloc[0, 0] == pytest.approx(expected_vol**2 / 365.0)
    with pytest.raises(ValueError, match=r"writable|read-only"):
        cal.vol[0] = 1.0


def test_constant_asset_and_naive_index():
    idx = pd.date_range("2021-01-01", periods=50, freq="1D")  # naive -> UTC
    x = pd.Series(100.0 * np.exp(np.cumsum(np.r_[0.0, 0.01 * (-1.0) ** np.arange(49)])), index=idx)
    cal = calibrate({"X": x, "STABLE": pd.Series(1.0, index=idx)})
    assert cal.vol[1] == 0.0 and cal.ewma_vol[1] == 0.0
    np.testing.assert_array_equal(cal.corr, np.eye(2))
    assert cal.start == pd.Timestamp("2021-01-01", tz="UTC")


def test_interval_helpers():
    assert periods_per_year("1h") == pytest.approx(8_760.0)
    assert periods_per_year(86_400) == pytest.approx(365.0)
    assert periods_per_year(pd.Timedelta(days=1), days_per_year=252) == pytest.approx(252.0)
    with pytest.raises(ValueError, match="interval"):
        periods_per_year(0)
    with pytest.raises(ValueError, match="interval"):
        periods_per_year("soon")
    idx = pd.DatetimeIndex(
        ["2021-01-01 00:00", "2021-01-01 01:00", "2021-01-01 02:00", "2021-01-01 09:00"], tz="UTC"
    )
    assert infer_interval(idx) == pd.Timedelta(hours=1)
    with pytest.raises(ValueError, match="interval"):
        annualised_volatility(np.array([1.0, 1.1, 1.05]))
    assert annualised_volatility(np.array([1.0, 1.1, 1.05]), interval="1D") > 0
    with pytest.raises(ValueError, match="> 0"):
        log_returns(np.array([1.0, 0.0, 2.0]))


# ----------------------------------------------------------------- EWMA


def test_ewma_reference_value():
    # §5.2: σ_{t−1} = 1%, r = 3%, λ = 0.94 -> σ_t = 1.2166%
    out = ewma_variance_kernel(np.array([0.03]), 0.94, 0.01**2)
    assert math.sqrt(out[1]) == pytest.approx(0.012166, abs=5e-7)
    assert ewma_next_variance(np.array([0.03]), init=1e-4) == pytest.approx(out[1])


def test_ewma_recursion_alignment_and_no_lookahead():
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.02, 300)
    var = ewma_variance(r, lam=0.97, init=4e-4)
    assert var.shape == r.shape and var[0] == 4e-4
    expected = 4e-4
    for t in range(1, 300):
        expected = 0.97 * expected + 0.03 * r[t - 1] ** 2
        assert var[t] == pytest.approx(expected, rel=1e-12)
    # changing r[t] leaves forecasts up to t unchanged
    r2 = r.copy()
    r2[150] = 0.5
    var2 = ewma_variance(r2, lam=0.97, init=4e-4)
    np.testing.assert_array_equal(var2[:151], var[:151])
    assert var2[151] > var[151]
    # default init: mean square of the first 30 returns
    assert ewma_variance(r)[0] == pytest.approx(np.mean(r[:30] ** 2))
    # Series in, Series out
    s = pd.Series(r, index=pd.date_range("2021", periods=300, freq="1D", tz="UTC"))
    vol = ewma_volatility(s, init=4e-4)
    assert isinstance(vol, pd.Series) and vol.index.equals(s.index)
    np.testing.assert_allclose(vol.to_numpy() ** 2, ewma_variance(r, init=4e-4))


def test_ewma_input_errors():
    with pytest.raises(ValueError, match="lam"):
        ewma_variance(np.ones(3), lam=1.0)
    with pytest.raises(ValueError, match="NaN"):
        ewma_variance(np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="empty"):
        ewma_variance(np.array([]))
    with pytest.raises(ValueError, match="init"):
        ewma_variance(np.ones(3), init=-1.0)


# ----------------------------------------------------------------- bad files


GOOD = (
    "timestamp_utc,open,high,low,close,volume\n"
    "2021-01-01 00:00:00,1,2,0.5,1.5,10\n"
    "2021-01-01 01:00:00,1.5,2,1,1.8,12\n"
)


def _csv(tmp_path: Path, text: str, name: str = "f.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "not a readable CSV"),
        ("timestamp_utc,open,high,low,volume\n2021-01-01,1,1,1,1\n", "missing column(s) close"),
        (
            "time,open,high,low,close,volume\n2021-01-01,1,1,1,1,1\n",
            "missing column(s) timestamp_utc",
        ),
        ("timestamp_utc,open,high,low,close,volume\n", "no data rows"),
        (GOOD + "not-a-date,1,1,1,1,1\n", "unparseable value 'not-a-date' at data row 3"),
        (GOOD + "2021-01-01 02:00:00,1,1,1,abc,1\n", "column close has a non-numeric value 'abc'"),
        (GOOD + "2021-01-01 02:00:00,1,1,1,,1\n", "column close has 1 empty cell"),
        (GOOD + "2021-01-01 02:00:00,1,1,1,-3,1\n", "column close must be > 0"),
        (GOOD + "2021-01-01 02:00:00,1,1,1,1,-1\n", "column volume must be >= 0"),
        (
            GOOD + "2021-01-01 01:00:00,1,1,1,1,1\n",
            "1 duplicate timestamp(s), first 2021-01-01T01:00:00+00:00",
        ),
        ("timestamp_utc,open,high,low,close,volume\n1609459200,1,1,1,1,1\n", "holds numbers"),
    ],
)
def test_bad_files_raise_one_line_value_error(tmp_path, text, needle):
    p = _csv(tmp_path, text)
    with pytest.raises(ValueError) as exc:
        load_price_csv(p)
    msg = str(exc.value)
    assert needle in msg and str(p) in msg
    assert "\n" not in msg


def test_missing_file_and_binary_file(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_price_csv(tmp_path / "nope.csv")
    p = tmp_path / "bin.csv"
    p.write_bytes(b"\xff\xfe\x00\x81\x00" * 100)
    with pytest.raises(ValueError) as exc:
        load_price_csv(p)
    assert "\n" not in str(exc.value)


def test_loader_sorts_converts_offsets_and_ignores_extras(tmp_path):
    text = (
        " Timestamp_UTC , open,high,low,close,volume,trades\n"
        "2021-01-01T02:00:00+01:00,1,1,1,3,1,7\n"  # = 01:00 UTC
        "2021-01-01 00:00:00,1,1,1,2,1,7\n"
        "2021-01-01 02:00:00Z,1,1,1,4,1,7\n"
    )
    frame = load_price_csv(_csv(tmp_path, text))
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame["close"].tolist() == [2.0, 3.0, 4.0]
    assert frame.index[1] == pd.Timestamp("2021-01-01 01:00", tz="UTC")


def test_calibrate_errors(tmp_path):
    a = _csv(tmp_path, GOOD, "a.csv")
    with pytest.raises(ValueError, match="at least 3"):
        calibrate([a])
    sub = tmp_path / "sub"
    sub.mkdir()
    b = _csv(sub, GOOD, "a.csv")
    with pytest.raises(ValueError, match="repeat"):
        calibrate([a, b])
    with pytest.raises(ValueError, match="at least one"):
        calibrate([])
    idx1 = pd.date_range("2021-01-01", periods=5, freq="1h", tz="UTC")
    idx2 = pd.date_range("2022-01-01", periods=5, freq="1h", tz="UTC")
    with pytest.raises(ValueError, match="share no timestamps"):
        align_closes({"x": pd.Series(1.0, index=idx1), "y": pd.Series(1.0, index=idx2)})
