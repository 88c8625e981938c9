"""Numba matching kernels of the price-time-priority continuous double auction.

Matching follows the usual exchange rules (CME Globex / Binance spot and
futures): an incoming order (the taker) trades against the best opposite price
first and, within a price level, against resting orders (makers) in arrival
order (FIFO); every fill is at the maker's price.  Self-trade prevention modes
follow Binance's ``EXPIRE_MAKER`` / ``EXPIRE_TAKER`` / ``EXPIRE_BOTH``.

State layout (all int64, all C-contiguous; column names in
:mod:`sim.market.book.constants`):

``orders`` (order_capacity, 10)
    A pool of order slots.  A live slot holds ``O_ID, O_PRICE, O_REM,
    O_OWNER, O_SIDE, O_FLAGS``, the ``O_PREV``/``O_NEXT`` slots of its
    neighbours in its level's FIFO (a doubly linked list, so cancel is O(1))
    and the ``O_OWNER_PREV``/``O_OWNER_NEXT`` slots of its neighbours among its
    owner's live orders (a second intrusive doubly linked list).  Free slots
    have ``O_ID == -1`` and are chained through ``O_NEXT`` from
    ``meta[M_FREE]``.  Memory is proportional to the number of live orders.
``table`` (power of two >= 2 * order_capacity,)
    Open-addressing hash map order id -> slot (linear probing on
    ``id & mask``, backward-shift deletion); ``-1`` marks an empty bucket.
``levels`` (2, level_capacity, 4)
    Per side, the active price levels sorted so that the best level is the last
    active row: bids by ascending price, asks by descending price.  Matching
    pops levels from the back; ``meta[BID]`` / ``meta[ASK]`` are the counts.
    Any price >= 1 tick works and memory is proportional to the number of
    active levels, never to the price range.
``fills`` (fill_capacity, 8)
    Append-only fill log (``FILL_DTYPE`` columns), ``meta[M_N_FILLS]`` rows used.
``positions`` (owner_capacity,)
    Net position in lots per owner, updated by every fill.
``by_owner`` (owner_capacity, 3)
    Per owner, the first and last slot of its live orders (``W_HEAD``,
    ``W_TAIL``, -1 when none) and their number (``W_COUNT``).  An order joins
    the tail of its owner's list when it comes to rest, the moment it got the
    newest id, so each list is in increasing id order; a fill that ends a
    maker and a cancel unlink it in O(1).  One owner's live orders therefore
    cost only themselves to enumerate (:func:`owner_order_ids`), whatever the
    size of the book.  Same number of rows as ``positions``.
``meta`` (META_SIZE,)
    Counters, see the ``M_*`` indices.

Capacity protocol: before an event changes anything, :func:`process_event`
checks that a free order slot, a free level row, room for the worst-case number
of fills (``min(qty, live opposite orders)``: every fill either removes a maker
or ends the taker) and a position row and an owner-index row for the owner exist.  If not it returns
one of the ``NEED_*`` codes without side effects, and the caller grows that
array (:mod:`sim.market.book.orderbook` does it geometrically) and retries the same
event.  Nothing is ever dropped.

Compilation notes: every kernel is ``@njit(cache=True, _nrt=False)`` (``_nrt``
is a private but long-standing numba option).  None of them allocates, and
compiling without the numba runtime removes the atomic
reference-count updates numba otherwise emits around array arguments of
called functions (numba issues #2345/#2350), which took about half of the
batched run time.  Small helpers are ``inline="always"`` so that the per-event
body is one function; :func:`process_event` itself is not inlined into its two
callers, which keeps a cold compile at a few seconds.  A kernel that needs to
allocate (see :mod:`sim.market.book.analytics`) uses plain ``@njit(cache=True)``.
"""

from __future__ import annotations

from numba import njit

