"""Tiled worst-loss and VaR/ES kernels against brute-force numpy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margin.methods.kernels import (
    _topk_screened,
    scan_tail_tiled,
    scan_tail_tiled_parallel,
    screen_z,
    tail_count,
    tail_risk_tiled,
    tail_risk_tiled_parallel,
    topk_tail,
    worst_loss_tiled,
)


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
    pairs = itertools.pairwise(starts)
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


def sparse_book(rng, n_acc, n_cols, density):
    held = rng.random((n_acc, n_cols)) < density
    scale = 10.0 ** rng.integers(-2, 3, (n_acc, 1))
    return np.where(held, rng.normal(size=(n_acc, n_cols)) * scale, 0.0)


@pytest.mark.parametrize("tile", [1, 7, 64, 100, 256, 5000])
@pytest.mark.parametrize(("n_cols", "density"), [(1, 1.0), (6, 0.5), (13, 0.3), (9, 1.0)])
def test_parallel_var_es_equal_brute_force(tile, n_cols, density):
    # tile sizes include non-divisors of the 203 accounts, a single account, and more than all
    rng = np.random.default_rng(tile * 100 + n_cols)
    x = sparse_book(rng, 203, n_cols, density)
    x[5] = 0.0  # an account with no exposure: all losses 0
    for n_scen, confidence in ((1000, 0.99), (250, 0.975), (37, 0.9), (5, 0.5)):
        u = rng.standard_t(3, size=(n_cols, n_scen))
        k = tail_count(confidence, n_scen)
        var, es = tail_risk_tiled_parallel(x, u, k, tile)
        bvar, bes = brute_tail(x, u, confidence)
        np.testing.assert_allclose(var, bvar, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(es, bes, rtol=1e-12, atol=1e-12)
        svar, ses = tail_risk_tiled(x, u, k, 64)
        np.testing.assert_allclose(var, svar, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(es, ses, rtol=1e-12, atol=1e-12)
        assert var[5] == 0.0 and es[5] == 0.0


@settings(max_examples=30, deadline=None)
@given(n_acc=st.integers(1, 70), n_cols=st.integers(0, 9), n_scen=st.integers(1, 1200),
       confidence=st.floats(0.5, 0.999), density=st.floats(0.0, 1.0),
       tile=st.sampled_from([1, 3, 16, 50, 256]), seed=st.integers(0, 2**31))
def test_parallel_random_shapes_equal_brute_force(n_acc, n_cols, n_scen, confidence, density, tile,
                                                  seed):
    rng = np.random.default_rng(seed)
    x = sparse_book(rng, n_acc, n_cols, density)
    u = rng.normal(size=(n_cols, n_scen))
    k = tail_count(confidence, n_scen)
    var, es = tail_risk_tiled_parallel(x, u, k, tile)
    bvar, bes = brute_tail(x, u, confidence) if n_cols else (np.zeros(n_acc), np.zeros(n_acc))
    np.testing.assert_allclose(var, bvar, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(es, bes, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("tile", [1, 5, 256])
def test_parallel_fused_pass_matches_serial(tile):
    rng = np.random.default_rng(11)
    x = sparse_book(rng, 301, 4, 0.6)
    scan = rng.normal(size=(4, 30))
    joint = rng.normal(size=(4, 500))
    starts = np.array([0, 16, 30], np.int64)
    k = tail_count(0.99, 500)
    worst, var, es = scan_tail_tiled_parallel(x, scan, starts, joint, k, tile)
    sworst, svar, ses = scan_tail_tiled(x, scan, starts, joint, k, 64)
    np.testing.assert_allclose(worst, sworst, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(var, svar, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(es, ses, rtol=1e-12, atol=1e-12)
    worst_only, v0, _ = scan_tail_tiled_parallel(x, scan, starts, np.empty((4, 0)), 1, tile)
    np.testing.assert_array_equal(worst_only, worst)
    assert np.all(v0 == 0.0)


def test_parallel_tail_size_out_of_range_is_refused():
    with pytest.raises(ValueError, match="tail size"):
        tail_risk_tiled_parallel(np.ones((2, 1)), np.ones((1, 5)), 6, 4)
    with pytest.raises(ValueError, match="tail size"):
        tail_risk_tiled_parallel(np.ones((2, 1)), np.ones((1, 5)), 0, 4)


def _screened(losses, k, z=None):
    s = losses.shape[0]
    z = screen_z(k, s) if z is None else z
    scratch = np.empty(s // 8), np.empty(s // 8, np.int64), np.empty(s)
    return _topk_screened(losses, k, np.empty(k + 4), z, *scratch)


@pytest.mark.parametrize("k", [1, 3, 10, 25, 40, 125])
def test_screened_selection_is_bit_identical_to_topk_tail(k):
    # Gaussian, heavy right tail (many candidates: streaming branch), heavy left tail (few losses
    # above the screen: exact fallback), many ties, constant, and a remainder past the 8 blocks
    rng = np.random.default_rng(k)
    rows = [rng.normal(size=1000), rng.standard_t(1.5, size=1000), -rng.lognormal(0, 2, 1000),
            rng.lognormal(0, 2, 1000), rng.integers(0, 4, 1000).astype(float), np.full(1000, 2.5),
            rng.normal(size=1003) * 1e8 + 1e12]
    for losses in rows:
        expected = topk_tail(losses, k, np.empty(k + 4))
        for z in (None, -3.0, 0.0, 6.0):
            assert _screened(losses, k, z) == expected


def test_screened_selection_non_finite_rows_fall_back_to_topk_tail():
    losses = np.random.default_rng(0).normal(size=800)
    for bad in (np.inf, -np.inf):
        row = losses.copy()
        row[17] = bad
        assert _screened(row, 8) == topk_tail(row, 8, np.empty(12))
    row = losses.copy()
    row[3] = np.nan
    got, exp = _screened(row, 8), topk_tail(row, 8, np.empty(12))
    np.testing.assert_array_equal(got, exp)


def test_screen_z_is_the_normal_tail_quantile():
    assert screen_z(10, 1000) == pytest.approx(2.0537489, abs=1e-6)  # P(Z > z) = 0.02
    assert screen_z(300, 1000) == 0.0  # capped at the median


@pytest.mark.parametrize("tile", [3, 4, 9, 256])
def test_parallel_runs_of_equal_holdings_equal_brute_force(tile):
    # runs of 1..9 accounts with the same holdings: the four-account pass and the single-account
    # pass both occur, across tile boundaries
    rng = np.random.default_rng(tile)
    patterns = [rng.random(7) < 0.5 for _ in range(12)]
    patterns[3][:] = True
    patterns[5][:] = False
    held = np.concatenate([np.tile(p, (n, 1)) for p, n in zip(patterns, range(1, 13), strict=True)])
    x = np.where(held, rng.normal(size=held.shape), 0.0)
    u = rng.normal(size=(7, 400))
    scan = rng.normal(size=(7, 32))
    starts = np.array([0, 16, 32], np.int64)
    k = tail_count(0.99, 400)
    worst, var, es = scan_tail_tiled_parallel(x, scan, starts, u, k, tile)
    bvar, bes = brute_tail(x, u, 0.99)
    np.testing.assert_allclose(var, bvar, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(es, bes, rtol=1e-12, atol=1e-12)
    full = x @ scan
    np.testing.assert_allclose(worst, np.stack([full[:, :16].max(1), full[:, 16:].max(1)], 1),
                               rtol=1e-12, atol=1e-12)
