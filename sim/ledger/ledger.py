"""The ledger: every holder of value is a row of arrays.

A :class:`Ledger` holds, for each account row, a balance per asset
(``collateral``), a signed position and average entry price per perpetual
(``position``, ``entry_price``), who owns it (``owner``, ``protocol``) and what
kind of holder it is (:class:`HolderKind`). Special holders are rows too: the
protocol treasury, the insurance fund, each protocol's perpetual clearing
account, and the outside WORLD, whose balance mirrors what was deposited (it is
the only row that is negative by design).

Accounting conventions (all checked by :mod:`sim.ledger.invariants`):

* Value only moves between rows, except :meth:`Ledger.mint` and
  :meth:`Ledger.burn`, which are recorded in ``minted`` / ``burned``. Hence
  per asset ``sum(collateral[:, a]) == minted[a] - burned[a]``.
* Perpetuals use average-cost accounting as on Binance USDS-M (and BitMEX,
  dYdX, Hyperliquid): realised P&L on reduction, wallet balance + unrealised
  P&L = margin balance. Realised P&L is paid by the instrument's CLEARING row,
  so the clearing balance always equals the traders' aggregate unrealised P&L
  (``-sum(position * entry)``, see :func:`sim.ledger.invariants.check_conservation`).
* Spot holdings are collateral of the base asset; spot trades are swaps.
  Balances may go negative (a unified-account borrow): the ledger records it,
  the margin engine prices it, nothing is hidden or clipped.
* Fees are ``notional * rate`` in the quote asset, paid to a fee row (usually
  the TREASURY); negative rates are rebates paid by the fee row.
* Funding: each holder pays ``position * mark * rate`` quote to the CLEARING
  row (longs pay shorts when ``rate > 0``), Binance USDS-M convention.
* Reporting arrays ``realised_pnl`` (received), ``fees_paid`` and
  ``funding_paid`` (paid; negative for receivers) are cumulative, per row and
  per instrument, in that instrument's quote asset. Each sums to zero over
  rows.

Python-level operations validate their arguments and raise ``ValueError`` with a
one-line message naming the bad argument; bulk work is done by the kernels in
:mod:`sim.ledger.kernels`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from enum import IntEnum
from typing import Any

import numpy as np

from margin.engine import OPTION as _OPTION
from margin.engine import PERP as _PERP
from margin.engine import SPOT as _SPOT
from sim.ledger import kernels

__all__ = ["HolderKind", "InstrumentKind", "Ledger"]


class HolderKind(IntEnum):
    """Kind of holder an account row represents.

    Attributes:
        TRADER: An agent's trading account (several may share one owner).
        TREASURY: Protocol fee income.
        INSURANCE: A protocol's insurance fund.
        CLEARING: A protocol's perpetual settlement account; its balance changes
            only through fills, position transfers and funding.
        WORLD: The outside world; deposits come from it and withdrawals go to
            it, so its balance is minus the net deposits. Exactly one, row 0.
    """

    TRADER = 0
    TREASURY = 1
    INSURANCE = 2
    CLEARING = 3
    WORLD = 4


class InstrumentKind(IntEnum):
    """Kind of instrument a ledger column describes.

    Attributes:
        SPOT: Spot pair; trades swap base and quote collateral.
        PERP: Linear perpetual future, margined and settled in its quote asset.
        OPTION: European option, premium paid in full in its quote asset at the
            fill and cash-settled at expiry through its CLEARING row.

    The values are :data:`margin.engine.SPOT`, :data:`margin.engine.PERP` and
    :data:`margin.engine.OPTION`, the one definition of instrument kinds.
    """

    SPOT = _SPOT
    PERP = _PERP
    OPTION = _OPTION


_ROW_ARRAYS: dict[str, str] = {
    # name: shape kind ("assets", "instruments" or "scalar") -- dtype below
    "collateral": "assets",
    "position": "instruments",
    "entry_price": "instruments",
    "realised_pnl": "instruments",
    "fees_paid": "instruments",
    "funding_paid": "instruments",
    "owner": "scalar",
    "protocol": "scalar",
    "kind": "scalar",
}
_DTYPES: dict[str, Any] = {"owner": np.int64, "protocol": np.int64, "kind": np.int8}


def _index(name: str, value: Any) -> int:
    """Return ``value`` as a Python int or raise a one-line ``ValueError``."""
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def _finite(name: str, value: Any) -> float:
    """Return ``value`` as a finite float or raise."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return x


def _amount(name: str, value: Any) -> float:
    """Return a finite, non-negative amount or raise."""
    x = _finite(name, value)
    if x < 0.0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return x


def _positive(name: str, value: Any) -> float:
    """Return a finite, strictly positive number or raise."""
    x = _finite(name, value)
    if x <= 0.0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return x


def _kernel_input(values: Any, dtype: Any) -> np.ndarray:
    """A C-contiguous, writable array of ``dtype`` (copied only if needed).

    Keeps one compiled specialisation per kernel: numba types read-only and
    non-contiguous arrays separately.
    """
    return np.require(values, dtype=dtype, requirements=["C", "W"])


