"""Tiled scenario kernels: worst loss per scan grid and VaR/ES per account.

Portfolio margin needs, for every account ``i`` and scenario ``s``, the loss
``L[i, s] = Σ_c X[i, c] · U[c, s]`` of its exposures ``X`` (positions, collateral
balances) under per-unit scenario losses ``U`` (linear instruments: ``−price ×
move``; options: ``−(V_s − V_0)`` from one full revaluation per option and
scenario, done once for the whole population). The full accounts × scenarios
matrix is never materialised: accounts are processed in tiles of
``tile_rows`` (default 512), each tile's losses are one BLAS matrix product
``X[tile] @ U`` into a small buffer, and the buffer is reduced on the fly:

* scan grids (SPAN, Deribit; margin_methods.md §1.3, §3.1): the worst loss of
  each grid segment (one segment per underlying);
* large correlated sets (OCC STANS, §2.2; FHS, §5.3): an exact partial
  selection of the ``k = ceil((1 − α) S)`` largest losses (a sorted size-k
  buffer behind a threshold seeded from a strided sample, see
  :func:`topk_tail`), giving ``VaR_α`` (the k-th largest loss) and ``ES_α``
  (the mean of the k largest).

Threads: the kernels are serial numba code (no ``parallel=True``); the only
parallelism is the BLAS call (SciPy's OpenBLAS, sized by ``OPENBLAS_NUM_THREADS``
read when the library loads). Running numba threads *and* BLAS threads on the
same few cores oversubscribes them (measured 12–24× slower on 2 cores).

All kernels are ``@njit(cache=True)``. Neighbours: ``margin.scenarios`` (the
scenario sets), ``margin.portfolio`` (builds ``X`` and ``U``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "DEFAULT_TILE_ROWS",
    "scan_tail_tiled",
    "tail_count",
    "tail_risk_tiled",
    "topk_tail",
    "worst_loss_tiled",
]

#: Accounts per tile: 512 × 1,000 scenarios × 8 bytes = 4 MB, about an L2/L3 slice.
DEFAULT_TILE_ROWS = 512


@njit(cache=True)
def tail_count(confidence: float, n_scenarios: int) -> int:
    """Number of tail scenarios ``k = ceil((1 − α) S)``, clipped to ``[1, S]``.

    A 1e-9 tolerance absorbs floating error, so ``(1 − 0.99) × 1000`` gives 10,
    not 11.

    Args:
        confidence: α in (0, 1).
        n_scenarios: S.

    Returns:
        k.
    """
    k = int(math.ceil((1.0 - confidence) * n_scenarios - 1e-9))
    if k < 1:
        k = 1
    if k > n_scenarios:
        k = n_scenarios
    return k


#: Stride of the sample that seeds the selection threshold, and extra sample ranks.
_SAMPLE_STRIDE = 16
_SAMPLE_EXTRA = 4


@njit(cache=True)
def _top_sorted(losses, step, k, buf, floor):
    """Largest k of ``losses[::step]`` that exceed ``floor``, ascending in ``buf[:k]``.

    Streaming insertion into a sorted buffer: a value not above the current
    threshold (the k-th largest so far, or ``floor`` until k are held) costs
    one comparison. Returns how many values were kept (< k when fewer than k
    exceed ``floor``).
    """
    n = 0
    th = floor
    for i in range(0, losses.shape[0], step):
        v = losses[i]
        if v <= th:
            continue
        if n < k:
            j = n
            while j > 0 and buf[j - 1] > v:
                buf[j] = buf[j - 1]
                j -= 1
            buf[j] = v
            n += 1
            if n == k:
                th = buf[0]
        else:
            j = 0
            while j + 1 < k and buf[j + 1] < v:
                buf[j] = buf[j + 1]
                j += 1
            buf[j] = v
            th = buf[0]
    return n


@njit(cache=True)
def topk_tail(losses: np.ndarray, k: int, buf: np.ndarray) -> tuple[float, float]:
    """VaR and ES of one loss vector by exact partial selection.

    A strided sample (every 16th loss) gives a provisional threshold: its
    ``ceil(k/16) + 4``-th largest value, below which almost surely at least k
    losses lie above it. One streaming pass then keeps the k largest losses
    above that threshold in a sorted buffer, so nearly every loss costs one
    comparison and only a few dozen are inserted. If fewer than k losses
    exceed the threshold, the pass is redone without it, so the result is
    always exact.

    Args:
        losses: float64[S] scenario losses (positive = loss).
        k: Tail size, ``1 ≤ k ≤ S``.
        buf: float64[≥ k + 4] scratch buffer (overwritten).

    Returns:
        ``(VaR, ES)``: the k-th largest loss and the mean of the k largest.
    """
    s = losses.shape[0]
    n = 0
    ks = (k + _SAMPLE_STRIDE - 1) // _SAMPLE_STRIDE + _SAMPLE_EXTRA
    if s >= 2 * _SAMPLE_STRIDE * ks:
        if _top_sorted(losses, _SAMPLE_STRIDE, ks, buf, -np.inf) == ks:
            n = _top_sorted(losses, 1, k, buf, buf[0])
    if n < k:
        _top_sorted(losses, 1, k, buf, -np.inf)
    total = 0.0
    for i in range(k):
        total += buf[i]
    return buf[0], total / k


@njit(cache=True)
def _tile_losses(exposures, unit_loss, i0, i1, buf):
    """Losses of accounts ``i0:i1`` into ``buf[: i1 - i0]`` (one BLAS product)."""
    m = i1 - i0
    if exposures.shape[1] == 0 or unit_loss.shape[1] == 0:
        buf[:m] = 0.0
        return buf
    if m == buf.shape[0]:
        np.dot(exposures[i0:i1], unit_loss, buf)
        return buf
    return np.dot(exposures[i0:i1], unit_loss)


@njit(cache=True)
def scan_tail_tiled(exposures: np.ndarray, scan_loss: np.ndarray, seg_start: np.ndarray,
                    joint_loss: np.ndarray, k: int, tile_rows: int):
    """Fused pass: per-segment worst scan loss and joint VaR/ES of every account.

    Args:
        exposures: float64[n_acc, n_cols] C-contiguous exposures.
        scan_loss: float64[n_cols, S_scan] per-unit losses of the concatenated
            scan grids (weights already applied).
        seg_start: int64[n_seg + 1] column offsets of the grids in ``scan_loss``.
        joint_loss: float64[n_cols, S_joint] per-unit losses of a correlated
            set (``S_joint = 0`` skips the VaR/ES part).
        k: Tail size for the joint set, ``1 ≤ k ≤ S_joint`` (ignored when
            ``S_joint = 0``).
        tile_rows: Accounts per tile.

    Returns:
        ``(worst, var, es)``: float64[n_acc, n_seg] largest scenario loss of each
        grid (may be negative when every scenario gains), and float64[n_acc]
        VaR and ES of the joint set (0 when it is empty).
    """
    n_acc = exposures.shape[0]
    n_seg = seg_start.shape[0] - 1
    s_joint = joint_loss.shape[1]
    if s_joint > 0 and not 1 <= k <= s_joint:
        raise ValueError("tail size k must be in 1..number of joint scenarios")
    worst = np.empty((n_acc, n_seg))
    var = np.zeros(n_acc)
    es = np.zeros(n_acc)
    tile = max(1, min(tile_rows, n_acc))
    buf_scan = np.empty((tile, scan_loss.shape[1]))
    buf_joint = np.empty((tile, s_joint))
    buf = np.empty(max(k, 1) + _SAMPLE_EXTRA)
    for i0 in range(0, n_acc, tile):
        i1 = min(n_acc, i0 + tile)
        if n_seg > 0:
            b = _tile_losses(exposures, scan_loss, i0, i1, buf_scan)
            for r in range(i1 - i0):
                for g in range(n_seg):
                    w = -np.inf
                    for s in range(seg_start[g], seg_start[g + 1]):
                        if b[r, s] > w:
                            w = b[r, s]
                    worst[i0 + r, g] = w
        if s_joint > 0:
            b = _tile_losses(exposures, joint_loss, i0, i1, buf_joint)
            for r in range(i1 - i0):
                v, e = topk_tail(b[r], k, buf)
                var[i0 + r] = v
                es[i0 + r] = e
    return worst, var, es


@njit(cache=True)
def tail_risk_tiled(exposures: np.ndarray, unit_loss: np.ndarray, k: int,
                    tile_rows: int = DEFAULT_TILE_ROWS):
    """VaR and ES of every account over a large scenario set, tile by tile.

    Args:
        exposures: float64[n_acc, n_cols] C-contiguous exposures.
        unit_loss: float64[n_cols, S] C-contiguous per-unit scenario losses.
        k: Tail size ``ceil((1 − α) S)`` (see :func:`tail_count`).
        tile_rows: Accounts per tile (any positive value; need not divide n_acc).

    Returns:
        ``(var, es)``, float64[n_acc] each.

    Raises:
        ValueError: If ``k`` is outside ``1..S``.
    """
    empty = np.empty((exposures.shape[1], 0))
    seg = np.zeros(1, np.int64)
    _, var, es = scan_tail_tiled(exposures, empty, seg, unit_loss, k, tile_rows)
    return var, es


@njit(cache=True)
def worst_loss_tiled(exposures: np.ndarray, unit_loss: np.ndarray, seg_start: np.ndarray,
                     tile_rows: int = DEFAULT_TILE_ROWS) -> np.ndarray:
    """Worst loss of every account in each scan-grid segment, tile by tile.

    SPAN scan risk of a combined commodity is ``max(0, max_s A_s)`` with
    ``A_s = Σ_i qty_i × RA_i[s]`` (§1.3); this returns ``max_s A_s`` per
    segment (floor at 0 is the caller's).

    Args:
        exposures: float64[n_acc, n_cols] C-contiguous exposures.
        unit_loss: float64[n_cols, S] per-unit losses (risk arrays, weights applied).
        seg_start: int64[n_seg + 1] column offsets of the segments.
        tile_rows: Accounts per tile.

    Returns:
        float64[n_acc, n_seg].
    """
    empty = np.empty((exposures.shape[1], 0))
    worst, _, _ = scan_tail_tiled(exposures, unit_loss, seg_start, empty, 1, tile_rows)
    return worst
