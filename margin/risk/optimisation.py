"""Allocation of an owner's free collateral across sub-accounts on several protocols.

An owner holds sub-accounts ``k = 1..K`` on different protocols, each with a
margin requirement ``R_k`` and current equity ``E_k``, and free collateral to
distribute. Collateral moved to ``k`` counts there at its price times ``1 −
haircut``. The allocation that minimises the (priority-weighted) total
shortfall::

    minimise   Σ_k w_k · max(0, R_k − E_k − Σ_a v_{a,k} x_{a,k})
    subject to Σ_k x_{a,k} ≤ C_a,   x_{a,k} ≥ 0,   v_{a,k} = p_a (1 − h_{a,k})

is a linear programme. Because nothing is gained by posting more than a
deficit ``d_k = max(0, R_k − E_k)``, it is solved in the equivalent form
"maximise ``Σ w_k v_{a,k} x_{a,k}`` subject to ``Σ_a v_{a,k} x_{a,k} ≤ d_k`` and
the budgets", with ``scipy.optimize.linprog`` (HiGHS). Collateral left over
stays unallocated.

With one collateral (amounts in value) the problem is a fractional knapsack.
Filling deficits in decreasing order of ``w_k (1 − h_k)`` is then optimal
(Dantzig 1957), and :func:`greedy_allocation` is that closed form, used as a
check in the tests. A haircut of 1 marks an asset that a protocol does not
accept. Neighbours: ``margin.methods.tiers`` (requirements R_k), the lead's
``margin.regimes.cross`` (cross-protocol accounts).

**Spare collateral.** The LP's optimum is often not unique: when an owner
holds more than its deficits need, many placements credit the same total,
and they leave different collateral unallocated. A caller that values spare
collateral at each asset's *best* per-unit value ``max_k v_{a,k}`` (the
universal margin of :mod:`sim.contagion.universal`) needs one well-defined answer:
:func:`allocate_keeping_best` returns, among the optimal allocations, one
that minimises the value lost to placement ``Σ_{a,k} x_{a,k} (max_j v_{a,j} −
v_{a,k})`` (a lexicographic LP, Isermann 1982 / any two-phase goal
programme). When at most one held asset's haircut differs between
sub-accounts, it gives that optimum in closed form, without a solver.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

__all__ = ["Allocation", "allocate_collateral", "allocate_keeping_best", "greedy_allocation",
           "varying_assets"]

_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class Allocation:
    """Result of a collateral allocation.

    Attributes:
        amounts: Collateral sent to each sub-account: shape (K,) when the
            free collateral is one value, (A, K) when given per asset
            (units of each asset).
        credited: Value credited to each sub-account after haircuts, (K,).
        shortfall_before: ``max(0, R_k − E_k)`` per sub-account, (K,).
        shortfall_after: Remaining shortfall per sub-account, (K,).
        total_shortfall_before: Σ of ``shortfall_before`` (unweighted).
        total_shortfall_after: Σ of ``shortfall_after`` (unweighted).
        objective: Weighted remaining shortfall ``Σ w_k shortfall_after_k``.
        unallocated: Free collateral left: float, or (A,) per asset.
        method: ``"linprog-highs"`` or ``"greedy"``.
    """

    amounts: np.ndarray
    credited: np.ndarray
    shortfall_before: np.ndarray
    shortfall_after: np.ndarray
    total_shortfall_before: float
    total_shortfall_after: float
    objective: float
    unallocated: float | np.ndarray
    method: str


def _vector(name: str, value: object, size: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric, got {value!r}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if size is not None and arr.shape[0] != size:
        raise ValueError(f"{name} has shape {arr.shape} but {size} sub-accounts were given")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _common_inputs(
    requirement: object, equity: object, weights: object
) -> tuple[np.ndarray, np.ndarray]:
    req = _vector("requirement", requirement)
    if req.size == 0:
        raise ValueError("requirement is empty: need at least one sub-account")
    eq = np.asarray(equity, dtype=np.float64)
    if eq.shape != req.shape:
        raise ValueError(f"equity has shape {eq.shape} but requirement has shape {req.shape}")
    eq = _vector("equity", eq)
    if weights is None:
        w = np.ones_like(req)
    else:
        w = _vector("weights", weights, req.size)
        if np.any(w < 0):
            raise ValueError(f"weights must be >= 0, got {w.tolist()}")
    deficit = np.maximum(req - eq, 0.0)
    return deficit, w


def _haircut_1d(haircuts: object, k: int) -> np.ndarray:
    if haircuts is None:
        return np.zeros(k)
    h = _vector("haircuts", haircuts, k)
    if np.any((h < 0) | (h > 1)):
        raise ValueError(f"haircuts must lie in [0, 1], got {h.tolist()}")
    return h


def _result(amounts, credited, deficit, w, unallocated, method):
    credited = np.minimum(np.maximum(credited, 0.0), deficit)
    after = np.maximum(deficit - credited, 0.0)
    after[after < _TOL * np.maximum(1.0, deficit)] = 0.0
    return Allocation(
        amounts=amounts,
        credited=credited,
        shortfall_before=deficit,
        shortfall_after=after,
        total_shortfall_before=float(deficit.sum()),
        total_shortfall_after=float(after.sum()),
        objective=float(np.dot(w, after)),
        unallocated=unallocated,
        method=method,
    )


def greedy_allocation(
    free_collateral: float,
    requirement: object,
    equity: object,
    haircuts: object = None,
    weights: object = None,
) -> Allocation:
    """Closed-form optimum for one collateral measured in value (fractional knapsack).

    Sub-accounts are served in decreasing order of ``w_k (1 − h_k)`` (ties by
    index), each up to its deficit ``d_k / (1 − h_k)``, until the collateral
    runs out. This minimises ``Σ w_k max(0, d_k − (1 − h_k) x_k)`` (Dantzig
    1957, greedy fractional knapsack).

    Args:
        free_collateral: Free collateral value ``C`` ≥ 0.
        requirement: Requirements ``R_k``, shape (K,).
        equity: Current equities ``E_k``, shape (K,).
        haircuts: Haircut per sub-account in [0, 1] (default 0).
        weights: Priority weight per sub-account ≥ 0 (default 1).

    Returns:
        The allocation (``amounts`` has shape (K,)).

    Raises:
        ValueError: One line on bad shapes or values.
    """
    c = float(free_collateral)
    if not (np.isfinite(c) and c >= 0):
        raise ValueError(f"free_collateral must be finite and >= 0, got {free_collateral}")
    deficit, w = _common_inputs(requirement, equity, weights)
    h = _haircut_1d(haircuts, deficit.size)
    keep = 1.0 - h
    score = w * keep
    order = np.argsort(-score, kind="stable")
    x = np.zeros_like(deficit)
    remaining = c
    for k in order:
        if remaining <= 0.0:
            break
        if deficit[k] <= 0.0 or score[k] <= 0.0:
            continue
        need = deficit[k] / keep[k]
        x[k] = min(need, remaining)
        remaining -= x[k]
    return _result(x, x * keep, deficit, w, float(max(remaining, 0.0)), "greedy")


def allocate_collateral(
    free_collateral: float | object,
    requirement: object,
    equity: object,
    *,
    prices: object = None,
    haircuts: object = None,
    weights: object = None,
    keep_best: bool = False,
) -> Allocation:
    """Minimise total (weighted) shortfall by allocating free collateral, exactly, by LP.

    Solves the linear programme in the module docstring with
    ``scipy.optimize.linprog(method="highs")``. With ``keep_best`` a second LP
    picks, among the optimal allocations (weighted credit at least the first
    optimum less ``1e-10`` relative, HiGHS's feasibility tolerance), one with the
    least value lost to placement ``Σ x_{a,k} (max_j v_{a,j} − v_{a,k})`` (lexicographic
    optimisation; module docstring, "Spare collateral").

    Args:
        free_collateral: Either one value ``C`` ≥ 0 (collateral measured in
            value), or an array of per-asset amounts ``C_a`` ≥ 0, shape (A,).
        requirement: Requirements ``R_k``, shape (K,).
        equity: Current equities ``E_k``, shape (K,).
        prices: Per-asset prices, shape (A,), > 0 (only with per-asset
            collateral; default 1).
        haircuts: In [0, 1]; shape (K,) (per sub-account) or, with per-asset
            collateral, (A, K). 1 means "not accepted there".
        weights: Priority weights ≥ 0 per sub-account, shape (K,) (default 1).
        keep_best: Resolve ties between optimal allocations as described above
            (otherwise the solver's vertex, whichever it is).

    Returns:
        The optimal :class:`Allocation` (``amounts`` (K,) for value
        collateral, (A, K) per asset).

    Raises:
        ValueError: One line on bad shapes or values.
        RuntimeError: If the LP solver fails (it should not: the problem is
            always feasible and bounded).
    """
    deficit, w = _common_inputs(requirement, equity, weights)
    k = deficit.size
    scalar = np.ndim(free_collateral) == 0
    if scalar:
        if prices is not None:
            raise ValueError(
                "prices apply only to per-asset collateral; pass free_collateral as an array"
            )
        budget = np.array([float(free_collateral)])
        px = np.ones(1)
        h = _haircut_1d(haircuts, k)[None, :]
    else:
        budget = _vector("free_collateral", free_collateral)
        if budget.size == 0:
            raise ValueError("free_collateral is empty: need at least one asset")
        px = np.ones_like(budget) if prices is None else _vector("prices", prices)
        if px.shape != budget.shape:
            raise ValueError(
                f"prices has shape {px.shape} but free_collateral has shape {budget.shape}"
            )
        if np.any(px <= 0):
            raise ValueError(f"prices must be > 0, got {px.tolist()}")
        if haircuts is None:
            h = np.zeros((budget.size, k))
        else:
            h = np.asarray(haircuts, dtype=np.float64)
            if h.shape == (k,):
                h = np.broadcast_to(h, (budget.size, k))
            elif h.shape != (budget.size, k):
                raise ValueError(
                    f"haircuts must have shape (K,)=({k},) or (A, K)=({budget.size}, {k}), "
                    f"got {h.shape}"
                )
            if not np.all(np.isfinite(h)) or np.any((h < 0) | (h > 1)):
                raise ValueError("haircuts must lie in [0, 1]")
    if not np.all(np.isfinite(budget)) or np.any(budget < 0):
        got = np.asarray(free_collateral).tolist()
        raise ValueError(f"free_collateral must be finite and >= 0, got {got}")

    n_assets = budget.size
    value = px[:, None] * (1.0 - h)  # v[a, k]: value credited per unit
    gain = (w[None, :] * value).ravel()  # a-major flattening
    # gains below the smallest normal float (subnormal weights) count as zero: no benefit
    short = np.repeat(deficit[None, :], n_assets, 0).ravel() > 0
    upper = np.where((gain > np.finfo(np.float64).tiny) & short, None, 0.0)
    bounds = [(0.0, ub) for ub in upper]

    a_budget = np.zeros((n_assets, n_assets * k))
    for a in range(n_assets):
        a_budget[a, a * k : (a + 1) * k] = 1.0
    a_deficit = np.zeros((k, n_assets * k))
    for j in range(k):
        a_deficit[j, j::k] = value[:, j]
    # scale the objective (largest coefficient 1) so that HiGHS's absolute
    # optimality tolerances (~1e-7) do not swallow small priority weights
    active = np.array([ub is None for ub in upper])
    gmax = float(gain[active].max()) if active.any() else 1.0
    res = linprog(
        c=-gain / gmax,
        A_ub=np.vstack([a_budget, a_deficit]),
        b_ub=np.concatenate([budget, deficit]),
        bounds=bounds,
        method="highs",
        options={"dual_feasibility_tolerance": 1e-10, "primal_feasibility_tolerance": 1e-10},
    )
    if res.status != 0:
        raise RuntimeError(f"collateral allocation LP failed: {res.message}")
    if keep_best and active.any():
        # phase 2: keep the weighted credit, minimise the value lost to placement
        a_ub = np.vstack([a_budget, a_deficit])
        b_ub = np.concatenate([budget, deficit])
        # the credit floor, in the scaled units of phase 1, eased by the solver's
        # own feasibility tolerance so that phase 1's optimum stays feasible
        floor = -float(res.fun)
        floor -= 1e-10 * max(abs(floor), 1.0)
        loss = (value.max(axis=1, keepdims=True) - value).ravel()
        res2 = linprog(
            c=loss / max(float(loss.max()), 1.0) if loss.any() else loss,
            A_ub=np.vstack([a_ub, -np.where(active, gain, 0.0)[None, :] / gmax]),
            b_ub=np.concatenate([b_ub, [-floor]]),
            bounds=bounds,
            method="highs",
            options={"dual_feasibility_tolerance": 1e-10, "primal_feasibility_tolerance": 1e-10},
        )
        if res2.status != 0:
            raise RuntimeError(f"collateral allocation LP (phase 2) failed: {res2.message}")
        res = res2
    x = np.maximum(res.x.reshape(n_assets, k), 0.0)
    credited = (value * x).sum(axis=0)
    left = np.maximum(budget - x.sum(axis=1), 0.0)
    if scalar:
        return _result(x[0], credited, deficit, w, float(left[0]), "linprog-highs")
    return _result(x, credited, deficit, w, left, "linprog-highs")


def varying_assets(budget: np.ndarray, haircuts: np.ndarray) -> np.ndarray:
    """Held assets (``budget > 0``) whose haircut differs between sub-accounts.

    Args:
        budget: float64[A] per-asset amounts.
        haircuts: float64[A, K] haircut of each asset on each sub-account.

    Returns:
        int64 indices of those assets (placement matters only for them:
        module docstring, "Spare collateral").
    """
    h = np.asarray(haircuts, np.float64)
    held = np.asarray(budget, np.float64) > 0.0
    return np.flatnonzero(held & ~(h == h[:, :1]).all(axis=1))


def allocate_keeping_best(
    free_collateral: object,
    requirement: object,
    equity: object,
    *,
    prices: object,
    haircuts: object,
    closed_form: bool | None = None,
) -> Allocation:
    """Optimal allocation leaving the most spare value (module docstring, "Spare collateral").

    Unweighted, per-asset collateral. The closed form below when at most one
    held asset's haircut varies between sub-accounts, else the two-phase LP
    ``allocate_collateral(..., keep_best=True)``; both give the same credit
    and the same spare value (tests, to 1e-9 of the scale).

    **Closed form.** Let ``z`` be the held asset whose per-unit value
    ``v_{z,k} = p_z (1 − h_{z,k})`` depends on the sub-account (if any);
    every other asset's value ``v_a`` is the same on all sub-accounts
    ("money"). Then:

    1. ``z`` fills the deficits of the sub-accounts where it is worth most
       (``v_{z,k} = max_j v_{z,j}``), in index order;
    2. money fills the remaining deficits in increasing order of ``v_{z,k}``
       (where ``z`` is worth least first; ties by index), assets in index order;
    3. what is left of ``z`` fills the remaining deficits in decreasing order
       of ``v_{z,k}`` (``v > 0``).

    Why it is optimal. Money is interchangeable, so for a fixed money
    placement the ``z`` part is a fractional knapsack, best served by
    decreasing value (Dantzig 1957); an exchange argument (swap money and ``z``
    between two sub-accounts) shows that money belongs where ``z`` is worth
    least, which steps 1–3 do, so the credit is the LP optimum. Placing ``z``
    below its best value loses ``max_j v_{z,j} − v_{z,k}`` per unit, and
    steps 1–3 do it only where money has run out and the credit needs it —
    the least loss among optimal allocations.

    Args:
        free_collateral: float64[A] per-asset amounts ``C_a`` ≥ 0.
        requirement: ``R_k``, shape (K,).
        equity: ``E_k``, shape (K,).
        prices: float64[A] > 0.
        haircuts: float64[A, K] in [0, 1].
        closed_form: None: choose as above; True: the closed form (method
            ``"closed-form"``); False: the two-phase LP (``"linprog-highs"``).

    Returns:
        The :class:`Allocation` (``amounts`` (A, K)).

    Raises:
        ValueError: ``closed_form=True`` with more than one held asset whose
            haircuts vary.
    """
    budget = np.asarray(free_collateral, np.float64)
    h = np.asarray(haircuts, np.float64)
    varying = varying_assets(budget, h)
    if closed_form is None:
        closed_form = len(varying) <= 1
    if not closed_form:
        return allocate_collateral(budget, requirement, equity, prices=prices,
                                   haircuts=h, keep_best=True)
    if len(varying) > 1:
        raise ValueError(f"closed form needs at most one asset with varying haircuts, "
                         f"got {len(varying)}")
    deficit, w = _common_inputs(requirement, equity, None)
    px = np.asarray(prices, np.float64)
    value = px[:, None] * (1.0 - h)
    n_assets, k = value.shape
    x = np.zeros((n_assets, k))
    left = budget.copy()
    rem = deficit.copy()

    def fill(a: int, accounts) -> None:
        for j in accounts:
            v = value[a, j]
            if left[a] <= 0.0 or rem[j] <= 0.0 or v <= 0.0:
                continue
            units = min(left[a], rem[j] / v)
            x[a, j] += units
            left[a] -= units
            rem[j] = max(rem[j] - units * v, 0.0)

    money = [a for a in range(n_assets) if budget[a] > 0.0 and a not in set(varying.tolist())]
    if len(varying):
        z = int(varying[0])
        vz = value[z]
        fill(z, np.flatnonzero(vz == vz.max()))
        cheap_first = np.argsort(vz, kind="stable")
    else:
        z, cheap_first = -1, np.arange(k)
    for j in cheap_first:
        for a in money:
            fill(a, (j,))
    if z >= 0:
        fill(z, np.argsort(-vz, kind="stable"))
    credited = (value * x).sum(axis=0)
    return _result(x, credited, deficit, w, np.maximum(left, 0.0), "closed-form")


