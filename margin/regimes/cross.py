"""Cross margin: one account-level equity against summed tiered requirements.

Methodology (margin_methods.md §3.3, Binance USDⓈ-M cross mode; dYdX v4 uses
the same account-wide netting of collateral with flat fractions):

* equity = Σ_assets adjusted collateral value + Σ_perps unrealised P&L, where a
  positive balance counts ``balance × price × (1 − haircut)`` and a negative
  balance (a borrow) counts at full value;
* each perpetual position of notional ``|q| × mark`` needs
  ``IM = notional × IMR_tier − im_cum`` and ``MM = notional × MMR_tier − cum``
  from its underlying's bracket table (continuous across brackets);
* a borrowed risky asset (negative spot balance) is a short exposure and is
  margined with the same brackets as a perpetual short of that notional;
* an option position adds its value ``q × contract_size × mark`` to equity
  (long adds, short subtracts; the premium went through the quote balance,
  units in ``margin.engine``) and Deribit's standard option margin to IM and MM
  (``margin.methods.option_margin``: a short needs ``max(15 % × F − OTM, 10 %
  × F) + mark`` per unit of underlying, MM ``7.5 % × F + mark``) [Deribit
  standard-margin formulas from the venue's documentation; not in
  margin_methods.md, unverified here]; a long is paid in full and has no loan
  value, so its IM and MM equal its value
  (``margin.methods.option_margin.long_option_requirement``): it supports no
  other position and cannot be bought on borrowed quote;
* requirements are summed over positions — no offsets between instruments
  (that is the portfolio regime's job).

The kernels are vectorised over accounts and compiled with ``cache=True``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numba import njit

from margin.engine import OPTION, PERP, MarginEngine, MarginInputs, MarginResult, register_engine
from margin.methods.option_margin import (
    DERIBIT_IM_FLOOR,
    DERIBIT_IM_RATE,
    DERIBIT_MM_RATE,
    check_option_rates,
    long_option_requirement,
    standard_option_margin,
)
from margin.methods.tiers import TierTable, initial_margin_scalar, maintenance_margin_scalar

__all__ = ["CrossMarginEngine", "PackedTiers", "cross_pretrade_rows_kernel", "pack_tiers",
           "packed_requirement"]


class PackedTiers:
    """Bracket tables of several assets packed into flat arrays for njit code.

    Asset ``a`` uses rows ``start[a] : start[a] + count[a]``; ``count[a] == 0``
    means the asset carries no requirement (the quote asset).
    """

    def __init__(self, start: np.ndarray, count: np.ndarray, floors: np.ndarray, imr: np.ndarray,
                 im_cum: np.ndarray, mmr: np.ndarray, mm_cum: np.ndarray) -> None:
        self.start, self.count = start, count
        self.floors, self.imr, self.im_cum, self.mmr, self.mm_cum = floors, imr, im_cum, mmr, mm_cum

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The seven arrays in kernel argument order."""
        return (self.start, self.count, self.floors, self.imr, self.im_cum, self.mmr, self.mm_cum)


def pack_tiers(tables: list[TierTable | None]) -> PackedTiers:
    """Pack one optional :class:`TierTable` per asset (None = no requirement)."""
    start = np.zeros(len(tables), np.int64)
    count = np.zeros(len(tables), np.int64)
    cols: list[list[np.ndarray]] = [[], [], [], [], []]
    pos = 0
    for a, table in enumerate(tables):
        start[a] = pos
        if table is None:
            continue
        count[a] = len(table.floors)
        pos += count[a]
        values_of = (table.floors, table.imr, table.im_cum, table.mmr, table.mm_cum)
        for col, values in zip(cols, values_of, strict=True):
            col.append(np.asarray(values, dtype=np.float64))
    flat = [np.concatenate(c) if c else np.zeros(0) for c in cols]
    return PackedTiers(start, count, *flat)


@njit(cache=True)
def packed_requirement(notional, a, start, count, floors, rates, cums, initial):
    """IM (``initial``) or MM of one position of ``notional`` from asset ``a``'s packed table."""
    n = count[a]
    if n == 0 or notional <= 0.0:
        return 0.0
    s = start[a]
    if initial:
        return initial_margin_scalar(notional, floors[s:s + n], rates[s:s + n], cums[s:s + n])
    return maintenance_margin_scalar(notional, floors[s:s + n], rates[s:s + n], cums[s:s + n])


@njit(cache=True)
def _adjusted_value(balance, price, haircut):
    if balance >= 0.0:
        return balance * price * (1.0 - haircut)
    return balance * price