from sim.market.book.constants import (
    ALL_FLAGS,
    CANCEL,
    F_MAKER_ORDER,
    F_MAKER_OWNER,
    F_PRICE,
    F_QTY,
    F_STEP,
    F_TAKER_ORDER,
    F_TAKER_OWNER,
    F_TAKER_SIDE,
    IOC,
    L_HEAD,
    L_PRICE,
    L_QTY,
    L_TAIL,
    LIMIT,
    M_CANCELLED_QTY,
    M_FREE,
    M_N_BID_ORDERS,
    M_N_FILLS,
    M_N_OWNERS,
    M_NEXT_ID,
    M_STEP,
    M_STP,
    M_SUBMITTED_QTY,
    MARKET,
    NEED_BASE,
    NEED_FILLS,
    NEED_LEVELS,
    NEED_ORDERS,
    NEED_OWNERS,
    O_FLAGS,
    O_ID,
    O_NEXT,
    O_OWNER,
    O_OWNER_NEXT,
    O_OWNER_PREV,
    O_PREV,
    O_PRICE,
    O_REM,
    O_SIDE,
    POST_ONLY,
    REDUCE_ONLY,
    STATUS_CANCELLED,
    STATUS_EXPIRED,
    STATUS_FILLED,
    STATUS_NOT_FOUND,
    STATUS_REJECTED_INVALID,
    STATUS_REJECTED_POST_ONLY,
    STATUS_REJECTED_REDUCE_ONLY,
    STATUS_RESTING,
    STATUS_STP_EXPIRED,
    STP_CANCEL_RESTING,
    STP_CANCEL_TAKER,
    STP_NONE,
    W_COUNT,
    W_HEAD,
    W_TAIL,
)

__all__ = [
    "apply_batch",
    "cancel_order",
    "find_level",
    "link_free_slots",
    "order_remaining",
    "owner_order_ids",
    "process_event",
    "rebuild_table",
    "submit_one",
    "table_find",
]


# --- order id -> slot hash table ---------------------------------------------
@njit(cache=True, inline="always", _nrt=False)
def table_find(table, orders, order_id):
    """Find the slot of a live order.

    Args:
        table: Hash table (power-of-two length) of slots, ``-1`` for empty.
        orders: Order pool.
        order_id: Id to look up.

    Returns:
        ``(slot, bucket)``; ``slot == -1`` when the order is not live.
    """
    mask = table.shape[0] - 1
    i = order_id & mask
    while True:
        s = table[i]
        if s < 0:
            return -1, i
        if orders[s, O_ID] == order_id:
            return s, i
        i = (i + 1) & mask


@njit(cache=True, inline="always", _nrt=False)
def _table_insert(table, orders, order_id, slot):
    mask = table.shape[0] - 1
    i = order_id & mask
    while table[i] >= 0:
        i = (i + 1) & mask
    table[i] = slot


@njit(cache=True, inline="always", _nrt=False)
def _table_delete(table, orders, bucket):
    """Empty ``bucket`` and backward-shift the rest of its probe run."""
    mask = table.shape[0] - 1
    i = bucket
    table[i] = -1
    j = i
    while True:
        j = (j + 1) & mask
        s = table[j]
        if s < 0:
            return
        home = orders[s, O_ID] & mask
        # The entry at j may move to the hole at i unless its home lies
        # cyclically in (i, j].
        if i <= j:
            if i < home <= j:
                continue
        elif home > i or home <= j:
            continue
        table[i] = s
        table[j] = -1
        i = j


@njit(cache=True, inline="always", _nrt=False)
def _table_remove(table, orders, order_id):
    slot, bucket = table_find(table, orders, order_id)
    if slot >= 0:
        _table_delete(table, orders, bucket)


@njit(cache=True, _nrt=False)
def rebuild_table(table, orders):
    """Refill an all-empty ``table`` with every live slot of ``orders``.

    Args:
        table: New hash table, filled with ``-1`` (length a power of two).
        orders: Order pool; slots with ``O_ID >= 0`` are live.
    """
    for s in range(orders.shape[0]):
        if orders[s, O_ID] >= 0:
            _table_insert(table, orders, orders[s, O_ID], s)


@njit(cache=True, _nrt=False)
def link_free_slots(orders, meta, start):
    """Mark slots ``start..`` free and push them on the free list (lowest first).

    Args:
        orders: Order pool.
        meta: Book counters.
        start: First slot to free.
    """
    n = orders.shape[0]
    nxt = meta[M_FREE]
    for s in range(n - 1, start - 1, -1):
        orders[s, O_ID] = -1
        orders[s, O_NEXT] = nxt
        nxt = s
    meta[M_FREE] = nxt