def _readonly(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


class Ledger:
    """Accounts as rows of arrays, with conserving operations.

    Array attributes (``collateral``, ``position``, ``entry_price``, ``owner``,
    ``protocol``, ``kind``, ``realised_pnl``, ``fees_paid``, ``funding_paid``)
    are read-only views of the live ``[:n_accounts]`` rows. They are re-created
    on every access; do not keep one across :meth:`open_account`, which may
    reallocate. Every change goes through a method.

    Args:
        asset_names: Distinct asset names; asset ``a`` is column ``a`` of
            ``collateral``.
        instrument_kind: :class:`InstrumentKind` per instrument.
        instrument_base: Base asset index per instrument.
        instrument_quote: Quote (settlement) asset index per instrument.
        initial_capacity: Rows allocated before the first growth (doubling).

    Raises:
        ValueError: On duplicate or empty asset names, mismatched instrument
            arrays, unknown kinds or asset indices, or base == quote.

    Example:
        >>> led = Ledger(["USD", "BTC"], [InstrumentKind.PERP], [1], [0])
        >>> clr = led.open_account(HolderKind.CLEARING, protocol=0)
        >>> led.set_clearing(0, clr)
        >>> alice = led.open_account(owner=1, protocol=0)
        >>> led.deposit(alice, "USD", 1_000.0)
    """

    world_row: int = 0

    def __init__(
        self,
        asset_names: Sequence[str],
        instrument_kind: Sequence[int] | np.ndarray,
        instrument_base: Sequence[int] | np.ndarray,
        instrument_quote: Sequence[int] | np.ndarray,
        *,
        initial_capacity: int = 16,
    ) -> None:
        self._init_assets(asset_names)
        self._init_instruments(instrument_kind, instrument_base, instrument_quote)
        cap = _index("initial_capacity", initial_capacity)
        if cap < 1:
            raise ValueError(f"initial_capacity must be >= 1, got {initial_capacity!r}")
        self._n = 0
        self._rows = {name: self._alloc(name, cap) for name in _ROW_ARRAYS}
        self._dirty = np.ones(cap, dtype=np.bool_)  # rows changed since last taken (take_dirty)
        self._minted = np.zeros(self.n_assets)
        self._burned = np.zeros(self.n_assets)
        self._clearing = np.full(self.n_instruments, -1, dtype=np.int64)
        # Round-off budgets (sum of magnitudes of every float update); see kernels.
        self._budget_asset = np.zeros(self.n_assets)
        self._budget_base = np.zeros(self.n_instruments)
        self._budget_quote = np.zeros(self.n_instruments)
        self._open_row(HolderKind.WORLD, -1, -1)

    # ------------------------------------------------------------------ setup
    def _init_assets(self, asset_names: Sequence[str]) -> None:
        names = tuple(asset_names)
        if not names:
            raise ValueError("asset_names must not be empty")
        for name in names:
            if not isinstance(name, str) or not name:
                raise ValueError(f"asset_names must be non-empty strings, got {name!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"asset_names must be distinct, got {list(names)}")
        self.asset_names: tuple[str, ...] = names
        self._asset_index = {name: a for a, name in enumerate(names)}

    def _init_instruments(self, kind: Any, base: Any, quote: Any) -> None:
        k = np.asarray(kind)
        b = np.asarray(base)
        q = np.asarray(quote)
        if k.ndim != 1 or b.shape != k.shape or q.shape != k.shape:
            raise ValueError(
                "instrument_kind, instrument_base and instrument_quote must be 1-D "
                f"and of equal length, got shapes {k.shape}, {b.shape}, {q.shape}"
            )
        for name, arr in (("instrument_kind", k), ("instrument_base", b), ("instrument_quote", q)):
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
        if not np.isin(k, [InstrumentKind.SPOT, InstrumentKind.PERP, InstrumentKind.OPTION]).all():
            raise ValueError(f"instrument_kind must be 0 (SPOT), 1 (PERP) or 2 (OPTION), "
                             f"got {k.tolist()}")
        for name, arr in (("instrument_base", b), ("instrument_quote", q)):
            if ((arr < 0) | (arr >= len(self.asset_names))).any():
                raise ValueError(
                    f"{name} must be asset indices in [0, {len(self.asset_names)}), "
                    f"got {arr.tolist()}"
                )
        same = (b == q) & (k != InstrumentKind.OPTION)  # an inverse option settles in its base
        if same.any():
            raise ValueError(f"instrument {int(np.flatnonzero(same)[0])} has base == quote")
        self.instrument_kind = _readonly(k.astype(np.int8))
        self.instrument_base = _readonly(b.astype(np.int64))
        self.instrument_quote = _readonly(q.astype(np.int64))
        self._is_perp = self.instrument_kind == InstrumentKind.PERP
        self._is_option = self.instrument_kind == InstrumentKind.OPTION
        self._quote = q.astype(np.int64)  # writable copy for kernels

    def _alloc(self, name: str, cap: int) -> np.ndarray:
        shape_kind = _ROW_ARRAYS[name]
        dtype = _DTYPES.get(name, np.float64)
        if shape_kind == "assets":
            return np.zeros((cap, self.n_assets), dtype=dtype)
        if shape_kind == "instruments":
            return np.zeros((cap, self.n_instruments), dtype=dtype)
        return np.zeros(cap, dtype=dtype)

    def _grow(self) -> None:
        cap = 2 * len(self._rows["owner"])
        for name, old in self._rows.items():
            new = self._alloc(name, cap)
            new[: self._n] = old[: self._n]
            self._rows[name] = new
        dirty = np.ones(cap, dtype=np.bool_)
        dirty[: self._n] = self._dirty[: self._n]
        self._dirty = dirty

    def _open_row(self, kind: int, owner: int, protocol: int) -> int:
        if self._n == len(self._rows["owner"]):
            self._grow()
        row = self._n
        self._rows["kind"][row] = kind
        self._rows["owner"][row] = owner
        self._rows["protocol"][row] = protocol
        self._n += 1
        return row

    # ------------------------------------------------------------ properties
    @property
    def n_assets(self) -> int:
        """Number of assets (columns of ``collateral``)."""
        return len(self.asset_names)

    @property
    def n_instruments(self) -> int:
        """Number of instruments (columns of ``position``)."""
        return len(self.instrument_kind)

    @property
    def n_accounts(self) -> int:
        """Number of open rows, the WORLD row included."""
        return self._n

    def _live(self, name: str) -> np.ndarray:
        return _readonly(self._rows[name][: self._n])

    @property
    def collateral(self) -> np.ndarray:
        """``float64[n, n_assets]`` balances, units of each asset."""
        return self._live("collateral")

    @property
    def position(self) -> np.ndarray:
        """``float64[n, n_instruments]`` signed perp positions, base units (spot columns are 0)."""
        return self._live("position")

    @property
    def entry_price(self) -> np.ndarray:
        """``float64[n, n_instruments]`` average entry price (cost basis per unit), 0 when flat."""
        return self._live("entry_price")

    @property
    def owner(self) -> np.ndarray:
        """``int64[n]`` owning agent id, -1 if none."""
        return self._live("owner")

    @property
    def protocol(self) -> np.ndarray:
        """``int64[n]`` protocol id, -1 if none."""
        return self._live("protocol")

    @property
    def kind(self) -> np.ndarray:
        """``int8[n]`` :class:`HolderKind` of each row."""
        return self._live("kind")

    @property
    def realised_pnl(self) -> np.ndarray:
        """``float64[n, n_instruments]`` cumulative realised P&L received, quote units."""
        return self._live("realised_pnl")

    @property
    def fees_paid(self) -> np.ndarray:
        """``float64[n, n_instruments]`` cumulative fees paid, quote units (< 0 for receivers)."""
        return self._live("fees_paid")

    @property
    def funding_paid(self) -> np.ndarray:
        """``float64[n, n_instruments]`` cumulative funding paid, quote units (< 0 received)."""
        return self._live("funding_paid")

    @property
    def minted(self) -> np.ndarray:
        """``float64[n_assets]`` cumulative quantity created by :meth:`mint`."""
        return _readonly(self._minted)

    @property
    def burned(self) -> np.ndarray:
        """``float64[n_assets]`` cumulative quantity destroyed by :meth:`burn`."""
        return _readonly(self._burned)

    @property
    def clearing_row(self) -> np.ndarray:
        """``int64[n_instruments]`` CLEARING row of each perp or option, -1 if unset (spot: -1)."""
        return _readonly(self._clearing)

    # ------------------------------------------------------------ validation
    def asset_index(self, asset: int | str) -> int:
        """Return the column of ``asset``, given by name or index.

        Raises:
            ValueError: If the asset is unknown.
        """
        if isinstance(asset, str):
            if asset not in self._asset_index:
                raise ValueError(f"asset {asset!r} is unknown; known: {list(self.asset_names)}")
            return self._asset_index[asset]
        a = _index("asset", asset)
        if not 0 <= a < self.n_assets:
            raise ValueError(f"asset {a} is out of range [0, {self.n_assets})")
        return a

    def _row(self, name: str, row: Any) -> int:
        r = _index(name, row)
        if not 0 <= r < self._n:
            raise ValueError(f"{name} {r} is not an open account (n_accounts={self._n})")
        return r

    def _holder_row(self, name: str, row: Any) -> int:
        """A row that may hold collateral moved by plain transfers (not CLEARING)."""
        r = self._row(name, row)
        if self._rows["kind"][r] == HolderKind.CLEARING:
            raise ValueError(
                f"{name} {r} is a CLEARING row; its balance changes only through fills and funding"
            )
        return r

    def _trading_row(self, name: str, row: Any) -> int:
        """A row that may hold positions (not WORLD, not CLEARING)."""
        r = self._holder_row(name, row)
        if r == self.world_row:
            raise ValueError(f"{name} {r} is the WORLD row and cannot trade")
        return r

    def _instrument(self, instrument: Any) -> int:
        j = _index("instrument", instrument)
        if not 0 <= j < self.n_instruments:
            raise ValueError(f"instrument {j} is out of range [0, {self.n_instruments})")
        return j

    def _cleared_perp(self, instrument: Any, options: bool = False) -> int:
        j = self._instrument(instrument)
        if not (self._is_perp[j] or (options and self._is_option[j])):
            kinds = "a perpetual or an option" if options else "a perpetual"
            raise ValueError(f"instrument {j} is not {kinds}")
        if self._clearing[j] < 0:
            raise ValueError(f"instrument {j} has no CLEARING row; call set_clearing first")
        return j

    def _marks(self, marks: Any) -> np.ndarray:
        m = _kernel_input(marks, np.float64)
        if m.shape != (self.n_instruments,):
            raise ValueError(f"marks must have shape ({self.n_instruments},), got {m.shape}")
        if not np.isfinite(m[self._is_perp | self._is_option]).all():
            raise ValueError("marks must be finite for every perpetual and option")
        return m

    def _asset_prices(self, prices: Any) -> np.ndarray:
        p = _kernel_input(prices, np.float64)
        if p.shape != (self.n_assets,):
            raise ValueError(f"asset_prices must have shape ({self.n_assets},), got {p.shape}")
        if not np.isfinite(p).all():
            raise ValueError("asset_prices must be finite")
        return p

    # -------------------------------------------------------------- accounts
    def open_account(
        self, kind: int = HolderKind.TRADER, owner: int = -1, protocol: int = -1
    ) -> int:
        """Open a new row and return its id.

        Args:
            kind: :class:`HolderKind` other than WORLD (there is one WORLD row).
            owner: Agent or person id, -1 if none; accounts may share an owner.
            protocol: Protocol id, -1 if none.

        Returns:
            The new row id (rows are never reused or closed).

        Raises:
            ValueError: On an unknown kind, a second WORLD, or ids below -1.
        """
        k = _index("kind", kind)
        if k not in set(HolderKind) or k == HolderKind.WORLD:
            raise ValueError(f"kind must be TRADER, TREASURY, INSURANCE or CLEARING, got {kind!r}")
        o = _index("owner", owner)
        p = _index("protocol", protocol)
        if o < -1 or p < -1:
            raise ValueError(f"owner and protocol must be >= -1, got owner={o}, protocol={p}")
        return self._open_row(k, o, p)

    def set_clearing(self, instrument: int, row: int) -> None:
        """Make ``row`` (a CLEARING row) the settlement account of a perp or an option.

        One clearing row may serve several perps and options of one protocol,
        provided they settle in the same quote asset (its balance is one number
        per asset). An option's clearing row pays its expiry settlement.

        Raises:
            ValueError: If the instrument is spot, the row is not CLEARING,
                the instrument has open positions, or the row already clears
                an instrument with another quote asset.
        """
        j = self._instrument(instrument)
        if not (self._is_perp[j] or self._is_option[j]):
            raise ValueError(f"instrument {j} is not a perpetual or an option")
        r = self._row("row", row)
        if self._rows["kind"][r] != HolderKind.CLEARING:
            raise ValueError(f"row {r} is not a CLEARING row")
        if np.any(self._rows["position"][: self._n, j] != 0.0):
            raise ValueError(f"instrument {j} has open positions; its clearing row cannot change")
        others = np.flatnonzero((self._clearing == r) & (np.arange(self.n_instruments) != j))
        quote = self.instrument_quote[j]
        if others.size and (self.instrument_quote[others] != quote).any():
            raise ValueError(f"row {r} already clears an instrument with a different quote asset")
        self._clearing[j] = r

    # ----------------------------------------------------- collateral moves
    def _move(self, src: int, dst: int, a: int, amount: float) -> None:
        self._dirty[src] = self._dirty[dst] = True
        c = self._rows["collateral"]
        c[src, a] -= amount
        c[dst, a] += amount
        self._budget_asset[a] += abs(c[src, a]) + abs(c[dst, a])

    def _require_balance(self, row: int, a: int, amount: float, what: str) -> None:
        if row == self.world_row:
            return
        balance = float(self._rows["collateral"][row, a])
        if amount > 0.0 and balance - amount < 0.0:
            raise ValueError(
                f"amount {amount!r} of {what} exceeds the balance {balance!r} "
                f"of {self.asset_names[a]} in row {row}"
            )

    def deposit(self, row: int, asset: int | str, amount: float) -> None:
        """Move ``amount`` of ``asset`` from the WORLD row into ``row``.

        Raises:
            ValueError: On an unknown row or asset, a negative or non-finite
                amount, or ``row`` being WORLD or CLEARING.
        """
        r = self._trading_row("row", row)
        a = self.asset_index(asset)
        x = _amount("amount", amount)
        self._move(self.world_row, r, a, x)

    def withdraw(self, row: int, asset: int | str, amount: float) -> None:
        """Move ``amount`` of ``asset`` from ``row`` to the WORLD row.

        Raises:
            ValueError: As :meth:`deposit`, or if the balance would go negative.
        """
        r = self._trading_row("row", row)
        a = self.asset_index(asset)
        x = _amount("amount", amount)
        self._require_balance(r, a, x, "withdrawal")
        self._move(r, self.world_row, a, x)

    def transfer(
        self, src: int, dst: int, asset: int | str, amount: float, allow_negative: bool = False
    ) -> None:
        """Move ``amount`` of ``asset`` from ``src`` to ``dst``.

        Args:
            src: Paying row (the WORLD row acts as a deposit).
            dst: Receiving row.
            asset: Asset name or index.
            amount: Quantity, finite and >= 0.
            allow_negative: Let ``src`` go negative (an explicit borrow or a
                loss booked against an account); otherwise refused.

        Raises:
            ValueError: On unknown rows or asset, ``src == dst``, a CLEARING row,
                a bad amount, or a negative result without ``allow_negative``.
        """
        s = self._holder_row("src", src)
        d = self._holder_row("dst", dst)
        if s == d:
            raise ValueError(f"src and dst are the same row {s}")
        a = self.asset_index(asset)
        x = _amount("amount", amount)
        if not allow_negative:
            self._require_balance(s, a, x, "transfer")
        self._move(s, d, a, x)

    def mint(self, row: int, asset: int | str, amount: float) -> None:
        """Create ``amount`` of ``asset`` in ``row``; recorded in ``minted``.

        Raises:
            ValueError: On an unknown row or asset, a CLEARING row or a bad amount.
        """
        r = self._holder_row("row", row)
        a = self.asset_index(asset)
        x = _amount("amount", amount)
        c = self._rows["collateral"]
        c[r, a] += x
        self._dirty[r] = True
        self._minted[a] += x
        self._budget_asset[a] += abs(c[r, a]) + abs(self._minted[a])

    def burn(self, row: int, asset: int | str, amount: float) -> None:
        """Destroy ``amount`` of ``asset`` held by ``row``; recorded in ``burned``.

        Raises:
            ValueError: As :meth:`mint`, or if a non-WORLD balance would go negative.
        """
        r = self._holder_row("row", row)
        a = self.asset_index(asset)
        x = _amount("amount", amount)
        self._require_balance(r, a, x, "burn")
        c = self._rows["collateral"]
        c[r, a] -= x
        self._dirty[r] = True
        self._burned[a] += x
        self._budget_asset[a] += abs(c[r, a]) + abs(self._burned[a])

    # ----------------------------------------------------------------- fills
    def _fill_rows(self, name: str, rows: Any) -> np.ndarray:
        arr = np.asarray(rows)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"{name} must be a 1-D integer array")
        arr = _kernel_input(arr, np.int64)
        if ((arr < 0) | (arr >= self._n)).any():
            raise ValueError(f"{name} holds rows outside [0, {self._n})")
        kinds = self._rows["kind"][arr]
        if ((kinds == HolderKind.WORLD) | (kinds == HolderKind.CLEARING)).any():
            raise ValueError(f"{name} holds a WORLD or CLEARING row, which cannot trade")
        return arr

    @staticmethod
    def _fill_floats(name: str, values: Any, k: int, positive: bool) -> np.ndarray:
        try:
            arr = np.asarray(values, dtype=np.float64)
            arr = _kernel_input(np.broadcast_to(arr, (k,)), np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number or an array of {k} numbers") from None
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} must be finite")
        if positive and (arr <= 0.0).any():
            raise ValueError(f"{name} must be > 0")
        return arr

    def settle_fills(
        self,
        instrument: int,
        maker_rows: Any,
        taker_rows: Any,
        taker_side: Any,
        price: Any,
        qty: Any,
        maker_fee_rate: Any,
        taker_fee_rate: Any,
        fee_row: int,
        *,
        checked: bool = True,
    ) -> None:
        """Settle a batch of fills of one instrument, in the given order.

        SPOT: the buyer receives ``qty`` base and pays ``qty * price`` quote, the
        seller the opposite (balances may go negative). PERP: average-cost
        accounting as in Binance USDS-M: an increase moves the entry to the
        weighted average, a reduction realises ``closed * (price - entry) *
        sign`` into quote collateral, paid by the CLEARING row, a flip realises
        the closed part and opens the rest at ``price``. Then maker and taker
        each pay ``qty * price * rate`` quote to ``fee_row`` (negative rate =
        rebate paid by ``fee_row``).

        Args:
            instrument: Instrument index.
            maker_rows: ``int[k]`` resting-order accounts.
            taker_rows: ``int[k]`` aggressing accounts.
            taker_side: ``int[k]``, +1 taker buys, -1 taker sells.
            price: ``float[k]`` fill prices, quote per base, > 0.
            qty: ``float[k]`` fill quantities, base units, > 0.
            maker_fee_rate: Scalar or ``float[k]`` maker fee rate.
            taker_fee_rate: Scalar or ``float[k]`` taker fee rate.
            fee_row: Row receiving the fees (usually a TREASURY).
            checked: Validate the arguments (default). ``False`` is the hot
                path for fills straight from an order book, whose rows, sides,
                prices and quantities are valid by construction: int64 rows,
                +-1 sides, positive float64 prices and quantities, scalar rates.

        Raises:
            ValueError: On a bad instrument, unset clearing row, mismatched or
                non-finite arrays, non-positive price or qty, a side not in
                {+1, -1}, or a WORLD/CLEARING trading row or CLEARING fee row.
        """
        if not checked:
            self._settle_unchecked(int(instrument), maker_rows, taker_rows, taker_side, price, qty,
                                   float(maker_fee_rate), float(taker_fee_rate), int(fee_row))
            return
        j = self._instrument(instrument)
        if self._is_perp[j]:
            self._cleared_perp(j)
        makers = self._fill_rows("maker_rows", maker_rows)
        takers = self._fill_rows("taker_rows", taker_rows)
        k = len(makers)
        side = np.asarray(taker_side)
        if takers.shape != (k,) or side.shape != (k,):
            raise ValueError("maker_rows, taker_rows and taker_side must have equal length")
        if k and not np.isin(side, (-1, 1)).all():
            raise ValueError("taker_side must hold only +1 (buy) or -1 (sell)")
        side = _kernel_input(side, np.int64)
        p = self._fill_floats("price", price, k, positive=True)
        x = self._fill_floats("qty", qty, k, positive=True)
        mfr = self._fill_floats("maker_fee_rate", maker_fee_rate, k, positive=False)
        tfr = self._fill_floats("taker_fee_rate", taker_fee_rate, k, positive=False)
        f = self._holder_row("fee_row", fee_row)
        if k == 0:
            return
        self._touch_fills(j, makers, takers, f)
        kernels.settle_fills(
            *self._kernel_arrays(
                "collateral", "position", "entry_price", "realised_pnl", "fees_paid"
            ),
            self._budget_asset, self._budget_base, self._budget_quote,
            j, int(self.instrument_kind[j]), int(self.instrument_base[j]),
            int(self.instrument_quote[j]), int(self._clearing[j]),
            makers, takers, side, p, x, mfr, tfr, f,
        )

    def _settle_unchecked(self, j: int, makers: np.ndarray, takers: np.ndarray, side: np.ndarray,
                          price: np.ndarray, qty: np.ndarray, mfr: float, tfr: float,
                          fee_row: int) -> None:
        k = len(makers)
        if k == 0:
            return
        self._touch_fills(j, makers, takers, fee_row)
        c64 = np.ascontiguousarray
        kernels.settle_fills(
            *self._kernel_arrays(
                "collateral", "position", "entry_price", "realised_pnl", "fees_paid"
            ),
            self._budget_asset, self._budget_base, self._budget_quote,
            j, int(self.instrument_kind[j]), int(self.instrument_base[j]),
            int(self.instrument_quote[j]), int(self._clearing[j]),
            c64(makers, np.int64), c64(takers, np.int64), c64(side, np.int64),
            c64(price, np.float64), c64(qty, np.float64), np.full(k, mfr), np.full(k, tfr), fee_row,
        )

    def _touch_fills(self, j: int, makers: Any, takers: Any, fee_row: int) -> None:
        """Mark the rows a batch of fills changes: both sides, the fee row, the clearing row."""
        d = self._dirty
        d[makers] = True
        d[takers] = True
        d[fee_row] = True
        if self._clearing[j] >= 0:
            d[self._clearing[j]] = True

    def _kernel_arrays(self, *names: str) -> list[np.ndarray]:
        return [self._rows[name][: self._n] for name in names]

    def transfer_position(
        self, instrument: int, src: int, dst: int, qty: float, price: float
    ) -> tuple[float, float]:
        """Move ``qty`` of a perp position from ``src`` to ``dst`` at ``price``.

        Used for liquidation backstops and auto-deleveraging: it is a fee-free
        trade in which ``src`` trades ``-qty`` and ``dst`` trades ``+qty`` at
        ``price`` (e.g. the bankruptcy price), each realising P&L through the
        CLEARING row by the average-cost rule of :meth:`settle_fills`. For an
        option, ``dst`` pays the premium ``qty * price`` to ``src`` instead
        (negative for a short moved: ``src`` pays to be rid of the liability).

        Args:
            instrument: Perp index.
            src: Row giving up the position.
            dst: Row taking it (its own position may net against it, as in ADL).
            qty: Signed quantity, same sign as ``src``'s position and no larger
                in size (this moves an existing position, it never opens one
                for ``src``).
            price: Transfer price, quote per base, > 0.

        Returns:
            ``(realised_src, realised_dst)`` in quote units.

        Raises:
            ValueError: On a bad instrument, rows, ``src == dst``, or a ``qty``
                of the wrong sign, zero, or larger than ``src``'s position.
        """
        j = self._cleared_perp(instrument, options=True)
        s = self._trading_row("src", src)
        d = self._trading_row("dst", dst)
        if s == d:
            raise ValueError(f"src and dst are the same row {s}")
        q = _finite("qty", qty)
        held = float(self._rows["position"][s, j])
        if q == 0.0 or held == 0.0 or (q > 0.0) != (held > 0.0) or abs(q) > abs(held):
            raise ValueError(
                f"qty {qty!r} must be non-zero, of the sign of src's position {held!r} "
                "and no larger"
            )
        p = _positive("price", price)
        self._dirty[s] = self._dirty[d] = True
        if self._clearing[j] >= 0:
            self._dirty[self._clearing[j]] = True
        if self._is_option[j]:
            kernels.transfer_option(
                *self._kernel_arrays("collateral", "position", "entry_price"),
                self._budget_asset, self._budget_base, self._budget_quote,
                j, int(self.instrument_quote[j]), s, d, q, p,
            )
            return 0.0, 0.0
        r_src, r_dst = kernels.transfer_position(
            *self._kernel_arrays("collateral", "position", "entry_price", "realised_pnl"),
            self._budget_asset, self._budget_base, self._budget_quote,
            j, int(self.instrument_quote[j]), int(self._clearing[j]), s, d, q, p,
        )
        return float(r_src), float(r_dst)

    def settle_option(self, instrument: int, payoff: float) -> float:
        """Cash-settle an option at expiry: each holder receives ``q * payoff`` quote.

        Paid by the option's CLEARING row (whose net is zero because longs
        equal shorts); every position and average premium of the option is
        set to zero. Deribit settles its European options in cash against the
        index TWAP of the last 30 minutes; the caller computes ``payoff``.

        Args:
            instrument: Option index.
            payoff: Settlement value per unit of position, quote units, >= 0.

        Returns:
            The total received by the longs, quote units.

        Raises:
            ValueError: On a bad instrument, an unset clearing row or a bad payoff.
        """
        j = self._cleared_perp(instrument, options=True)
        if not self._is_option[j]:
            raise ValueError(f"instrument {j} is not an option")
        x = _amount("payoff", payoff)
        self._dirty[: self._n] = True
        paid = kernels.settle_option(
            *self._kernel_arrays("collateral", "position", "entry_price", "realised_pnl"),
            self._budget_asset, self._budget_base, self._budget_quote,
            j, int(self.instrument_quote[j]), int(self._clearing[j]), x,
        )
        return float(paid)

    # --------------------------------------------------------------- funding
    def apply_funding(self, instrument: int, rate: float, mark_price: float) -> float:
        """Charge one funding payment on a perp.

        Every account with position ``q`` pays ``q * mark_price * rate`` quote to
        the CLEARING row, so longs pay shorts when ``rate > 0`` (Binance USDS-M:
        funding amount = position notional at mark x funding rate). The clearing
        row nets to zero up to rounding because longs equal shorts.

        Args:
            instrument: Perp index.
            rate: Funding rate for the interval (e.g. 0.0001 for 0.01 %).
            mark_price: Mark price, quote per base, > 0.

        Returns:
            The total paid by longs, quote units (negative when longs receive).

        Raises:
            ValueError: On a bad instrument, a non-finite rate or bad mark.
        """
        j = self._cleared_perp(instrument)
        r = _finite("rate", rate)
        m = _positive("mark_price", mark_price)
        self._dirty[: self._n] = True
        paid = kernels.apply_funding(
            *self._kernel_arrays("collateral", "position", "funding_paid"),
            self._budget_asset, self._budget_base, self._budget_quote,
            j, int(self.instrument_quote[j]), int(self._clearing[j]), r, m,
        )
        return float(paid)

    # ----------------------------------------------------------- change record
    def take_dirty(self, rows: Any) -> np.ndarray:
        """Which of ``rows`` changed since they were last taken; their flags are cleared.

        Every method that moves a balance or a position marks the rows it
        changes (funding and option settlement mark every row; a new row
        starts marked), so a caller that cached a row-wise valuation can
        refresh exactly the rows that moved (the liquidation waterfall's
        account values within a round).

        Args:
            rows: ``int[k]`` rows of this ledger.

        Returns:
            ``bool[k]``: True where the row changed.
        """
        r = np.asarray(rows, dtype=np.int64)
        out = self._dirty[r].copy()
        self._dirty[r[out]] = False
        return out

    def clear_dirty(self) -> None:
        """Clear every row's change flag (after valuing the whole ledger)."""
        self._dirty[: self._n] = False

    # ------------------------------------------------------------- valuation
    def unrealised_pnl_by_instrument(self, marks: Any, rows: Any = None) -> np.ndarray:
        """``float64[n, n_instruments]`` of ``q_ij * (mark_j - entry_ij)``, quote units.

        Args:
            marks: ``float[n_instruments]`` mark prices (spot entries ignored).
            rows: If given, only these rows, in this order (``float64[len(rows),
                n_instruments]``, the same values as ``unrealised_pnl_by_instrument
                (marks)[rows]`` at the cost of those rows alone).
        """
        m = self._marks(marks)
        pos, entry = self._kernel_arrays("position", "entry_price")
        if rows is not None:
            return kernels.unrealised_matrix_rows(pos, entry, m, self._is_perp,
                                                  self._rows_arg(rows))
        return kernels.unrealised_matrix(pos, entry, m, self._is_perp)

    def unrealised_pnl(self, marks: Any) -> np.ndarray:
        """``float64[n]`` unrealised P&L ``sum_j q_ij * (mark_j - entry_ij)`` over perps.

        The sum is in quote units; with perps of different quote assets use
        :meth:`unrealised_pnl_by_instrument` or :meth:`account_value`.

        Args:
            marks: ``float[n_instruments]`` mark prices (spot entries ignored).
        """
        return self.unrealised_pnl_by_instrument(marks).sum(axis=1)

    def _rows_arg(self, rows: Any) -> np.ndarray:
        """``rows`` as a C-contiguous int64 array of open rows, or a one-line ``ValueError``."""
        r = np.asarray(rows)
        if r.ndim != 1 or not (r.dtype.kind in "iu" or r.size == 0):
            raise ValueError(f"rows must be a 1-D array of integers, got {rows!r}")
        r = _kernel_input(r, np.int64)
        if r.size and (int(r.min()) < 0 or int(r.max()) >= self._n):
            raise ValueError(f"rows must be open accounts in [0, {self._n}), got "
                             f"[{int(r.min())}, {int(r.max())}]")
        return r

    def notional(self, marks: Any, rows: Any = None) -> np.ndarray:
        """``float64[n]`` gross perp notional ``sum_j |q_ij| * mark_j``, quote units.

        Args:
            marks: ``float[n_instruments]`` mark prices (spot entries ignored).
            rows: If given, only these rows, in this order (``float64[len(rows)]``,
                the same values as ``notional(marks)[rows]`` at the cost of
                those rows alone).
        """
        m = self._marks(marks)
        pos = self._rows["position"][: self._n]
        if rows is not None:
            return kernels.notional_rows(pos, m, self._is_perp, self._rows_arg(rows))
        return kernels.notional(pos, m, self._is_perp)

    def account_value(self, asset_prices: Any, marks: Any, rows: Any = None) -> np.ndarray:
        """``float64[n]`` margin balance in the pricing unit.

        ``sum_a collateral_ia * price_a + sum_j unrealised_ij * price_quote(j)``,
        i.e. wallet balance + unrealised P&L (Binance's margin balance); an
        option counts at its value ``q_ij * mark_j * price_quote(j)``. A
        CLEARING row's value is its balance, which equals the traders'
        aggregate unrealised P&L; so the sum over all non-CLEARING rows (WORLD
        included) equals ``sum_a (minted_a - burned_a) * price_a`` at any prices.

        Args:
            asset_prices: ``float[n_assets]`` price of each asset in the pricing unit.
            marks: ``float[n_instruments]`` mark prices (spot entries ignored).
            rows: If given, only these rows, in this order (``float64[len(rows)]``,
                the same values as ``account_value(...)[rows]`` at the cost of
                those rows alone).
        """
        p = self._asset_prices(asset_prices)
        m = self._marks(marks)
        coll, pos, entry = self._kernel_arrays("collateral", "position", "entry_price")
        if rows is not None:
            return kernels.account_value_rows(coll, pos, entry, p, m, self._is_perp,
                                              self._quote, self._is_option,
                                              self._rows_arg(rows))
        return kernels.account_value(coll, pos, entry, p, m, self._is_perp, self._quote,
                                     self._is_option)

    # --------------------------------------------------------------- outputs
    def snapshot(self) -> dict[str, np.ndarray]:
        """Return copies of all live arrays, keyed by attribute name.

        Includes the row arrays, ``minted``, ``burned``, ``clearing_row`` and the
        instrument description; safe to keep after further operations.
        """
        out = {name: self._rows[name][: self._n].copy() for name in _ROW_ARRAYS}
        out["minted"] = self._minted.copy()
        out["burned"] = self._burned.copy()
        out["clearing_row"] = self._clearing.copy()
        out["instrument_kind"] = np.array(self.instrument_kind)
        out["instrument_base"] = np.array(self.instrument_base)
        out["instrument_quote"] = np.array(self.instrument_quote)
        return out

    def __repr__(self) -> str:
        return (
            f"Ledger(assets={list(self.asset_names)}, instruments={self.n_instruments}, "
            f"accounts={self._n})"
        )
