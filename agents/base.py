"""Helpers every trader population shares: order events from the view, exposure and caps.

A population is one Mesa agent acting for many ledger rows at once
(DESIGN.md, "State lives in arrays"); these functions turn its vectorised
decisions into book events (:data:`sim.market.view` constants) and keep them
within each row's exposure cap. Used by the fundamentalist, momentum,
leveraged and arbitrageur populations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.market.view import IOC, LIMIT, MARKET

__all__ = ["capped_notional", "exposure_notional", "initial_spot_holdings", "order_events"]


def exposure_notional(view: Any, rows: np.ndarray, j: int, base0: np.ndarray | None) -> np.ndarray:
    """Signed exposure of accounts to instrument ``j``, in quote units at the index.

    Args:
        view: The :class:`sim.market.view.MarketView`.
        rows: Ledger rows.
        j: Instrument index.
        base0: Initial base-asset balances of ``rows`` (spot only; ignored for perps).

    Returns:
        Perp position × index, or (spot holding − initial holding) × index.
    """
    inst = view.instruments[j]
    price = view.underlying_price(j)
    if inst.is_perp:
        return view.positions(rows, j) * price
    held = view.balances(rows, inst.base)
    return (held - (0.0 if base0 is None else base0)) * price


def capped_notional(side: np.ndarray, notional: np.ndarray, exposure: np.ndarray,
                    cap: float) -> np.ndarray:
    """Order notionals clipped so that growing orders stay within ``|exposure| <= cap``.

    An order on the side of the current exposure (or from flat) may add at most
    ``cap − |exposure|``; an order against it is limited to what closes the
    exposure and re-opens at most ``cap`` on the other side.
    """
    growing = side * exposure >= 0.0
    room = np.where(growing, cap - np.abs(exposure), np.abs(exposure) + cap)
    return np.clip(np.minimum(notional, room), 0.0, None)


def order_events(view: Any, j: int, rows: np.ndarray, side: np.ndarray, qty: np.ndarray,
                 is_market: np.ndarray, limit_price: np.ndarray, flags: int = 0) -> np.ndarray:
    """Market or IOC-limit events for ``rows``; orders rounding to zero lots are dropped.

    Args:
        view: The market view.
        j: Instrument index.
        rows: Sending ledger rows.
        side: +1 buy / −1 sell per order.
        qty: Base quantity per order (non-negative).
        is_market: Market order (True) or IOC limit (False) per order.
        limit_price: Limit price in quote units (ignored for market orders);
            buys round down to a tick, sells up, so no limit is looser than asked.
        flags: Extra flags for every order (e.g. ``REDUCE_ONLY``).

    Returns:
        An ``EVENT_DTYPE`` array, possibly empty.
    """
    inst = view.instruments[j]
    lots = np.rint(np.asarray(qty, np.float64) / inst.lot_size).astype(np.int64)
    keep = lots > 0
    ev = view.new_events(int(keep.sum()))
    if len(ev) == 0:
        return ev
    side = np.asarray(side, np.int64)[keep]
    is_market = np.asarray(is_market, np.bool_)[keep]
    limit = np.asarray(limit_price, np.float64)[keep]
    ticks = np.where(side > 0, inst.ticks(limit, side=1), inst.ticks(limit, side=-1))
    ev["owner"] = np.asarray(rows, np.int64)[keep]
    ev["side"] = side
    ev["qty"] = lots[keep]
    ev["kind"] = np.where(is_market, MARKET, LIMIT)
    ev["price"] = np.where(is_market, 0, ticks)
    ev["flags"] = np.where(is_market, 0, IOC) | flags
    return ev


def initial_spot_holdings(view: Any, cache: dict[int, np.ndarray], rows: np.ndarray,
                          j: int) -> np.ndarray | None:
    """Holdings of instrument ``j``'s base asset when a population first traded it.

    The inventory rule measures spot exposure as drift from these holdings;
    ``None`` for a perpetual (its position is the exposure). ``cache`` maps
    base asset → holdings and is filled on first use.
    """
    inst = view.instruments[j]
    if inst.is_perp:
        return None
    if inst.base not in cache:
        cache[inst.base] = view.balances(rows, inst.base)
    return cache[inst.base]
