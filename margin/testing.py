"""Conformance suite for margin engines: does an engine keep the contract of ``margin.engine``?

Any engine, built-in or a user's, should pass :func:`check_engine` (DESIGN.md,
"Margin engines"); the project's tests run it on every registered regime. Each
property is checked on :class:`~margin.engine.MarginInputs` (by default a small
generated population from :func:`sample_inputs`) and a failure raises
:class:`AssertionError` whose message names the engine and the property:

* ``contract``: :meth:`~margin.engine.MarginEngine.evaluate` returns a
  :class:`~margin.engine.MarginResult` whose ``equity``, ``initial`` and
  ``maintenance`` are float64 arrays of shape ``(n_accounts,)``, all finite;
* ``purity``: ``evaluate``, ``pretrade`` and ``stress`` leave every input array
  unchanged (the suite works on a copy, so the caller's inputs stay intact);
* ``determinism``: the same inputs give bit-identical results, from a second
  call and from a deep copy of the engine;
* ``ordering``: ``initial ≥ maintenance ≥ 0`` per account, for regimes that
  promise it (the isolated regime places a liquidatable account's
  ``maintenance`` above its equity, which may exceed its summed IM);
* ``vectorisation``: evaluating a subset of the accounts (single rows, a
  permutation, a sample) gives the same rows as evaluating all of them
  (accounts are independent);
* ``pretrade``: an order opening a position on an account holding only
  non-negative balances (no positions, no borrows) is
  accepted exactly when the evaluated post-trade state
  (:func:`~margin.engine.apply_order`) has equity ≥ initial requirement — the
  default :meth:`~margin.engine.MarginEngine.pretrade`'s rule (Binance USDⓈ-M
  cross mode, margin_methods.md §3.3); orders within ``rtol`` of that boundary
  are not judged;
* ``pretrade_reducing``: reduce-only orders (:func:`~margin.engine.reduces_exposure`)
  are accepted whatever the margin;
* ``pretrade_batch``: an empty batch gives ``bool[0]``, a zero quantity is not
  accepted, and a batch of orders on distinct accounts gives the decisions of
  the orders checked one at a time;
* ``stress``: :meth:`~margin.engine.MarginEngine.stress` returns float64
  ``(n_accounts, n_scenarios)``, finite, and a zero shock loses nothing.

Example:
    >>> from margin import CrossMarginEngine, flat_table
    >>> from margin.testing import check_engine
    >>> check_engine(CrossMarginEngine([None, flat_table(0.1, 0.05), flat_table(0.1, 0.05)]))
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

import numpy as np

from margin.engine import (
    OPTION,
    PERP,
    SPOT,
    InstrumentSpecs,
    MarginEngine,
    MarginInputs,
    MarginResult,
    apply_order,
    reduces_exposure,
)

__all__ = ["PROPERTIES", "check_engine", "sample_inputs"]

PROPERTIES: tuple[str, ...] = ("contract", "purity", "determinism", "ordering", "vectorisation",
                               "pretrade", "pretrade_reducing", "pretrade_batch", "stress")
"""Names of the properties :func:`check_engine` checks, in the order it checks them."""

_LEVERAGES = (0.5, 3.0, 8.0, 15.0, 30.0, 60.0, 150.0)
"""Notional / equity of the generated opening orders: some fit any regime, some none."""


def sample_inputs(n_accounts: int = 12, *, kinds: Sequence[int] = (SPOT, PERP),
                  seed: int = 0, n_history: int = 400, option_quote: int = 0) -> MarginInputs:
    """A small, varied population over ``[USD, BTC, ETH]`` for conformance checks.

    Instruments, in order: BTC and ETH spot (with ``SPOT`` in ``kinds``), BTC
    and ETH perpetuals (``PERP``), a BTC call and put struck at the money with
    30 days to expiry (``OPTION``), quoted in asset ``option_quote`` (0: USD,
    linear; 1: BTC, inverse — premiums move ``size × price / BTC price`` of
    BTC, ``margin.engine``). Accounts hold USD from 1,000 to 1,000,000,
    some hold BTC or ETH (a few borrow it, when spot is listed), most hold
    positions of up to 8× their USD collateral at entry prices within a few
    percent of the marks, and every fourth account holds nothing but USD.
    Prices follow a one-minute GBM history (annual vol 0.6 / 0.8), implied vols
    are 0.6, haircuts are 0 / 5 % / 10 %.

    Args:
        n_accounts: Number of accounts (rows).
        kinds: Instrument kinds to list (``SPOT``, ``PERP``, ``OPTION``).
        seed: Seed of the generator (same seed, same inputs).
        n_history: Steps of ``price_history``.
        option_quote: Asset the options are quoted in (0 USD, 1 BTC, 2 ETH).

    Returns:
        The inputs; ``position_margin`` is None.
    """
    rng = np.random.default_rng(seed)
    prices = np.array([1.0, 60_000.0, 3_000.0])
    kind, under = [], []
    strike, expiry, call = [], [], []
    if SPOT in kinds:
        kind += [SPOT, SPOT]
        under += [1, 2]
    if PERP in kinds:
        kind += [PERP, PERP]
        under += [1, 2]
    if OPTION in kinds:
        kind += [OPTION, OPTION]
        under += [1, 1]
        strike += [60_000.0, 60_000.0]
        expiry += [30.0 / 365.0, 30.0 / 365.0]
        call += [True, False]
    n_ins = len(kind)
    pad = n_ins - len(strike)
    specs = InstrumentSpecs(
        kind=np.array(kind, np.int64), underlying=np.array(under, np.int64),
        quote=np.where(np.array(kind, np.int64) == OPTION, option_quote, 0).astype(np.int64),
        contract_size=np.ones(n_ins),
        strike=np.array([0.0] * pad + strike), expiry=np.array([0.0] * pad + expiry),
        is_call=np.array([False] * pad + call, np.bool_))
    kind_a = specs.kind
    vols = np.full(n_ins, 0.6)
    marks = np.where(kind_a == OPTION, 0.0, prices[specs.underlying])
    if OPTION in kinds:  # mark options at their Black-76 value
        from margin.methods.pricing import black76_price_vec

        opts = np.flatnonzero(kind_a == OPTION)
        marks[opts] = black76_price_vec(prices[specs.underlying[opts]].astype(np.float64),
                                        specs.strike[opts], specs.expiry[opts], 0.0, vols[opts],
                                        specs.is_call[opts])
    usd = np.exp(rng.uniform(np.log(1e3), np.log(1e6), n_accounts))
    collateral = np.zeros((n_accounts, 3))
    collateral[:, 0] = usd
    positions = np.zeros((n_accounts, n_ins))
    entry = np.zeros((n_accounts, n_ins))
    for i in range(n_accounts):
        if i % 4 == 0:
            continue  # flat: USD only
        if SPOT in kinds and i % 3 == 1:
            a = 1 + i % 2
            sign = -1.0 if i % 5 == 2 else 1.0
            collateral[i, a] = sign * usd[i] * rng.uniform(0.2, 1.5) / prices[a]
        for j in np.flatnonzero(kind_a != SPOT):
            if rng.random() < 0.6:
                lev = rng.uniform(0.1, 8.0 if kind_a[j] == PERP else 0.5)
                ref = prices[specs.underlying[j]]
                positions[i, j] = rng.choice([-1.0, 1.0]) * lev * usd[i] / ref
                entry[i, j] = marks[j] * (1.0 + rng.normal(0.0, 0.03))
    steps = rng.normal(0.0, 1.0, (n_history, 2)) * np.array([0.6, 0.8]) / np.sqrt(525_600.0)
    path = np.exp(np.cumsum(steps[::-1], axis=0))[::-1]  # ends at 1: the history ends today
    history = np.column_stack([np.ones(n_history), prices[1] / path[:, 0],
                               prices[2] / path[:, 1]])
    return MarginInputs(collateral=collateral, positions=positions, entry_prices=entry,
                        asset_prices=prices, marks=marks, specs=specs,
                        haircuts=np.array([0.0, 0.05, 0.10]), price_history=history,
                        implied_vols=vols, time=0.0, rate=0.0)


def check_engine(engine: MarginEngine, inputs: MarginInputs | None = None, *,
                 fee_rate: float = 5e-4, rtol: float = 1e-9,
                 skip: Mapping[str, str] | None = None) -> None:
    """Check that ``engine`` keeps the margin-engine contract (module docstring).

    Args:
        engine: The engine to check.
        inputs: The state to check it on; default :func:`sample_inputs` with
            spot and perpetual instruments.
        fee_rate: Fee rate of the pre-trade orders.
        rtol: Relative tolerance (to the largest equity or requirement) of
            comparisons that floating-point summation order may move, and of
            the pre-trade boundary band.
        skip: Properties not to check, each with the reason (a regime that does
            not promise it), e.g. ``{"ordering": "isolated: MM follows equity"}``.

    Raises:
        AssertionError: A property does not hold; the message names it.
        ValueError: ``skip`` names an unknown property or gives no reason.
    """
    skip = dict(skip or {})
    for prop, reason in skip.items():
        if prop not in PROPERTIES:
            raise ValueError(f"skip names unknown property {prop!r}; valid: "
                             f"{', '.join(PROPERTIES)}")
        if not (isinstance(reason, str) and reason.strip()):
            raise ValueError(f"skip[{prop!r}] must give the reason as a non-empty string")
    if inputs is None:
        inputs = sample_inputs()
    label = f"{type(engine).__name__} ({getattr(engine, 'name', '?')})"
    ctx = _Context(engine, _copy_inputs(inputs), fee_rate, rtol, label)  # the caller's stay intact
    checks: dict[str, Callable[[], None]] = {
        "contract": ctx.contract, "ordering": ctx.ordering, "vectorisation": ctx.vectorisation,
        "determinism": ctx.determinism, "purity": ctx.purity, "pretrade": ctx.pretrade,
        "pretrade_reducing": ctx.pretrade_reducing, "pretrade_batch": ctx.pretrade_batch,
        "stress": ctx.stress,
    }
    ctx.contract()  # every other property reads the result
    for prop in PROPERTIES[1:]:
        if prop not in skip:
            checks[prop]()


class _Context:
    """One engine and its inputs, with the properties as methods."""

    def __init__(self, engine: MarginEngine, inputs: MarginInputs, fee_rate: float, rtol: float,
                 label: str) -> None:
        self.engine, self.inputs, self.fee_rate, self.rtol = engine, inputs, fee_rate, rtol
        self.label = label
        self.snapshot = _copy_inputs(inputs)
        self.n = inputs.positions.shape[0]
        self._result: MarginResult | None = None

    def fail(self, prop: str, message: str) -> None:
        """Raise the AssertionError of a broken property."""
        raise AssertionError(f"{self.label} fails {prop!r}: {message}")

    @property
    def result(self) -> MarginResult:
        """Evaluation of all accounts (computed once)."""
        if self._result is None:
            self._result = self.engine.evaluate(self.inputs)
        return self._result

    @property
    def tol(self) -> float:
        """Absolute tolerance: ``rtol`` times the largest equity or requirement."""
        r = self.result
        scale = max(1.0, *(float(np.max(np.abs(a), initial=0.0))
                           for a in (r.equity, r.initial, r.maintenance)))
        return self.rtol * scale

    # ------------------------------------------------------------------ evaluate
    def contract(self) -> None:
        """Type, dtype, shape and finiteness of ``evaluate``'s result."""
        r = self.result
        if not isinstance(r, MarginResult):
            self.fail("contract", f"evaluate returned {type(r).__name__}, not MarginResult")
        for name in ("equity", "initial", "maintenance"):
            a = getattr(r, name)
            if not isinstance(a, np.ndarray):
                self.fail("contract", f"result.{name} is {type(a).__name__}, not a numpy array")
            if a.dtype != np.float64:
                self.fail("contract", f"result.{name} has dtype {a.dtype}, expected float64")
            if a.shape != (self.n,):
                self.fail("contract", f"result.{name} has shape {a.shape}, expected ({self.n},)")
            bad = np.flatnonzero(~np.isfinite(a))
            if bad.size:
                self.fail("contract", f"result.{name} is not finite for accounts "
                                      f"{bad[:5].tolist()}")

    def ordering(self) -> None:
        """``initial ≥ maintenance ≥ 0``."""
        r, tol = self.result, self.tol
        for lo_name, hi_name, lo, hi in (("maintenance", "initial", r.maintenance, r.initial),
                                         ("0", "maintenance", np.zeros(self.n), r.maintenance)):
            bad = np.flatnonzero(hi < lo - tol)
            if bad.size:
                i = int(bad[0])
                self.fail("ordering", f"{hi_name} < {lo_name} for accounts {bad[:5].tolist()} "
                                      f"(account {i}: {hi[i]!r} < {lo[i]!r})")

    def vectorisation(self) -> None:
        """Rows of a subset evaluation equal those of the full one."""
        rng = np.random.default_rng(1)
        subsets = [np.array([i]) for i in range(min(self.n, 4))]
        subsets.append(np.arange(self.n)[::-1].copy())
        subsets.append(np.sort(rng.choice(self.n, size=max(1, self.n // 2), replace=False)))
        r, tol = self.result, self.tol
        for rows in subsets:
            sub = self.engine.evaluate(self.inputs.subset(rows))
            for name in ("equity", "initial", "maintenance"):
                got, want = np.asarray(getattr(sub, name)), getattr(r, name)[rows]
                if got.shape != want.shape:
                    self.fail("vectorisation", f"evaluate of accounts {rows.tolist()} gives "
                                               f"{name} of shape {got.shape}, expected "
                                               f"{want.shape}")
                diff = np.abs(got - want)
                if np.any(diff > tol):
                    k = int(np.argmax(diff))
                    self.fail("vectorisation", f"evaluate of accounts {rows.tolist()} gives "
                                               f"{name} {got[k]!r} for account {int(rows[k])}, "
                                               f"evaluate of all gives {want[k]!r}")

    def determinism(self) -> None:
        """Two evaluations of the same inputs are bit-identical."""
        again = self.engine.evaluate(self.inputs)
        fresh = copy.deepcopy(self.engine).evaluate(_copy_inputs(self.inputs))
        for which, other in (("a second call", again), ("a copy of the engine", fresh)):
            for name in ("equity", "initial", "maintenance"):
                if not np.array_equal(getattr(other, name), getattr(self.result, name)):
                    self.fail("determinism", f"{which} gives a different {name}")

    def purity(self) -> None:
        """No input array is changed by ``evaluate``, ``pretrade`` or ``stress``."""
        changed = _changed(self.snapshot, self.inputs)
        if changed:
            self.fail("purity", f"evaluate changed inputs.{changed}")
        snap = self.snapshot
        n_assets = len(self.inputs.asset_prices)
        calls: list[tuple[str, Callable[[], Any]]] = [
            ("evaluate", lambda: self.engine.evaluate(self.inputs)),
            ("stress", lambda: self.engine.stress(self.inputs, np.full((2, n_assets), -0.1))),
        ]
        orders = self._opening_orders(self.inputs)
        if orders:
            rows, inst, delta, price = (np.array(c) for c in zip(*orders, strict=True))
            calls.append(("pretrade", lambda: self.engine.pretrade(
                self.inputs, rows, inst, delta, price, self.fee_rate)))
        for what, call in calls:
            call()
            changed = _changed(snap, self.inputs)
            if changed:
                self.fail("purity", f"{what} changed inputs.{changed}")

    # ------------------------------------------------------------------ pretrade
    def _flat(self) -> MarginInputs:
        """The accounts with their non-negative balances only (no positions, no borrows)."""
        inp = self.inputs
        pm = None if inp.position_margin is None else np.zeros_like(inp.position_margin)
        return replace(inp, collateral=np.maximum(inp.collateral, 0.0),
                       positions=np.zeros_like(inp.positions),
                       entry_prices=np.zeros_like(inp.entry_prices), position_margin=pm)

    def _opening_orders(self, inputs: MarginInputs) -> list[tuple[int, int, float, float]]:
        """Orders of every account on every instrument at several leverages, both sides."""
        s = inputs.specs
        value = np.maximum(inputs.collateral, 0.0) @ inputs.asset_prices
        out = []
        for i in range(len(value)):
            for j in range(len(s.kind)):
                ref = float(inputs.marks[j]) if s.kind[j] == PERP else float(
                    inputs.asset_prices[s.underlying[j]])
                if s.kind[j] == OPTION:
                    ref = float(inputs.asset_prices[s.underlying[j]])
                for k, lev in enumerate(_LEVERAGES):
                    side = 1.0 if (i + j + k) % 2 == 0 else -1.0
                    dq = side * lev * value[i] / ref / float(s.contract_size[j])
                    p = float(inputs.marks[j]) * (1.0 + 1e-3 * side)
                    out.append((i, j, dq, p))
        return out

    def _decide(self, inputs: MarginInputs, order: tuple[int, int, float, float]
                ) -> tuple[bool, float]:
        """The reference decision of one order and its distance from the boundary."""
        r, j, dq, p = order
        after = apply_order(inputs.subset(np.array([r])), 0, j, dq, p, self.fee_rate)
        res = self.engine.evaluate(after)
        margin = float(res.equity[0] - res.initial[0])
        return margin >= 0.0, margin

    def pretrade(self) -> None:
        """Opening orders are accepted exactly when the post-trade state covers IM."""
        flat = self._flat()
        orders = self._opening_orders(flat)
        tol = self.tol
        judged = {True: 0, False: 0}
        for order in orders:
            want, margin = self._decide(flat, order)
            if abs(margin) <= tol:
                continue
            r, j, dq, p = order
            got = self.engine.pretrade(flat, np.array([r]), np.array([j]), np.array([dq]),
                                       np.array([p]), self.fee_rate)
            if bool(got[0]) != want:
                verb = "rejects" if want else "accepts"
                self.fail("pretrade", f"{verb} the order (account {r}, instrument {j}, delta "
                                      f"{dq!r}, price {p!r}) on an account without positions "
                                      f"or borrows, "
                                      f"whose evaluated post-trade equity - IM is {margin!r}")
            judged[want] += 1
        if orders and not (judged[True] and judged[False]):
            self.fail("pretrade", f"the generated orders did not test both outcomes "
                                  f"({judged[True]} to accept, {judged[False]} to reject); "
                                  f"give inputs with more collateral variety")

    def pretrade_reducing(self) -> None:
        """Reduce-only orders are accepted."""
        inp = self.inputs
        s = inp.specs
        for r in range(self.n):
            for j in range(len(s.kind)):
                if s.kind[j] == SPOT:
                    b0 = float(inp.collateral[r, s.underlying[j]])
                    deltas = [-0.5 * b0 / float(s.contract_size[j])] if b0 < 0.0 else []
                else:
                    q0 = float(inp.positions[r, j])
                    deltas = [-0.5 * q0, -q0] if q0 != 0.0 else []
                for dq in deltas:
                    p = float(inp.marks[j]) if s.kind[j] != SPOT else float(
                        inp.asset_prices[s.underlying[j]])
                    if not reduces_exposure(inp, r, j, dq, p, self.fee_rate):
                        continue
                    got = self.engine.pretrade(inp, np.array([r]), np.array([j]),
                                               np.array([dq]), np.array([p]), self.fee_rate)
                    if not bool(got[0]):
                        self.fail("pretrade_reducing", f"rejects the reduce-only order "
                                                       f"(account {r}, instrument {j}, delta "
                                                       f"{dq!r}, price {p!r})")

    def pretrade_batch(self) -> None:
        """Empty batch, zero quantity, and independence of accounts within a batch."""
        e = self.engine
        empty = e.pretrade(self.inputs, np.zeros(0, np.int64), np.zeros(0, np.int64),
                           np.zeros(0), np.zeros(0), self.fee_rate)
        if not (isinstance(empty, np.ndarray) and empty.shape == (0,) and empty.dtype == np.bool_):
            self.fail("pretrade_batch", f"an empty batch gives {empty!r}, expected bool[0]")
        one = e.pretrade(self.inputs, np.array([0]), np.array([0]), np.array([0.0]),
                         np.array([float(self.inputs.marks[0])]), self.fee_rate)
        if bool(one[0]):
            self.fail("pretrade_batch", "accepts an order of zero quantity")
        by_account: dict[int, list[tuple[int, int, float, float]]] = {}
        for order in self._opening_orders(self.inputs):
            by_account.setdefault(order[0], []).append(order)
        orders = [mine[(3 * r) % len(mine)] for r, mine in by_account.items()]
        if not orders:
            return
        rows, inst, delta, price = (np.array(c) for c in zip(*orders, strict=True))
        batch = e.pretrade(self.inputs, rows, inst, delta, price, self.fee_rate)
        if not (isinstance(batch, np.ndarray) and batch.dtype == np.bool_
                and batch.shape == (len(orders),)):
            self.fail("pretrade_batch", f"a batch of {len(orders)} orders gives "
                                        f"{type(batch).__name__} {getattr(batch, 'dtype', '')} "
                                        f"{getattr(batch, 'shape', '')}, expected bool"
                                        f"[{len(orders)}]")
        for k, (r, j, dq, p) in enumerate(orders):
            alone = e.pretrade(self.inputs, np.array([r]), np.array([j]), np.array([dq]),
                               np.array([p]), self.fee_rate)
            if bool(alone[0]) != bool(batch[k]):
                self.fail("pretrade_batch", f"the order of account {r} is "
                                            f"{'accepted' if batch[k] else 'rejected'} in a "
                                            f"batch with other accounts' orders and "
                                            f"{'accepted' if alone[0] else 'rejected'} alone")

    # ------------------------------------------------------------------ stress
    def stress(self) -> None:
        """Shape, dtype and finiteness of ``stress``; a zero shock loses nothing."""
        n_assets = len(self.inputs.asset_prices)
        shocks = np.array([np.zeros(n_assets), np.full(n_assets, -0.2), np.full(n_assets, 0.2)])
        shocks[:, 0] = 0.0  # the quote asset does not move against itself
        out = self.engine.stress(self.inputs, shocks)
        if not isinstance(out, np.ndarray) or out.dtype != np.float64:
            self.fail("stress", f"stress returned {type(out).__name__} "
                                f"{getattr(out, 'dtype', '')}, expected a float64 array")
        if out.shape != (self.n, len(shocks)):
            self.fail("stress", f"stress has shape {out.shape}, expected "
                                f"({self.n}, {len(shocks)})")
        if not np.all(np.isfinite(out)):
            self.fail("stress", "stress losses are not finite")
        worst = float(np.max(np.abs(out[:, 0])))
        if worst > self.tol:
            self.fail("stress", f"a zero shock gives a loss of {worst!r}")


def _copy_inputs(inputs: MarginInputs) -> MarginInputs:
    """A deep copy of every array of ``inputs`` (and of its specs)."""
    return copy.deepcopy(inputs)


def _changed(before: MarginInputs, after: MarginInputs) -> str | None:
    """The name of the first field (``specs.x`` for the specs) whose array differs."""
    pairs: list[tuple[str, Any, Any]] = []
    for f in fields(MarginInputs):
        a, b = getattr(before, f.name), getattr(after, f.name)
        if f.name == "specs":
            pairs += [(f"specs.{g.name}", getattr(a, g.name), getattr(b, g.name))
                      for g in fields(InstrumentSpecs)]
        else:
            pairs.append((f.name, a, b))
    for name, a, b in pairs:
        if a is None and b is None:
            continue
        if (a is None) != (b is None):
            return name
        if isinstance(a, np.ndarray):
            if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
                return name
        elif a != b:
            return name
    return None