@njit(cache=True)
def cross_margin_kernel(collateral, positions, entry, asset_prices, marks, kind, underlying,
                        contract_size, haircuts, start, count, floors, imr, im_cum, mmr, mm_cum,
                        strike, is_call, opt_im_rate, opt_im_floor, opt_mm_rate):
    """Equity, IM and MM of every account under cross margin (see module docstring).

    Options (``kind == OPTION``) need ``strike``/``is_call`` per instrument and
    the standard-margin rates (:func:`margin.methods.option_margin.standard_option_margin`).
    """
    n_acc, n_ins = positions.shape
    n_assets = collateral.shape[1]
    equity = np.zeros(n_acc)
    im = np.zeros(n_acc)
    mm = np.zeros(n_acc)
    for i in range(n_acc):
        eq = 0.0
        req_i = 0.0
        req_m = 0.0
        for a in range(n_assets):
            b = collateral[i, a]
            eq += _adjusted_value(b, asset_prices[a], haircuts[a])
            if b < 0.0:
                notional = -b * asset_prices[a]
                req_i += packed_requirement(notional, a, start, count, floors, imr, im_cum, True)
                req_m += packed_requirement(notional, a, start, count, floors, mmr, mm_cum, False)
        for j in range(n_ins):
            q = positions[i, j]
            if q == 0.0:
                continue
            if kind[j] == OPTION:
                size = q * contract_size[j]
                eq += size * marks[j]
                o_im, o_mm = standard_option_margin(size, asset_prices[underlying[j]], strike[j],
                                                    marks[j], is_call[j], opt_im_rate,
                                                    opt_im_floor, opt_mm_rate)
                paid = long_option_requirement(size, marks[j])
                req_i += o_im + paid
                req_m += o_mm + paid
                continue
            if kind[j] != PERP:
                continue
            size = q * contract_size[j]
            eq += size * (marks[j] - entry[i, j])
            notional = abs(size) * marks[j]
            a = underlying[j]
            req_i += packed_requirement(notional, a, start, count, floors, imr, im_cum, True)
            req_m += packed_requirement(notional, a, start, count, floors, mmr, mm_cum, False)
        equity[i] = eq
        im[i] = req_i
        mm[i] = req_m
    return equity, im, mm


@njit(cache=True)
def cross_pretrade_kernel(collateral, positions, asset_prices, marks, kind, underlying, quote,
                          contract_size, haircuts, start, count, floors, imr, im_cum,
                          equity, initial, rows, instrument, delta, price, fee_rate,
                          strike, is_call, opt_im_rate, opt_im_floor, opt_mm_rate):
    """Sequential pre-trade check; mutates its (copied) state arrays.

    Each order is assumed to fill in full at ``price``. It is accepted when the
    post-trade equity covers the post-trade initial requirement, or when it
    only reduces exposure (reducing risk is always allowed, as on Binance and
    dYdX). Execution at a price worse than the mark is charged to equity;
    a better price is not credited. The fee is charged on the notional.

    An option order pays the premium ``size × price / asset_prices[quote]``
    and the fee from the quote balance (units in ``margin.engine``); its equity
    change is the change of the quote balance's adjusted value plus ``Δq ×
    contract_size × mark``, its IM change that of the standard option margin
    (and of the bracket requirement of the quote balance, should it become a
    borrow of a risky coin); it is reduce-only when ``|q1| ≤ |q0|`` without a
    change of sign, as for perpetuals. These are the changes of
    :func:`cross_margin_kernel`'s sums, so the decisions equal those of
    booking the order (:func:`margin.engine.apply_order`) and re-evaluating.
    """
    n = len(rows)
    accept = np.zeros(n, np.bool_)
    for e in range(n):
        r = rows[e]
        j = instrument[e]
        dq = delta[e]
        p = price[e]
        if dq == 0.0:
            continue
        a = underlying[j]
        fee = abs(dq) * contract_size[j] * p * fee_rate
        if kind[j] == PERP:
            q0 = positions[r, j]
            q1 = q0 + dq
            m = marks[j]
            size0 = abs(q0) * contract_size[j] * m
            size1 = abs(q1) * contract_size[j] * m
            d_im = (packed_requirement(size1, a, start, count, floors, imr, im_cum, True)
                    - packed_requirement(size0, a, start, count, floors, imr, im_cum, True))
            d_eq = min(0.0, dq * contract_size[j] * (m - p)) - fee
            reducing = abs(q1) <= abs(q0) and q0 * q1 >= 0.0
        elif kind[j] == OPTION:
            u = quote[j]
            cs = contract_size[j]
            qv = asset_prices[u]
            q0 = positions[r, j]
            q1 = q0 + dq
            m = marks[j]
            c0 = collateral[r, u]
            c1 = c0 - dq * cs * p / qv - fee / qv
            d_eq = (_adjusted_value(c1, qv, haircuts[u]) - _adjusted_value(c0, qv, haircuts[u])
                    + dq * cs * m)
            f = asset_prices[a]
            im1 = (standard_option_margin(q1 * cs, f, strike[j], m, is_call[j], opt_im_rate,
                                          opt_im_floor, opt_mm_rate)[0]
                   + long_option_requirement(q1 * cs, m))
            im0 = (standard_option_margin(q0 * cs, f, strike[j], m, is_call[j], opt_im_rate,
                                          opt_im_floor, opt_mm_rate)[0]
                   + long_option_requirement(q0 * cs, m))
            n0 = -c0 * qv if c0 < 0.0 else 0.0
            n1 = -c1 * qv if c1 < 0.0 else 0.0
            d_im = (im1 - im0 + packed_requirement(n1, u, start, count, floors, imr, im_cum, True)
                    - packed_requirement(n0, u, start, count, floors, imr, im_cum, True))
            reducing = abs(q1) <= abs(q0) and q0 * q1 >= 0.0
        else:
            u = quote[j]
            b0 = collateral[r, a]
            b1 = b0 + dq * contract_size[j]
            c0 = collateral[r, u]
            c1 = c0 - dq * contract_size[j] * p - fee
            d_eq = (_adjusted_value(b1, asset_prices[a], haircuts[a])
                    - _adjusted_value(b0, asset_prices[a], haircuts[a])
                    + _adjusted_value(c1, asset_prices[u], haircuts[u])
                    - _adjusted_value(c0, asset_prices[u], haircuts[u]))
            n0 = -b0 * asset_prices[a] if b0 < 0.0 else 0.0
            n1 = -b1 * asset_prices[a] if b1 < 0.0 else 0.0
            d_im = (packed_requirement(n1, a, start, count, floors, imr, im_cum, True)
                    - packed_requirement(n0, a, start, count, floors, imr, im_cum, True))
            reducing = b0 < 0.0 and b0 < b1 <= 0.0 and c1 >= 0.0
        ok = reducing or equity[r] + d_eq >= initial[r] + d_im
        if ok:
            accept[e] = True
            equity[r] += d_eq
            initial[r] += d_im
            if kind[j] == PERP:
                positions[r, j] += dq
            elif kind[j] == OPTION:
                positions[r, j] += dq
                collateral[r, quote[j]] = c1
            else:
                collateral[r, a] = b1
                collateral[r, quote[j]] = c1
    return accept


