"""Tests for margin.optimisation: LP allocation against the greedy closed form and hand examples."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin.optimisation import allocate_collateral, greedy_allocation


def _check_feasible(alloc, budget, tol=1e-7):
    amounts = np.atleast_2d(alloc.amounts)
    assert np.all(amounts >= -tol)
    assert np.all(amounts.sum(axis=1) <= np.atleast_1d(budget) + tol * (1 + np.atleast_1d(budget)))
    assert np.all(alloc.shortfall_after <= alloc.shortfall_before + tol)


def test_hand_example_priority_and_haircut():
    # deficits 50, 80, 0; the 3rd account has equity above requirement
    case = (100.0, [300, 200, 50], [250, 120, 60])
    opts = {"haircuts": [0.1, 0.0, 0.5], "weights": [1, 1, 3]}
    alloc = allocate_collateral(*case, **opts)
    # account 2 (no haircut) is filled first (80), the remaining 20 credit 18 to account 1
    np.testing.assert_allclose(alloc.amounts, [20.0, 80.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(alloc.credited, [18.0, 80.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(alloc.shortfall_before, [50.0, 80.0, 0.0])
    np.testing.assert_allclose(alloc.shortfall_after, [32.0, 0.0, 0.0], atol=1e-9)
    assert alloc.total_shortfall_before == pytest.approx(130.0)
    assert alloc.total_shortfall_after == pytest.approx(32.0)
    assert alloc.objective == pytest.approx(32.0)
    assert alloc.unallocated == pytest.approx(0.0, abs=1e-9)
    assert alloc.method == "linprog-highs"
    greedy = greedy_allocation(*case, **opts)
    np.testing.assert_allclose(greedy.amounts, alloc.amounts, atol=1e-9)
    assert greedy.method == "greedy" and isinstance(greedy.unallocated, float)


def test_priority_weights_change_the_order():
    alloc = allocate_collateral(50.0, [100, 100], [50, 50], weights=[1.0, 5.0])
    np.testing.assert_allclose(alloc.amounts, [0.0, 50.0], atol=1e-9)
    assert alloc.objective == pytest.approx(50.0)  # 1 × 50 + 5 × 0


def test_surplus_collateral_stays_unallocated():
    alloc = allocate_collateral(1_000.0, [100, 200], [50, 190])
    np.testing.assert_allclose(alloc.amounts, [50.0, 10.0], atol=1e-9)
    assert alloc.total_shortfall_after == pytest.approx(0.0, abs=1e-9)
    assert alloc.unallocated == pytest.approx(940.0)


def test_zero_collateral_and_no_deficit():
    alloc = allocate_collateral(0.0, [100, 200], [50, 100])
    np.testing.assert_allclose(alloc.shortfall_after, alloc.shortfall_before)
    np.testing.assert_allclose(alloc.amounts, 0.0)
    none = allocate_collateral(10.0, [1, 2], [5, 5])
    assert none.total_shortfall_before == 0.0 and none.unallocated == pytest.approx(10.0)


def test_full_haircut_means_not_accepted():
    alloc = allocate_collateral(100.0, [100, 100], [0, 0], haircuts=[1.0, 0.2])
    np.testing.assert_allclose(alloc.amounts, [0.0, 100.0], atol=1e-9)
    assert alloc.credited[0] == 0.0 and alloc.credited[1] == pytest.approx(80.0)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 8).flatmap(
        lambda k: st.tuples(
            st.floats(0.0, 500.0),
            st.lists(st.floats(0.0, 200.0), min_size=k, max_size=k),
            st.lists(st.floats(-50.0, 150.0), min_size=k, max_size=k),
            st.lists(st.floats(0.0, 0.9), min_size=k, max_size=k),
            st.lists(st.floats(0.0, 5.0), min_size=k, max_size=k),
        )
    )
)
def test_lp_matches_greedy_closed_form(case):
    c, req, eq, h, w = case
    lp = allocate_collateral(c, req, eq, haircuts=h, weights=w)
    gr = greedy_allocation(c, req, eq, haircuts=h, weights=w)
    _check_feasible(lp, c)
    _check_feasible(gr, c)
    deficit = np.maximum(np.array(req) - np.array(eq), 0.0)
    scale = 1e-7 * (1.0 + float(np.dot(w, deficit)))
    assert lp.objective == pytest.approx(gr.objective, abs=scale)
    # recomputing the objective from the amounts
    after = np.maximum(deficit - (1 - np.array(h)) * lp.amounts, 0.0)
    assert np.dot(w, after) == pytest.approx(lp.objective, abs=scale)


def test_per_asset_hand_example():
    # asset 0: 1 BTC at 60 accepted only by account 0; asset 1: 50 USD accepted by both
    alloc = allocate_collateral(
        [1.0, 50.0], [300, 200], [250, 120], prices=[60.0, 1.0], haircuts=[[0.0, 1.0], [0.0, 0.0]]
    )
    assert alloc.amounts.shape == (2, 2)
    np.testing.assert_allclose(alloc.amounts, [[50 / 60, 0.0], [0.0, 50.0]], atol=1e-9)
    np.testing.assert_allclose(alloc.shortfall_after, [0.0, 30.0], atol=1e-9)
    np.testing.assert_allclose(alloc.unallocated, [1 / 6, 0.0], atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0.0, 20.0), min_size=1, max_size=3),
    st.lists(st.floats(0.0, 0.8), min_size=3, max_size=3),
    st.lists(st.floats(0.0, 300.0), min_size=1, max_size=5),
    st.data(),
)
def test_per_asset_with_uniform_haircuts_reduces_to_value(amounts, haircuts, deficits, data):
    n_assets = len(amounts)
    prices = np.array([10.0, 3.0, 1.0][:n_assets])
    h_asset = np.array(haircuts[:n_assets])
    k = len(deficits)
    weights = data.draw(st.lists(st.floats(0.0, 3.0), min_size=k, max_size=k))
    h = np.repeat(h_asset[:, None], k, axis=1)  # haircut depends on the asset only
    multi = allocate_collateral(
        amounts, deficits, np.zeros(k), prices=prices, haircuts=h, weights=weights
    )
    value = float(np.sum(np.array(amounts) * prices * (1 - h_asset)))
    single = greedy_allocation(value, deficits, np.zeros(k), weights=weights)
    scale = 1e-7 * (1.0 + float(np.dot(weights, deficits)))
    assert multi.objective == pytest.approx(single.objective, abs=scale)
    _check_feasible(multi, amounts)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: allocate_collateral(1.0, [1, 2], [1, 2, 3]), "equity has shape"),
        (lambda: allocate_collateral(1.0, [[1, 2]], [[1, 2]]), "requirement must be one-dim"),
        (lambda: allocate_collateral(1.0, [], []), "requirement is empty"),
        (lambda: allocate_collateral(-1.0, [1], [0]), "free_collateral"),
        (lambda: allocate_collateral(float("nan"), [1], [0]), "free_collateral"),
        (lambda: allocate_collateral(1.0, [np.nan], [0]), "requirement contains NaN"),
        (lambda: allocate_collateral(1.0, [1, 2], [0, 0], weights=[1]), "weights has shape"),
        (lambda: allocate_collateral(1.0, [1, 2], [0, 0], weights=[1, -1]), "weights must be >= 0"),
        (lambda: allocate_collateral(1.0, [1, 2], [0, 0], haircuts=[0.1, 2]), "haircuts must lie"),
        (lambda: allocate_collateral(1.0, [1, 2], [0, 0], prices=[1.0]), "prices apply only"),
        (lambda: allocate_collateral([1.0, 2.0], [1, 2], [0, 0], prices=[1.0]), "prices has shape"),
        (lambda: allocate_collateral([1, 2], [1, 2], [0, 0], prices=[1, 0]), "prices must be > 0"),
        (
            lambda: allocate_collateral([1, 2], [1, 2], [0, 0], haircuts=np.ones((3, 2))),
            "haircuts must have shape",
        ),
        (lambda: allocate_collateral([], [1], [0]), "free_collateral is empty"),
        (lambda: greedy_allocation(-5.0, [1], [0]), "free_collateral"),
    ],
)
def test_bad_inputs_raise_one_line_errors(call, needle):
    with pytest.raises(ValueError, match=needle) as exc:
        call()
    assert "\n" not in str(exc.value)
