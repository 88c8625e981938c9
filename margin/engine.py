"""The margin-engine contract shared by every regime, and the regime factory.

An engine is a pure function of positions, collateral, prices and instrument
specifications (DESIGN.md, "Margin engines"): it returns per-account equity,
initial and maintenance requirement arrays, vectorised over all accounts. The
same engine serves the per-step liquidation check (:meth:`MarginEngine.evaluate`),
the pre-trade check (:meth:`MarginEngine.pretrade`) and what-if stress
(:meth:`MarginEngine.stress`).

Conventions:
    * Instrument kinds: ``SPOT = 0``, ``PERP = 1``, ``OPTION = 2`` (options
      arrive with the portfolio regime).
    * Perpetual positions are in base units (signed); unrealised P&L is
      ``position * (mark - entry_price)``.
    * Spot holdings are collateral balances of the base asset; a negative
      balance is a borrow (a liability at full value).
    * Collateral value of a positive balance is ``balance * price * (1 -
      haircut)``; liabilities count at full value (Binance unified-account
      "adjusted equity": collateral ratio on assets, none on liabilities).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "OPTION",
    "PERP",
    "SPOT",
    "InstrumentSpecs",
    "MarginEngine",
    "MarginInputs",
    "MarginResult",
    "available_engines",
    "engine_class",
    "make_engine",
    "register_engine",
]

SPOT = 0
PERP = 1
OPTION = 2


@dataclass(frozen=True)
class InstrumentSpecs:
    """Static description of the instruments an engine margins.

    Attributes:
        kind: int64[n_instruments], ``SPOT``/``PERP``/``OPTION``.
        underlying: int64[n_instruments], asset index of the base/underlying.
        quote: int64[n_instruments], asset index P&L is paid in.
        contract_size: float64[n_instruments], base units per unit of position.
        strike: float64[n_instruments] option strikes (0 for non-options).
        expiry: float64[n_instruments] option expiry times in years on the
            same clock as ``MarginInputs.time`` (0 for non-options).
        is_call: bool[n_instruments] True for calls (ignored for non-options).
    """

    kind: np.ndarray
    underlying: np.ndarray
    quote: np.ndarray
    contract_size: np.ndarray
    strike: np.ndarray | None = None
    expiry: np.ndarray | None = None
    is_call: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.kind)
        for name, dtype in (("strike", np.float64), ("expiry", np.float64), ("is_call", np.bool_)):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros(n, dtype))
        for name in ("underlying", "quote", "contract_size", "strike", "expiry", "is_call"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"InstrumentSpecs.{name} has length {len(getattr(self, name))}, expected {n}")


@dataclass
class MarginInputs:
    """Everything an engine needs for one evaluation, as arrays.

    Attributes:
        collateral: float64[n_accounts, n_assets] balances (negative = borrow).
        positions: float64[n_accounts, n_instruments] signed positions.
        entry_prices: float64[n_accounts, n_instruments] average entry prices.
        asset_prices: float64[n_assets] index prices of the assets in quote units.
        marks: float64[n_instruments] mark prices.
        specs: The instruments' static description.
        haircuts: float64[n_assets] collateral haircuts in [0, 1).
        price_history: Optional float64[n_steps, n_assets] for regimes that need it.
        implied_vols: Optional float64[n_instruments] implied volatilities of
            options (annualised).
        time: Current time in years (options' time to expiry is ``expiry - time``).
        rate: Risk-free rate used to price options.
        depth: Optional float64[n_instruments] book depth (base units within a
            band of the mid) for liquidity add-ons.
        position_margin: Optional float64[n_accounts, n_instruments] margin
            posted to each isolated position (quote units), for isolated regimes.
    """

    collateral: np.ndarray
    positions: np.ndarray
    entry_prices: np.ndarray
    asset_prices: np.ndarray
    marks: np.ndarray
    specs: InstrumentSpecs
    haircuts: np.ndarray
    price_history: np.ndarray | None = None
    implied_vols: np.ndarray | None = None
    time: float = 0.0
    rate: float = 0.0
    depth: np.ndarray | None = None
    position_margin: np.ndarray | None = None

    def __post_init__(self) -> None:
        n_acc, n_ins = self.positions.shape
        n_assets = len(self.asset_prices)
        if self.collateral.shape != (n_acc, n_assets):
            raise ValueError(f"MarginInputs.collateral has shape {self.collateral.shape}, "
                             f"expected {(n_acc, n_assets)}")
        if self.entry_prices.shape != (n_acc, n_ins):
            raise ValueError(f"MarginInputs.entry_prices has shape {self.entry_prices.shape}, "
                             f"expected {(n_acc, n_ins)}")
        if len(self.marks) != n_ins or len(self.specs.kind) != n_ins:
            raise ValueError(f"MarginInputs.marks/specs describe {len(self.marks)}/"
                             f"{len(self.specs.kind)} instruments, positions have {n_ins}")
        if len(self.haircuts) != n_assets:
            raise ValueError(f"MarginInputs.haircuts has length {len(self.haircuts)}, expected {n_assets}")

    def subset(self, rows: np.ndarray) -> MarginInputs:
        """The same inputs restricted to some accounts (rows are copied)."""
        take = _row_taker(rows)
        pm = None if self.position_margin is None else take(self.position_margin)
        return replace(self, collateral=take(self.collateral), positions=take(self.positions),
                       entry_prices=take(self.entry_prices), position_margin=pm)


def _row_taker(rows: np.ndarray) -> Any:
    """A function copying ``rows`` of an array: a slice copy when they are a contiguous run.

    Both give the same C-contiguous, writable copy; the slice skips fancy indexing.
    """
    r = np.asarray(rows)
    if (r.ndim == 1 and r.dtype.kind in "iu" and len(r) > 1
            and r[0] >= 0 and r[-1] - r[0] == len(r) - 1 and (np.diff(r) == 1).all()):
        lo, hi = int(r[0]), int(r[-1]) + 1
        return lambda a: a[lo:hi].copy()
    return lambda a: a[rows]


@dataclass
class MarginResult:
    """Per-account equity and requirements (all float64[n_accounts], quote units)."""

    equity: np.ndarray
    initial: np.ndarray
    maintenance: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def below_maintenance(self) -> np.ndarray:
        """Boolean mask of accounts whose equity is under maintenance (liquidatable)."""
        return self.equity < self.maintenance

    @property
    def free_collateral(self) -> np.ndarray:
        """Equity above the initial requirement (negative when short of IM)."""
        return self.equity - self.initial


class MarginEngine(ABC):
    """A margin regime: equity and requirements for every account in one call."""

    name: ClassVar[str] = "abstract"

    @abstractmethod
    def evaluate(self, inputs: MarginInputs) -> MarginResult:
        """Equity, initial and maintenance requirement of every account."""

    @abstractmethod
    def pretrade(self, inputs: MarginInputs, rows: np.ndarray, instrument: np.ndarray,
                 delta: np.ndarray, price: np.ndarray, fee_rate: float) -> np.ndarray:
        """Pre-trade check of a sequence of orders, each assumed to fill in full.

        Args:
            inputs: Current state of all accounts.
            rows: int64[n_orders] account of each order.
            instrument: int64[n_orders] instrument of each order.
            delta: float64[n_orders] signed base quantity (+ buys).
            price: float64[n_orders] expected execution price.
            fee_rate: Fee rate charged on the order notional.

        Returns:
            bool[n_orders]; orders are checked in sequence, each accepted order
            updating its account's hypothetical state for the next.
        """

    def stress(self, inputs: MarginInputs, shocks: np.ndarray) -> np.ndarray:
        """Loss of every account under each relative price shock.

        The default moves every instrument mark with its underlying (right for
        linear instruments); regimes holding options override it to reprice.

        Args:
            inputs: Current state of all accounts.
            shocks: float64[n_scenarios, n_assets] relative moves of the asset
                prices (``-0.2`` = 20 % fall); instrument marks move with their
                underlying.

        Returns:
            float64[n_accounts, n_scenarios]: equity now minus equity after the
            shock (positive = loss).
        """
        shocks = np.atleast_2d(np.asarray(shocks, dtype=np.float64))
        if shocks.shape[1] != len(inputs.asset_prices):
            raise ValueError(f"stress shocks have {shocks.shape[1]} columns, expected "
                             f"{len(inputs.asset_prices)} (one per asset)")
        base = self.evaluate(inputs).equity
        out = np.empty((len(base), len(shocks)))
        under = inputs.specs.underlying
        for s, shock in enumerate(shocks):
            shocked = replace(inputs, asset_prices=inputs.asset_prices * (1.0 + shock),
                              marks=inputs.marks * (1.0 + shock[under]))
            out[:, s] = base - self.evaluate(shocked).equity
        return out


_REGISTRY: dict[str, type[MarginEngine]] = {}


def register_engine(cls: type[MarginEngine]) -> type[MarginEngine]:
    """Class decorator adding a regime to the factory under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def available_engines() -> list[str]:
    """Names accepted by :func:`make_engine`."""
    return sorted(_REGISTRY)


def engine_class(name: str) -> type[MarginEngine]:
    """The registered regime class of ``name``.

    Raises:
        ValueError: Unknown name; the message lists the valid ones.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown margin regime {name!r}; valid: {', '.join(available_engines())}")
    return _REGISTRY[name]


def make_engine(name: str, **params: Any) -> MarginEngine:
    """Build a registered regime by name.

    Args:
        name: Regime name, e.g. ``"cross"``.
        **params: Passed to the regime's constructor.

    Raises:
        ValueError: Unknown name; the message lists the valid ones.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown margin regime {name!r}; valid: {', '.join(available_engines())}")
    return _REGISTRY[name](**params)
