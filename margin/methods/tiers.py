"""Tiered (bracket) margin requirements for perpetual futures.

Venues such as Binance, Bybit and Hyperliquid raise the maintenance-margin rate
(MMR) and cut the maximum leverage as a position's notional grows. A tier table
lists the notional lower bound (``floor``) of each bracket with its rate, and a
continuity deduction ``cum`` keeps the requirement continuous in notional::

    MM(N) = N × MMR_i − mm_cum_i,   i = tier of N (largest i with floor_i ≤ N)
    mm_cum_0 = 0;  mm_cum_n = mm_cum_{n−1} + floor_n × (MMR_n − MMR_{n−1})

(reference ``margin_methods.md`` §3.3; Binance tier announcement
https://www.binance.com/tr/support/announcement/86cf9aa472574b8cb2e05bb751c2a9a6).

Initial margin uses the same construction with IMR = 1 / max leverage. Binance
itself caps the leverage per bracket, so its IM at maximum leverage,
``N × IMR_i``, jumps at each floor; the continuous form here (``im_cum``) is never
above it and equals it inside tier 0. The engine may charge a user-chosen
leverage on top (IM = N / leverage with leverage ≤ the tier's maximum).

Liquidation prices use Binance's one-way-mode formula, with the tier
re-computed at the liquidation notional (:func:`liquidation_price`).

The table is a frozen dataclass holding read-only ``float64`` arrays; the
kernels take those arrays directly so engine code can call them from ``@njit``
functions (``margin.engine``, ``margin.regimes.cross``). Neighbours: ``margin.methods.pricing``
(option values), ``margin.risk.backtest`` (coverage tests), ``margin.risk.calibration``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

__all__ = [
    "BINANCE_BTCUSDT",
    "BINANCE_ETHUSDT",
    "DYDX_LARGE_CAP",
    "HYPERLIQUID_BTC",
    "HYPERLIQUID_ETH",
    "TierTable",
    "flat_table",
    "initial_margin",
    "initial_margin_scalar",
    "liquidation_price",
    "liquidation_price_cross",
    "liquidation_price_isolated",
    "maintenance_margin",
    "maintenance_margin_scalar",
    "tier_index",
]


def _continuity_deductions(floors: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """cum_0 = 0; cum_n = cum_{n−1} + floor_n × (rate_n − rate_{n−1}) (§3.3)."""
    cum = np.zeros_like(rates)
    for n in range(1, rates.shape[0]):
        cum[n] = cum[n - 1] + floors[n] * (rates[n] - rates[n - 1])
    return cum


def _as_readonly_vector(name: str, value: object) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64).ravel() if np.ndim(value) <= 1 else None
    except (TypeError, ValueError):
        raise ValueError(f"TierTable.{name} must be a sequence of numbers, got {value!r}") from None
    if arr is None:
        raise ValueError(f"TierTable.{name} must be one-dimensional, got shape {np.shape(value)}")
    if arr.size == 0:
        raise ValueError(f"TierTable.{name} must have at least one tier")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"TierTable.{name} must be finite, got {arr.tolist()}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class TierTable:
    """A tiered (bracket) margin table with continuity deductions.

    Formula (reference ``margin_methods.md`` §3.3, Binance USDⓈ-M tiers):
    ``MM(N) = N × mmr_i − mm_cum_i`` and ``IM(N) = N × imr_i − im_cum_i`` where
    ``i`` is the tier of notional ``N`` (``floors[i] ≤ N < floors[i+1]``),
    ``imr = 1 / max_leverage`` and ``cum_n = cum_{n−1} + floor_n × (rate_n −
    rate_{n−1})``, so both requirements are continuous and non-decreasing in N.

    Attributes:
        floors: Notional lower bound of each tier (quote currency); the first is
            0 and they strictly increase.
        max_leverage: Maximum leverage per tier (≥ 1, non-increasing).
        mmr: Maintenance-margin rate per tier, in [0, 1), non-decreasing and
            not above the tier's IMR.
        max_notional: Position limit (upper bound of the last tier); ``inf`` if
            the venue states none. Informational: the kernels extend the last
            tier beyond it.
        name: Free-text label, e.g. the venue and the table's date.
        imr: Derived initial-margin rate per tier, ``1 / max_leverage``.
        mm_cum: Derived maintenance continuity deduction per tier.
        im_cum: Derived initial continuity deduction per tier.

    Raises:
        ValueError: One line naming the offending field if the table is
            inconsistent.
    """

    floors: np.ndarray
    max_leverage: np.ndarray
    mmr: np.ndarray
    max_notional: float = math.inf
    name: str = ""
    imr: np.ndarray = field(init=False, repr=False)
    mm_cum: np.ndarray = field(init=False, repr=False)
    im_cum: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        floors = _as_readonly_vector("floors", self.floors)
        lev = _as_readonly_vector("max_leverage", self.max_leverage)
        mmr = _as_readonly_vector("mmr", self.mmr)
        n = floors.size
        if lev.size != n:
            raise ValueError(f"TierTable.max_leverage has {lev.size} tiers but floors has {n}")
        if mmr.size != n:
            raise ValueError(f"TierTable.mmr has {mmr.size} tiers but floors has {n}")
        if floors[0] != 0.0:
            raise ValueError(f"TierTable.floors must start at 0, got {floors[0]}")
        if n > 1 and not np.all(np.diff(floors) > 0):
            raise ValueError(f"TierTable.floors must strictly increase, got {floors.tolist()}")
        if np.any(lev < 1.0):
            raise ValueError(f"TierTable.max_leverage must be >= 1, got {lev.tolist()}")
        if n > 1 and np.any(np.diff(lev) > 0):
            raise ValueError(
                f"TierTable.max_leverage must not increase with notional, got {lev.tolist()}"
            )
        if np.any(mmr < 0.0) or np.any(mmr >= 1.0):
            raise ValueError(f"TierTable.mmr must lie in [0, 1), got {mmr.tolist()}")
        if n > 1 and np.any(np.diff(mmr) < 0):
            raise ValueError(f"TierTable.mmr must not decrease with notional, got {mmr.tolist()}")
        imr = 1.0 / lev
        if np.any(mmr > imr * (1.0 + 1e-12)):
            raise ValueError(f"TierTable.mmr must not exceed imr = 1/max_leverage = {imr.tolist()}")
        max_notional = float(self.max_notional)
        if not max_notional > floors[-1]:
            raise ValueError(
                f"TierTable.max_notional must exceed the last floor {floors[-1]}, "
                f"got {max_notional}"
            )
        mm_cum = _continuity_deductions(floors, mmr)
        im_cum = _continuity_deductions(floors, imr)
        for arr in (imr, mm_cum, im_cum):
            arr.setflags(write=False)
        object.__setattr__(self, "floors", floors)
        object.__setattr__(self, "max_leverage", lev)
        object.__setattr__(self, "mmr", mmr)
        object.__setattr__(self, "max_notional", max_notional)
        object.__setattr__(self, "imr", imr)
        object.__setattr__(self, "mm_cum", mm_cum)
        object.__setattr__(self, "im_cum", im_cum)

    @property
    def n_tiers(self) -> int:
        """Number of tiers in the table."""
        return int(self.floors.size)

    def maintenance(self, notional: float | np.ndarray) -> float | np.ndarray:
        """Maintenance margin for notional(s) ``|position| × mark`` (§3.3).

        Args:
            notional: Non-negative notional, scalar or array.

        Returns:
            A float for scalar input, else a float64 array of the same shape.
        """
        return _apply(maintenance_margin, notional, self.floors, self.mmr, self.mm_cum)

    def initial(self, notional: float | np.ndarray) -> float | np.ndarray:
        """Initial margin at each tier's maximum leverage (continuous form, §3.3).

        Args:
            notional: Non-negative notional, scalar or array.

        Returns:
            A float for scalar input, else a float64 array of the same shape.
        """
        return _apply(initial_margin, notional, self.floors, self.imr, self.im_cum)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TierTable):
            return NotImplemented
        return (
            np.array_equal(self.floors, other.floors)
            and np.array_equal(self.max_leverage, other.max_leverage)
            and np.array_equal(self.mmr, other.mmr)
            and self.max_notional == other.max_notional
        )

    def __hash__(self) -> int:
        arrays = (self.floors, self.max_leverage, self.mmr)
        return hash((*(a.tobytes() for a in arrays), self.max_notional))


def _apply(kernel, notional, floors, rates, cum):
    arr = np.asarray(notional, dtype=np.float64)
    out = kernel(np.ascontiguousarray(arr.ravel()), floors, rates, cum)
    if arr.ndim == 0:
        return float(out[0])
    return out.reshape(arr.shape)


def flat_table(imr: float, mmr: float, name: str = "") -> TierTable:
    """A single-tier table: IM = imr × N, MM = mmr × N.

    Example: dYdX v4 Large-Cap liquidity tier, IMF 5% and MMF = 60% × IMF = 3%
    (reference ``margin_methods.md`` §3.3, repo ``dydxprotocol/v4-chain``
    ``protocol/testing/genesis.sh``): ``flat_table(0.05, 0.03)``.

    Args:
        imr: Initial-margin rate in (0, 1]; max leverage is ``1 / imr``.
        mmr: Maintenance-margin rate in [0, imr].
        name: Optional label.

    Returns:
        The one-tier ``TierTable``.

    Raises:
        ValueError: If ``imr`` is outside (0, 1] (or the table is invalid).
    """
    if not (0.0 < imr <= 1.0):
        raise ValueError(f"flat_table imr must lie in (0, 1], got {imr}")
    return TierTable(floors=[0.0], max_leverage=[1.0 / imr], mmr=[mmr], name=name)


#: Binance USDⓈ-M BTCUSDT tiers of 2021-03-18 (reference ``margin_methods.md``
#: §3.3; https://www.binance.com/tr/support/announcement/86cf9aa472574b8cb2e05bb751c2a9a6).
#: Position limit 500M USDT. Derived ``mm_cum`` reproduces Binance's cum 1,300 at
#: 500k notional; MM(40k) = 160, MM(500k) = 3,700, MM(5M) = 108,700.
BINANCE_BTCUSDT = TierTable(
    floors=[0.0, 50e3, 250e3, 1e6, 10e6, 20e6, 50e6, 100e6, 200e6, 300e6],
    max_leverage=[125.0, 100.0, 50.0, 20.0, 10.0, 5.0, 4.0, 3.0, 2.0, 1.0],
    mmr=[0.004, 0.005, 0.01, 0.025, 0.05, 0.10, 0.125, 0.15, 0.25, 0.50],
    max_notional=500e6,
    name="Binance USDⓈ-M BTCUSDT, 2021-03-18",
)

#: Binance USDⓈ-M ETHUSDT leverage brackets. **Provenance caveat**: the project
#: reference (``margin_methods.md``) has no ETHUSDT table. These numbers are the
#: Binance ``leverageBracket`` API snapshot vendored by freqtrade
#: (github.com/freqtrade/freqtrade, commit 01d10aebcab25c526473c603a88e14eb7d9699cc,
#: file ``freqtrade/exchange/binance_leverage_tiers.json``, key ``ETH/USDT:USDT``),
#: taken around 2024 (the same file lists the ETHUSDT 240927 quarterly). It is
#: a later vintage than the 2021 BTC table above and live values change. The
#: snapshot's own ``cum`` column (50, 950, 11,450, 131,450, …, 280,506,450) equals
#: the derived ``mm_cum``, which the tests check.
BINANCE_ETHUSDT = TierTable(
    floors=[0.0, 50e3, 600e3, 3e6, 12e6, 50e6, 65e6, 150e6, 320e6, 400e6, 530e6, 800e6],
    max_leverage=[125.0, 100.0, 75.0, 50.0, 25.0, 20.0, 10.0, 5.0, 4.0, 3.0, 2.0, 1.0],
    mmr=[0.004, 0.005, 0.0065, 0.01, 0.02, 0.025, 0.05, 0.10, 0.125, 0.15, 0.25, 0.50],
    max_notional=1.2e9,
    name="Binance USDⓈ-M ETHUSDT, API snapshot c. 2024 (via freqtrade)",
)

#: dYdX v4 Large-Cap liquidity tier: IMF 5%, MMF 3% (20x), §3.3.
DYDX_LARGE_CAP = flat_table(0.05, 0.03, name="dYdX v4 Large-Cap")

#: Hyperliquid BTC margin tiers (mainnet example in ``margin_methods.md`` §3.3,
#: https://hyperliquid.gitbook.io/hyperliquid-docs/trading/margin-tiers): 40x up to
#: 150M USD of notional, 20x above; maintenance is half the initial margin at the
#: maximum leverage, ``MMR = 1 / (2 × max leverage)``, so 1.25 % and 2.5 %, and the
#: deduction above 150M is ``150M × (2.5 % − 1.25 %) = 1,875,000`` (the reference's value).
HYPERLIQUID_BTC = TierTable(
    floors=[0.0, 150e6],
    max_leverage=[40.0, 20.0],
    mmr=[1.0 / 80.0, 1.0 / 40.0],
    name="Hyperliquid BTC (margin_methods.md §3.3)",
)

#: Hyperliquid ETH margin tiers (same source): 25x up to 100M USD, 15x above;
#: ``MMR = 1 / (2 × max leverage)`` = 2 % and 3.33 %.
HYPERLIQUID_ETH = TierTable(
    floors=[0.0, 100e6],
    max_leverage=[25.0, 15.0],
    mmr=[1.0 / 50.0, 1.0 / 30.0],
    name="Hyperliquid ETH (margin_methods.md §3.3)",
)


# --------------------------------------------------------------------------- kernels


@njit(cache=True)
def tier_index(notional: float, floors: np.ndarray) -> int:
    """Index of the tier containing ``notional``: the largest i with floors[i] ≤ notional.

    Floors are inclusive lower bounds (Binance ``notionalFloor``); notional
    below 0 maps to tier 0 and notional beyond the last floor to the last tier
    (reference ``margin_methods.md`` §3.3).

    Args:
        notional: ``|position| × mark`` (quote currency).
        floors: Tier lower bounds, first 0, strictly increasing.

    Returns:
        The tier index in ``[0, len(floors) − 1]``.
    """
    lo = 0
    hi = floors.shape[0] - 1
    # binary search for the last floor <= notional
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if floors[mid] <= notional:
            lo = mid
        else:
            hi = mid - 1
    return lo


@njit(cache=True)
def maintenance_margin_scalar(
    notional: float, floors: np.ndarray, mmr: np.ndarray, mm_cum: np.ndarray
) -> float:
    """Maintenance margin of one position: ``N × MMR_i − cum_i`` (§3.3, Binance).

    Args:
        notional: ``|position| × mark`` ≥ 0.
        floors: Tier lower bounds (``TierTable.floors``).
        mmr: Maintenance rates (``TierTable.mmr``).
        mm_cum: Continuity deductions (``TierTable.mm_cum``).

    Returns:
        The maintenance requirement in quote currency.
    """
    i = tier_index(notional, floors)
    return notional * mmr[i] - mm_cum[i]


@njit(cache=True)
def initial_margin_scalar(
    notional: float, floors: np.ndarray, imr: np.ndarray, im_cum: np.ndarray
) -> float:
    """Initial margin of one position at max leverage: ``N × IMR_i − im_cum_i`` (§3.3).

    Args:
        notional: ``|position| × mark`` ≥ 0.
        floors: Tier lower bounds (``TierTable.floors``).
        imr: Initial rates ``1 / max_leverage`` (``TierTable.imr``).
        im_cum: Continuity deductions (``TierTable.im_cum``).

    Returns:
        The initial requirement in quote currency.
    """
    i = tier_index(notional, floors)
    return notional * imr[i] - im_cum[i]


@njit(cache=True)
def maintenance_margin(
    notional: np.ndarray, floors: np.ndarray, mmr: np.ndarray, mm_cum: np.ndarray
) -> np.ndarray:
    """Vectorised :func:`maintenance_margin_scalar` over an array of notionals.

    Args:
        notional: float64[:] of ``|position| × mark`` ≥ 0.
        floors: Tier lower bounds.
        mmr: Maintenance rates.
        mm_cum: Continuity deductions.

    Returns:
        float64[:] of maintenance requirements, same length as ``notional``.
    """
    n = notional.shape[0]
    out = np.empty(n, dtype=np.float64)
    for k in range(n):
        out[k] = maintenance_margin_scalar(notional[k], floors, mmr, mm_cum)
    return out


@njit(cache=True)
def initial_margin(
    notional: np.ndarray, floors: np.ndarray, imr: np.ndarray, im_cum: np.ndarray
) -> np.ndarray:
    """Vectorised :func:`initial_margin_scalar` over an array of notionals.

    Args:
        notional: float64[:] of ``|position| × mark`` ≥ 0.
        floors: Tier lower bounds.
        imr: Initial rates.
        im_cum: Continuity deductions.

    Returns:
        float64[:] of initial requirements, same length as ``notional``.
    """
    n = notional.shape[0]
    out = np.empty(n, dtype=np.float64)
    for k in range(n):
        out[k] = initial_margin_scalar(notional[k], floors, imr, im_cum)
    return out


@njit(cache=True)
def liquidation_price(
    side: int,
    qty: float,
    entry_price: float,
    wallet_balance: float,
    other_maintenance: float,
    other_upnl: float,
    floors: np.ndarray,
    mmr: np.ndarray,
    mm_cum: np.ndarray,
) -> float:
    """Binance one-way-mode liquidation price with tier re-computation (kernel).

    ``LP = (WB − TMM1 + UPNL1 + cum − Side × Q × EP) / (Q × MMR − Side × Q)``
    (reference ``margin_methods.md`` §3.3; Binance FAQ, URL in the reference:
    https://binance.com/cn/support/faq/how-to-calculate-liquidation-price-of-usd%E2%93%A2-m-futures-contracts-b3c689c1f50a44cabb3a84e663b81d93
    ).
    Equity minus maintenance margin, ``g(P) = base + cum_i + Q × P × (Side −
    MMR_i)`` with ``base = WB − TMM1 + UPNL1 − Side × Q × EP``, is continuous and
    strictly monotone in the price, so the root is unique. Its tier is found by
    evaluating ``g`` at the tier floors, then the formula is solved with that
    tier's MMR and cum (the "recompute with that tier" rule, without iteration).

    Args:
        side: +1 long, −1 short.
        qty: Position size ``Q`` > 0 (base units).
        entry_price: Entry price ``EP``.
        wallet_balance: ``WB``: isolated margin, or cross wallet balance.
        other_maintenance: ``TMM1``, maintenance margin of the other cross
            positions (0 for isolated).
        other_upnl: ``UPNL1``, unrealised P&L of the other cross positions
            (0 for isolated).
        floors: Tier lower bounds.
        mmr: Maintenance rates.
        mm_cum: Continuity deductions.

    Returns:
        The liquidation price: a long is liquidated when mark ≤ LP, a short when
        mark ≥ LP. 0.0 when the root is not at a positive price: a long then
        cannot be liquidated, a short is liquidatable at any price.
    """
    s = float(side)
    base = wallet_balance - other_maintenance + other_upnl - s * qty * entry_price
    if s * base >= 0.0:
        return 0.0
    i = 0
    for j in range(1, floors.shape[0]):
        g_at_floor = base + mm_cum[j] + floors[j] * (s - mmr[j])
        if s * g_at_floor <= 0.0:
            i = j
        else:
            break
    return (base + mm_cum[i]) / (qty * mmr[i] - s * qty)


def _liquidation_price_checked(
    side: int,
    qty: float,
    entry_price: float,
    wallet_balance: float,
    table: TierTable,
    other_maintenance: float,
    other_upnl: float,
) -> float:
    if side not in (1, -1):
        raise ValueError(f"side must be +1 (long) or -1 (short), got {side!r}")
    for name, val in (
        ("qty", qty),
        ("entry_price", entry_price),
        ("wallet_balance", wallet_balance),
        ("other_maintenance", other_maintenance),
        ("other_upnl", other_upnl),
    ):
        if not math.isfinite(val):
            raise ValueError(f"{name} must be finite, got {val}")
    if qty <= 0:
        raise ValueError(f"qty must be > 0 (pass the side separately), got {qty}")
    if entry_price <= 0:
        raise ValueError(f"entry_price must be > 0, got {entry_price}")
    if not isinstance(table, TierTable):
        raise ValueError(f"table must be a TierTable, got {type(table).__name__}")
    return float(
        liquidation_price(
            int(side),
            float(qty),
            float(entry_price),
            float(wallet_balance),
            float(other_maintenance),
            float(other_upnl),
            table.floors,
            table.mmr,
            table.mm_cum,
        )
    )


def liquidation_price_isolated(
    side: int, qty: float, entry_price: float, wallet_balance: float, table: TierTable
) -> float:
    """Liquidation price of an isolated position (Binance formula, §3.3).

    Isolated mode: ``WB`` is the position's isolated margin, ``TMM1 = UPNL1 = 0``.
    Example (reference §3.3): long 1 BTC @ 50,000 with 5,000 margin on
    ``BINANCE_BTCUSDT`` → 45,180.72. For the short, the reference quotes
    54,780.88, which uses tier 1's 0.4% although that notional lies in tier 2.
    With the re-computation it states, the result is 55,050 / 1.005 = 54,776.12,
    where equity = MM exactly.

    Args:
        side: +1 long, −1 short.
        qty: Position size > 0.
        entry_price: Entry price > 0.
        wallet_balance: Isolated margin assigned to the position.
        table: The contract's tier table.

    Returns:
        The liquidation price; 0.0 if the root is not positive (see
        :func:`liquidation_price`).

    Raises:
        ValueError: On a bad side, non-positive quantity or price, or non-finite input.
    """
    return _liquidation_price_checked(side, qty, entry_price, wallet_balance, table, 0.0, 0.0)


def liquidation_price_cross(
    side: int,
    qty: float,
    entry_price: float,
    wallet_balance: float,
    table: TierTable,
    other_maintenance: float = 0.0,
    other_upnl: float = 0.0,
) -> float:
    """Liquidation price of a cross-margined position (Binance formula, §3.3).

    The other contracts' maintenance margin (``TMM1``) and unrealised P&L
    (``UPNL1``) are held fixed, as in Binance's displayed estimate.

    Args:
        side: +1 long, −1 short.
        qty: Position size > 0.
        entry_price: Entry price > 0.
        wallet_balance: Cross wallet balance.
        table: The contract's tier table.
        other_maintenance: Maintenance margin of all other cross positions.
        other_upnl: Unrealised P&L of all other cross positions.

    Returns:
        The liquidation price; 0.0 if the root is not positive (see
        :func:`liquidation_price`).

    Raises:
        ValueError: On a bad side, non-positive quantity or price, or non-finite input.
    """
    return _liquidation_price_checked(
        side, qty, entry_price, wallet_balance, table, other_maintenance, other_upnl
    )
