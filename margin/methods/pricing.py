"""European option prices and Greeks: Black–Scholes (spot) and Black-76 (futures).

Formulas (Hull, *Options, Futures, and Other Derivatives*, chs. 15, 18, 19;
Black 1976; reference ``margin_methods.md`` §7)::

    d1 = [ln(S/K) + (r + σ²/2)T] / (σ√T),  d2 = d1 − σ√T
    c = S N(d1) − K e^{−rT} N(d2);   p = K e^{−rT} N(−d2) − S N(−d1)
    Black-76: d1 = [ln(F/K) + σ²T/2] / (σ√T);  c = e^{−rT}[F N(d1) − K N(d2)]

Conventions: no dividends; ``T`` in years; vega per unit of volatility (1.00 =
100 vol points); theta per year as ``−∂V/∂T`` (divide by 365 for a calendar
day); rho per unit of rate. When ``σ√T = 0`` (expiry or zero volatility), or
``S``/``F`` or ``K`` is ≤ 0, the price is the discounted intrinsic value of the
forward, ``max(S − K e^{−rT}, 0)`` for a call, and the Greeks are their limits
(gamma 0; delta 1/0, or ½ exactly at the forward; theta without its volatility
term, whose limit at the money is −∞). A negative ``sigma`` or ``T`` is treated
as 0. No finite input returns NaN.

All functions are ``@njit(cache=True)`` so SPAN-style scan kernels
(``margin.engine``) can call them. Scalar versions take floats and a bool
``is_call``; ``*_vec`` versions take equal-length 1-D float64 arrays for the
underlying, strike, expiry and volatility, a bool array ``is_call`` and a
scalar rate. Neighbours: ``margin.methods.tiers`` (perp margins), ``margin.risk.calibration``
(volatility inputs).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "black76_delta",
    "black76_gamma",
    "black76_greeks",
    "black76_greeks_vec",
    "black76_price",
    "black76_price_vec",
    "black76_rho",
    "black76_theta",
    "black76_vega",
    "bs_delta",
    "bs_gamma",
    "bs_greeks",
    "bs_greeks_vec",
    "bs_price",
    "bs_price_vec",
    "bs_rho",
    "bs_theta",
    "bs_vega",
    "norm_cdf",
    "norm_pdf",
]

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


@njit(cache=True)
def norm_cdf(x: float) -> float:
    """Standard normal CDF ``N(x) = ½ erfc(−x/√2)`` (accurate in both tails).

    Args:
        x: Argument (±inf allowed).

    Returns:
        N(x) in [0, 1].
    """
    return 0.5 * math.erfc(-x * _INV_SQRT2)


@njit(cache=True)
def norm_pdf(x: float) -> float:
    """Standard normal density ``n(x) = exp(−x²/2)/√(2π)``.

    Args:
        x: Argument (±inf allowed, giving 0).

    Returns:
        n(x).
    """
    return _INV_SQRT2PI * math.exp(-0.5 * x * x)


@njit(cache=True)
def _greeks_core(
    x: float, k: float, t: float, r: float, sigma: float, is_call: bool, futures: bool
):
    """Price, delta, gamma, vega, theta, rho for BS (futures=False) or Black-76.

    ``x`` is the spot S (BS) or the futures price F (Black-76).
    """
    disc = math.exp(-r * t) if t > 0.0 else 1.0
    tt = t if t > 0.0 else 0.0
    vol = sigma if sigma > 0.0 else 0.0
    sqrt_t = math.sqrt(tt)
    v = vol * sqrt_t
    # forward and discounted-forward pieces:
    #   BS:  V = x·N(±d1)·(±1) ... with carry factor 1; Black-76: carry = e^{-rT}
    carry = disc if futures else 1.0
    fwd = x if futures else (x / disc)  # forward price F
    degenerate = (v <= 0.0) or (x <= 0.0) or (k <= 0.0)
    if degenerate:
        # sigma·sqrt(T) -> 0 (or boundary prices): d1 = d2 = ±inf, 0 at the forward.
        diff = fwd - k
        if diff > 0.0:
            n1 = 1.0
        elif diff < 0.0:
            n1 = 0.0
        else:
            n1 = 0.5
        n2 = n1
        pdf1 = _INV_SQRT2PI if (diff == 0.0 and x > 0.0 and k > 0.0) else 0.0
        gamma = 0.0
        theta_vol = 0.0
    else:
        d1 = (math.log(fwd / k) + 0.5 * v * v) / v
        d2 = d1 - v
        n1 = norm_cdf(d1)
        n2 = norm_cdf(d2)
        pdf1 = norm_pdf(d1)
        gamma = carry * pdf1 / (x * v)
        theta_vol = -carry * x * pdf1 * vol / (2.0 * sqrt_t)
    vega = carry * x * pdf1 * sqrt_t
    if is_call:
        price = carry * x * n1 - disc * k * n2
        delta = carry * n1
    else:
        price = disc * k * (1.0 - n2) - carry * x * (1.0 - n1)
        delta = carry * (n1 - 1.0)
    if degenerate:
        price = max(price, 0.0)
    if futures:
        # V = e^{-rT} B(F, K, σ, T):  Θ = rV − e^{-rT} F n(d1) σ / (2√T);  ρ = −T V
        theta = r * price + theta_vol
        rho = -tt * price
    else:
        if is_call:
            theta = theta_vol - r * k * disc * n2
            rho = k * tt * disc * n2
        else:
            theta = theta_vol + r * k * disc * (1.0 - n2)
            rho = -k * tt * disc * (1.0 - n2)
    return price, delta, gamma, vega, theta, rho


# ----------------------------------------------------------------- Black–Scholes


@njit(cache=True)
def bs_greeks(s: float, k: float, t: float, r: float, sigma: float, is_call: bool):
    """Black–Scholes price and Greeks in one pass (Hull ch. 15, 19; §7).

    Args:
        s: Spot price.
        k: Strike.
        t: Time to expiry in years.
        r: Continuously compounded risk-free rate.
        sigma: Volatility (annualised).
        is_call: True for a call, False for a put.

    Returns:
        Tuple ``(price, delta, gamma, vega, theta, rho)``; theta per year,
        vega and rho per unit.
    """
    return _greeks_core(s, k, t, r, sigma, is_call, False)


@njit(cache=True)
def bs_price(s: float, k: float, t: float, r: float, sigma: float, is_call: bool) -> float:
    """Black–Scholes price of a European option on a non-dividend spot (Hull ch. 15).

    Hull's example (S=42, K=40, r=0.10, σ=0.20, T=0.5) gives call 4.7594 and
    put 0.8086 (reference ``margin_methods.md`` §7).

    Args:
        s: Spot price.
        k: Strike.
        t: Time to expiry in years.
        r: Risk-free rate.
        sigma: Volatility.
        is_call: True for a call.

    Returns:
        The option value.
    """
    return _greeks_core(s, k, t, r, sigma, is_call, False)[0]


@njit(cache=True)
def bs_delta(s: float, k: float, t: float, r: float, sigma: float, is_call: bool) -> float:
    """Black–Scholes delta ∂V/∂S: N(d1) (call), N(d1) − 1 (put) (Hull ch. 19).

    Args:
        s: Spot price.
        k: Strike.
        t: Time to expiry in years.
        r: Risk-free (discount) rate.
        sigma: Volatility.
        is_call: True for a call, False for a put.

    Returns:
        Delta.
    """
    return _greeks_core(s, k, t, r, sigma, is_call, False)[1]


@njit(cache=True)
def bs_gamma(s: float, k: float, t: float, r: float, sigma: float, is_call: bool) -> float:
    """Black–Scholes gamma ∂²V/∂S² = n(d1)/(Sσ√T), same for calls and puts (Hull ch. 19).

    Args:
        s: Spot price.
        k: Strike.
        t: Time to expiry in years.
        r: Risk-free (discount) rate.
        sigma: Volatility.
        is_call: Ignored (kept for a uniform signature).

    Returns:
        Gamma (0 when σ√T = 0).
    """
    return _greeks_core(s, k, t, r, sigma, is_call, False)[2]


@njit(cache=True)
def bs_vega(s: float, k: float, t: float, r: float, sigma: float, is_call: bool) -> float:
    """Black–Scholes vega ∂V/∂σ = S n(d1) √T per unit of volatility (Hull ch. 19).

    Args:
        s: Spot price.
        k: Strike.
        t: Time to expiry in years.
        r: Risk-free (discount) rate.
        sigma: Volatility.
        is_call: Ignored (kept for a uniform signature).

    Returns:
        Vega.
    """
    return _greeks_core(s, k, t, r, sigma, is_call, False)[3]


@njit(cache=True)
def bs_theta(s: float, k: float, t: float, r: float, sigma: float, is_call: bool) -> float:
    """Black–Scholes theta −∂V/∂T per year (Hull ch. 19).

    Call: ``−S n(d1) σ/(2√T) − rK e^{−rT} N(d2)``; put: ``… + rK e^{−rT} N(−d2)``.

    Args:
        s: Spot price.
        k: Strike.
        t: Time to expiry in years.
        r: Risk-free (discount) rate.
        sigma: Volatility.
        is_call: True for a call, False for a put.

    Returns:
        Theta per year.
    """
    return _greeks_core(s, k, t, r, sigma, is_call, False)[4]


@njit(cache=True)
def bs_rho(s: float, k: float, t: float, r: float, sigma: float, is_call: bool) -> float:
    """Black–Scholes rho ∂V/∂r: ``K T e^{−rT} N(d2)`` (call), ``−K T e^{−rT} N(−d2)``.

    Args:
        s: Spot price.
        k: Strike.
        t: Time to expiry in years.
        r: Risk-free (discount) rate.
        sigma: Volatility.
        is_call: True for a call, False for a put.

    Returns:
        Rho per unit of rate.
    """
    return _greeks_core(s, k, t, r, sigma, is_call, False)[5]


# ----------------------------------------------------------------- Black-76


@njit(cache=True)
def black76_greeks(f: float, k: float, t: float, r: float, sigma: float, is_call: bool):
    """Black-76 price and Greeks (w.r.t. the futures price) in one pass (Black 1976; Hull ch. 18).

    Args:
        f: Futures (forward) price.
        k: Strike.
        t: Time to expiry in years.
        r: Discount rate.
        sigma: Volatility of the futures price.
        is_call: True for a call.

    Returns:
        Tuple ``(price, delta, gamma, vega, theta, rho)``: delta
        ``e^{−rT}N(d1)`` (call), gamma ``e^{−rT}n(d1)/(Fσ√T)``, vega
        ``F e^{−rT} n(d1)√T``, theta ``rV − F e^{−rT} n(d1)σ/(2√T)`` per year
        with F held fixed, rho ``−T V``.
    """
    return _greeks_core(f, k, t, r, sigma, is_call, True)


@njit(cache=True)
def black76_price(f: float, k: float, t: float, r: float, sigma: float, is_call: bool) -> float:
    """Black-76 price of a European option on a futures contract (Black 1976; Hull ch. 18).

    Hull's example (F=K=20, r=0.09, σ=0.25, T=4/12) gives 1.1166 for both call
    and put (reference ``margin_methods.md`` §7).

    Args:
        f: Futures price.
        k: Strike.
        t: Time to expiry in years.
        r: Risk-free (discount) rate.
        sigma: Volatility.
        is_call: True for a call, False for a put.

    Returns:
        The option value.
    """
    return _greeks_core(f, k, t, r, sigma, is_call, True)[0]


@njit(cache=True)
def black76_delta(f: float, k: float, t: float, r: float, sigma: float, is_call: bool) -> float:
    """Black-76 delta ∂V/∂F (Hull ch. 18).

    Args:
        f: Futures price.
        k: Strike.
        t: Time to expiry in years.
        r: Risk-free (discount) rate.
        sigma: Volatility.
        is_call: True for a call, False for a put.

    Returns:
        Delta w.r.t. the futures price.
    """
    return _greeks_core(f, k, t, r, sigma, is_call, True)[1]


@njit(cache=True)
def black76_gamma(f: float, k: float, t: float, r: float, sigma: float, is_call: bool) -> float:
    """Black-76 gamma ∂²V/∂F² (Hull ch. 18).

    Args:
        f: Futures price.
        k: Strike.
        t: Time to expiry in years.
        r: Risk-free (discount) rate.
        sigma: Volatility.
        is_call: Ignored (kept for a uniform signature).

    Returns:
        Gamma.
    """
    return _greeks_core(f, k, t, r, sigma, is_call, True)[2]


@njit(cache=True)
def black76_vega(f: float, k: float, t: float, r: float, sigma: float, is_call: bool) -> float:
    """Black-76 vega ∂V/∂σ per unit of volatility (Hull ch. 18).

    Args:
        f: Futures price.
        k: Strike.
        t: Time to expiry in years.
        r: Risk-free (discount) rate.
        sigma: Volatility.
        is_call: Ignored (kept for a uniform signature).

    Returns:
        Vega.
    """
    return _greeks_core(f, k, t, r, sigma, is_call, True)[3]


@njit(cache=True)
def black76_theta(f: float, k: float, t: float, r: float, sigma: float, is_call: bool) -> float:
    """Black-76 theta −∂V/∂T per year with F held fixed (Hull ch. 18).

    Args:
        f: Futures price.
        k: Strike.
        t: Time to expiry in years.
        r: Risk-free (discount) rate.
        sigma: Volatility.
        is_call: True for a call, False for a put.

    Returns:
        Theta per year.
    """
    return _greeks_core(f, k, t, r, sigma, is_call, True)[4]


@njit(cache=True)
def black76_rho(f: float, k: float, t: float, r: float, sigma: float, is_call: bool) -> float:
    """Black-76 rho ∂V/∂r = −T V with F held fixed (Hull ch. 18).

    Args:
        f: Futures price.
        k: Strike.
        t: Time to expiry in years.
        r: Risk-free (discount) rate.
        sigma: Volatility.
        is_call: True for a call, False for a put.

    Returns:
        Rho per unit of rate.
    """
    return _greeks_core(f, k, t, r, sigma, is_call, True)[5]


# ----------------------------------------------------------------- vectorised


@njit(cache=True)
def _price_vec(x, k, t, r, sigma, is_call, futures):
    n = x.shape[0]
    if k.shape[0] != n or t.shape[0] != n or sigma.shape[0] != n or is_call.shape[0] != n:
        raise ValueError("pricing inputs must be 1-D arrays of equal length")
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        out[i] = _greeks_core(x[i], k[i], t[i], r, sigma[i], is_call[i], futures)[0]
    return out


@njit(cache=True)
def _greeks_vec(x, k, t, r, sigma, is_call, futures):
    n = x.shape[0]
    if k.shape[0] != n or t.shape[0] != n or sigma.shape[0] != n or is_call.shape[0] != n:
        raise ValueError("pricing inputs must be 1-D arrays of equal length")
    price = np.empty(n, dtype=np.float64)
    delta = np.empty(n, dtype=np.float64)
    gamma = np.empty(n, dtype=np.float64)
    vega = np.empty(n, dtype=np.float64)
    theta = np.empty(n, dtype=np.float64)
    rho = np.empty(n, dtype=np.float64)
    for i in range(n):
        p, d, g, v, th, rh = _greeks_core(x[i], k[i], t[i], r, sigma[i], is_call[i], futures)
        price[i] = p
        delta[i] = d
        gamma[i] = g
        vega[i] = v
        theta[i] = th
        rho[i] = rh
    return price, delta, gamma, vega, theta, rho


@njit(cache=True)
def bs_price_vec(
    s: np.ndarray, k: np.ndarray, t: np.ndarray, r: float, sigma: np.ndarray, is_call: np.ndarray
) -> np.ndarray:
    """Black–Scholes prices over arrays (Hull ch. 15; see :func:`bs_price`).

    Args:
        s: float64[:] spots.
        k: float64[:] strikes.
        t: float64[:] years to expiry.
        r: Risk-free rate (scalar).
        sigma: float64[:] volatilities.
        is_call: bool[:] call flags.

    Returns:
        float64[:] option values.

    Raises:
        ValueError: If the arrays differ in length.
    """
    return _price_vec(s, k, t, r, sigma, is_call, False)


@njit(cache=True)
def bs_greeks_vec(
    s: np.ndarray, k: np.ndarray, t: np.ndarray, r: float, sigma: np.ndarray, is_call: np.ndarray
):
    """Black–Scholes prices and Greeks over arrays (see :func:`bs_greeks`).

    Args:
        s: float64[:] spots.
        k: float64[:] strikes.
        t: float64[:] years to expiry.
        r: Risk-free rate (scalar).
        sigma: float64[:] volatilities.
        is_call: bool[:] call flags.

    Returns:
        Tuple of float64[:] arrays ``(price, delta, gamma, vega, theta, rho)``.

    Raises:
        ValueError: If the arrays differ in length.
    """
    return _greeks_vec(s, k, t, r, sigma, is_call, False)


@njit(cache=True)
def black76_price_vec(
    f: np.ndarray, k: np.ndarray, t: np.ndarray, r: float, sigma: np.ndarray, is_call: np.ndarray
) -> np.ndarray:
    """Black-76 prices over arrays (Black 1976; see :func:`black76_price`).

    Args:
        f: float64[:] futures prices.
        k: float64[:] strikes.
        t: float64[:] years to expiry.
        r: Discount rate (scalar).
        sigma: float64[:] volatilities.
        is_call: bool[:] call flags.

    Returns:
        float64[:] option values.

    Raises:
        ValueError: If the arrays differ in length.
    """
    return _price_vec(f, k, t, r, sigma, is_call, True)


@njit(cache=True)
def black76_greeks_vec(
    f: np.ndarray, k: np.ndarray, t: np.ndarray, r: float, sigma: np.ndarray, is_call: np.ndarray
):
    """Black-76 prices and Greeks over arrays (see :func:`black76_greeks`).

    Args:
        f: float64[:] futures prices.
        k: float64[:] strikes.
        t: float64[:] years to expiry.
        r: Discount rate (scalar).
        sigma: float64[:] volatilities.
        is_call: bool[:] call flags.

    Returns:
        Tuple of float64[:] arrays ``(price, delta, gamma, vega, theta, rho)``.

    Raises:
        ValueError: If the arrays differ in length.
    """
    return _greeks_vec(f, k, t, r, sigma, is_call, True)
