"""margin.methods.pricing: Hull reference values (§7), parity, finite differences, scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from margin.methods.pricing import (
    black76_delta,
    black76_gamma,
    black76_greeks,
    black76_greeks_vec,
    black76_price,
    black76_price_vec,
    black76_rho,
    black76_theta,
    black76_vega,
    bs_delta,
    bs_gamma,
    bs_greeks,
    bs_greeks_vec,
    bs_price,
    bs_price_vec,
    bs_rho,
    bs_theta,
    bs_vega,
    norm_cdf,
)

# ----------------------------------------------------------------- reference values (Hull; §7)


def test_hull_black_scholes_example():
    assert bs_price(42.0, 40.0, 0.5, 0.10, 0.20, True) == pytest.approx(4.7594, abs=5e-5)
    assert bs_price(42.0, 40.0, 0.5, 0.10, 0.20, False) == pytest.approx(0.8086, abs=5e-5)


def test_hull_black76_example():
    c = black76_price(20.0, 20.0, 4 / 12, 0.09, 0.25, True)
    p = black76_price(20.0, 20.0, 4 / 12, 0.09, 0.25, False)
    assert c == pytest.approx(1.1166, abs=5e-5)
    assert p == pytest.approx(c, abs=1e-12)  # at the money forward
    # extra vector from §7
    assert black76_price(620.0, 600.0, 0.5, 0.05, 0.20, True) == pytest.approx(44.1869, abs=5e-5)
    assert black76_price(620.0, 600.0, 0.5, 0.05, 0.20, False) == pytest.approx(24.6807, abs=5e-5)


def test_hull_greeks_examples():
    # S=49, K=50, r=5%, σ=20%, T=20/52 (Hull's Greeks example; §7)
    price, delta, gamma, vega, theta, rho = bs_greeks(49.0, 50.0, 20 / 52, 0.05, 0.20, True)
    assert price == pytest.approx(2.4005, abs=5e-5)
    assert delta == pytest.approx(0.5216, abs=5e-5)
    assert gamma == pytest.approx(0.0655, abs=5e-5)
    assert vega == pytest.approx(12.105, abs=5e-4)
    assert theta == pytest.approx(-4.305, abs=5e-4)
    assert rho == pytest.approx(8.907, abs=5e-4)
    assert bs_price(49.0, 50.0, 20 / 52, 0.05, 0.20, False) == pytest.approx(2.4482, abs=5e-5)
    # S=42 case, call Greeks from §7
    _, delta, gamma, vega, theta, rho = bs_greeks(42.0, 40.0, 0.5, 0.10, 0.20, True)
    assert delta == pytest.approx(0.7791, abs=5e-5)
    assert gamma == pytest.approx(0.04996, abs=5e-6)
    assert vega == pytest.approx(8.813, abs=5e-4)
    assert theta == pytest.approx(-4.559, abs=5e-4)
    assert rho == pytest.approx(13.98, abs=5e-3)


def test_single_greek_functions_match_bundle():
    args = (49.0, 50.0, 20 / 52, 0.05, 0.20)
    for call in (True, False):
        g = bs_greeks(*args, call)
        singles = (bs_price, bs_delta, bs_gamma, bs_vega, bs_theta, bs_rho)
        assert tuple(fn(*args, call) for fn in singles) == g
        g76 = black76_greeks(*args, call)
        singles76 = (black76_price, black76_delta, black76_gamma, black76_vega, black76_theta,
                     black76_rho)
        assert tuple(fn(*args, call) for fn in singles76) == g76


# ----------------------------------------------------------------- scipy reference implementation


def _scipy_bs(s, k, t, r, sig, call):
    d1 = (np.log(s / k) + (r + 0.5 * sig**2) * t) / (sig * np.sqrt(t))
    d2 = d1 - sig * np.sqrt(t)
    disc = np.exp(-r * t)
    c = s * norm.cdf(d1) - k * disc * norm.cdf(d2)
    p = k * disc * norm.cdf(-d2) - s * norm.cdf(-d1)
    price = np.where(call, c, p)
    delta = np.where(call, norm.cdf(d1), norm.cdf(d1) - 1)
    gamma = norm.pdf(d1) / (s * sig * np.sqrt(t))
    vega = s * norm.pdf(d1) * np.sqrt(t)
    theta = -s * norm.pdf(d1) * sig / (2 * np.sqrt(t)) + np.where(
        call, -r * k * disc * norm.cdf(d2), r * k * disc * norm.cdf(-d2)
    )
    return price, delta, gamma, vega, theta


def _scipy_b76(f, k, t, r, sig, call):
    d1 = (np.log(f / k) + 0.5 * sig**2 * t) / (sig * np.sqrt(t))
    d2 = d1 - sig * np.sqrt(t)
    disc = np.exp(-r * t)
    c = f * norm.cdf(d1) - k * norm.cdf(d2)
    p = k * norm.cdf(-d2) - f * norm.cdf(-d1)
    price = disc * np.where(call, c, p)
    return price


def _random_inputs(n, seed):
    rng = np.random.default_rng(seed)
    s = rng.uniform(5, 500, n)
    k = s * np.exp(rng.normal(0, 0.4, n))
    t = rng.uniform(0.01, 3.0, n)
    sig = rng.uniform(0.05, 1.5, n)
    call = rng.random(n) < 0.5
    return s, k, t, sig, call


def test_vectorised_against_scipy_norm():
    s, k, t, sig, call = _random_inputs(2_000, 11)
    r = 0.03
    price, delta, gamma, vega, theta, _ = bs_greeks_vec(s, k, t, r, sig, call)
    ref = _scipy_bs(s, k, t, r, sig, call)
    for got, want in zip((price, delta, gamma, vega, theta), ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(bs_price_vec(s, k, t, r, sig, call), ref[0], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(
        black76_price_vec(s, k, t, r, sig, call), _scipy_b76(s, k, t, r, sig, call),
        rtol=1e-9, atol=1e-10,
    )


def test_vectorised_matches_scalar_and_checks_lengths():
    s, k, t, sig, call = _random_inputs(50, 3)
    out = black76_greeks_vec(s, k, t, 0.02, sig, call)
    for i in range(0, 50, 7):
        assert tuple(o[i] for o in out) == black76_greeks(s[i], k[i], t[i], 0.02, sig[i], call[i])
    with pytest.raises(ValueError, match="equal length"):
        bs_price_vec(s, k[:-1], t, 0.02, sig, call)


def test_norm_cdf_tails():
    for x in (-40.0, -8.0, -1.0, 0.0, 2.5, 9.0):
        assert norm_cdf(x) == pytest.approx(norm.cdf(x), rel=1e-12, abs=1e-300)
    assert norm_cdf(-math.inf) == 0.0 and norm_cdf(math.inf) == 1.0


# ----------------------------------------------------------------- properties

_pos = st.floats(min_value=1.0, max_value=1_000.0)
_moneyness = st.floats(min_value=0.3, max_value=3.0)
_t = st.floats(min_value=1e-3, max_value=5.0)
_r = st.floats(min_value=-0.02, max_value=0.2)
_sig = st.floats(min_value=0.01, max_value=2.0)


@settings(max_examples=200)
@given(_pos, _moneyness, _t, _r, _sig)
def test_put_call_parity(s, m, t, r, sig):
    k = s * m
    c = bs_price(s, k, t, r, sig, True)
    p = bs_price(s, k, t, r, sig, False)
    assert c - p == pytest.approx(s - k * math.exp(-r * t), abs=1e-9 * (s + k))
    c76 = black76_price(s, k, t, r, sig, True)
    p76 = black76_price(s, k, t, r, sig, False)
    assert c76 - p76 == pytest.approx(math.exp(-r * t) * (s - k), abs=1e-9 * (s + k))
    # no-arbitrage bounds
    assert max(s - k * math.exp(-r * t), 0.0) - 1e-9 * s <= c <= s + 1e-12
    assert p >= -1e-12


def _fd_greeks(fn, x, k, t, r, sig, call):
    hx, hs, ht, hr = 1e-4 * x, 1e-5, 1e-6, 1e-6
    d = (fn(x + hx, k, t, r, sig, call) - fn(x - hx, k, t, r, sig, call)) / (2 * hx)
    up, mid, dn = (fn(x + e, k, t, r, sig, call) for e in (hx, 0.0, -hx))
    g = (up - 2 * mid + dn) / hx**2
    v = (fn(x, k, t, r, sig + hs, call) - fn(x, k, t, r, sig - hs, call)) / (2 * hs)
    th = -(fn(x, k, t + ht, r, sig, call) - fn(x, k, t - ht, r, sig, call)) / (2 * ht)
    rh = (fn(x, k, t, r + hr, sig, call) - fn(x, k, t, r - hr, sig, call)) / (2 * hr)
    return d, g, v, th, rh


@pytest.mark.parametrize(
    ("price_fn", "greeks_fn"),
    [(bs_price, bs_greeks), (black76_price, black76_greeks)],
    ids=["bs", "black76"],
)
def test_greeks_against_finite_differences(price_fn, greeks_fn):
    rng = np.random.default_rng(5)
    for _ in range(60):
        x = rng.uniform(20, 200)
        k = x * math.exp(rng.normal(0, 0.2))
        t = rng.uniform(0.05, 2.0)
        r = rng.uniform(0.0, 0.1)
        sig = rng.uniform(0.1, 0.9)
        call = bool(rng.random() < 0.5)
        _, delta, gamma, vega, theta, rho = greeks_fn(x, k, t, r, sig, call)
        fd = _fd_greeks(price_fn, x, k, t, r, sig, call)
        scale = price_fn(x, k, t, r, sig, True) + x * 1e-3
        assert delta == pytest.approx(fd[0], abs=1e-6)
        assert gamma == pytest.approx(fd[1], abs=2e-4 * max(gamma, 1e-3))
        assert vega == pytest.approx(fd[2], abs=1e-6 * scale)
        assert theta == pytest.approx(fd[3], abs=1e-5 * scale)
        assert rho == pytest.approx(fd[4], abs=1e-5 * scale)


# ----------------------------------------------------------------- degenerate inputs


@pytest.mark.parametrize("fn", [bs_greeks, black76_greeks], ids=["bs", "black76"])
def test_expiry_and_zero_vol_give_intrinsic_without_nan(fn):
    futures = fn is black76_greeks
    for s, k in ((120.0, 100.0), (80.0, 100.0), (100.0, 100.0)):
        for t, sig in ((0.0, 0.3), (0.5, 0.0), (0.0, 0.0), (-1.0, 0.2), (0.5, -0.1)):
            tt = max(t, 0.0)
            disc = math.exp(-0.05 * tt)
            for call in (True, False):
                out = fn(s, k, t, 0.05, sig, call)
                assert all(np.isfinite(out)), (s, k, t, sig, call, out)
                fwd_gap = (s - k) * disc if futures else s - k * disc
                intrinsic = max(fwd_gap, 0.0) if call else max(-fwd_gap, 0.0)
                assert out[0] == pytest.approx(intrinsic, abs=1e-12)
                assert out[2] == 0.0  # gamma
    # limits: tiny vol / tiny T converge to the degenerate values
    assert bs_price(120.0, 100.0, 1e-10, 0.05, 0.3, True) == pytest.approx(20.0, abs=1e-6)
    assert bs_price(120.0, 100.0, 0.5, 0.05, 1e-9, False) == pytest.approx(0.0, abs=1e-12)
    assert bs_delta(120.0, 100.0, 0.0, 0.05, 0.3, True) == 1.0
    assert bs_delta(80.0, 100.0, 0.0, 0.05, 0.3, False) == -1.0
    assert bs_delta(100.0, 100.0, 0.0, 0.05, 0.3, True) == 0.5


def test_boundary_prices_without_nan():
    assert bs_price(0.0, 100.0, 1.0, 0.05, 0.3, True) == 0.0
    assert bs_price(0.0, 100.0, 1.0, 0.05, 0.3, False) == pytest.approx(100 * math.exp(-0.05))
    assert bs_price(50.0, 0.0, 1.0, 0.05, 0.3, True) == pytest.approx(50.0)
    assert bs_price(50.0, 0.0, 1.0, 0.05, 0.3, False) == 0.0
    assert all(np.isfinite(bs_greeks(1e-300, 1e300, 10.0, 0.05, 3.0, True)))
