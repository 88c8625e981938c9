"""Deribit standard option margin: hand-computed values of the per-position formulas.

Index F = 60,000 throughout; values in USD for short positions of ``s`` base units.
IM = s × (max(0.15 F − OTM, 0.10 F) + m), MM = s × (0.075 F + m); a short put's IM is
lifted to its MM; longs need nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

from margin.methods.option_margin import (
    check_option_rates,
    standard_option_margin,
    standard_option_margin_vec,
)

F = 60_000.0


@pytest.mark.parametrize(
    ("size", "strike", "mark", "is_call", "im", "mm"),
    [
        # OTM call, OTM 6,000: 0.15 F − 6,000 = 3,000 < 0.10 F = 6,000, the floor binds
        (-1.0, 66_000.0, 500.0, True, 6_000.0 + 500.0, 4_500.0 + 500.0),
        # slightly OTM call, OTM 2,000: 9,000 − 2,000 = 7,000 above the floor
        (-1.0, 62_000.0, 1_500.0, True, 7_000.0 + 1_500.0, 4_500.0 + 1_500.0),
        # ITM call (OTM 0), two units: 2 × (9,000 + 7,000), 2 × (4,500 + 7,000)
        (-2.0, 54_000.0, 7_000.0, True, 32_000.0, 23_000.0),
        # OTM put, OTM 6,000: floor binds, 6,000 + 800 = 6,800 ≥ MM 5,300
        (-1.0, 54_000.0, 800.0, False, 6_800.0, 5_300.0),
        # ITM put (OTM 0): 9,000 + 7,500 = 16,500; MM 4,500 + 7,500
        (-1.0, 66_000.0, 7_500.0, False, 16_500.0, 12_000.0),
        # half a unit of the OTM put: everything halves
        (-0.5, 54_000.0, 800.0, False, 3_400.0, 2_650.0),
    ],
)
def test_short_options_by_hand(size, strike, mark, is_call, im, mm):
    got = standard_option_margin(size, F, strike, mark, is_call)
    assert got == pytest.approx((im, mm), rel=1e-15)


def test_put_im_is_lifted_to_mm_but_call_im_is_not():
    # with a floor of 5 % (below the 7.5 % MM rate), a deep OTM short (OTM 15,000):
    # 0.15 F − 15,000 = −6,000 < 0.05 F = 3,000 → 3,000 + 100 = 3,100 < MM 4,500 + 100
    put = standard_option_margin(-1.0, F, 45_000.0, 100.0, False, 0.15, 0.05, 0.075)
    assert put == pytest.approx((4_600.0, 4_600.0))
    call = standard_option_margin(-1.0, F, 75_000.0, 100.0, True, 0.15, 0.05, 0.075)
    assert call == pytest.approx((3_100.0, 4_600.0))


def test_default_rates_are_deribits():
    assert standard_option_margin(-1.0, F, 66_000.0, 500.0, True) == standard_option_margin(
        -1.0, F, 66_000.0, 500.0, True, 0.15, 0.10, 0.075)


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("size", [0.0, 1.0, 3.5])
def test_longs_and_flat_need_nothing(size, is_call):
    assert standard_option_margin(size, F, 60_000.0, 4_000.0, is_call) == (0.0, 0.0)


def test_vectorised_matches_scalar():
    rng = np.random.default_rng(0)
    n = 50
    size = rng.normal(0.0, 2.0, n)
    f = rng.uniform(40_000.0, 80_000.0, n)
    k = rng.uniform(40_000.0, 80_000.0, n)
    m = rng.uniform(0.0, 10_000.0, n)
    call = rng.random(n) < 0.5
    im, mm = standard_option_margin_vec(size, f, k, m, call)
    for i in range(n):
        assert (im[i], mm[i]) == standard_option_margin(size[i], f[i], k[i], m[i], call[i])
    assert (im[size >= 0] == 0.0).all() and (im[size < 0] >= mm[size < 0]).all()


def test_rates_are_validated():
    assert check_option_rates(0.15, 0.1, 0.075) == (0.15, 0.1, 0.075)
    with pytest.raises(ValueError, match="option_im_floor"):
        check_option_rates(0.15, -0.1, 0.075)
    with pytest.raises(ValueError, match="option_mm_rate"):
        check_option_rates(0.15, 0.1, float("nan"))
