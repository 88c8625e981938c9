"""The batched path: equal to the per-call path, growth mid-batch, input checks."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from sim.market.book import (
    CANCEL,
    EVENT_DTYPE,
    LIMIT,
    MARKET,
    RESULT_DTYPE,
    STATUS_CANCELLED,
    STATUS_FILLED,
    STATUS_RESTING,
    OrderBook,
)
from experiments.bench.reference_book import (
    ReferenceBook,
    assert_book_invariants,
    assert_same_state,
    make_events,
)
from tests.sim.book.test_properties import event_streams


def _per_call(book, events):
    """Apply events through limit/market/cancel; return result-like tuples."""
    out = []
    for kind, side, price, qty, owner, flags, target in events.tolist():
        if kind == CANCEL:
            book.cancel(target)
            out.append((target, book.last_status, 0))
            continue
        if kind == LIMIT:
            oid, fills = book.limit(side, price, qty, owner, flags)
        else:
            oid, fills = book.market(side, qty, owner, flags)
        assert np.all(fills["taker_order"] == oid)
        out.append((oid, book.last_status, int(fills["qty"].sum())))
    return out


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_streams(valid_only=True))
def test_batched_equals_per_call(stream):
    events, stp, initial = stream
    batched = OrderBook(stp=stp)
    per_call = OrderBook(stp=stp, order_capacity=1, level_capacity=1, fill_capacity=1)
    batched.set_positions(initial)
    per_call.set_positions(initial)
    results = batched.apply_events(events)
    assert [tuple(r) for r in results.tolist()] == _per_call(per_call, events)
    assert np.array_equal(batched.fills_since(0), per_call.fills_since(0))
    assert batched.live_orders().tolist() == per_call.live_orders().tolist()
    assert np.array_equal(batched.positions, per_call.positions)
    assert [a.tolist() for a in batched.depth(50)] == [a.tolist() for a in per_call.depth(50)]
    assert (batched.submitted_qty, batched.cancelled_qty) == (
        per_call.submitted_qty,
        per_call.cancelled_qty,
    )


def _stream(n, seed):
    rng = np.random.default_rng(seed)
    rows = []
    n_ids = 0
    for _ in range(n):
        u = rng.random()
        if u < 0.2 and n_ids:
            rows.append((CANCEL, 0, 0, 0, 0, 0, int(rng.integers(0, n_ids))))
            continue
        side = int(rng.choice([1, -1]))
        kind = MARKET if u > 0.95 else LIMIT
        price = int(rng.integers(1, 400))  # wide: many levels
        rows.append((kind, side, price, int(rng.integers(1, 5)), int(rng.integers(0, 40)), 0, -1))
        n_ids += 1
    return make_events(rows)


def test_capacities_grow_mid_batch_without_losing_events():
    events = _stream(3000, seed=5)
    small = OrderBook(order_capacity=1, level_capacity=1, fill_capacity=1, owner_capacity=1)
    big = OrderBook(order_capacity=4096, level_capacity=1024, fill_capacity=1 << 14)
    results_small = small.apply_events(events, step=3)
    results_big = big.apply_events(events, step=3)
    assert np.array_equal(results_small, results_big)
    assert np.array_equal(small.fills_since(0), big.fills_since(0))
    state = small.state
    assert state.orders.shape[0] > 1 and state.levels.shape[1] > 1
    assert state.fills.shape[0] >= small.n_fills > 1 and state.positions.shape[0] >= 40
    assert np.all(small.fills_since(0)["step"] == 3)
    ref = ReferenceBook()
    ref.step = 3
    ref.apply_events(events)
    assert_same_state(small, ref)
    assert_book_invariants(small)


def test_one_order_sweeping_many_makers_grows_the_fill_log():
    book = OrderBook(fill_capacity=1, order_capacity=2, level_capacity=2)
    makers = make_events([(LIMIT, -1, 100 + k % 7, 1, k % 3 + 1, 0, -1) for k in range(300)])
    book.apply_events(makers)
    results = book.apply_events(make_events([(MARKET, 1, 0, 1000, 0, 0, -1)]))
    assert results.tolist() == [(300, 2, 300)]  # STATUS_EXPIRED: 700 lots unfilled
    assert book.n_fills == 300
    assert book.fills_since(0)["price"].tolist() == sorted(book.fills_since(0)["price"].tolist())


def test_huge_owner_id_grows_positions():
    book = OrderBook(owner_capacity=1)
    book.apply_events(make_events([(LIMIT, 1, 10, 1, 5000, 0, -1), (MARKET, -1, 0, 1, 3, 0, -1)]))
    assert book.positions.shape == (5001,)
    assert book.positions[5000] == 1 and book.positions[3] == -1


def test_results_rows_and_dtype():
    book = OrderBook()
    events = make_events(
        [
            (LIMIT, -1, 100, 5, 1, 0, -1),
            (LIMIT, 1, 100, 5, 2, 0, -1),
            (LIMIT, 1, 99, 5, 2, 0, -1),
            (CANCEL, 0, 0, 0, 0, 0, 2),
        ]
    )
    results = book.apply_events(events)
    assert results.dtype == RESULT_DTYPE
    assert results.tolist() == [
        (0, STATUS_RESTING, 0),
        (1, STATUS_FILLED, 5),
        (2, STATUS_RESTING, 0),
        (2, STATUS_CANCELLED, 0),
    ]


def test_strided_and_empty_inputs():
    book = OrderBook()
    events = make_events([(LIMIT, 1, 100 - k, 1, 0, 0, -1) for k in range(6)])
    results = book.apply_events(events[::2])
    assert results["order_id"].tolist() == [0, 1, 2]
    assert book.depth(10)[0][:, 0].tolist() == [100, 98, 96]
    assert book.apply_events(np.zeros(0, EVENT_DTYPE)).shape == (0,)


def test_wrong_dtype_is_a_clear_error():
    with pytest.raises(ValueError, match="EVENT_DTYPE"):
        OrderBook().apply_events(np.zeros((3, 7), np.int64))
