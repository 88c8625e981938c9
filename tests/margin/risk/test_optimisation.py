"""margin.risk.optimisation: LP allocation against the greedy closed form and hand examples."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin.risk.optimisation import (
    allocate_collateral,
    allocate_keeping_best,
    greedy_allocation,
    varying_assets,
)


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


def _spare_value(alloc, prices, haircuts):
    """Credit plus unallocated collateral at each asset's best haircut (universal margin's E_u)."""
    best = np.asarray(prices) * (1.0 - np.asarray(haircuts).min(axis=1))
    return float(alloc.credited.sum() + (np.asarray(alloc.unallocated) * best).sum())


def _one_varying_case(data, k, n_assets):
    """Random per-asset case where only asset ``z`` has haircuts that differ by sub-account."""
    z = data.draw(st.integers(0, n_assets - 1), label="z")
    prices = np.array(data.draw(st.lists(st.floats(0.01, 1e5), min_size=n_assets,
                                         max_size=n_assets)))
    haircut = st.sampled_from([0.0, 0.05, 0.1, 0.5, 1.0]) | st.floats(0.0, 0.99)
    h_asset = data.draw(st.lists(haircut, min_size=n_assets, max_size=n_assets))
    h = np.repeat(np.array(h_asset)[:, None], k, axis=1)
    h[z] = data.draw(st.lists(haircut, min_size=k, max_size=k), label="h_z")
    amounts = data.draw(st.lists(st.sampled_from([0.0]) | st.floats(0.0, 1e4),
                                 min_size=n_assets, max_size=n_assets), label="amounts")
    req = data.draw(st.lists(st.floats(0.0, 1e6), min_size=k, max_size=k), label="req")
    eq = data.draw(st.lists(st.floats(-1e5, 1e6), min_size=k, max_size=k), label="eq")
    return np.array(amounts), np.array(req), np.array(eq), prices, h


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.data())
def test_closed_form_equals_two_phase_lp_with_one_varying_asset(k, n_assets, data):
    """Same credit, shortfall and spare value as the lexicographic LP.

    To 1e-8 of the scale, times the value spread: HiGHS meets rows to 1e-10 after
    scaling.
    """
    amounts, req, eq, prices, h = _one_varying_case(data, k, n_assets)
    cf = allocate_keeping_best(amounts, req, eq, prices=prices, haircuts=h, closed_form=True)
    lp = allocate_collateral(amounts, req, eq, prices=prices, haircuts=h, keep_best=True)
    assert cf.method == "closed-form" and lp.method == "linprog-highs"
    _check_feasible(cf, amounts, tol=1e-12)
    # the LP meets its credit floor to HiGHS's tolerance; a unit it leaves
    # spare is worth up to best / worst value more than the credit it gave
    value = prices[:, None] * (1.0 - h)
    worst = np.min(value, axis=1, where=value > 0, initial=np.inf)
    lever = float(np.max(value.max(axis=1) / np.where(np.isfinite(worst), worst, np.inf)))
    # and its amounts (units) to 1e-10, worth up to the largest price
    scale = 1e-8 * max(lever, 1.0) * (1.0 + float(np.maximum(req - eq, 0.0).sum())
                                      + float((amounts * prices).sum()) + float(prices.max()))
    assert cf.total_shortfall_after == pytest.approx(lp.total_shortfall_after, abs=scale)
    np.testing.assert_allclose(cf.credited.sum(), lp.credited.sum(), rtol=0, atol=scale)
    assert _spare_value(cf, prices, h) == pytest.approx(_spare_value(lp, prices, h), abs=scale)


def test_plain_lp_may_spend_the_varying_asset_where_money_would_do():
    """Why ``keep_best``: 100 USD and 100 aLP (haircut 0 / 50 % on sub-accounts 0 / 1).

    Sub-account 1 has a deficit of 10. Every optimum credits 10; USD there
    leaves the aLP worth 100, aLP there (20 units at 0.5) leaves it worth 80.
    The closed form and the two-phase LP pick USD.
    """
    amounts, prices = np.array([100.0, 100.0]), np.array([1.0, 1.0])
    h = np.array([[0.0, 0.0], [0.0, 0.5]])
    for alloc in (allocate_keeping_best(amounts, [0, 10], [0, 0], prices=prices, haircuts=h,
                                        closed_form=True),
                  allocate_collateral(amounts, [0, 10], [0, 0], prices=prices, haircuts=h,
                                      keep_best=True)):
        assert alloc.total_shortfall_after == pytest.approx(0.0, abs=1e-9)
        np.testing.assert_allclose(alloc.amounts, [[0.0, 10.0], [0.0, 0.0]], atol=1e-7)
        assert _spare_value(alloc, prices, h) == pytest.approx(200.0)


def test_closed_form_serves_money_where_the_varying_asset_is_worth_least():
    """50 USD, 100 aLP worth 1.0 / 0.8 / 0.4 on three sub-accounts, deficits 60 / 60 / 60.

    aLP first fills sub-account 0 (60 units); USD goes to sub-account 2 (where
    aLP is worth least, 50); the last 40 aLP go to sub-account 1 (32 of
    credit). Credit 142, shortfall 38 (10 on 2, 28 on 1).
    """
    amounts, prices = np.array([50.0, 100.0]), np.array([1.0, 1.0])
    h = np.array([[0.0, 0.0, 0.0], [0.0, 0.2, 0.6]])
    alloc = allocate_keeping_best(amounts, [60, 60, 60], [0, 0, 0], prices=prices, haircuts=h,
                                  closed_form=True)
    np.testing.assert_allclose(alloc.amounts, [[0, 0, 50], [60, 40, 0]], atol=1e-12)
    np.testing.assert_allclose(alloc.shortfall_after, [0, 28, 10], atol=1e-12)
    lp = allocate_collateral(amounts, [60, 60, 60], [0, 0, 0], prices=prices, haircuts=h,
                             keep_best=True)
    assert lp.total_shortfall_after == pytest.approx(38.0)


def test_allocate_keeping_best_dispatches_on_the_number_of_varying_assets():
    prices = np.ones(3)
    h = np.array([[0.0, 0.0], [0.0, 0.5], [0.2, 0.0]])
    one = allocate_keeping_best([10.0, 5.0, 0.0], [20, 20], [0, 0], prices=prices, haircuts=h)
    two = allocate_keeping_best([10.0, 5.0, 5.0], [20, 20], [0, 0], prices=prices, haircuts=h)
    assert one.method == "closed-form" and two.method == "linprog-highs"
    assert varying_assets(np.array([10.0, 5.0, 0.0]), h).tolist() == [1]
    with pytest.raises(ValueError, match="at most one asset"):
        allocate_keeping_best([10.0, 5.0, 5.0], [20, 20], [0, 0], prices=prices, haircuts=h,
                              closed_form=True)
