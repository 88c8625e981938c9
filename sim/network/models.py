"""Classic network-contagion models as plain functions on exposure matrices or graphs.

Usable without the agent model, as validation targets and as analytics on the
collateral graph (:mod:`sim.network`):

* :func:`debtrank`, :func:`debtrank_per_node` — DebtRank of Battiston, Puliga,
  Kaushik, Tasca & Caldarelli (2012), "DebtRank: too central to fail?",
  Sci. Rep. 2:541 (contagion_and_peers.md §1.3);
* :func:`linear_debtrank` — the reverberating linear DebtRank of Bardoscia,
  Battiston, Caccioli & Caldarelli (2015), PLoS ONE 10(6):e0130406, whose
  stability is set by the spectral radius of the interbank leverage matrix;
* :func:`eisenberg_noe` — clearing vector of Eisenberg & Noe (2001), Management
  Science 47(2):236–249, by the fictitious default algorithm, with the optional
  default costs of Rogers & Veraart (2013), Management Science 59(4):882–898
  (§1.2);
* :func:`gai_kapadia_cascade` — the zero-recovery threshold cascade of Gai &
  Kapadia (2010), Proc. R. Soc. A 466:2401–2423 (§1.1).

One direction convention throughout, the same as
:func:`sim.network.exposure_matrix`: ``A[i, j]`` is the exposure of ``i`` to
``j``, what ``i`` loses if ``j`` defaults (``i`` is the creditor, ``j`` the
debtor). Eisenberg–Noe is stated in liabilities, ``L[i, j]`` owed by ``i`` to
``j``, so ``L = A.T``. Every function also accepts an exposure DiGraph, reading
the matrix with :func:`sim.network.exposure_matrix` and missing per-node inputs
from node attributes (``equity``, ``external_assets``); node arguments are then
labels instead of indices. Diagonals (self-exposure) must be zero.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import networkx as nx
import numpy as np
from numba import njit

from sim.network.graph import exposure_matrix

__all__ = [
    "CascadeResult",
    "ClearingResult",
    "DebtRankResult",
    "LinearDebtRankResult",
    "debtrank",
    "debtrank_per_node",
    "eisenberg_noe",
    "gai_kapadia_cascade",
    "impact_matrix",
    "leverage_matrix",
    "linear_debtrank",
]


# --------------------------------------------------------------------------- inputs

def _square(name: str, M: Any) -> np.ndarray:
    A = np.asarray(M, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {A.shape}")
    if not np.all(np.isfinite(A)) or np.any(A < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    if np.any(np.diag(A) != 0):
        raise ValueError(f"{name} must have a zero diagonal (no self-exposure)")
    return A


def _vector(name: str, x: Any, n: int, lo: float | None = 0.0, strict: bool = False) -> np.ndarray:
    v = np.asarray(x, dtype=np.float64)
    if v.ndim == 0:
        v = np.full(n, float(v))
    if v.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite")
    if lo is not None and (np.any(v <= lo) if strict else np.any(v < lo)):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {lo}")
    return v


def _unpack(M: Any, per_node: dict[str, tuple[str, Any]]
            ) -> tuple[Any, dict[str, Any], list | None]:
    """Matrix, per-node inputs and node labels (None for a matrix input).

    ``per_node`` maps a key to ``(node attribute, given value)``; for a graph
    input a value that is None is read from the node attribute.
    """
    if not isinstance(M, nx.Graph):
        return M, {key: val for key, (_, val) in per_node.items()}, None
    nodes, W = exposure_matrix(M)
    out = {}
    for key, (attr, val) in per_node.items():
        if val is None:
            missing = [n for n in nodes if attr not in M.nodes[n]]
            if missing:
                raise ValueError(f"{key} not given and node {missing[0]!r} "
                                 f"has no {attr!r} attribute")
            val = [M.nodes[n][attr] for n in nodes]
        out[key] = val
    return W, out, nodes


def _indices(name: str, which: Any, n: int, nodes: list | None) -> np.ndarray:
    """Node indices from indices (matrix input), labels (graph input) or a boolean mask."""
    arr = np.asarray(which)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"{name} as a mask must have shape ({n},), got {arr.shape}")
        return np.flatnonzero(arr)
    items = list(np.atleast_1d(arr).tolist()) if arr.ndim <= 1 else None
    if items is None:
        raise ValueError(f"{name} must be a sequence of nodes")
    if nodes is not None:
        pos = {v: k for k, v in enumerate(nodes)}
        try:
            out = [pos[v] for v in items]
        except KeyError as exc:
            raise ValueError(f"{name}: unknown node {exc.args[0]!r}") from None
    else:
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items):
            raise ValueError(f"{name} must be integer node indices")
        out = [int(v) for v in items]
        if any(not 0 <= v < n for v in out):
            raise ValueError(f"{name} must be indices in [0, {n})")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} has duplicate nodes")
    return np.asarray(out, dtype=np.int64)


# --------------------------------------------------------------------------- DebtRank

@dataclass(frozen=True)
class DebtRankResult:
    """Outcome of :func:`debtrank`.

    Attributes:
        debtrank: ``R = sum_j h_j(T) v_j - sum_j h_j(1) v_j``: value lost through
            propagation, excluding the initial shock.
        loss: ``sum_j h_j(T) v_j``: total relative value lost, shock included.
        h: Final relative equity losses ``h_j(T)`` in [0, 1].
        h0: Initial distress ``h_j(1)``.
        value: Economic-value weights ``v`` (summing to 1).
        rounds: Propagation steps until no node is distressed.
        nodes: Node labels for a graph input, else None.
    """

    debtrank: float
    loss: float
    h: np.ndarray
    h0: np.ndarray
    value: np.ndarray
    rounds: int
    nodes: list | None = None


def impact_matrix(exposures: Any, equity: Any) -> np.ndarray:
    """DebtRank impact matrix in the paper's orientation.

    Battiston et al. (2012): ``W[j, i] = min(1, A[i, j] / E_i)`` is the impact
    of ``j`` on ``i`` — the fraction of ``i``'s equity lost if ``j`` defaults
    — where ``A[i, j]`` is ``i``'s exposure to ``j`` (module convention). The
    transpose ``Λ = W.T`` (``Λ[i, j] = min(1, A[i, j] / E_i)``) is the form
    written in contagion_and_peers.md §1.3; both have the same spectral radius.

    Args:
        exposures: ``A`` (n x n, non-negative, zero diagonal).
        equity: ``E`` (n,), strictly positive.

    Returns:
        ``W`` (n x n).
    """
    A = _square("exposures", exposures)
    E = _vector("equity", equity, A.shape[0], 0.0, strict=True)
    return np.minimum(1.0, A / E[:, None]).T


def _value(value: Any, A: np.ndarray) -> np.ndarray:
    n = A.shape[0]
    if value is None:
        liab = A.sum(axis=0)
        total = liab.sum()
        return liab / total if total > 0 else np.full(n, 1.0 / n)
    v = _vector("value", value, n)
    if v.sum() <= 0:
        raise ValueError("value must have a positive sum")
    return v / v.sum()


@njit(cache=True)
def _debtrank_dynamics(W: np.ndarray, h: np.ndarray,
                       distressed: np.ndarray) -> tuple[np.ndarray, int]:
    """Run the DebtRank states to the end; ``W[j, i]`` = impact of j on i."""
    n = h.shape[0]
    state = np.zeros(n, np.int8)  # 0 undistressed, 1 distressed, 2 inactive
    for i in range(n):
        if distressed[i]:
            state[i] = 1
    h = h.copy()
    rounds = 0
    while True:
        active = np.flatnonzero(state == 1)
        if active.size == 0:
            break
        new = h.copy()
        for i in range(n):
            acc = 0.0
            for j in active:
                acc += W[j, i] * h[j]
            new[i] = min(1.0, h[i] + acc)
        for i in range(n):
            if state[i] == 1:
                state[i] = 2
            elif state[i] == 0 and new[i] > 0.0:
                state[i] = 1
        h = new
        rounds += 1
    return h, rounds


@njit(cache=True)
def _debtrank_single(W: np.ndarray, v: np.ndarray, psi: float) -> np.ndarray:
    n = v.shape[0]
    out = np.empty(n)
    for k in range(n):
        h = np.zeros(n)
        h[k] = psi
        mask = np.zeros(n, np.bool_)
        mask[k] = True
        hT, _ = _debtrank_dynamics(W, h, mask)
        out[k] = np.dot(hT, v) - psi * v[k]
    return out


def debtrank(exposures: Any, equity: Any = None, shocked: Any = (), psi: Any = 1.0,
             value: Any = None) -> DebtRankResult:
    """DebtRank of an initial shock (Battiston et al. 2012, Sci. Rep. 2:541).

    Each node has relative equity loss ``h_i`` in [0, 1] and a state in
    {undistressed U, distressed D, inactive I}. At ``t = 1`` the shocked set
    ``S_f`` has ``h_i(1) = psi_i`` and state D; the rest ``h = 0``, state U. Then

    ``h_i(t) = min(1, h_i(t-1) + sum_{j: s_j(t-1) = D} W_ji h_j(t-1))``

    with ``W_ji = min(1, A[i, j] / E_i)`` the impact of ``j`` on ``i``
    (:func:`impact_matrix`); a node goes D -> I after one step, and U -> D when
    its ``h`` becomes positive. So each node propagates distress exactly once
    (no reverberation), while inactive nodes still absorb losses. The dynamics
    stop when no node is distressed (after at most n + 1 steps), and

    ``R = sum_j h_j(T) v_j - sum_j h_j(1) v_j``.

    Args:
        exposures: ``A`` (n x n) or an exposure DiGraph.
        equity: ``E`` (n,), > 0; for a graph, default node attribute ``equity``.
        shocked: Shocked nodes (indices, graph labels, or a boolean mask).
        psi: Initial distress of the shocked nodes in [0, 1] (1 = default);
            scalar or one value per shocked node.
        value: Economic value ``v`` (normalised to sum 1); default each node's
            share of total interbank liabilities, ``sum_i A[i, j]`` — the
            relative-liabilities weighting of the paper (reference §1.3 marks the
            algorithm statement [M]: check the PDF before quoting numbers).

    Returns:
        :class:`DebtRankResult`.
    """
    A, kw, nodes = _unpack(exposures, {"equity": ("equity", equity)})
    W = impact_matrix(A, kw["equity"])
    n = W.shape[0]
    idx = _indices("shocked", shocked, n, nodes)
    p = np.asarray(psi, dtype=np.float64)
    p = np.full(len(idx), float(p)) if p.ndim == 0 else p
    if p.shape != (len(idx),) or not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"psi must be in [0, 1], scalar or one per shocked node ({len(idx)})")
    v = _value(value, np.asarray(A, dtype=np.float64))
    h0 = np.zeros(n)
    h0[idx] = p
    mask = np.zeros(n, dtype=np.bool_)
    mask[idx] = True
    h, rounds = _debtrank_dynamics(np.ascontiguousarray(W), h0, mask)
    loss = float(h @ v)
    return DebtRankResult(debtrank=loss - float(h0 @ v), loss=loss, h=h, h0=h0, value=v,
                          rounds=int(rounds), nodes=nodes)


def debtrank_per_node(exposures: Any, equity: Any = None, value: Any = None,
                      psi: float = 1.0) -> np.ndarray:
    """DebtRank ``R_i`` of each single-node shock ``S_f = {i}`` with distress ``psi``.

    Args:
        exposures: ``A`` (n x n) or an exposure DiGraph.
        equity: ``E`` (n,), > 0; for a graph, default node attribute ``equity``.
        value: Economic value weights (see :func:`debtrank`).
        psi: Initial distress of the shocked node in [0, 1].

    Returns:
        ``R`` (n,), in graph node order for a graph input.
    """
    A, kw, _ = _unpack(exposures, {"equity": ("equity", equity)})
    W = impact_matrix(A, kw["equity"])
    psi = float(psi)
    if not 0.0 <= psi <= 1.0:
        raise ValueError(f"psi must be in [0, 1], got {psi!r}")
    v = _value(value, np.asarray(A, dtype=np.float64))
    return _debtrank_single(np.ascontiguousarray(W), v, psi)


@dataclass(frozen=True)
class LinearDebtRankResult:
    """Outcome of :func:`linear_debtrank`.

    Attributes:
        h: Final relative equity losses in [0, 1].
        defaulted: Nodes with ``h == 1``.
        rounds: Iterations run.
        converged: Whether the largest increment fell below ``tol``.
        nodes: Node labels for a graph input, else None.
    """

    h: np.ndarray
    defaulted: np.ndarray
    rounds: int
    converged: bool
    nodes: list | None = None


def leverage_matrix(exposures: Any, equity: Any) -> np.ndarray:
    """Interbank leverage matrix ``Λ[i, j] = A[i, j] / E_i`` (Bardoscia et al. 2015), uncapped."""
    A = _square("exposures", exposures)
    E = _vector("equity", equity, A.shape[0], 0.0, strict=True)
    return A / E[:, None]


def linear_debtrank(exposures: Any, equity: Any = None, h0: Any = None, tol: float = 1e-13,
                    max_iter: int = 100_000) -> LinearDebtRankResult:
    """Reverberating linear DebtRank (Bardoscia, Battiston, Caccioli & Caldarelli 2015).

    ``h(1) = h0``, ``h(0) = 0`` and ``h_i(t+1) = min(1, h_i(t) + sum_j Λ_ij
    (h_j(t) - h_j(t-1)))`` with ``Λ = A / E`` (:func:`leverage_matrix`): every
    increment of distress propagates again. If the spectral radius of ``Λ`` is
    below 1 and no node hits the cap, ``h(∞) = (I - Λ)^-1 h0`` exactly; if it
    exceeds 1 (and the shock reaches the unstable mode) distress grows until at
    least one node defaults (reference §1.3; the paper states the update rule
    with a general propagation function, of which this is the linear case).

    Args:
        exposures: ``A`` (n x n) or an exposure DiGraph.
        equity: ``E`` (n,), > 0; for a graph, default node attribute ``equity``.
        h0: Initial relative equity losses (n,) in [0, 1].
        tol: Stop when the largest increment is at most ``tol``.
        max_iter: Iteration cap.

    Returns:
        :class:`LinearDebtRankResult`.
    """
    A, kw, nodes = _unpack(exposures, {"equity": ("equity", equity)})
    lam = leverage_matrix(A, kw["equity"])
    n = lam.shape[0]
    if h0 is None:
        raise ValueError("h0 must be given")
    h = _vector("h0", h0, n)
    if np.any(h > 1):
        raise ValueError("h0 must be in [0, 1]")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    dh = h.copy()
    rounds, converged = 0, False
    while rounds < max_iter:
        if dh.max(initial=0.0) <= tol:
            converged = True
            break
        new = np.minimum(1.0, h + lam @ dh)
        dh = new - h
        h = new
        rounds += 1
    return LinearDebtRankResult(h=h, defaulted=h >= 1.0, rounds=rounds, converged=converged,
                                nodes=nodes)


# --------------------------------------------------------------------------- Eisenberg–Noe

@dataclass(frozen=True)
class ClearingResult:
    """Outcome of :func:`eisenberg_noe`.

    Attributes:
        payments: Clearing vector ``p`` (total paid by each node).
        defaulted: Nodes paying less than their obligations ``p̄``.
        recovery: ``p / p̄`` (1 where ``p̄ = 0``).
        equity: ``e + Π^T p - p`` for solvent nodes, 0 for defaulted ones.
        external_payments: Paid to creditors outside the network, ``(b / p̄) p``.
        default_cost: Value lost by defaulted nodes, ``(1 - α) e + (1 - β) Π^T p``.
        rounds: Fictitious-default rounds that found new defaulters (default waves).
        nodes: Node labels for a graph input, else None.
    """

    payments: np.ndarray
    defaulted: np.ndarray
    recovery: np.ndarray
    equity: np.ndarray
    external_payments: np.ndarray
    default_cost: np.ndarray
    rounds: int
    nodes: list | None = None


def _solve_defaulters(M: np.ndarray, base: np.ndarray, pbar: np.ndarray, PiDD: np.ndarray,
                      beta: float) -> np.ndarray:
    """Greatest solution of ``x = base + β Π_DD^T x`` capped to [0, p̄_D].

    A direct solve when ``M = I - β Π_DD^T`` is well conditioned; otherwise (a
    closed group of defaulters owing only each other, so the solution is not
    unique) Picard iteration from ``p̄_D``, which descends to the greatest one.
    """
    if M.size and np.linalg.cond(M) < 1e12:
        return np.clip(np.linalg.solve(M, base), 0.0, pbar)
    x = pbar.copy()
    for _ in range(1_000_000):
        new = np.clip(base + beta * (PiDD.T @ x), 0.0, pbar)
        if np.max(np.abs(new - x), initial=0.0) <= 1e-15 * max(1.0, float(pbar.max(initial=0.0))):
            return new
        x = new
    return x


def eisenberg_noe(liabilities: Any, external_assets: Any = None, external_liabilities: Any = None,
                  alpha: float = 1.0, beta: float = 1.0, rtol: float = 1e-12) -> ClearingResult:
    """Greatest clearing vector by the fictitious default algorithm (Eisenberg & Noe 2001).

    Obligations ``p̄_i = sum_j L[i, j] + b_i``, relative liabilities
    ``Π[i, j] = L[i, j] / p̄_i``. The clearing vector solves
    ``p_i = p̄_i`` if ``p̄_i <= e_i + (Π^T p)_i`` and otherwise
    ``p_i = α e_i + β (Π^T p)_i`` — with ``α = β = 1`` (no default costs, the
    default) this is Eisenberg–Noe's ``p = min(p̄, e + Π^T p)``; ``α, β < 1``
    are the realisation rates of Rogers & Veraart (2013). Fictitious default
    algorithm (EN 2001 §3; RV 2013's greatest-clearing-vector algorithm): start
    from ``p = p̄``; find the nodes that cannot pay in full given ``p``; solve
    the linear system for their payments with everyone else paying ``p̄``;
    repeat until no new defaulter (at most n rounds). The result is the
    greatest clearing vector, the maximiser of ``sum p`` over ``{0 <= p <= p̄,
    p <= e + Π^T p}`` when ``α = β = 1`` (reference §1.2).

    Value is conserved up to default costs: ``sum(equity) + sum(external
    payments) + sum(default cost) = sum(e)``, and default costs are zero when
    ``α = β = 1``.

    A node defaults iff its shortfall ``p̄_i - e_i - (Π^T p)_i`` exceeds
    ``rtol * p̄_i`` (so float noise at an exact break-even is not a default).

    Args:
        liabilities: ``L`` (n x n), ``L[i, j]`` owed by ``i`` to ``j`` (the
            transpose of an exposure matrix), or an exposure DiGraph.
        external_assets: ``e`` (n,), >= 0; for a graph, default node attribute
            ``external_assets``.
        external_liabilities: ``b`` (n,), >= 0, owed outside the network
            (pari passu with ``L``: shared pro rata); default 0.
        alpha: Fraction of external assets realised by a defaulted node, (0, 1].
        beta: Fraction of interbank assets realised by a defaulted node, (0, 1].
        rtol: Relative shortfall tolerated without default, >= 0.

    Returns:
        :class:`ClearingResult`.
    """
    if isinstance(liabilities, nx.Graph):
        A, kw, nodes = _unpack(liabilities, {"e": ("external_assets", external_assets)})
        L = _square("liabilities", A.T)
        external_assets = kw["e"]
    else:
        L, nodes = _square("liabilities", liabilities), None
    n = L.shape[0]
    if external_assets is None:
        raise ValueError("external_assets must be given")
    e = _vector("external_assets", external_assets, n)
    b = np.zeros(n) if external_liabilities is None else _vector("external_liabilities",
                                                                 external_liabilities, n)
    for name, x in (("alpha", alpha), ("beta", beta)):
        if not 0.0 < float(x) <= 1.0:
            raise ValueError(f"{name} must be in (0, 1], got {x!r}")
    alpha, beta, rtol = float(alpha), float(beta), float(rtol)
    if not rtol >= 0.0:
        raise ValueError(f"rtol must be >= 0, got {rtol!r}")
    pbar = L.sum(axis=1) + b
    safe = np.where(pbar > 0, pbar, 1.0)
    Pi = np.where(pbar[:, None] > 0, L / safe[:, None], 0.0)
    p = pbar.copy()
    D = np.zeros(n, dtype=bool)
    rounds = 0
    while True:
        inflow = Pi.T @ p
        newD = D | (pbar - e - inflow > rtol * pbar)
        if np.array_equal(newD, D):
            break
        D = newD
        rounds += 1
        S = ~D
        PiDD = Pi[np.ix_(D, D)]
        base = alpha * e[D] + beta * (Pi[np.ix_(S, D)].T @ pbar[S])
        M = np.eye(int(D.sum())) - beta * PiDD.T
        p = pbar.copy()
        p[D] = _solve_defaulters(M, base, pbar[D], PiDD, beta)
    inflow = Pi.T @ p
    cost = np.where(D, (1 - alpha) * e + (1 - beta) * inflow, 0.0)
    equity = np.where(D, 0.0, e + inflow - p)
    ext = np.where(pbar > 0, b / safe, 0.0) * p
    recovery = np.where(pbar > 0, p / safe, 1.0)
    return ClearingResult(payments=p, defaulted=D, recovery=recovery, equity=equity,
                          external_payments=ext, default_cost=cost, rounds=rounds, nodes=nodes)


# --------------------------------------------------------------------------- Gai–Kapadia

@dataclass(frozen=True)
class CascadeResult:
    """Outcome of :func:`gai_kapadia_cascade`.

    Attributes:
        defaulted: Defaulted nodes (initial ones included).
        n_defaults: Number of defaulted nodes.
        rounds: Contagion rounds that produced new defaults (0 if none).
        default_round: Round of each node's default (0 = initial, -1 = never).
        losses: Final interbank losses (exact Fractions/ints for exact inputs).
        exact: Whether the comparison was in exact arithmetic.
        nodes: Node labels for a graph input, else None.
    """

    defaulted: np.ndarray
    n_defaults: int
    rounds: int
    default_round: np.ndarray
    losses: np.ndarray
    exact: bool
    nodes: list | None = None


def _exact_array(name: str, x: Any) -> np.ndarray | None:
    """An object array of Python ints/Fractions if ``x`` is integer or rational, else None."""
    arr = np.asarray(x)
    if arr.dtype.kind in "iub":
        return arr.astype(object) if arr.dtype.kind != "b" else arr.astype(int).astype(object)
    if arr.dtype == object:
        flat = arr.ravel().tolist()
        if all(isinstance(v, numbers.Rational) and not isinstance(v, bool) for v in flat):
            return np.array([Fraction(v) for v in flat], dtype=object).reshape(arr.shape)
        raise ValueError(f"{name} as an object array must hold ints or Fractions")
    return None


def gai_kapadia_cascade(exposures: Any, capital: Any = None, initial_defaults: Any = (),
                        rtol: float = 1e-9) -> CascadeResult:
    """Zero-recovery threshold default cascade (Gai & Kapadia 2010).

    A defaulted counterparty pays nothing, so node ``i`` loses
    ``loss_i = sum_{j defaulted} A[i, j]``, and **defaults iff loss_i > K_i**
    (strictly: a loss exactly equal to the capital buffer is survived, as in
    GK's solvency condition ``(1 - φ_i) A_i^IB + ... > 0``). Rounds are
    synchronous: round r's defaulters are the nodes whose losses on the
    defaults of rounds < r exceed their capital; iterate to a fixed point.

    Boundary rule. With integer or rational inputs (numpy integer arrays,
    Python ints, ``fractions.Fraction``) losses are summed and compared
    exactly. With floats a node defaults iff ``loss_i > K_i (1 + rtol)``: a
    loss within ``rtol`` of the buffer counts as a tie, so the GK boundary case
    (5 debtors, buffer 4 %, interbank share 20 %: ``1/5 = K/A^IB``) does not
    flip on rounding; pass ``rtol=0`` for the raw float comparison.

    Args:
        exposures: ``A`` (n x n), ``A[i, j]`` = interbank asset of ``i`` on
            ``j``, or an exposure DiGraph (then floats).
        capital: Capital buffers ``K`` (n,), >= 0; for a graph, default node
            attribute ``equity``.
        initial_defaults: Nodes defaulting at round 0 (indices, labels or mask).
        rtol: Float tie tolerance, >= 0 (ignored for exact inputs).

    Returns:
        :class:`CascadeResult`.
    """
    A, kw, nodes = _unpack(exposures, {"capital": ("equity", capital)})
    capital = kw["capital"]
    if capital is None:
        raise ValueError("capital must be given")
    Aq, Kq = _exact_array("exposures", A), _exact_array("capital", capital)
    exact = Aq is not None and Kq is not None
    Af = _square("exposures", np.asarray(A, dtype=np.float64) if Aq is None else Aq.astype(float))
    n = Af.shape[0]
    Kf = _vector("capital",
                 np.asarray(capital, dtype=np.float64) if Kq is None else Kq.astype(float), n)
    if not float(rtol) >= 0.0:
        raise ValueError(f"rtol must be >= 0, got {rtol!r}")
    if exact:
        if Aq.shape != (n, n) or np.ndim(Kq) != 1:
            raise ValueError("exposures and capital shapes do not match")
        A_, K_ = Aq, Kq
        loss = np.array([0] * n, dtype=object)
    else:
        A_, K_ = Af, Kf * (1.0 + float(rtol))
        loss = np.zeros(n)
    idx = _indices("initial_defaults", initial_defaults, n, nodes)
    defaulted = np.zeros(n, dtype=bool)
    defaulted[idx] = True
    round_of = np.full(n, -1, dtype=np.int64)
    round_of[idx] = 0
    new, r = idx, 0
    while len(new):
        loss = loss + A_[:, new].sum(axis=1)
        cand = ~defaulted & np.asarray(loss > K_, dtype=bool)
        if not cand.any():
            break
        r += 1
        defaulted |= cand
        round_of[cand] = r
        new = np.flatnonzero(cand)
    return CascadeResult(defaulted=defaulted, n_defaults=int(defaulted.sum()), rounds=r,
                         default_round=round_of, losses=loss, exact=exact, nodes=nodes)
