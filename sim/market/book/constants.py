"""Codes, flags and record layouts shared by the order-book kernels and wrapper.

Everything here is a plain integer or a numpy dtype so that numba kernels can
use the values as compile-time constants.  The public part (sides, event kinds,
flags, self-trade-prevention modes, status codes, the three structured dtypes)
is re-exported from :mod:`sim.market.book`; the ``O_*``/``W_*``/``L_*``/``M_*``/``F_*``
/``E_*``/``R_*`` column indices describe the raw state arrays for njit callers (see
:mod:`sim.market.book.kernels` for the layout and :mod:`sim.market.book.analytics` for
read-only kernels over it).

All record fields are int64: the kernels view every structured array as a
2-D int64 array (``arr.view(np.int64).reshape(n, n_fields)``), which is free and
keeps numba dispatch on plain arrays.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

__all__ = [
    "ALL_FLAGS",
    "CANCEL",
    "EVENT_DTYPE",
    "FILL_DTYPE",
    "IOC",
    "LIMIT",
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
    "Side",
]


class Side(IntEnum):
    """Order side; the value is the sign of the position change of a fill."""

    BUY = 1
    SELL = -1


# --- event kinds -------------------------------------------------------------
LIMIT = 0
"""Limit order: match what crosses at the makers' prices, rest the remainder."""
MARKET = 1
"""Market order: match up to ``qty`` at any price; the remainder is cancelled."""
CANCEL = 2
"""Cancel the live order whose id is in the event's ``order_id`` field."""

# --- flags (bit mask) --------------------------------------------------------
IOC = 1
"""Immediate-or-cancel: the unmatched remainder of a limit order is cancelled."""
POST_ONLY = 2
"""Reject the whole limit order if it would cross on arrival (no price slide)."""
REDUCE_ONLY = 4
"""The order may only reduce the absolute net position of its owner."""
ALL_FLAGS = IOC | POST_ONLY | REDUCE_ONLY

# --- self-trade prevention (after Binance's STP modes) -----------------------
STP_NONE = 0
"""Orders of the same owner trade with each other."""
STP_CANCEL_RESTING = 1
"""Cancel the resting order and keep matching (Binance ``EXPIRE_MAKER``)."""
STP_CANCEL_TAKER = 2
"""Cancel the taker's remainder (Binance ``EXPIRE_TAKER``)."""
STP_CANCEL_BOTH = 3
"""Cancel both the resting order and the taker's remainder (``EXPIRE_BOTH``)."""

# --- result status codes -----------------------------------------------------
STATUS_RESTING = 0
"""Accepted; the (possibly partly filled) remainder rests in the book."""
STATUS_FILLED = 1
"""Accepted and completely filled (after any reduce-only clipping)."""
STATUS_EXPIRED = 2
"""Accepted; the unfilled remainder of a market/IOC order (or the part of a
reduce-only order above the reducible amount) was cancelled."""
STATUS_STP_EXPIRED = 3
"""Accepted; the remainder was cancelled by self-trade prevention (taker side)."""
STATUS_CANCELLED = 4
"""Cancel event: the target order was live and has been cancelled."""
STATUS_REJECTED_INVALID = -1
"""Rejected: bad kind, side, quantity, price, owner or flag combination."""
STATUS_REJECTED_POST_ONLY = -2
"""Rejected: a post-only order would have crossed on arrival."""
STATUS_REJECTED_REDUCE_ONLY = -3
"""Rejected: a reduce-only order whose owner has nothing to reduce on that side."""
STATUS_NOT_FOUND = -4
"""Cancel event: the target id is unknown or no longer live."""

# Kernel return codes asking the wrapper to grow an array and resume.  They are
# never written to a result row.
NEED_ORDERS = 100
NEED_LEVELS = 101
NEED_FILLS = 102
NEED_OWNERS = 103
NEED_BASE = 100

