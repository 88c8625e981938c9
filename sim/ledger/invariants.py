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
``rtol``.

``rtol`` defaults to 0: the bound alone is the tolerance. A relative slack is
judged against the total, which hides small corruptions in a large ledger
(1e-9 of the default run's 1.1e8 USD of balances is 0.11 USD, so a 0.1 USD
corruption of one balance passed), while the bound grows with the work done
(1.6e-4 USD after the default 1,440-step run). Measured over every step of 14
default-world runs (seeds, shock scenarios, a replay, four regimes, two venues),
honest round-off used at most 2.1 % of the bound (early in a run, when few
updates have been made) and at most 7.2e-15 of the terms compared.
:class:`ConservationMonitor` records these measurements for ``summary.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from sim.ledger.ledger import HolderKind, InstrumentKind

if TYPE_CHECKING:  # pragma: no cover
    from sim.ledger.ledger import Ledger

__all__ = [
    "ConservationMonitor",
    "LedgerInvariantError",
    "Residual",
    "check_conservation",
    "conservation_residuals",
]

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
        magnitude: Sum of absolute values of the terms compared (the scale the
            discrepancy is relative to; NaN when not given).
    """

    invariant: str
    subject: str
    discrepancy: float
    tolerance: float
    detail: str
    magnitude: float = float("nan")

    @property
    def rel(self) -> float:
        """``|discrepancy| / magnitude`` (0 when both are 0, NaN without a magnitude)."""
        if self.discrepancy == 0.0:
            return 0.0
        return abs(self.discrepancy) / self.magnitude if self.magnitude != 0 else float("inf")

    @property
    def ratio(self) -> float:
        """``|discrepancy| / tolerance``: the share of the tolerance used (> 1 fails)."""
        if self.discrepancy == 0.0:
            return 0.0
        return abs(self.discrepancy) / self.tolerance if self.tolerance > 0 else float("inf")

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
        out.append(Residual("supply", f"asset {name}", total - supply, tol, detail, mag))
    return out


def _open_interest_residuals(ledger: Ledger, rtol: float) -> list[Residual]:
    pos = ledger.position
    out = []
    for j in np.flatnonzero(_held_kinds(ledger)):
        total = float(pos[:, j].sum())
        mag = float(np.abs(pos[:, j]).sum())
        tol = _tolerance(rtol, len(pos), mag, ledger._budget_base[j])
        longs = float(pos[pos[:, j] > 0, j].sum())
        shorts = float(-pos[pos[:, j] < 0, j].sum())
        detail = f"longs {longs!r} != shorts {shorts!r}"
        out.append(Residual("open_interest", _instrument_name(ledger, int(j)), total, tol, detail,
                            mag))
    return out


def _held_kinds(ledger: Ledger) -> np.ndarray:
    """Instruments held as positions (perpetuals and options): longs must equal shorts."""
    kind = ledger.instrument_kind
    return (kind == InstrumentKind.PERP) | (kind == InstrumentKind.OPTION)


def _clearing_residuals(ledger: Ledger, marks: np.ndarray | None, rtol: float) -> list[Residual]:
    out = []
    pos, entry, coll = ledger.position, ledger.entry_price, ledger.collateral
    n = len(pos)
    is_perp = ledger.instrument_kind == InstrumentKind.PERP
    for c in np.flatnonzero(ledger.kind == HolderKind.CLEARING):
        # an option's expiry settlement leaves its clearing row at zero net (longs =
        # shorts), so only perpetuals carry the cost-basis identity
        cleared = np.flatnonzero(ledger.clearing_row == c)
        perps = cleared[is_perp[cleared]]
        quote = int(ledger.instrument_quote[cleared[0]]) if cleared.size else -1
        for a, name in enumerate(ledger.asset_names):
            if a != quote:
                tol = _tolerance(rtol, 1, 0.0, ledger._budget_asset[a])
                detail = f"holds {float(coll[c, a])!r} {name}, expected 0"
                subject = f"clearing row {c} asset {name}"
                out.append(Residual("clearing", subject, float(coll[c, a]), tol, detail,
                                    abs(float(coll[c, a]))))
        if not perps.size:
            continue
        balance = float(coll[c, quote])
        basis = pos[:, perps] * entry[:, perps]
        budget = ledger._budget_asset[quote] + float(ledger._budget_quote[perps].sum())
        mag = abs(balance) + float(np.abs(basis).sum())
        subject = f"clearing row {c} ({ledger.asset_names[quote]})"
        detail = f"balance {balance!r} != -sum(position * entry) {-float(basis.sum())!r}"
        tol = _tolerance(rtol, n * len(perps), mag, budget)
        out.append(Residual("clearing", subject, balance + float(basis.sum()), tol, detail, mag))
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
    return Residual("clearing_marks", f"clearing row {c}", balance - upnl, tol, detail, mag)


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
            out.append(Residual("flows", subject, total, tol, detail, mag))
    return out


def conservation_residuals(
    ledger: Ledger, marks: Any = None, rtol: float = 0.0
) -> list[Residual]:
    """Compute every conservation identity's discrepancy and tolerance.

    Args:
        ledger: The ledger to check.
        marks: Optional ``float[n_instruments]`` mark prices; if given, also
            checks that each clearing balance equals the traders' unrealised P&L.
        rtol: Relative slack on top of the round-off bound, >= 0 (default 0:
            the bound alone, see the module docstring).

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


