"""Liquidating option positions: close in the book, else a takeover at the mark.

Deribit liquidates option positions of an account below maintenance by
reduce-only orders in the option books when they can take them, and
otherwise transfers them to its liquidation counterparty at the mark with a
penalty paid to the insurance fund (Deribit knowledge base, "Liquidations";
``ASSUMPTIONS.md``, "Options"). Here:

* **in the book** (kind ``option_close``): when the best opposite quote is
  within ``market.options.close_slippage`` of the underlying index from the
  option's mark, the account sends one reduce-only IOC order for its whole
  position, limited at ``mark ± close_slippage × index``; what fills is
  traded like any fill (fees to the treasury);
* **takeover** (kind ``option_takeover``): what is left moves to the
  protocol's insurance fund at the mark (value-neutral for the account:
  :meth:`sim.ledger.Ledger.transfer_position`), and a solvent account pays
  the penalty ``liquidation_penalty × |q| × index`` to the fund.

A bankrupt account's options are taken over at the mark without penalty
before its deficit goes down the waterfall. Options are closed before the
account's perpetuals are offered (they carry the largest requirements per
unit of notional under the standard margin), and every close or takeover
counts as a liquidation (takeovers also as backstops) with the underlying
notional ``|q| × index`` in ``notional``.

:class:`OptionCloseOut` holds these methods and is mixed into the liquidation
engine (:class:`sim.venue.liquidation.rounds.LiquidationEngine`).
"""

from __future__ import annotations

from typing import Any

import numpy as np


__all__ = ["OptionCloseOut"]


class OptionCloseOut:
    """Option close-out, mixed into the liquidation engine (module docstring)."""

    def _option_positions(self, proto: Any, row: int) -> list[tuple[int, float]]:
        pos = self.model.ledger.position
        return [(i.index, float(pos[row, i.index])) for i in proto.options
                if pos[row, i.index] != 0.0]

    def _close_options(self, proto: Any, row: int, penalty: bool, in_book: bool) -> None:
        """Close every option position of ``row`` (module docstring)."""
        m = self.model
        ocfg = m.cfg.market.options
        stats = self.step_stats[proto.index]
        for j, q in self._option_positions(proto, row):
            inst = m.instruments[j]
            index = float(m.asset_prices[inst.base])
            per_quote = float(m.asset_prices[inst.quote])
            mark = float(m.marks[j])
            if in_book:
                q = self._close_in_book(proto, row, j, q, mark,
                                        float(ocfg.close_slippage) * index / per_quote)
            if q == 0.0:
                continue
            self._transfer(j, row, proto.insurance, q, max(mark, 1e-300))
            fee = float(ocfg.liquidation_penalty) * abs(q) * index / per_quote if penalty else 0.0
            if fee > 0.0:
                m.ledger.transfer(row, proto.insurance, inst.quote, fee, allow_negative=True)
            self._event(proto, row, "option_takeover", j, q, mark, fee=fee,
                        taker=proto.insurance)
            stats["liquidations"] += 1
            stats["backstops"] += 1
            stats["notional"] += abs(q) * index
            stats["fees"] += fee * per_quote

    def _close_in_book(self, proto: Any, row: int, j: int, q: float, mark: float,
                       tol: float) -> float:
        """A reduce-only IOC order closing ``q`` near the mark; returns what is left."""
        m = self.model
        inst = m.instruments[j]
        book = m.books[j]
        side = -1 if q > 0 else 1
        best = book.best_bid() if side < 0 else book.best_ask()
        if best is None or abs(best * inst.tick_size - mark) > tol:
            return q
        entry = self._entry(row, j)
        traded = self._ioc_close(row, j, q, mark - tol if side < 0 else mark + tol)
        left = float(m.ledger.position[row, j])
        if traded != 0.0:
            self._event(proto, row, "option_close", j, traded, mark, taker=-1, entry=entry)
            stats = self.step_stats[proto.index]
            stats["liquidations"] += 1
            stats["notional"] += abs(traded) * float(m.asset_prices[inst.base])
        return left if np.sign(left) == np.sign(q) else 0.0