# --- price levels ----------------------------------------------------------------
@njit(cache=True, inline="always", _nrt=False)
def find_level(levels, meta, side_index, price):
    """Binary-search a side's level array.

    Args:
        levels: Level array.
        meta: Book counters (``meta[side_index]`` is the level count).
        side_index: 0 for bids, 1 for asks.
        price: Tick to look for.

    Returns:
        The first row whose price is not better-ordered before ``price``: the
        row of ``price`` if that level exists, else where it would be inserted.
    """
    n = meta[side_index]
    sgn = 1 - 2 * side_index  # bids ascending, asks descending
    key = price * sgn
    lo = 0
    hi = n
    # Most activity is at or next to the best level (the end): check it first.
    if n > 0 and levels[side_index, n - 1, L_PRICE] * sgn < key:
        return n
    while lo < hi:
        mid = (lo + hi) >> 1
        if levels[side_index, mid, L_PRICE] * sgn < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, inline="always", _nrt=False)
def _insert_level(levels, meta, side_index, row, price):
    n = meta[side_index]
    for r in range(n, row, -1):
        for c in range(4):
            levels[side_index, r, c] = levels[side_index, r - 1, c]
    levels[side_index, row, L_PRICE] = price
    levels[side_index, row, L_QTY] = 0
    levels[side_index, row, L_HEAD] = -1
    levels[side_index, row, L_TAIL] = -1
    meta[side_index] = n + 1


@njit(cache=True, inline="always", _nrt=False)
def _delete_level(levels, meta, side_index, row):
    n = meta[side_index]
    for r in range(row, n - 1):
        for c in range(4):
            levels[side_index, r, c] = levels[side_index, r + 1, c]
    meta[side_index] = n - 1


@njit(cache=True, inline="always", _nrt=False)
def _free_slot(orders, meta, slot):
    orders[slot, O_ID] = -1
    orders[slot, O_NEXT] = meta[M_FREE]
    meta[M_FREE] = slot


# --- owner index -------------------------------------------------------------------
@njit(cache=True, inline="always", _nrt=False)
def _owner_append(orders, by_owner, owner, slot):
    """Link ``slot`` (the newest live order) at the tail of ``owner``'s list."""
    tail = by_owner[owner, W_TAIL]
    orders[slot, O_OWNER_PREV] = tail
    orders[slot, O_OWNER_NEXT] = -1
    if tail >= 0:
        orders[tail, O_OWNER_NEXT] = slot
    else:
        by_owner[owner, W_HEAD] = slot
    by_owner[owner, W_TAIL] = slot
    by_owner[owner, W_COUNT] += 1


@njit(cache=True, inline="always", _nrt=False)
def _owner_unlink(orders, by_owner, slot):
    """Unlink a live order from its owner's list (before its slot is freed)."""
    owner = orders[slot, O_OWNER]
    prv = orders[slot, O_OWNER_PREV]
    nxt = orders[slot, O_OWNER_NEXT]
    if prv >= 0:
        orders[prv, O_OWNER_NEXT] = nxt
    else:
        by_owner[owner, W_HEAD] = nxt
    if nxt >= 0:
        orders[nxt, O_OWNER_PREV] = prv
    else:
        by_owner[owner, W_TAIL] = prv
    by_owner[owner, W_COUNT] -= 1


@njit(cache=True, _nrt=False)
def owner_order_ids(orders, by_owner, owner, out):
    """Write the ids of ``owner``'s live orders, in increasing id order, into ``out``.

    Walks the owner's list only: the cost is the number of its live orders,
    not the size of the book.

    Args:
        orders: Order pool.
        by_owner: Owner index.
        owner: Owner id (a row of ``by_owner``).
        out: int64 array of length ``by_owner[owner, W_COUNT]``.

    Returns:
        The number of ids written.
    """
    n = 0
    slot = by_owner[owner, W_HEAD]
    while slot >= 0 and n < out.shape[0]:
        out[n] = orders[slot, O_ID]
        n += 1
        slot = orders[slot, O_OWNER_NEXT]
    return n


@njit(cache=True, inline="always", _nrt=False)
def _pop_head(orders, table, levels, by_owner, meta, side_index, row, slot):
    """Remove the head order of a level (its remaining qty leaves the level)."""
    nxt = orders[slot, O_NEXT]
    levels[side_index, row, L_HEAD] = nxt
    if nxt >= 0:
        orders[nxt, O_PREV] = -1
    else:
        levels[side_index, row, L_TAIL] = -1
    levels[side_index, row, L_QTY] -= orders[slot, O_REM]
    _table_remove(table, orders, orders[slot, O_ID])
    _owner_unlink(orders, by_owner, slot)
    _free_slot(orders, meta, slot)
    meta[M_N_BID_ORDERS + side_index] -= 1