def check_conservation(ledger: Ledger, marks: Any = None, rtol: float = 0.0) -> None:
    """Raise if any ledger invariant is broken; cheap enough to call every step.

    Checks structure (finite values, no spot/WORLD/CLEARING positions), then
    supply per asset, open interest per perp, the clearing identity per
    CLEARING row (and against ``marks`` if given) and zero-sum flows per
    instrument. See the module docstring for the identities and tolerances.

    Args:
        ledger: The ledger to check.
        marks: Optional ``float[n_instruments]`` mark prices.
        rtol: Relative slack on top of the round-off bound, >= 0 (default 0:
            the bound alone, see the module docstring).

    Raises:
        LedgerInvariantError: On the first broken invariant, with a one-line
            message naming it, the asset/instrument/row and the discrepancy.
        ValueError: On a negative ``rtol`` or badly shaped ``marks``.
    """
    _raise_first(_structure_errors(ledger), conservation_residuals(ledger, marks, rtol))


def _raise_first(errors: list[str], residuals: list[Residual]) -> None:
    """Raise :class:`LedgerInvariantError` for the first structural error or failed residual."""
    if errors:
        raise LedgerInvariantError(f"structure invariant broken: {errors[0]}")
    for res in residuals:
        if not res.ok:
            raise LedgerInvariantError(
                f"{res.invariant} invariant broken for {res.subject}: {res.detail} "
                f"(discrepancy {res.discrepancy:.6g}, tolerance {res.tolerance:.3g})"
            )


class _Worst:
    """Final and worst-over-checks figures of one identity (see :class:`ConservationMonitor`)."""

    __slots__ = ("final", "worst_abs", "worst_ratio", "worst_rel", "worst_step")

    def __init__(self) -> None:
        self.final: Residual | None = None
        self.worst_abs = 0.0
        self.worst_rel = 0.0
        self.worst_ratio = 0.0
        self.worst_step: int | None = None

    def update(self, res: Residual, step: int | None) -> None:
        first = self.final is None
        self.final = res
        self.worst_abs = max(self.worst_abs, abs(res.discrepancy))
        self.worst_rel = max(self.worst_rel, res.rel)
        if first or res.ratio > self.worst_ratio:
            self.worst_ratio = res.ratio
            self.worst_step = step

    def as_dict(self) -> dict[str, Any]:
        f = self.final
        assert f is not None
        return {"final": float(f.discrepancy), "final_rel": float(f.rel),
                "final_tolerance": float(f.tolerance), "final_magnitude": float(f.magnitude),
                "worst_abs": float(self.worst_abs), "worst_rel": float(self.worst_rel),
                "worst_ratio": float(self.worst_ratio), "worst_step": self.worst_step,
                "ok": bool(self.worst_ratio <= 1.0)}


