"""Tiled worst-loss and VaR/ES kernels against brute-force numpy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin.kernels import scan_tail_tiled, tail_count, tail_risk_tiled, topk_tail, worst_loss_tiled


def brute_tail(x, u, confidence):
    losses = np.sort(x @ u, axis=1)
    k = tail_count(confidence, u.shape[1])
    return losses[:, -k], losses[:, -k:].mean(axis=1)


@settings(max_examples=40, deadline=None)
@given(n_acc=st.integers(1, 37), n_cols=st.integers(1, 5), n_scen=st.integers(1, 700),
       confidence=st.floats(0.5, 0.999), tile=st.sampled_from([1, 3, 7, 16, 64, 1000]),
       seed=st.integers(0, 2**31))
def test_tiled_var_es_equal_brute_force(n_acc, n_cols, n_scen, confidence, tile, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_acc, n_cols))
    u = rng.normal(size=(n_cols, n_scen))
    k = tail_count(confidence, n_scen)
    var, es = tail_risk_tiled(x, u, k, tile)
    bvar, bes = brute_tail(x, u, confidence)
    np.testing.assert_allclose(var, bvar, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(es, bes, rtol=1e-12, atol=1e-12)
    assert np.all(es >= var - 1e-12)


@settings(max_examples=25, deadline=None)
@given(n_acc=st.integers(1, 30), seg=st.lists(st.integers(1, 20), min_size=1, max_size=4),
       tile=st.sampled_from([1, 4, 9, 512]), seed=st.integers(0, 2**31))
def test_worst_loss_per_segment_equals_brute_force(n_acc, seg, tile, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_acc, 3))
    u = rng.normal(size=(3, sum(seg)))
    starts = np.concatenate([[0], np.cumsum(seg)]).astype(np.int64)
    worst = worst_loss_tiled(x, u, starts, tile)
    full = x @ u
    pairs = zip(starts[:-1], starts[1:], strict=True)
    expected = np.stack([full[:, a:b].max(axis=1) for a, b in pairs], 1)
    np.testing.assert_allclose(worst, expected, rtol=1e-12, atol=1e-12)


def test_fused_pass_matches_separate_kernels():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1001, 4))
    scan = rng.normal(size=(4, 30))
    joint = rng.normal(size=(4, 250))
    starts = np.array([0, 16, 30], np.int64)
    worst, var, es = scan_tail_tiled(x, scan, starts, joint, tail_count(0.99, 250), 256)
    np.testing.assert_array_equal(worst, worst_loss_tiled(x, scan, starts, 300))
    v2, e2 = tail_risk_tiled(x, joint, tail_count(0.99, 250), 1000)
    np.testing.assert_allclose(var, v2)
    np.testing.assert_allclose(es, e2)


def test_tail_count_is_exact_at_round_sizes():
    assert tail_count(0.99, 1000) == 10  # (1 - 0.99) * 1000 is 10.000000000000009 in floating point
    assert tail_count(0.975, 1000) == 25
    assert tail_count(0.99, 250) == 3  # ceil(2.5)
    assert tail_count(0.99, 50) == 1
    assert tail_count(0.5, 3) == 2


def test_topk_with_ties_and_k_equal_s():
    buf = np.empty(8)
    assert topk_tail(np.array([1.0, 1.0, 1.0, 1.0]), 4, buf) == (1.0, 1.0)
    var, es = topk_tail(np.array([5.0, -1.0, 3.0, 3.0, 0.0]), 3, buf)
    assert (var, es) == (3.0, pytest.approx(11.0 / 3.0))
    assert topk_tail(np.zeros(1000), 10, np.empty(14)) == (0.0, 0.0)  # all tied


@pytest.mark.parametrize("k", [1, 10, 40])
def test_topk_exact_when_the_sampled_losses_are_the_largest(k):
    # the strided sample then holds the largest losses, so its threshold leaves fewer than k
    # above it and the selection must fall back to a full pass
    losses = np.random.default_rng(k).normal(size=1000)
    losses[::16] += 100.0
    var, es = topk_tail(losses, k, np.empty(k + 4))
    top = np.sort(losses)[-k:]
    assert var == top[0]
    assert es == pytest.approx(top.mean(), rel=1e-14)


def test_mcmillan_risk_arrays_give_scan_risk_6620_exactly():
    # margin_methods.md §1.7 (McMillan ch. 34): risk arrays of one long S&P future and one long
    # Dec 410 call, profit-positive in the book; SPAN convention is loss-positive, so flip signs.
    future = np.array([0, 0, 3330, 3330, -3330, -3330, 6670, 6670, -6670, -6670,
                       10000, 10000, -10000, -10000, 7000, -7000], dtype=float)
    call = np.array([460, -610, 2640, 1730, -1270, -2340, 5210, 4540, -2540, -3430,
                     8060, 7640, -3380, -3990, 3130, -1500], dtype=float)
    risk_arrays = -np.stack([future, call])
    covered_write = np.array([[1.0, -1.0]])
    worst = worst_loss_tiled(covered_write, risk_arrays, np.array([0, 16], np.int64), 512)
    assert worst[0, 0] == 6620.0
    assert int(np.argmax(covered_write @ risk_arrays)) == 12  # scenario 13: down 3/3, vol up
    long_call = worst_loss_tiled(np.array([[0.0, 1.0]]), risk_arrays, np.array([0, 16]), 1)
    assert long_call[0, 0] == 3990.0  # the book's SPAN requirement of the long call alone


def test_no_exposure_columns_give_zero_losses():
    x = np.zeros((5, 0))
    var, es = tail_risk_tiled(x, np.zeros((0, 10)), 2, 2)
    assert np.all(var == 0.0) and np.all(es == 0.0)


def test_tail_size_out_of_range_is_refused():
    with pytest.raises(ValueError, match="tail size"):
        tail_risk_tiled(np.ones((2, 1)), np.ones((1, 5)), 6, 4)