@njit(cache=True, inline="always", _nrt=False)
def cancel_order(orders, table, levels, by_owner, meta, order_id):
    """Cancel a live order, removing its level if it becomes empty.

    Args:
        orders: Order pool.
        table: Id -> slot hash table.
        levels: Level array.
        by_owner: Owner index.
        meta: Book counters.
        order_id: Id of the order to cancel.

    Returns:
        The cancelled remaining quantity, or ``-1`` if the id is not live.
    """
    slot, bucket = table_find(table, orders, order_id)
    if slot < 0:
        return -1
    side_index = (1 - orders[slot, O_SIDE]) >> 1
    row = find_level(levels, meta, side_index, orders[slot, O_PRICE])
    rem = orders[slot, O_REM]
    prv = orders[slot, O_PREV]
    nxt = orders[slot, O_NEXT]
    if prv >= 0:
        orders[prv, O_NEXT] = nxt
    else:
        levels[side_index, row, L_HEAD] = nxt
    if nxt >= 0:
        orders[nxt, O_PREV] = prv
    else:
        levels[side_index, row, L_TAIL] = prv
    levels[side_index, row, L_QTY] -= rem
    if levels[side_index, row, L_HEAD] < 0:
        _delete_level(levels, meta, side_index, row)
    _table_delete(table, orders, bucket)
    _owner_unlink(orders, by_owner, slot)
    _free_slot(orders, meta, slot)
    meta[M_N_BID_ORDERS + side_index] -= 1
    meta[M_CANCELLED_QTY] += rem
    return rem


@njit(cache=True, _nrt=False)
def order_remaining(orders, table, order_id):
    """Remaining quantity of a live order, 0 if it is not live.

    Args:
        orders: Order pool.
        table: Id -> slot hash table.
        order_id: Order id.

    Returns:
        Remaining lots.
    """
    slot, _ = table_find(table, orders, order_id)
    if slot < 0:
        return 0
    return orders[slot, O_REM]


