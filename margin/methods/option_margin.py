"""Standard (non-portfolio) option margin per position: Deribit's standard-margin formulas.

Methodology [Deribit standard-margin formulas from the venue's documentation;
not in margin_methods.md, unverified here] (Deribit knowledge base, "Options
margin (standard margin)"). For a **short** option of size ``s > 0`` base units
on an underlying with index price ``F``, strike ``K`` and option mark ``m``
(pricing unit, e.g. USD, per unit of underlying)::

    OTM amount:  call  max(K − F, 0);   put  max(F − K, 0)
    short call:  IM = s × (max(im_rate × F − OTM, im_floor × F) + m)
                 MM = s × (mm_rate × F + m)
    short put:   MM = s × (mm_rate × F + m)
                 IM = max(s × (max(im_rate × F − OTM, im_floor × F) + m), MM)

with ``im_rate = 0.15``, ``im_floor = 0.10`` and ``mm_rate = 0.075`` by
default. **Long** options need no margin beyond their premium, which is paid in
full: a long option has no loan value, so the position-by-position regimes
(cross and static) hold its whole mark value as requirement, IM = MM =
``size × mark`` (:func:`long_option_requirement`; strategy-based margin as in
FINRA Rule 4210 and Regulation T, where a listed option of up to nine months
has no value for margin purposes [memory/unverified]; Deribit's standard
margin requires the premium in available funds and leaves long options out of
the margin balance [venue documentation; unverified here]).
:func:`standard_option_margin` returns the short-option part only.
Deribit writes the formulas for inverse (coin-settled) options in coin
per contract, ``max(0.15 − OTM/F, 0.1) + mark_coin``; multiplied by ``F`` they
are the pricing-unit formulas above (margin_methods.md §7: ``price_coin =
price_USD / F``). With the default rates the put's lift to MM never binds
(``im_floor > mm_rate``); it does with an ``im_floor`` below ``mm_rate``.

Requirements are in the pricing unit; a caller whose option is quoted in a coin
divides by that coin's price. Used by ``margin.regimes.cross`` and
``margin.regimes.static``; the portfolio regimes revalue options in full instead
(``margin.regimes.portfolio``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "DERIBIT_IM_FLOOR",
    "DERIBIT_IM_RATE",
    "DERIBIT_MM_RATE",
    "check_option_rates",
    "long_option_requirement",
    "standard_option_margin",
    "standard_option_margin_vec",
]

#: Deribit standard margin: IM fraction of the index before the OTM amount.
DERIBIT_IM_RATE = 0.15
#: Deribit standard margin: floor of the IM fraction of the index.
DERIBIT_IM_FLOOR = 0.10
#: Deribit standard margin: MM fraction of the index.
DERIBIT_MM_RATE = 0.075


@njit(cache=True)
def standard_option_margin(size: float, f: float, k: float, mark: float, is_call: bool,
                           im_rate: float = DERIBIT_IM_RATE, im_floor: float = DERIBIT_IM_FLOOR,
                           mm_rate: float = DERIBIT_MM_RATE):
    """IM and MM of one option position under Deribit standard margin (module docstring).

    [Deribit standard-margin formulas from the venue's documentation; not in
    margin_methods.md, unverified here.]

    Args:
        size: Signed position in base units (``position × contract_size``;
            negative = short). Longs and zero need nothing.
        f: Index price of the underlying (pricing unit).
        k: Strike (pricing unit).
        mark: Option mark (pricing unit per unit of underlying).
        is_call: True for a call, False for a put.
        im_rate: IM fraction of ``F`` before the OTM amount (0.15).
        im_floor: Floor of the IM fraction of ``F`` (0.10).
        mm_rate: MM fraction of ``F`` (0.075).

    Returns:
        ``(im, mm)`` in the pricing unit, both ``≥ 0``.
    """
    if size >= 0.0:
        return 0.0, 0.0
    s = -size
    otm = max(k - f, 0.0) if is_call else max(f - k, 0.0)
    mm = s * (mm_rate * f + mark)
    im = s * (max(im_rate * f - otm, im_floor * f) + mark)
    if not is_call:
        im = max(im, mm)
    return im, mm


@njit(cache=True)
def long_option_requirement(size: float, mark: float) -> float:
    """Requirement of a long option under position-by-position margin: its whole value.

    A long option is paid in full and has no loan value (module docstring:
    FINRA Rule 4210 / Regulation T strategy-based margin [memory/unverified];
    Deribit standard margin [venue documentation; unverified here]), so it
    supports no other position: its IM and MM both equal its mark value and
    offset the value it adds to equity. Shorts and zero give 0 (their
    requirement is :func:`standard_option_margin`).

    Args:
        size: Signed position in base units (negative = short).
        mark: Option mark (pricing unit per unit of underlying).

    Returns:
        ``max(size, 0) × mark`` in the pricing unit.
    """
    return size * mark if size > 0.0 else 0.0


@njit(cache=True)
def standard_option_margin_vec(size: np.ndarray, f: np.ndarray, k: np.ndarray, mark: np.ndarray,
                               is_call: np.ndarray, im_rate: float = DERIBIT_IM_RATE,
                               im_floor: float = DERIBIT_IM_FLOOR,
                               mm_rate: float = DERIBIT_MM_RATE):
    """:func:`standard_option_margin` over positions (equal-length 1-D arrays).

    [Deribit standard-margin formulas from the venue's documentation; not in
    margin_methods.md, unverified here.]

    Args:
        size: float64[n] signed positions in base units (negative = short).
        f: float64[n] index prices of the underlyings.
        k: float64[n] strikes.
        mark: float64[n] option marks (pricing unit per unit of underlying).
        is_call: bool[n] True for calls.
        im_rate: IM fraction of ``F`` before the OTM amount (0.15).
        im_floor: Floor of the IM fraction of ``F`` (0.10).
        mm_rate: MM fraction of ``F`` (0.075).

    Returns:
        ``(im, mm)``, float64[n] each.
    """
    n = size.shape[0]
    im = np.zeros(n)
    mm = np.zeros(n)
    for i in range(n):
        im[i], mm[i] = standard_option_margin(size[i], f[i], k[i], mark[i], is_call[i], im_rate,
                                              im_floor, mm_rate)
    return im, mm


def check_option_rates(im_rate: float, im_floor: float, mm_rate: float) -> tuple[float, ...]:
    """Validate the three standard-margin rates (each finite and in [0, 1]).

    Args:
        im_rate: IM fraction of ``F`` before the OTM amount.
        im_floor: Floor of the IM fraction.
        mm_rate: MM fraction.

    Returns:
        The rates as floats, in argument order.

    Raises:
        ValueError: One line naming the bad rate.
    """
    out = []
    for name, value in (("option_im_rate", im_rate), ("option_im_floor", im_floor),
                        ("option_mm_rate", mm_rate)):
        v = float(value)
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
        out.append(v)
    return tuple(out)
