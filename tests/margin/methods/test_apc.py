"""EMIR Art. 28 APC tools and procyclicality measures."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin.methods.apc import (
    apc_buffer_rates,
    apc_floor_vol,
    apc_stressed_vol,
    max_n_step_increase,
    peak_to_trough,
)


def test_buffer_is_posted_in_calm_and_exhausted_as_margin_rises():
    raw = np.array([1.0, 1.0, 1.1, 1.2, 1.25, 1.5, 1.5])
    posted = apc_buffer_rates(raw, 0.25, 100)
    # calm: 25 % on top; rising: flat at 1.25 x the calm reference until raw passes it
    assert posted.tolist() == pytest.approx([1.25, 1.25, 1.25, 1.25, 1.25, 1.5, 1.5])
    # without APC the rise is 50 %, with the buffer 20 %
    assert max_n_step_increase(raw, 6) == pytest.approx(0.5)
    assert max_n_step_increase(posted, 6) == pytest.approx(0.2)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0.01, 10.0), min_size=1, max_size=40), st.floats(0.0, 1.0),
       st.integers(1, 50))
def test_buffer_bounds(raw, b, window):
    raw = np.array(raw)
    posted = apc_buffer_rates(raw, b, window)
    assert np.all(posted >= raw - 1e-12)
    assert np.all(posted <= (1 + b) * raw + 1e-12)
    # the posted series never rises faster than the raw one from a calm start
    assert peak_to_trough(posted) <= peak_to_trough(raw) * (1 + b) + 1e-9


def test_stressed_weight_and_floor():
    assert apc_stressed_vol(np.array([0.4]), np.array([1.0]), 0.25)[0] == pytest.approx(
        np.sqrt(0.75 * 0.16 + 0.25 * 1.0))
    assert apc_stressed_vol(np.array([0.4]), np.array([1.0]), 0.0)[0] == pytest.approx(0.4)
    assert apc_floor_vol(np.array([0.3, 0.9]), np.array([0.6, 0.6])).tolist() == [0.6, 0.9]
    with pytest.raises(ValueError, match="weight"):
        apc_stressed_vol(np.array([0.4]), np.array([1.0]), 1.5)


def test_procyclicality_measures():
    m = np.array([100.0, 120.0, 90.0, 180.0, 150.0])
    assert peak_to_trough(m) == pytest.approx(2.0)
    assert max_n_step_increase(m, 1) == pytest.approx(1.0)  # 90 -> 180
    assert max_n_step_increase(m, 2) == pytest.approx(2 / 3)  # 90 -> 150
    assert np.isnan(max_n_step_increase(m, 5))
    assert np.isnan(peak_to_trough(np.array([0.0, 1.0])))