# --- structured dtypes ---------------------------------------------------------
EVENT_DTYPE = np.dtype(
    [
        ("kind", np.int64),
        ("side", np.int64),
        ("price", np.int64),
        ("qty", np.int64),
        ("owner", np.int64),
        ("flags", np.int64),
        ("order_id", np.int64),
    ]
)
"""One order event: ``order_id`` is read only by CANCEL, ``price`` ignored by MARKET."""

FILL_DTYPE = np.dtype(
    [
        ("step", np.int64),
        ("maker_order", np.int64),
        ("taker_order", np.int64),
        ("maker_owner", np.int64),
        ("taker_owner", np.int64),
        ("price", np.int64),
        ("qty", np.int64),
        ("taker_side", np.int64),
    ]
)
"""One fill; ``price`` is the maker's price, ``taker_side`` is +1 (buy) or -1."""

RESULT_DTYPE = np.dtype(
    [
        ("order_id", np.int64),
        ("status", np.int64),
        ("filled_qty", np.int64),
    ]
)
"""Outcome of one event: the order id it got (or targeted), a ``STATUS_*`` code
and the quantity it filled as taker (0 for cancels and rejections)."""

# --- column indices of the raw state arrays ----------------------------------
# EVENT / FILL / RESULT columns when viewed as 2-D int64.
E_KIND, E_SIDE, E_PRICE, E_QTY, E_OWNER, E_FLAGS, E_ORDER_ID = range(7)
N_EVENT_COLS = 7
(
    F_STEP,
    F_MAKER_ORDER,
    F_TAKER_ORDER,
    F_MAKER_OWNER,
    F_TAKER_OWNER,
    F_PRICE,
    F_QTY,
    F_TAKER_SIDE,
) = range(8)
N_FILL_COLS = 8
R_ORDER_ID, R_STATUS, R_FILLED = range(3)
N_RESULT_COLS = 3

# Order pool ``orders[slot, O_*]`` (int64, shape (order_capacity, 10)).  ``O_PREV``/
# ``O_NEXT`` link a live order into its price level's FIFO (``O_NEXT`` also
# threads the free list); ``O_OWNER_PREV``/``O_OWNER_NEXT`` into its owner's list.
(
    O_ID,
    O_PRICE,
    O_REM,
    O_OWNER,
    O_SIDE,
    O_FLAGS,
    O_PREV,
    O_NEXT,
    O_OWNER_PREV,
    O_OWNER_NEXT,
) = range(10)
N_ORDER_COLS = 10

# Owner index ``by_owner[owner, W_*]`` (int64, shape (owner_capacity, 3), as many
# rows as ``positions``): first and last slot of the owner's live orders in id
# order (-1 when it has none) and their number.
W_HEAD, W_TAIL, W_COUNT = range(3)
N_OWNER_COLS = 3

# Price levels ``levels[side_index, i, L_*]`` (int64, shape (2, level_capacity, 4)).
# side_index 0 = bids (ascending price), 1 = asks (descending price): the best
# level of both sides is the LAST active row, ``levels[s, meta[s] - 1]``.
L_PRICE, L_QTY, L_HEAD, L_TAIL = range(4)
N_LEVEL_COLS = 4
BID = 0
ASK = 1

# Scalars ``meta[M_*]`` (int64, shape (META_SIZE,)).
M_N_BID_LEVELS = 0  # == BID, so meta[side_index] is that side's level count
M_N_ASK_LEVELS = 1
M_N_BID_ORDERS = 2  # meta[M_N_BID_ORDERS + side_index] is that side's live orders
M_N_ASK_ORDERS = 3
M_FREE = 4  # head of the free-slot list threaded through orders[:, O_NEXT]
M_NEXT_ID = 5
M_N_FILLS = 6
M_STEP = 7
M_STP = 8
M_CANCELLED_QTY = 9
M_SUBMITTED_QTY = 10
M_N_OWNERS = 11
META_SIZE = 16
