"""The bad-debt waterfall of a bankrupt account.

Universal cover, insurance, ADL or socialised loss, then recorded bad debt (the steps are described
in :mod:`sim.venue.liquidation`).

:class:`Waterfall` holds the waterfall's methods; the liquidation engine
(:class:`sim.venue.liquidation.rounds.LiquidationEngine`) inherits them, so the
rounds and the waterfall share the engine's state (events, counters, the
model's ledger and marks) but live in their own modules.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from sim.venue.liquidation.config import QUOTE

__all__ = ["ADL_MAX_MOVE", "Waterfall", "bankruptcy_prices", "stable_order"]


ADL_MAX_MOVE = 0.5
"""Largest distance of an ADL price from the mark, as a fraction of the mark.

An account's deficit is spread over its positions; when the deficit is large
against a position's notional (it came from borrows or other losses) the
formula below would put the "bankruptcy price" near zero or far above the mark,
and ADL would transfer losses unrelated to that position. The price is bounded
to ``mark x (1 +- ADL_MAX_MOVE)``; the part of the deficit this leaves uncovered
stays with the account and ends as socialised loss or recorded bad debt.
"""


def stable_order(key: np.ndarray) -> Iterator[int]:
    """The indices of ``np.argsort(key, kind="stable")``, lazily: the first without sorting.

    The first index is the first occurrence of the smallest non-NaN key (or 0
    when every key is NaN: the sort puts NaN last), found in one pass; the
    rest come from the full stable sort, done only if the caller asks for a
    second index. The ADL queue mostly places a position with its first
    counterparty, so ranking all profitable accounts costs a pass, not a sort.

    Args:
        key: Sort keys.

    Yields:
        Indices into ``key``, in stable ascending order of ``key``.
    """
    if len(key) == 0:
        return
    finite = np.flatnonzero(~np.isnan(key))
    first = int(finite[np.argmin(key[finite])]) if len(finite) else 0
    yield first
    for i in np.argsort(key, kind="stable").tolist():
        if i != first:
            yield i


def bankruptcy_prices(value: float, positions: np.ndarray, marks: np.ndarray,
                      max_move: float = ADL_MAX_MOVE) -> np.ndarray:
    """Per-position prices at which closing everything leaves the account at zero value.

    The deficit ``-value`` is split over positions by notional weight
    ``w_j = |q_j| m_j / sum |q| m``: ``p_j = m_j - value w_j / q_j``. For a
    bankrupt long (``value < 0``) the price is above the mark. Each price is
    bounded to ``m_j (1 +- max_move)`` (see :data:`ADL_MAX_MOVE`).

    Args:
        value: Account net value (negative when bankrupt).
        positions: Signed positions (non-zero).
        marks: Their marks.
        max_move: Largest distance from the mark, as a fraction of it.
    """
    notional = np.abs(positions) * marks
    w = notional / notional.sum()
    raw = marks - value * w / positions
    return np.clip(raw, marks * (1.0 - max_move), marks * (1.0 + max_move))


class Waterfall:
    """Deficit resolution of a bankrupt account, mixed into the liquidation engine."""

    def _resolve_bankrupt(self, proto: Any, row: int, bankrupt: set[int]) -> None:
        """Insurance fund, then socialisation or ADL, then explicit bad debt."""
        cfg = self.cfgs[proto.index]
        self._cancel_orders(proto, row)
        tol = float(self._tolerances(np.array([row]))[0])
        deficit = -self._value(row)
        if deficit <= tol:
            return
        if self._universal_cover(proto, row, deficit):
            deficit = -self._value(row)
            if deficit <= tol:
                return
        stats = self.step_stats[proto.index]
        stats["insolvency"] += deficit
        if proto.options:  # options at the mark, value-neutral: the deficit is unchanged
            self._close_options(proto, row, penalty=False, in_book=False)
        self._take_balances(proto, row, "insurance")  # spot book first: no exposure left
        if getattr(cfg, "insurance_cover", True):
            self._insurance_cover(proto, row, deficit, take_all=cfg.bad_debt == "socialise")
        remaining = -self._value(row)
        if remaining > tol:
            if cfg.bad_debt == "socialise":
                self._socialise(proto, row, remaining, bankrupt)
            elif cfg.bad_debt != "write_off":
                self._adl(proto, row, remaining, bankrupt, queue=cfg.bad_debt == "adl_queue")
        for j, q in self._positions(proto, row):  # nobody else could take these
            self._transfer(j, row, proto.insurance, q, float(self.model.marks[j]))
            self._event(proto, row, "insurance", j, q, float(self.model.marks[j]),
                        taker=proto.insurance)
        self._write_off(proto, row)

    def _universal_cover(self, proto: Any, row: int, deficit: float) -> bool:
        """Universal margin: the owner's sub-accounts on other protocols pay the deficit first.

        With ``contagion.universal_margin`` and ``contagion.universal_cover``, a
        bankrupt sub-account of a universal owner (:mod:`sim.contagion.universal`) draws
        on its siblings before its protocol's insurance fund: from each sibling
        (protocol order) its positive quote balance, then its other positive
        balances in kind at the index, never more than the sibling's whole
        value (balances and positions at the mark), until the deficit is met.
        One ``universal_cover`` event per balance moved (``taker``: the sibling,
        ``amount``: value moved). A sibling left short of its own requirement
        is liquidated in the next round, as the owner's margin ratio says.

        Returns:
            Whether anything was moved.
        """
        m = self.model
        uni = getattr(m, "universal", None)
        if uni is None or not m.cfg.contagion.universal_cover:
            return False
        lg = m.ledger
        moved = False
        for sib in uni.siblings(row).tolist():
            avail = self._value(sib)
            for a in range(lg.n_assets):
                if deficit <= 0.0 or avail <= 0.0:
                    break
                b = float(lg.collateral[sib, a])
                if b <= 0.0:
                    continue
                price = 1.0 if a == QUOTE else float(m.asset_prices[a])
                units = min(b, deficit / price, avail / price)
                lg.transfer(sib, row, a, units)
                value = units * price
                self._event(proto, row, "universal_cover", size=units, price=price, amount=value,
                            taker=sib, asset=a)
                deficit -= value
                avail -= value
                moved = True
        return moved

    def _insurance_cover(self, proto: Any, row: int, deficit: float, take_all: bool) -> None:
        """The fund pays what it can and takes the same fraction of the positions at the mark."""
        m = self.model
        positions = self._positions(proto, row)
        quote = QUOTE
        cover = min(deficit, max(float(m.ledger.collateral[proto.insurance, quote]), 0.0))
        frac = 1.0 if take_all or cover >= deficit else cover / deficit
        if frac <= 0.0:
            return
        if cover > 0.0:
            m.ledger.transfer(proto.insurance, row, quote, cover)
        self.step_stats[proto.index]["insurance_paid"] += cover
        if not positions:
            self._event(proto, row, "insurance", amount=cover, taker=proto.insurance, asset=quote)
            return
        notional = np.array([abs(q) * float(m.marks[j]) for j, q in positions])
        for (j, q), w in zip(positions, notional / notional.sum(), strict=True):
            size = q if frac >= 1.0 else q * frac
            self._transfer(j, row, proto.insurance, size, float(m.marks[j]))
            self._event(proto, row, "insurance", j, size, float(m.marks[j]), amount=cover * w,
                        taker=proto.insurance)

    def _not_bankrupt(self, proto: Any, bankrupt: set[int]) -> np.ndarray:
        """The protocol's trader rows (in ``proto.accounts`` order) not in ``bankrupt``.

        ``bankrupt`` is the round's set, the same object for every account the
        round resolves, so the array is built once per round and protocol
        (vectorised) and reused; it is rebuilt when the set, its size or the
        account list changes.
        """
        key = (proto.index, len(bankrupt), len(proto.accounts))
        cached = self._candidates
        if cached is not None and cached[0] is bankrupt and cached[1] == key:
            return cached[2]
        acc = np.fromiter(proto.accounts, np.int64, count=len(proto.accounts))
        out = acc[~np.isin(acc, np.fromiter(bankrupt, np.int64, count=len(bankrupt)))]
        self._candidates = (bankrupt, key, out)
        return out

    def _eligible(self, proto: Any, row: int, bankrupt: set[int]) -> np.ndarray:
        """Other trader rows of the protocol that are not bankrupt themselves, with value > 0."""
        rows = self._not_bankrupt(proto, bankrupt)
        rows = rows[rows != row]
        if len(rows) == 0:
            return rows
        return rows[self._values_of(rows) > 0.0]

    def _socialise(self, proto: Any, row: int, deficit: float, bankrupt: set[int]) -> None:
        """Charge the deficit to solvent accounts pro rata to their unrealised profit."""
        m = self.model
        lg = m.ledger
        rows = self._eligible(proto, row, bankrupt)
        if len(rows) == 0:
            return
        perps = self._perps(proto)
        upnl = lg.unrealised_pnl_by_instrument(m.marks, rows=rows)[:, perps].sum(axis=1)
        values = lg.account_value(m.asset_prices, m.marks, rows=rows)
        base = np.minimum(np.maximum(upnl, 0.0), values)
        total = float(base.sum())
        if total <= 0.0:
            return
        scale = min(1.0, deficit / total)
        for r, b in zip(rows, base, strict=True):
            charge = float(b) * scale
            if charge <= 0.0:
                continue
            lg.transfer(int(r), row, QUOTE, charge, allow_negative=True)
            self._event(proto, row, "socialised", amount=charge, taker=int(r))
            self.step_stats[proto.index]["socialised"] += charge

    def _adl(self, proto: Any, row: int, deficit: float, bankrupt: set[int], queue: bool) -> None:
        """Close bankrupt positions against profitable opposite ones at bankruptcy prices."""
        m = self.model
        positions = self._positions(proto, row)
        if not positions:
            return
        js = np.array([j for j, _ in positions], np.int64)
        qs = np.array([q for _, q in positions])
        marks = m.marks[js].astype(np.float64)
        prices = bankruptcy_prices(-deficit, qs, marks)
        rows = self._eligible(proto, row, bankrupt)
        for j, q, mark, p_b in zip(js, qs, marks, prices, strict=True):
            tick = m.instruments[int(j)].tick_size
            self._adl_one(proto, row, int(j), float(q), float(mark), max(float(p_b), tick), rows,
                          queue)

    def _adl_one(self, proto: Any, row: int, j: int, q: float, mark: float, price: float,
                 rows: np.ndarray, queue: bool) -> None:
        """ADL of one position ``q`` at ``price`` against the eligible ``rows``."""
        lg = self.model.ledger
        if len(rows) == 0:
            return
        c = lg.position[rows, j]
        upnl = c * (mark - lg.entry_price[rows, j])
        ok = (np.sign(c) == -np.sign(q)) & (upnl > 0.0)
        if not ok.any():
            return
        rows, c, upnl = rows[ok], np.abs(c[ok]), upnl[ok]
        need = abs(q)
        if queue:  # highest rank first, each closed in full until the position is placed
            values = self._values_of(rows)
            gross = self._values_of(rows, gross=True)
            order = stable_order(-(upnl / values) * (gross / values))
            take = c
        else:  # everyone the same fraction of its size
            order = range(len(rows))
            take = c * min(1.0, need / float(c.sum()))
        left = abs(float(lg.position[row, j]))
        for i in order:
            r, x = rows[i], min(float(take[i]), left)
            if x <= 0.0:
                continue
            if left - x < 1e-12 * need:
                x = left
            self._transfer(j, row, int(r), math.copysign(x, q), price)
            loss = x * abs(price - mark)
            self._event(proto, row, "adl", j, math.copysign(x, q), price, amount=loss, taker=int(r))
            self.step_stats[proto.index]["adl_loss"] += loss
            left = abs(float(lg.position[row, j]))
            if left == 0.0:
                break

    def _write_off(self, proto: Any, row: int) -> None:
        """Record what is still negative as bad debt, paid by the protocol's bad-debt row."""
        remaining = -self._value(row)
        if remaining <= self._tolerances(np.array([row]))[0]:
            return
        bad_row = self.bad_debt_rows[proto.index]
        self.model.ledger.transfer(bad_row, row, QUOTE, remaining, allow_negative=True)
        self.bad_debt[proto.index] += remaining
        self.step_stats[proto.index]["bad_debt"] += remaining
        self._event(proto, row, "bad_debt", amount=remaining, shortfall=remaining, taker=bad_row)
