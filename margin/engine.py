"""The margin-engine contract shared by every regime, and the regime factory.

An engine is a pure function of positions, collateral, prices and instrument
specifications (DESIGN.md, "Margin engines"): it returns per-account equity,
initial and maintenance requirement arrays, vectorised over all accounts. The
same engine serves the per-step liquidation check (:meth:`MarginEngine.evaluate`),
the pre-trade check (:meth:`MarginEngine.pretrade`) and what-if stress
(:meth:`MarginEngine.stress`). Only ``evaluate`` is abstract: the default
``pretrade`` books each order on a copy of its account (:func:`apply_order`)
and re-evaluates it, the default ``stress`` re-evaluates under shocked prices,
so a user's engine needs one method; :func:`margin.testing.check_engine` tells
whether an engine keeps this contract.

Conventions:
    * Instrument kinds: ``SPOT = 0``, ``PERP = 1``, ``OPTION = 2``, the
      project's definition (``sim`` imports it). Every regime margins European
      options except the lending regime (``aave``): the portfolio and adaptive
      regimes by full revaluation, cross and static by Deribit's standard
      per-position formulas (``margin.methods.option_margin``).
    * Perpetual positions are in base units (signed); unrealised P&L is
      ``position * (mark - entry_price)``.
    * Spot holdings are collateral balances of the base asset; a negative
      balance is a borrow (a liability at full value).
    * Collateral value of a positive balance is ``balance * price * (1 -
      haircut)``; liabilities count at full value (Binance unified-account
      "adjusted equity": collateral ratio on assets, none on liabilities).
    * Units of options: option ``marks``, ``entry_prices`` (the average
      premium paid or received) and pre-trade order ``price``s are in the
      pricing unit (the unit of ``asset_prices``, USD) per unit of underlying;
      ``position × contract_size`` is the position in base units. An option
      order's premium moves ``size × price / asset_prices[quote]`` units of
      the instrument's quote asset (its fee likewise): for a USD-quoted
      (linear) option ``asset_prices[quote] == 1`` and the premium is
      ``size × price`` USD; for an inverse option quoted in its coin (Deribit
      BTC options) it is that many USD worth of BTC (margin_methods.md §7:
      ``price_coin = price_USD / F``). An option position is worth ``position
      × contract_size × mark`` in the pricing unit.
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
    "apply_order",
    "available_engines",
    "engine_class",
    "make_engine",
    "reduces_exposure",
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
                raise ValueError(f"InstrumentSpecs.{name} has length "
                                 f"{len(getattr(self, name))}, expected {n}")


@dataclass
class MarginInputs:
    """Everything an engine needs for one evaluation, as arrays.

    Attributes:
        collateral: float64[n_accounts, n_assets] balances (negative = borrow).
        positions: float64[n_accounts, n_instruments] signed positions.
        entry_prices: float64[n_accounts, n_instruments] average entry prices
            (options: average premium in the pricing unit per unit of
            underlying).
        asset_prices: float64[n_assets] index prices of the assets in the
            pricing unit (USD; the quote asset USD is worth 1).
        marks: float64[n_instruments] mark prices (options: pricing unit per
            unit of underlying, whatever their quote asset; module docstring).
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
            raise ValueError(f"MarginInputs.haircuts has length {len(self.haircuts)}, "
                             f"expected {n_assets}")

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

    def pretrade(self, inputs: MarginInputs, rows: np.ndarray, instrument: np.ndarray,
                 delta: np.ndarray, price: np.ndarray, fee_rate: float) -> np.ndarray:
        """Pre-trade check of a sequence of orders, each assumed to fill in full.

        The default evaluates the account with the order applied, so an engine
        needs only :meth:`evaluate`: each order is applied by
        :func:`apply_order` to a hypothetical copy of its account (one row of
        ``inputs``), that row is re-evaluated, and the order is accepted when
        the post-trade equity (after the fee) covers the post-trade initial
        requirement, or when it only reduces exposure (:func:`reduces_exposure`;
        reducing risk is always allowed, as on Binance and dYdX). An accepted
        order updates its account's hypothetical state for the next; a
        rejected one leaves it as it was; a zero quantity is not accepted.
        These are the rules of ``margin.regimes.cross`` (Binance USDⓈ-M cross
        mode, margin_methods.md §3.3), whose incremental kernel gives the same
        decisions when the quote asset has no haircut. Regimes override it for
        speed or for other rules (isolated margin, lending).

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
        rows = np.asarray(rows, np.int64)
        instrument = np.asarray(instrument, np.int64)
        delta = np.asarray(delta, np.float64)
        price = np.asarray(price, np.float64)
        accept = np.zeros(len(rows), np.bool_)
        state: dict[int, MarginInputs] = {}
        for e, (r, j, dq, p) in enumerate(zip(rows.tolist(), instrument.tolist(),
                                              delta.tolist(), price.tolist(), strict=True)):
            if dq == 0.0:
                continue
            before = state.get(r)
            if before is None:
                before = inputs.subset(np.array([r], np.int64))
            after = apply_order(before, 0, j, dq, p, fee_rate)
            ok = reduces_exposure(before, 0, j, dq, p, fee_rate)
            if not ok:
                res = self.evaluate(after)
                ok = bool(res.equity[0] >= res.initial[0])
            if ok:
                accept[e] = True
                state[r] = after
        return accept

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


def _fill_price(kind: int, size: float, mark: float, price: float) -> float:
    """The price a hypothetical perpetual fill is booked at: the worse of ``price`` and the mark.

    Execution worse than the mark is charged to equity, a better price is not
    credited (``margin.regimes.cross``): ``size × (mark − fill) = min(0, size ×
    (mark − price))``.
    """
    if kind != PERP:
        return price
    return max(price, mark) if size > 0.0 else min(price, mark)


def apply_order(inputs: MarginInputs, row: int, instrument: int, delta: float, price: float,
                fee_rate: float) -> MarginInputs:
    """The inputs after one order of account ``row`` fills in full (a copy; ``inputs`` is kept).

    Booking follows the ledger (``sim.ledger``) so that re-evaluating the row
    gives the post-trade equity of the pre-trade rules
    (:meth:`MarginEngine.pretrade`; Binance USDⓈ-M cross mode, margin_methods.md
    §3.3). With ``size = delta × contract_size`` and ``fee = |size| × price ×
    fee_rate`` paid from the quote balance:

    * perpetual: filled at ``fill`` = the worse of ``price`` and the mark for
      the trader; adding moves the entry to the quantity-weighted average,
      reducing realises ``closed × (fill − entry) × sign(position)`` into the
      quote balance with the entry unchanged, a flip closes the old position
      and opens the rest at ``fill``. The equity change is ``min(0, size ×
      (mark − price)) − fee`` when the quote asset has no haircut;
    * spot: the base balance gains ``size``, the quote balance pays ``size ×
      price + fee`` (a negative balance is a borrow);
    * option: the position gains ``delta``, the quote balance pays the
      premium ``size × price / asset_prices[quote]`` and the fee ``|size| ×
      price × fee_rate / asset_prices[quote]`` (option prices are in the
      pricing unit, module docstring); the entry is the average premium:
      quantity-weighted on open or add, unchanged on a reduction, ``price``
      on a flip, 0 when closed (nothing is realised: the premium went through
      the quote balance).

    Posted isolated margin (``position_margin``) is left as it is.

    Args:
        inputs: State of the accounts.
        row: Account (row of ``inputs``) placing the order.
        instrument: Instrument of the order.
        delta: Signed quantity (+ buys).
        price: Expected execution price.
        fee_rate: Fee rate charged on the order notional.

    Returns:
        New inputs whose ``collateral``, ``positions`` and ``entry_prices`` are
        copies with row ``row`` updated; the other fields are shared.
    """
    s = inputs.specs
    coll = np.array(inputs.collateral, dtype=np.float64)
    pos = np.array(inputs.positions, dtype=np.float64)
    entry = np.array(inputs.entry_prices, dtype=np.float64)
    kind = int(s.kind[instrument])
    size = delta * float(s.contract_size[instrument])
    fee = abs(size) * price * fee_rate
    quote = int(s.quote[instrument])
    if kind == PERP:
        mark = float(inputs.marks[instrument])
        fill = _fill_price(kind, size, mark, price)
        q0, e0 = pos[row, instrument], entry[row, instrument]
        q1 = q0 + delta
        cs = float(s.contract_size[instrument])
        if q0 == 0.0 or q0 * delta > 0.0:  # open or add
            entry[row, instrument] = (q0 * e0 + delta * fill) / q1
        else:  # reduce, close or flip
            closed = min(abs(delta), abs(q0))
            coll[row, quote] += closed * cs * (fill - e0) * np.sign(q0)
            if abs(delta) > abs(q0):
                entry[row, instrument] = fill
            elif q1 == 0.0:
                entry[row, instrument] = 0.0
        pos[row, instrument] = q1
        coll[row, quote] -= fee
    elif kind == SPOT:
        coll[row, int(s.underlying[instrument])] += size
        coll[row, quote] -= size * price + fee
    else:
        qv = float(inputs.asset_prices[quote])
        q0, e0 = pos[row, instrument], entry[row, instrument]
        q1 = q0 + delta
        if q0 == 0.0 or q0 * delta > 0.0:  # open or add
            entry[row, instrument] = (q0 * e0 + delta * price) / q1
        elif abs(delta) > abs(q0):  # flip
            entry[row, instrument] = price
        elif q1 == 0.0:
            entry[row, instrument] = 0.0
        pos[row, instrument] = q1
        coll[row, quote] -= size * price / qv + fee / qv
    return replace(inputs, collateral=coll, positions=pos, entry_prices=entry)


def reduces_exposure(inputs: MarginInputs, row: int, instrument: int, delta: float, price: float,
                     fee_rate: float) -> bool:
    """Whether an order only reduces its account's exposure (always accepted before trade).

    The rule of ``margin.regimes.cross`` (Binance and dYdX allow reduce-only
    orders whatever the margin): a perpetual or option position shrinks
    without changing sign (``|q1| ≤ |q0|`` and ``q0 × q1 ≥ 0``); a spot buy
    repays part or all of a borrow (``b0 < b1 ≤ 0``) without borrowing the
    quote asset (quote balance after price and fee ``≥ 0``).

    Args:
        inputs: State of the accounts.
        row: Account (row of ``inputs``) placing the order.
        instrument: Instrument of the order.
        delta: Signed quantity (+ buys).
        price: Expected execution price.
        fee_rate: Fee rate charged on the order notional.

    Returns:
        True when the order is reduce-only.
    """
    s = inputs.specs
    if int(s.kind[instrument]) != SPOT:
        q0 = float(inputs.positions[row, instrument])
        q1 = q0 + delta
        return abs(q1) <= abs(q0) and q0 * q1 >= 0.0
    size = delta * float(s.contract_size[instrument])
    b0 = float(inputs.collateral[row, int(s.underlying[instrument])])
    b1 = b0 + size
    c1 = (float(inputs.collateral[row, int(s.quote[instrument])]) - size * price
          - abs(size) * price * fee_rate)
    return b0 < 0.0 and b0 < b1 <= 0.0 and c1 >= 0.0


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
