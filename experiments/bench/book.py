"""Benchmark of the limit order book: batched numba vs per-call numba vs pure Python.

One seeded stream of mixed events (default 1,000,000) is run through

1. the batched numba path: one :meth:`sim.market.book.OrderBook.apply_events` call;
2. the per-call numba path: a Python loop calling ``limit``/``market``/``cancel``;
3. the pure-Python reference book (:mod:`experiments.bench.reference_book`) with
   the same loop;

all in this process, after a warm-up that compiles (or cache-loads) the
kernels.  It prints events/s for each path and their ratios, and asserts that
all three produce identical fill logs (hence the same number of fills and the
same traded volume).

The stream (see :func:`generate_events`): a reference price follows a random
walk (in ticks, starting at 100,000); passive limit orders are placed a
geometric number of ticks behind it, some limits are marketable, some are
market, IOC, post-only or reduce-only orders, and the cancel rate rises with
the number of live orders so that the book keeps a stationary depth.  To pick
live cancel targets the stream is generated in chunks of 256 events: before
each chunk the exact set of live order ids is read from a scratch book (ids
are predictable from the event stream), so almost all cancels hit live orders.

Run from the repository root::

    python -m experiments.bench.book --events 1000000 --seed 7
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sim.market.book import (
    CANCEL,
    EVENT_DTYPE,
    IOC,
    LIMIT,
    MARKET,
    POST_ONLY,
    REDUCE_ONLY,
    OrderBook,
)
from experiments.bench.reference_book import ReferenceBook

__all__ = ["generate_events", "main", "run_batched", "run_per_call", "run_reference"]


def generate_events(
    n_events: int,
    seed: int,
    n_owners: int = 64,
    target_live: int = 2000,
    chunk: int = 256,
) -> np.ndarray:
    """Build the benchmark's event stream.

    Order flow (shares of the non-cancel events): 60% passive limits a
    geometric number of ticks (mean ~9) behind a random-walk reference price,
    15% marketable limits up to 3 ticks through it, 8% market orders, 7% IOC
    limits, 7% post-only limits at or near the touch, 3% reduce-only market
    orders; quantities 1..20 lots.  Cancels are drawn with probability
    ``0.5 * min(1, live / target_live)`` per event, so the book settles at a
    stationary depth of a few thousand orders, and each cancel targets a
    distinct live resting order, chosen uniformly.

    Args:
        n_events: Number of events.
        seed: Seed of the ``numpy.random.default_rng`` generator.
        n_owners: Number of distinct owners (self-trades happen occasionally).
        target_live: Live-order count at which the cancel rate saturates.
        chunk: Events generated between refreshes of the live-order set.

    Returns:
        ``EVENT_DTYPE`` array of length ``n_events``.
    """
    rng = np.random.default_rng(seed)
    events = np.zeros(n_events, EVENT_DTYPE)
    scratch = OrderBook()
    ref_price = 100_000
    next_id = 0
    for start in range(0, n_events, chunk):
        m = min(chunk, n_events - start)
        ev = events[start : start + m]
        live = list(scratch.live_orders()["order_id"])
        p_cancel = 0.5 * min(1.0, len(live) / target_live)
        is_cancel = rng.random(m) < p_cancel
        u = rng.random(m)
        side = rng.choice(np.array([1, -1]), m)
        walk = ref_price + np.cumsum(rng.choice(np.array([-1, 0, 0, 0, 1]), m))
        ref_price = int(walk[-1])
        kind = np.full(m, LIMIT)
        flags = np.zeros(m, np.int64)
        price = walk - side * (1 + rng.geometric(0.12, m))  # passive
        marketable = (u >= 0.60) & (u < 0.75)
        through = rng.integers(0, 4, marketable.sum())  # ticks through the reference
        price[marketable] = walk[marketable] + side[marketable] * through
        kind[(u >= 0.75) & (u < 0.83)] = MARKET
        ioc = (u >= 0.83) & (u < 0.90)
        flags[ioc] = IOC
        price[ioc] = walk[ioc] + side[ioc]
        post = (u >= 0.90) & (u < 0.97)
        flags[post] = POST_ONLY
        price[post] = walk[post] - side[post] * rng.integers(0, 3, post.sum())
        ro = u >= 0.97
        kind[ro] = MARKET
        flags[ro] = REDUCE_ONLY
        kind[is_cancel] = CANCEL
        ev["kind"] = kind
        ev["side"] = side
        ev["price"] = np.maximum(price, 1)
        ev["qty"] = rng.integers(1, 21, m)
        ev["owner"] = rng.integers(0, n_owners, m)
        ev["flags"] = flags
        # Cancel targets: live resting ids (as of the chunk start), each used once;
        # a few will have traded meanwhile and come back STATUS_NOT_FOUND.
        ids = next_id + np.cumsum(~is_cancel) - (~is_cancel)  # id each order will get
        targets = np.full(m, -1, np.int64)
        for i in np.flatnonzero(is_cancel):
            if live:
                j = int(rng.integers(0, len(live)))
                live[j], live[-1] = live[-1], live[j]
                targets[i] = live.pop()
            else:
                targets[i] = int(ids[i]) - 1  # most recent order: live or not
        ev["order_id"] = targets
        next_id += int((~is_cancel).sum())
        scratch.apply_events(ev)
    return events


def _loop(book, rows):
    limit, market, cancel = book.limit, book.market, book.cancel
    for kind, side, price, qty, owner, flags, target in rows:
        if kind == LIMIT:
            limit(side, price, qty, owner, flags)
        elif kind == MARKET:
            market(side, qty, owner, flags)
        else:
            cancel(target)


def run_batched(events: np.ndarray) -> tuple[float, OrderBook]:
    """Apply the stream in one batched call; returns (seconds, book)."""
    book = OrderBook()
    t0 = time.perf_counter()
    book.apply_events(events)
    return time.perf_counter() - t0, book


def run_per_call(rows: list) -> tuple[float, OrderBook]:
    """Apply the stream through per-call methods; returns (seconds, book)."""
    book = OrderBook()
    t0 = time.perf_counter()
    _loop(book, rows)
    return time.perf_counter() - t0, book


def run_reference(rows: list) -> tuple[float, ReferenceBook]:
    """Apply the stream to the pure-Python reference; returns (seconds, book)."""
    book = ReferenceBook()
    t0 = time.perf_counter()
    _loop(book, rows)
    return time.perf_counter() - t0, book


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark and print its report.

    Args:
        argv: Command-line arguments (``--events``, ``--seed``, ``--repeat``).

    Returns:
        Events per second of each path.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed runs of each path (the best is kept)"
    )
    args = parser.parse_args(argv)

    # Warm-up: compile or cache-load every kernel outside the timed regions.
    t0 = time.perf_counter()
    warm = generate_events(2000, args.seed + 1)
    OrderBook().apply_events(warm)
    _loop(OrderBook(), warm.tolist())
    print(f"warm-up (compile or cache load): {time.perf_counter() - t0:.2f} s")

    t0 = time.perf_counter()
    events = generate_events(args.events, args.seed)
    rows = events.tolist()
    t_gen = time.perf_counter() - t0
    kinds = np.bincount(events["kind"], minlength=3)
    print(
        f"stream: {args.events:,} events (seed {args.seed}): {kinds[LIMIT]:,} limit, "
        f"{kinds[MARKET]:,} market, {kinds[CANCEL]:,} cancel; generated in {t_gen:.1f} s"
    )

    def best(runs):
        return min(runs, key=lambda r: r[0])

    t_batch, book_b = best(run_batched(events) for _ in range(args.repeat))
    t_call, book_c = best(run_per_call(rows) for _ in range(args.repeat))
    t_ref, book_r = best(run_reference(rows) for _ in range(args.repeat))

    fills = {
        "batched": book_b.fills_since(0),
        "per-call": book_c.fills_since(0),
        "reference": book_r.fills_array(),
    }
    n_fills = {name: len(f) for name, f in fills.items()}
    volume = {name: int(f["qty"].sum()) for name, f in fills.items()}
    if len(set(n_fills.values())) != 1 or len(set(volume.values())) != 1:
        raise RuntimeError(f"paths disagree: fills {n_fills}, traded volume {volume}")
    if not all(np.array_equal(fills["batched"], f) for f in fills.values()):
        raise RuntimeError("paths disagree: fill logs differ")
    if book_b.live_orders().tolist() != book_r.live_orders():
        raise RuntimeError("paths disagree: live orders differ")

    n = args.events
    rate = {"batched": n / t_batch, "per-call": n / t_call, "reference": n / t_ref}
    print(
        f"fills: {n_fills['batched']:,}, traded volume: {volume['batched']:,} lots, "
        f"live orders at end: {book_b.n_live_orders:,} (identical in all three books)"
    )
    print(f"timings: best of {args.repeat} runs each")
    for name, seconds in (("batched", t_batch), ("per-call", t_call), ("reference", t_ref)):
        print(f"{name:>10}: {seconds:8.3f} s  {rate[name] / 1e6:8.3f} M events/s")
    ratio_br = rate["batched"] / rate["reference"]
    print(f"ratio batched/reference : {ratio_br:7.1f}x")
    print(f"ratio per-call/reference: {rate['per-call'] / rate['reference']:7.1f}x")
    print(f"ratio batched/per-call  : {rate['batched'] / rate['per-call']:7.1f}x")
    checks = {
        "batched >= 10M events/s": rate["batched"] >= 10e6,
        "batched >= 15x reference": ratio_br >= 15,
        "per-call >= 0.9M events/s": rate["per-call"] >= 0.9e6,
    }
    print("targets: " + "; ".join(f"{k}: {'met' if ok else 'MISSED'}" for k, ok in checks.items()))
    return rate


if __name__ == "__main__":
    main()