# --- one event -------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def process_event(
    orders, table, levels, fills, positions, by_owner, meta, kind, side, price, qty, owner,
    flags, target
):
    """Apply one order event to the book.

    Semantics (identical to ``experiments/bench/reference_book.py``):

    * CANCEL cancels live order ``target``; it consumes no order id.
    * Any other kind than LIMIT/MARKET is rejected (no id).  LIMIT and MARKET
      consume the next order id whatever happens next.  They are rejected as
      invalid when side is not +-1, ``qty <= 0``, ``owner < 0``, unknown flag
      bits are set, a limit has ``price < 1`` or both IOC and POST_ONLY, or a
      market order has POST_ONLY.
    * REDUCE_ONLY: the quantity is clipped to the owner's reducible amount
      ``max(-side * position, 0)``; zero means rejection.
    * POST_ONLY: rejected if the opposite best price would cross.
    * Matching: best opposite level first, FIFO within it, at the maker's
      price, while the limit price crosses (any price for MARKET).  A maker of
      the same owner triggers self-trade prevention per ``meta[M_STP]``.  A
      reduce-only maker is first clipped to its owner's current reducible
      amount (the excess is cancelled; at zero the maker is cancelled and
      matching moves on).  A reduce-only taker needs no re-clipping: its
      remainder never exceeds its reducible amount once clipped at entry.
    * The remainder rests (LIMIT without IOC), or is cancelled.

    Args:
        orders: Order pool.
        table: Id -> slot hash table.
        levels: Level array.
        fills: Fill log.
        positions: Net position per owner.
        by_owner: Owner index (live orders per owner).
        meta: Book counters (``meta[M_STEP]`` stamps the fills).
        kind: LIMIT, MARKET or CANCEL.
        side: +1 buy, -1 sell.
        price: Limit price in ticks (ignored by MARKET and CANCEL).
        qty: Quantity in lots.
        owner: Owner id (>= 0).
        flags: Bit mask of IOC, POST_ONLY, REDUCE_ONLY.
        target: Order id to cancel (CANCEL only).

    Returns:
        ``(code, order_id, filled_qty)``.  ``code`` is a ``STATUS_*`` value,
        or a ``NEED_*`` value (>= ``NEED_BASE``) when an array must grow first;
        in that case nothing was changed.
    """
    if kind == CANCEL:
        if cancel_order(orders, table, levels, by_owner, meta, target) < 0:
            return STATUS_NOT_FOUND, target, 0
        return STATUS_CANCELLED, target, 0
    if kind != LIMIT and kind != MARKET:
        return STATUS_REJECTED_INVALID, -1, 0
    is_limit = kind == LIMIT
    invalid = (side != 1 and side != -1) or qty <= 0 or owner < 0 or (flags & ~ALL_FLAGS) != 0
    if is_limit:
        invalid = invalid or price < 1 or (flags & (IOC | POST_ONLY)) == (IOC | POST_ONLY)
    else:
        invalid = invalid or (flags & POST_ONLY) != 0
    if invalid:
        oid = meta[M_NEXT_ID]
        meta[M_NEXT_ID] = oid + 1
        return STATUS_REJECTED_INVALID, oid, 0

    # Capacity checks: no side effects before they all pass.
    si = (1 - side) >> 1
    oi = 1 - si
    if owner >= positions.shape[0] or owner >= by_owner.shape[0]:
        return NEED_OWNERS, -1, 0
    may_rest = is_limit and (flags & IOC) == 0
    if may_rest:
        if meta[M_FREE] < 0:
            return NEED_ORDERS, -1, 0
        if meta[si] >= levels.shape[1]:
            return NEED_LEVELS, -1, 0
    n_fills = meta[M_N_FILLS]
    if n_fills + min(qty, meta[M_N_BID_ORDERS + oi]) > fills.shape[0]:
        return NEED_FILLS, -1, 0

    oid = meta[M_NEXT_ID]
    meta[M_NEXT_ID] = oid + 1
    if owner >= meta[M_N_OWNERS]:
        meta[M_N_OWNERS] = owner + 1

    rem = qty
    if flags & REDUCE_ONLY:
        reducible = -side * positions[owner]
        if reducible <= 0:
            return STATUS_REJECTED_REDUCE_ONLY, oid, 0
        if reducible < rem:
            rem = reducible
    if flags & POST_ONLY:
        n_opp = meta[oi]
        if n_opp > 0 and (levels[oi, n_opp - 1, L_PRICE] - price) * side <= 0:
            return STATUS_REJECTED_POST_ONLY, oid, 0
    meta[M_SUBMITTED_QTY] += qty
    cancelled = qty - rem

    stp = meta[M_STP]
    step = meta[M_STEP]
    filled = 0
    stp_hit = False
    while rem > 0:
        n_lv = meta[oi]
        if n_lv == 0:
            break
        row = n_lv - 1
        lp = levels[oi, row, L_PRICE]
        if is_limit and (lp - price) * side > 0:
            break
        while rem > 0:
            slot = levels[oi, row, L_HEAD]
            if slot < 0:
                break
            m_owner = orders[slot, O_OWNER]
            m_rem = orders[slot, O_REM]
            if m_owner == owner and stp != STP_NONE:
                if stp != STP_CANCEL_TAKER:
                    cancelled += m_rem
                    _pop_head(orders, table, levels, by_owner, meta, oi, row, slot)
                if stp != STP_CANCEL_RESTING:
                    stp_hit = True
                    break
                continue
            if orders[slot, O_FLAGS] & REDUCE_ONLY:
                # The maker sells (buys) when the taker buys (sells).
                reducible = side * positions[m_owner]
                if reducible < 0:
                    reducible = 0
                if reducible < m_rem:
                    cut = m_rem - reducible
                    cancelled += cut
                    levels[oi, row, L_QTY] -= cut
                    orders[slot, O_REM] = reducible
                    m_rem = reducible
                    if m_rem == 0:
                        _pop_head(orders, table, levels, by_owner, meta, oi, row, slot)
                        continue
            q = rem if rem < m_rem else m_rem
            fills[n_fills, F_STEP] = step
            fills[n_fills, F_MAKER_ORDER] = orders[slot, O_ID]
            fills[n_fills, F_TAKER_ORDER] = oid
            fills[n_fills, F_MAKER_OWNER] = m_owner
            fills[n_fills, F_TAKER_OWNER] = owner
            fills[n_fills, F_PRICE] = lp
            fills[n_fills, F_QTY] = q
            fills[n_fills, F_TAKER_SIDE] = side
            n_fills += 1
            positions[owner] += side * q
            positions[m_owner] -= side * q
            rem -= q
            filled += q
            levels[oi, row, L_QTY] -= q
            m_rem -= q
            orders[slot, O_REM] = m_rem
            if m_rem == 0:
                _pop_head(orders, table, levels, by_owner, meta, oi, row, slot)
        if levels[oi, row, L_HEAD] < 0:
            meta[oi] = row  # the emptied best level is the last row: pop it
        if stp_hit:
            break
    meta[M_N_FILLS] = n_fills

    if stp_hit:
        status = STATUS_STP_EXPIRED
        cancelled += rem
    elif rem == 0:
        status = STATUS_FILLED
    elif not may_rest:
        status = STATUS_EXPIRED
        cancelled += rem
    else:
        status = STATUS_RESTING
        slot = meta[M_FREE]
        meta[M_FREE] = orders[slot, O_NEXT]
        orders[slot, O_ID] = oid
        orders[slot, O_PRICE] = price
        orders[slot, O_REM] = rem
        orders[slot, O_OWNER] = owner
        orders[slot, O_SIDE] = side
        orders[slot, O_FLAGS] = flags
        row = find_level(levels, meta, si, price)
        if row == meta[si] or levels[si, row, L_PRICE] != price:
            _insert_level(levels, meta, si, row, price)
        tail = levels[si, row, L_TAIL]
        orders[slot, O_PREV] = tail
        orders[slot, O_NEXT] = -1
        if tail >= 0:
            orders[tail, O_NEXT] = slot
        else:
            levels[si, row, L_HEAD] = slot
        levels[si, row, L_TAIL] = slot
        levels[si, row, L_QTY] += rem
        _table_insert(table, orders, oid, slot)
        _owner_append(orders, by_owner, owner, slot)
        meta[M_N_BID_ORDERS + si] += 1
    meta[M_CANCELLED_QTY] += cancelled
    return status, oid, filled