@njit(cache=True)
def cross_pretrade_rows_kernel(collateral, positions, entry, asset_prices, marks, kind, underlying,
                               quote, contract_size, haircuts, start, count, floors, imr, im_cum,
                               mmr, mm_cum, uniq, local, instrument, delta, price, fee_rate,
                               strike, is_call, opt_im_rate, opt_im_floor, opt_mm_rate):
    """``cross_pretrade_kernel`` on copies of rows ``uniq`` of the full state, in one call.

    Copies the ordering accounts' rows, evaluates their equity and IM with
    ``cross_margin_kernel``, then runs the sequential check (``local`` indexes
    ``uniq``); the caller's arrays are not touched.
    """
    n = len(uniq)
    coll = np.empty((n, collateral.shape[1]))
    pos = np.empty((n, positions.shape[1]))
    ent = np.empty((n, entry.shape[1]))
    for i in range(n):
        coll[i] = collateral[uniq[i]]
        pos[i] = positions[uniq[i]]
        ent[i] = entry[uniq[i]]
    equity, im, _mm = cross_margin_kernel(coll, pos, ent, asset_prices, marks, kind, underlying,
                                          contract_size, haircuts, start, count, floors, imr,
                                          im_cum, mmr, mm_cum, strike, is_call, opt_im_rate,
                                          opt_im_floor, opt_mm_rate)
    return cross_pretrade_kernel(coll, pos, asset_prices, marks, kind, underlying, quote,
                                 contract_size, haircuts, start, count, floors, imr, im_cum,
                                 equity, im, local, instrument, delta, price, fee_rate, strike,
                                 is_call, opt_im_rate, opt_im_floor, opt_mm_rate)


