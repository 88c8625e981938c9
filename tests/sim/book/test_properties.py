"""Property tests: random event streams against the pure-Python reference book."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.market.book import CANCEL, IOC, LIMIT, MARKET, POST_ONLY, REDUCE_ONLY, OrderBook
from experiments.bench.reference_book import (
    ReferenceBook,
    assert_book_invariants,
    assert_same_state,
    make_events,
)

VALID_FLAGS = [0, 0, 0, IOC, POST_ONLY, REDUCE_ONLY, IOC | REDUCE_ONLY, POST_ONLY | REDUCE_ONLY]
INVALID_FLAGS = [IOC | POST_ONLY, 8, -1]
BASE_PRICES = [1, 2, 3, 100, 10**9, 10**12]


@st.composite
def event_streams(draw, valid_only=False, max_events=80):
    """Draw ``(events, stp, initial_positions)``.

    Prices cluster around a base that may be 1 tick or 10^12 ticks, so limits
    are often marketable; a few owners make self-trade prevention fire;
    initial positions (summing to zero) give reduce-only orders something to
    reduce; cancels target recent ids (live or dead) and unknown ids.  Unless
    ``valid_only``, some events are invalid.
    """
    base = draw(st.sampled_from(BASE_PRICES))
    width = draw(st.sampled_from([1, 3, 8]))
    n_owners = draw(st.integers(1, 4))
    stp = draw(st.integers(0, 3))
    initial = draw(st.lists(st.integers(-6, 6), min_size=n_owners - 1, max_size=n_owners - 1))
    initial.append(-sum(initial))
    flag_choices = VALID_FLAGS if valid_only else VALID_FLAGS + INVALID_FLAGS
    raw = draw(
        st.lists(
            st.tuples(
                st.integers(0, 9),  # kind selector
                st.booleans(),  # side
                st.integers(-width, width),  # price offset
                st.integers(1, 8) if valid_only else st.integers(-1, 8),  # qty
                st.integers(0, n_owners - 1),  # owner
                st.sampled_from(flag_choices),
                st.integers(-2, 8),  # cancel: how far back from the newest id
            ),
            min_size=1,
            max_size=max_events,
        )
    )
    rows = []
    n_ids = 0
    for sel, buy, offset, qty, owner, flags, back in raw:
        if sel >= 7:
            rows.append((CANCEL, 0, 0, 0, 0, 0, n_ids - 1 - back))
            continue
        kind = LIMIT if sel < 6 else MARKET
        side = 1 if buy else -1
        price = max(base + offset, 1)
        if valid_only:
            if kind == MARKET:
                flags &= ~POST_ONLY
        elif back == 8:  # sprinkle invalid sides, prices and kinds
            if sel == 0:
                side = 0
            elif sel == 1:
                price = -offset * offset
            elif sel == 2:
                kind = 7
        rows.append((kind, side, price, qty, owner, flags, -1))
        if kind in (LIMIT, MARKET):
            n_ids += 1
    return make_events(rows), stp, np.array(initial, dtype=np.int64)


def _books(stp, initial, **caps):
    book = OrderBook(stp=stp, **caps)
    ref = ReferenceBook(stp=stp)
    book.set_positions(initial)
    for owner, lots in enumerate(initial.tolist()):
        ref.set_position(owner, lots)
    return book, ref


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_streams())
def test_stream_matches_reference_fill_for_fill(stream):
    events, stp, initial = stream
    book, ref = _books(stp, initial, order_capacity=2, level_capacity=1, fill_capacity=1)
    results = book.apply_events(events)
    expected = ref.apply_events(events)
    assert [tuple(r) for r in results.tolist()] == expected
    assert_same_state(book, ref)
    assert_book_invariants(book)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_streams())
def test_invariants_hold_after_every_event(stream):
    events, stp, initial = stream
    book, ref = _books(stp, initial, order_capacity=1, level_capacity=1, fill_capacity=1)
    for i in range(events.shape[0]):
        row = book.apply_events(events[i : i + 1])[0]
        assert tuple(row.tolist()) == ref.process(*map(int, events[i].tolist()))
        assert_book_invariants(book)
        assert book.depth(5)[0].tolist() == [list(r) for r in ref.depth(5)[0]]
        assert book.depth(5)[1].tolist() == [list(r) for r in ref.depth(5)[1]]
    assert_same_state(book, ref)


def test_long_random_stream_matches_reference():
    """A few thousand events through a small table: hash wrap-around, growth."""
    rng = np.random.default_rng(123)
    rows = []
    n_ids = 0
    for _ in range(6000):
        u = rng.random()
        if u < 0.3 and n_ids:
            rows.append((CANCEL, 0, 0, 0, 0, 0, int(n_ids - 1 - rng.integers(0, 400))))
            continue
        kind = MARKET if u > 0.93 else LIMIT
        side = int(rng.choice([1, -1]))
        price = int(1000 + rng.integers(-30, 31) - side * rng.integers(0, 5))
        flags = int(rng.choice(VALID_FLAGS)) & (~POST_ONLY if kind == MARKET else ~0)
        qty, owner = int(rng.integers(1, 10)), int(rng.integers(0, 6))
        rows.append((kind, side, price, qty, owner, flags, -1))
        n_ids += 1
    events = make_events(rows)
    for stp in range(4):
        book, ref = _books(stp, np.zeros(6, np.int64), order_capacity=1, level_capacity=1)
        results = book.apply_events(events)
        assert [tuple(r) for r in results.tolist()] == ref.apply_events(events)
        assert_same_state(book, ref)
        assert_book_invariants(book)
        assert book.n_fills > 100