@njit(cache=True, _nrt=False)
def apply_batch(orders, table, levels, fills, positions, by_owner, meta, events, results, start):
    """Apply events ``start..`` in order until done or an array must grow.

    Args:
        orders: Order pool.
        table: Id -> slot hash table.
        levels: Level array.
        fills: Fill log.
        positions: Net position per owner.
        by_owner: Owner index.
        meta: Book counters.
        events: ``EVENT_DTYPE`` rows viewed as an (n, 7) int64 array.
        results: ``RESULT_DTYPE`` rows viewed as an (n, 3) int64 array; row i
            receives ``(order_id, status, filled_qty)`` of event i.
        start: First event to apply.

    Returns:
        ``(next_event, code)``: ``(n, 0)`` when all events were applied, else
        the index of the event that was not applied and its ``NEED_*`` code.
    """
    n = events.shape[0]
    for i in range(start, n):
        code, oid, filled = process_event(
            orders,
            table,
            levels,
            fills,
            positions,
            by_owner,
            meta,
            events[i, 0],
            events[i, 1],
            events[i, 2],
            events[i, 3],
            events[i, 4],
            events[i, 5],
            events[i, 6],
        )
        if code >= NEED_BASE:
            return i, code
        results[i, 0] = oid
        results[i, 1] = code
        results[i, 2] = filled
    return n, 0


@njit(cache=True, _nrt=False)
def submit_one(
    orders, table, levels, fills, positions, by_owner, meta, kind, side, price, qty, owner,
    flags, target
):
    """Per-call entry: :func:`process_event` plus the fill-log range it wrote.

    Args:
        orders: Order pool.
        table: Id -> slot hash table.
        levels: Level array.
        fills: Fill log.
        positions: Net position per owner.
        by_owner: Owner index.
        meta: Book counters.
        kind: Event kind.
        side: +1 / -1.
        price: Limit price.
        qty: Quantity.
        owner: Owner id.
        flags: Flag bits.
        target: Cancel target id.

    Returns:
        ``(code, order_id, filled_qty, first_fill, end_fill)``.
    """
    first = meta[M_N_FILLS]
    code, oid, filled = process_event(
        orders, table, levels, fills, positions, by_owner, meta, kind, side, price, qty, owner,
        flags, target
    )
    return code, oid, filled, first, meta[M_N_FILLS]