class ConservationMonitor:
    """Checks conservation whenever asked and keeps what it measured, for ``summary.json``.

    Each :meth:`check` computes every identity of :func:`conservation_residuals`
    (supply per asset, longs = shorts per perp, the clearing identities, zero-sum
    flows) and the structural invariants, records the discrepancies, and
    raises :class:`LedgerInvariantError` like :func:`check_conservation` on the
    first broken one. :meth:`report` gives, per asset and per perp, the last
    discrepancy, its tolerance and its size relative to the terms compared, and
    the worst seen over all checks (absolute, relative, and as a share of the
    tolerance, with its step); clearing and flow identities are summarised by
    their worst. The verdict ``ok`` is derived from those measurements: every
    identity stayed within its tolerance at every check.

    The tolerance is the module docstring's round-off bound with ``rtol``
    (default 0) on top: ``(rtol + n eps) x magnitude + 4 eps x budget``, where
    ``budget`` sums the magnitudes of every floating-point update the ledger
    made to the quantity (an a-priori bound from the standard model of IEEE
    arithmetic, ``fl(x op y) = (x op y)(1 + d)``, ``|d| <= eps/2``; Higham,
    *Accuracy and Stability of Numerical Algorithms*, 2nd ed., 2002, §2.2 and
    §4.2). It grows with the work done, not with the size of the balances, so a
    corrupted balance of a cent stands out in a run holding hundreds of
    millions, while the round-off of a longer run is still covered.

    Args:
        rtol: Relative slack on top of the round-off bound, >= 0.

    Raises:
        ValueError: On a negative ``rtol``.
    """

    def __init__(self, rtol: float = 0.0) -> None:
        if not rtol >= 0.0:
            raise ValueError(f"rtol must be >= 0, got {rtol!r}")
        self.rtol = float(rtol)
        self._steps: set[int | None] = set()
        self._worst: dict[tuple[str, str], _Worst] = {}
        self._index: dict[tuple[str, str], int] = {}
        self._structure_ok = True

    @property
    def steps_checked(self) -> int:
        """Number of distinct steps at which the ledger was checked."""
        return len(self._steps)

    def check(self, ledger: Ledger, marks: Any = None, step: int | None = None, *,
              raise_on_failure: bool = True) -> list[Residual]:
        """Measure every identity now, record it, and raise if one is broken.

        Args:
            ledger: The ledger to check.
            marks: Optional ``float[n_instruments]`` mark prices.
            step: Model step of the check (for the report's ``worst_step``).
            raise_on_failure: Raise on a broken invariant (default); otherwise
                only record it (the report's ``ok`` turns False).

        Returns:
            The residuals of this check.

        Raises:
            LedgerInvariantError: As :func:`check_conservation`.
            ValueError: On badly shaped ``marks``.
        """
        errors = _structure_errors(ledger)
        residuals = conservation_residuals(ledger, marks, self.rtol)
        self._steps.add(step)
        self._structure_ok &= not errors
        perps = iter(np.flatnonzero(_held_kinds(ledger)).tolist())
        for a, res in enumerate(residuals):
            key = (res.invariant, res.subject)
            if key not in self._worst:
                self._worst[key] = _Worst()
                if res.invariant == "supply":
                    self._index[key] = a
                elif res.invariant == "open_interest":
                    self._index[key] = next(perps)
            self._worst[key].update(res, step)
        if raise_on_failure:
            _raise_first(errors, residuals)
        return residuals

    def report(self, asset_names: Any = None, instrument_names: Any = None) -> dict[str, Any]:
        """What was measured, as plain data for ``summary.json``.

        Args:
            asset_names: Names per asset index (default: the subjects'
                ``"asset <name>"`` without the prefix).
            instrument_names: Names per instrument index for the perps
                (default: ``"perp <j> (<base>/<quote>)"``).

        Returns:
            ``{"ok", "rtol", "tolerance_rule", "steps_checked", "structure_ok",
            "assets": {name: figures}, "perps": {name: figures}, "clearing":
            worst, "flows": worst}``, where figures are ``final`` (signed
            discrepancy at the last check), ``final_rel`` (over the magnitude of
            the terms), ``final_tolerance``, ``final_magnitude``, ``worst_abs``,
            ``worst_rel``, ``worst_ratio`` (``|discrepancy| / tolerance``, > 1
            fails), ``worst_step`` and ``ok``; ``clearing`` and ``flows`` give
            the identity with the largest ``worst_ratio`` (its ``subject`` too),
            or None when there is none.
        """
        out: dict[str, Any] = {
            "ok": bool(self._structure_ok
                       and all(w.worst_ratio <= 1.0 for w in self._worst.values())),
            "rtol": self.rtol,
            "tolerance_rule": "(rtol + n*eps)*magnitude + 4*eps*budget (sim.ledger.invariants)",
            "steps_checked": self.steps_checked,
            "structure_ok": bool(self._structure_ok),
            "assets": {}, "perps": {}, "clearing": None, "flows": None,
        }
        for (inv, subject), w in self._worst.items():
            if inv == "supply":
                a = self._index[(inv, subject)]
                name = asset_names[a] if asset_names is not None else subject.removeprefix("asset ")
                out["assets"][name] = w.as_dict()
            elif inv == "open_interest":
                j = self._index[(inv, subject)]
                name = instrument_names[j] if instrument_names is not None else subject
                out["perps"][name] = w.as_dict()
            else:
                group = "flows" if inv == "flows" else "clearing"
                best = out[group]
                if best is None or w.worst_ratio > best["worst_ratio"]:
                    out[group] = {"subject": f"{inv}: {subject}", **w.as_dict()}
        return out
