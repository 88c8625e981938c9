r"""Conservation checks for the ledger, callable at any step.

:func:`check_conservation` verifies, for a :class:`~sim.ledger.Ledger`:

0. Structure: every float array is finite; spot columns hold no position;
   WORLD and CLEARING rows hold no position; a flat position has entry 0;
   a perp with open positions has a CLEARING row.
1. Supply, per asset ``a``: ``sum_i collateral[i, a] == minted[a] - burned[a]``
   over all rows, WORLD included (WORLD starts at 0 and deposits make it
   negative, so deposits and withdrawals never change the sum).
2. Open interest, per perp ``j``: ``sum_i position[i, j] == 0`` (longs equal
   shorts).
3. Clearing, per CLEARING row ``c`` clearing perps ``J_c`` (one quote asset):
   ``collateral[c, quote] == -sum_{j in J_c} sum_i position[i, j] * entry[i, j]``,
   and ``c`` holds nothing in any other asset.
4. Flows, per instrument ``j``: ``realised_pnl``, ``fees_paid`` and
   ``funding_paid`` each sum to zero over rows, hence so does
   ``realised - funding - fees``: realised P&L, funding and fees only move
   value between holders.

Derivation of invariant 3. Write ``K = q * e`` for an account's signed cost
basis in one perp. :func:`sim.ledger.kernels.perp_trade` applies a trade of
``dq`` at price ``p`` with realised P&L ``r``; in each case
``K' - K = dq * p + r``:

* increase (or open): ``e' = (q e + dq p) / (q + dq)``, ``r = 0``, so
  ``K' = q e + dq p``;
* reduce (``|dq| <= |q|``, opposite sign): ``e' = e``,
  ``r = |dq| (p - e) sign(q) = -dq (p - e)``, so ``K' - K = dq e = dq p + r``;
* flip: ``r = q (p - e)``, ``K' = (q + dq) p``, so
  ``K' - K = dq p + q p - q e = dq p + r``.

A fill (or :meth:`~sim.ledger.Ledger.transfer_position`) gives ``+x`` to one
row and ``-x`` to another at the same price, so summed over rows
``sum dK = sum r``, while the clearing row pays exactly ``sum r``:
``d collateral[c] = -sum r = -sum dK``. Starting from zero,
``collateral[c] = -sum_i K_i``. Funding moves ``q_i * mark * rate`` from every
row to ``c``, a total of ``mark * rate * sum_i q_i = 0`` by invariant 2, so
it leaves the identity unchanged; fees go to a non-clearing fee row. Finally,
at any marks ``M``, ``sum_i q_i (M - e_i) = M sum_i q_i - sum_i K_i =
collateral[c]``: the clearing balance is the traders' aggregate unrealised
P&L, so wallet balances plus unrealised P&L of all non-clearing rows add up to
the supply. With ``marks`` given, this last form is checked too.

Tolerances. Each check compares a discrepancy ``d`` with
``(rtol + n * eps) * magnitude + 4 * eps * budget``, where ``magnitude`` is the
sum of absolute values of the terms being compared (covers the summation in
the check itself; ``rtol`` is the caller's relative slack) and ``budget`` the
sum of magnitudes of every floating-point update the ledger has made to those
quantities (a worst-case bound on accumulated round-off: each IEEE operation
errs by at most ``eps / 2`` of its result, and ``4 * eps`` leaves room for the
few updates that chain a product, a sum and a quotient). Honest rounding
should never trip a check; a corruption larger than this bound does, whatever
``rtol`` (in practice the bound is loose: observed discrepancies are around
1e-6 of it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from sim.ledger.ledger import HolderKind, InstrumentKind

if TYPE_CHECKING:  # pragma: no cover
    from sim.ledger.ledger import Ledger

__all__ = ["LedgerInvariantError", "Residual", "check_conservation", "conservation_residuals"]

_EPS = float(np.finfo(np.float64).eps)
_BUDGET_FACTOR = 4.0
_FLOAT_ARRAYS = (
    "collateral", "position", "entry_price", "realised_pnl", "fees_paid", "funding_paid",
    "minted", "burned",
)


class LedgerInvariantError(RuntimeError):
    """A conservation or structural invariant of the ledger does not hold.

    The message is one line naming the invariant, the asset, instrument or row,
    and the discrepancy against its tolerance.
    """


class Residual(NamedTuple):
    """One conservation check's outcome.

    Attributes:
        invariant: ``"supply"``, ``"open_interest"``, ``"clearing"``,
            ``"clearing_marks"`` or ``"flows"``.
        subject: What was checked, e.g. ``"asset USD"`` or ``"perp 1 (BTC/USD)"``.
        discrepancy: Signed difference (0 when exact).
        tolerance: Largest discrepancy accepted.
        detail: The two sides of the identity, for the error message.
    """

    invariant: str
    subject: str
    discrepancy: float
    tolerance: float
    detail: str

    @property
    def ok(self) -> bool:
        """Whether ``|discrepancy| <= tolerance`` (False for NaN)."""
        return bool(abs(self.discrepancy) <= self.tolerance)


def _tolerance(rtol: float, n_terms: int, magnitude: float, budget: float) -> float:
    return (rtol + n_terms * _EPS) * magnitude + _BUDGET_FACTOR * _EPS * budget


def _instrument_name(ledger: Ledger, j: int) -> str:
    kind = InstrumentKind(int(ledger.instrument_kind[j])).name.lower()
    base = ledger.asset_names[int(ledger.instrument_base[j])]
    quote = ledger.asset_names[int(ledger.instrument_quote[j])]
    return f"{kind} {j} ({base}/{quote})"


def _structure_errors(ledger: Ledger) -> list[str]:
    """One-line descriptions of broken structural invariants (0)."""
    errors = []
    for name in _FLOAT_ARRAYS:
        arr = getattr(ledger, name)
        if not np.isfinite(arr).all():
            bad = np.argwhere(~np.isfinite(arr))[0].tolist()
            errors.append(f"{name} holds a non-finite value at index {bad}")
    pos, entry, kind = ledger.position, ledger.entry_price, ledger.kind
    spot = ledger.instrument_kind == InstrumentKind.SPOT
    if (pos[:, spot] != 0.0).any() or (entry[:, spot] != 0.0).any():
        errors.append("a spot instrument holds a position or entry price")
    no_pos = (kind == HolderKind.WORLD) | (kind == HolderKind.CLEARING)
    bad_rows = np.flatnonzero(no_pos & (pos != 0.0).any(axis=1))
    if bad_rows.size:
        errors.append(f"WORLD/CLEARING row {int(bad_rows[0])} holds a position")
    flat_with_entry = (pos == 0.0) & (entry != 0.0)
    if flat_with_entry.any():
        where = np.argwhere(flat_with_entry)[0].tolist()
        errors.append(f"flat position with non-zero entry at {where}")
    n_world = int((kind == HolderKind.WORLD).sum())
    if ledger.n_accounts == 0 or kind[0] != HolderKind.WORLD or n_world != 1:
        errors.append("the WORLD row must be row 0 and unique")
    unclear = (ledger.clearing_row < 0) & (pos != 0.0).any(axis=0) & ~spot
    if unclear.any():
        errors.append(f"perp {int(np.flatnonzero(unclear)[0])} has positions but no CLEARING row")
    return errors


def _supply_residuals(ledger: Ledger, rtol: float) -> list[Residual]:
    coll = ledger.collateral
    out = []
    for a, name in enumerate(ledger.asset_names):
        total = float(coll[:, a].sum())
        supply = float(ledger.minted[a] - ledger.burned[a])
        mag = float(np.abs(coll[:, a]).sum() + ledger.minted[a] + ledger.burned[a])
        tol = _tolerance(rtol, len(coll), mag, ledger._budget_asset[a])
        detail = f"sum of balances {total!r} != minted - burned {supply!r}"
        out.append(Residual("supply", f"asset {name}", total - supply, tol, detail))
    return out


def _open_interest_residuals(ledger: Ledger, rtol: float) -> list[Residual]:
    pos = ledger.position
    out = []
    for j in np.flatnonzero(ledger.instrument_kind == InstrumentKind.PERP):
        total = float(pos[:, j].sum())
        tol = _tolerance(rtol, len(pos), float(np.abs(pos[:, j]).sum()), ledger._budget_base[j])
        longs = float(pos[pos[:, j] > 0, j].sum())
        shorts = float(-pos[pos[:, j] < 0, j].sum())
        detail = f"longs {longs!r} != shorts {shorts!r}"
        out.append(Residual("open_interest", _instrument_name(ledger, int(j)), total, tol, detail))
    return out


def _clearing_residuals(ledger: Ledger, marks: np.ndarray | None, rtol: float) -> list[Residual]:
    out = []
    pos, entry, coll = ledger.position, ledger.entry_price, ledger.collateral
    n = len(pos)
    for c in np.flatnonzero(ledger.kind == HolderKind.CLEARING):
        perps = np.flatnonzero(ledger.clearing_row == c)
        quote = int(ledger.instrument_quote[perps[0]]) if perps.size else -1
        for a, name in enumerate(ledger.asset_names):
            if a != quote:
                tol = _tolerance(rtol, 1, 0.0, ledger._budget_asset[a])
                detail = f"holds {float(coll[c, a])!r} {name}, expected 0"
                subject = f"clearing row {c} asset {name}"
                out.append(Residual("clearing", subject, float(coll[c, a]), tol, detail))
        if not perps.size:
            continue
        balance = float(coll[c, quote])
        basis = pos[:, perps] * entry[:, perps]
        budget = ledger._budget_asset[quote] + float(ledger._budget_quote[perps].sum())
        mag = abs(balance) + float(np.abs(basis).sum())
        subject = f"clearing row {c} ({ledger.asset_names[quote]})"
        detail = f"balance {balance!r} != -sum(position * entry) {-float(basis.sum())!r}"
        tol = _tolerance(rtol, n * len(perps), mag, budget)
        out.append(Residual("clearing", subject, balance + float(basis.sum()), tol, detail))
        if marks is not None:
            out.append(_clearing_marks_residual(ledger, c, perps, balance, marks, rtol))
    return out


def _clearing_marks_residual(
    ledger: Ledger, c: int, perps: np.ndarray, balance: float, marks: np.ndarray, rtol: float
) -> Residual:
    pos, entry = ledger.position[:, perps], ledger.entry_price[:, perps]
    m = marks[perps]
    upnl = float((pos * (m - entry)).sum())
    quote = int(ledger.instrument_quote[perps[0]])
    mag = abs(balance) + float((np.abs(pos) * np.abs(m)).sum() + np.abs(pos * entry).sum())
    budget = (
        ledger._budget_asset[quote]
        + float(ledger._budget_quote[perps].sum())
        + float((np.abs(m) * ledger._budget_base[perps]).sum())
    )
    tol = _tolerance(rtol, 2 * pos.size, mag, budget)
    detail = f"balance {balance!r} != traders' unrealised P&L {upnl!r}"
    return Residual("clearing_marks", f"clearing row {c}", balance - upnl, tol, detail)


def _flow_residuals(ledger: Ledger, rtol: float) -> list[Residual]:
    out = []
    for name in ("realised_pnl", "fees_paid", "funding_paid"):
        arr = getattr(ledger, name)
        for j in range(ledger.n_instruments):
            total = float(arr[:, j].sum())
            mag = float(np.abs(arr[:, j]).sum())
            tol = _tolerance(rtol, len(arr), mag, ledger._budget_quote[j])
            detail = f"{name} sums to {total!r} over rows, expected 0"
            subject = f"{_instrument_name(ledger, j)} {name}"
            out.append(Residual("flows", subject, total, tol, detail))
    return out


def conservation_residuals(
    ledger: Ledger, marks: Any = None, rtol: float = 1e-9
) -> list[Residual]:
    """Compute every conservation identity's discrepancy and tolerance.

    Args:
        ledger: The ledger to check.
        marks: Optional ``float[n_instruments]`` mark prices; if given, also
            checks that each clearing balance equals the traders' unrealised P&L.
        rtol: Relative slack on top of the round-off bound, >= 0.

    Returns:
        One :class:`Residual` per asset, perp, clearing row and flow array
        (invariants 1-4; structure is checked by :func:`check_conservation`).

    Raises:
        ValueError: On a negative ``rtol`` or badly shaped ``marks``.
    """
    if not rtol >= 0.0:
        raise ValueError(f"rtol must be >= 0, got {rtol!r}")
    m = None if marks is None else ledger._marks(marks)
    return [
        *_supply_residuals(ledger, rtol),
        *_open_interest_residuals(ledger, rtol),
        *_clearing_residuals(ledger, m, rtol),
        *_flow_residuals(ledger, rtol),
    ]


def check_conservation(ledger: Ledger, marks: Any = None, rtol: float = 1e-9) -> None:
    """Raise if any ledger invariant is broken; cheap enough to call every step.

    Checks structure (finite values, no spot/WORLD/CLEARING positions), then
    supply per asset, open interest per perp, the clearing identity per
    CLEARING row (and against ``marks`` if given) and zero-sum flows per
    instrument. See the module docstring for the identities and tolerances.

    Args:
        ledger: The ledger to check.
        marks: Optional ``float[n_instruments]`` mark prices.
        rtol: Relative slack on top of the round-off bound, >= 0.

    Raises:
        LedgerInvariantError: On the first broken invariant, with a one-line
            message naming it, the asset/instrument/row and the discrepancy.
        ValueError: On a negative ``rtol`` or badly shaped ``marks``.
    """
    errors = _structure_errors(ledger)
    if errors:
        raise LedgerInvariantError(f"structure invariant broken: {errors[0]}")
    for res in conservation_residuals(ledger, marks, rtol):
        if not res.ok:
            raise LedgerInvariantError(
                f"{res.invariant} invariant broken for {res.subject}: {res.detail} "
                f"(discrepancy {res.discrepancy:.6g}, tolerance {res.tolerance:.3g})"
            )
