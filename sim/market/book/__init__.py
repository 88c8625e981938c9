"""Limit order books: a numba price-time-priority continuous double auction.

One :class:`OrderBook` per instrument.  Prices are integer ticks (any value
>= 1, no band), quantities integer lots.  Orders: limit, market, IOC,
post-only, reduce-only, cancel; partial fills; self-trade prevention after
Binance's EXPIRE_MAKER / EXPIRE_TAKER / EXPIRE_BOTH; a per-owner net position
array; an append-only fill log.  Matching follows price-time priority as on
CME Globex and Binance: best price first, FIFO within a price, at the maker's
price.

Modules:
    constants: sides, event kinds, flags, STP modes, status codes and the
        ``EVENT_DTYPE`` / ``FILL_DTYPE`` / ``RESULT_DTYPE`` records.
    kernels: the njit matching kernels (per-event and batched) over the raw
        state arrays.
    analytics: njit L2 depth, volume at a price, and sweep cost (VWAP and
        slippage of a hypothetical market order) over the raw state arrays.
    orderbook: the :class:`OrderBook` wrapper that owns and grows the arrays.
"""

from sim.market.book.analytics import best_price, depth_side, sweep_cost, volume_at
from sim.market.book.constants import (
    CANCEL,
    EVENT_DTYPE,
    FILL_DTYPE,
    IOC,
    LIMIT,
    MARKET,
    POST_ONLY,
    REDUCE_ONLY,
    RESULT_DTYPE,
    STATUS_CANCELLED,
    STATUS_EXPIRED,
    STATUS_FILLED,
    STATUS_NOT_FOUND,
    STATUS_REJECTED_INVALID,
    STATUS_REJECTED_POST_ONLY,
    STATUS_REJECTED_REDUCE_ONLY,
    STATUS_RESTING,
    STATUS_STP_EXPIRED,
    STP_CANCEL_BOTH,
    STP_CANCEL_RESTING,
    STP_CANCEL_TAKER,
    STP_NONE,
    Side,
)
from sim.market.book.kernels import apply_batch, process_event
from sim.market.book.orderbook import LIVE_ORDER_DTYPE, BookState, OrderBook, SweepCost

__all__ = [
    "CANCEL",
    "EVENT_DTYPE",
    "FILL_DTYPE",
    "IOC",
    "LIMIT",
    "LIVE_ORDER_DTYPE",
    "MARKET",
    "POST_ONLY",
    "REDUCE_ONLY",
    "RESULT_DTYPE",
    "STATUS_CANCELLED",
    "STATUS_EXPIRED",
    "STATUS_FILLED",
    "STATUS_NOT_FOUND",
    "STATUS_REJECTED_INVALID",
    "STATUS_REJECTED_POST_ONLY",
    "STATUS_REJECTED_REDUCE_ONLY",
    "STATUS_RESTING",
    "STATUS_STP_EXPIRED",
    "STP_CANCEL_BOTH",
    "STP_CANCEL_RESTING",
    "STP_CANCEL_TAKER",
    "STP_NONE",
    "BookState",
    "OrderBook",
    "Side",
    "SweepCost",
    "apply_batch",
    "best_price",
    "depth_side",
    "process_event",
    "sweep_cost",
    "volume_at",
]