@register_engine
class CrossMarginEngine(MarginEngine):
    """Cross margin with tiered (bracket) requirements per underlying.

    Binance USDⓈ-M cross mode (margin_methods.md §3.3): account equity is the
    haircut collateral plus unrealised P&L of all positions; it is compared
    with the sum of per-position bracket requirements ``MM = notional × MMR −
    cum``. A flat single-tier table gives dYdX v4's fixed fractions (IMF 5 %,
    MMF 3 % for large caps). Options count at their mark value and need
    Deribit's standard option margin, a long its whole value (no loan value;
    module docstring; [Deribit
    standard-margin formulas from the venue's documentation; not in
    margin_methods.md, unverified here]).

    Args:
        tables: One optional :class:`TierTable` per asset, in asset order;
            ``None`` for assets with no requirement (the quote asset).
        option_im_rate: Short-option IM fraction of the index before the OTM
            amount (Deribit 0.15).
        option_im_floor: Floor of that fraction (Deribit 0.10).
        option_mm_rate: Short-option MM fraction of the index (Deribit 0.075).

    Raises:
        ValueError: A rate outside [0, 1].
    """

    name = "cross"

    def __init__(self, tables: list[TierTable | None] | Mapping[int, TierTable],
                 option_im_rate: float = DERIBIT_IM_RATE,
                 option_im_floor: float = DERIBIT_IM_FLOOR,
                 option_mm_rate: float = DERIBIT_MM_RATE) -> None:
        if isinstance(tables, Mapping):
            n = max(tables) + 1 if tables else 0
            tables = [tables.get(a) for a in range(n)]
        self.tables = list(tables)
        self.packed = pack_tiers(self.tables)
        self.option_rates = check_option_rates(option_im_rate, option_im_floor, option_mm_rate)

    def _check_assets(self, inputs: MarginInputs) -> None:
        if len(self.tables) != len(inputs.asset_prices):
            raise ValueError(f"cross engine has tier tables for {len(self.tables)} assets, inputs "
                             f"have {len(inputs.asset_prices)}")

    def evaluate(self, inputs: MarginInputs) -> MarginResult:
        """Equity, IM and MM of every account (see class docstring)."""
        self._check_assets(inputs)
        s = inputs.specs
        equity, im, mm = cross_margin_kernel(
            inputs.collateral, inputs.positions, inputs.entry_prices, inputs.asset_prices,
            inputs.marks, s.kind, s.underlying, s.contract_size, inputs.haircuts,
            *self.packed.arrays(), s.strike, s.is_call, *self.option_rates)
        return MarginResult(equity, im, mm)

    def pretrade(self, inputs: MarginInputs, rows: np.ndarray, instrument: np.ndarray,
                 delta: np.ndarray, price: np.ndarray, fee_rate: float) -> np.ndarray:
        """Sequential pre-trade check of orders (see ``cross_pretrade_kernel``)."""
        self._check_assets(inputs)
        rows = np.asarray(rows, np.int64)
        if len(rows) == 0:
            return np.zeros(0, np.bool_)
        uniq, local, (lo, hi) = _unique_rows(rows)
        instrument = np.asarray(instrument, np.int64)
        delta = np.asarray(delta, np.float64)
        price = np.asarray(price, np.float64)
        s = inputs.specs
        p = self.packed
        if self._fused(inputs, lo, hi):  # one kernel call
            return cross_pretrade_rows_kernel(
                inputs.collateral, inputs.positions, inputs.entry_prices, inputs.asset_prices,
                inputs.marks, s.kind, s.underlying, s.quote, s.contract_size, inputs.haircuts,
                *p.arrays(), uniq, local, instrument, delta, price, float(fee_rate), s.strike,
                s.is_call, *self.option_rates)
        sub = inputs.subset(uniq)
        res = self.evaluate(sub)
        return cross_pretrade_kernel(
            sub.collateral, sub.positions, inputs.asset_prices, inputs.marks, s.kind,
            s.underlying, s.quote, s.contract_size, inputs.haircuts, p.start, p.count, p.floors,
            p.imr, p.im_cum, res.equity, res.initial, local, instrument, delta, price,
            float(fee_rate), s.strike, s.is_call, *self.option_rates)

    def _fused(self, inputs: MarginInputs, lo: int, hi: int) -> bool:
        """Whether ``cross_pretrade_rows_kernel`` may serve a check of accounts ``lo..hi``.

        Not when a subclass overrides :meth:`evaluate` (its result must count),
        nor for rows outside the state (left to numpy's indexing rules).
        """
        if type(self).evaluate is not CrossMarginEngine.evaluate:
            return False
        return lo >= 0 and hi < len(inputs.collateral)


_SMALL_UNIQUE = 32
"""Up to this many orders, distinct accounts are found with a dict rather than ``np.unique``."""


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Distinct accounts, each order's index into them (int64 arrays), and (min, max) account.

    The order of the distinct accounts is irrelevant to the pre-trade check
    (accounts are independent), so small batches use first-seen order.
    """
    if len(rows) > _SMALL_UNIQUE:
        uniq, local = np.unique(rows, return_inverse=True)
        return uniq, local.astype(np.int64), (int(uniq[0]), int(uniq[-1]))
    first: dict[int, int] = {}
    local = [first.setdefault(r, len(first)) for r in rows.tolist()]
    uniq = np.fromiter(first, np.int64, len(first))
    return uniq, np.array(local, np.int64), (min(first), max(first))
