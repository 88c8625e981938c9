"""End-to-end benchmark: a simulated day of a world with about 1,100 agents.

Sized against ABIDES's ``rmsc04`` reference configuration (1,117 agents, about
640k messages of which about 72k reach the book, 16.3 s for one trading day on
this kind of 2-core machine — figures quoted in the issue, not re-run here):
1,440 one-minute steps, a noise population of about 1,100 traders plus the
market makers, every order event counted as it reaches a book.

Usage::

    python -m experiments.bench.world [--steps 1440] [--noise 1100] [--order-prob 0.012]

Prints the agent and order counts beside the wall time of the stepping loop
(model construction and numba compilation excluded: a warm-up run first), and
the speed ratio against the quoted ABIDES time scaled to the same number of
book-touching orders.
"""

from __future__ import annotations

import argparse
import time

ABIDES_RMSC04_SECONDS = 16.3
ABIDES_RMSC04_AGENTS = 1117
ABIDES_RMSC04_BOOK_MESSAGES = 72_000


def _world(steps: int, noise: int, order_prob: float):
    from sim.config import load_config
    from sim.model import MarketModel

    cfg = load_config([f"steps={steps}", f"agents.noise.n={noise}",
                       f"agents.noise.order_prob={order_prob}", "output.figures=false",
                       "progress=false"])
    return MarketModel(cfg), cfg


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print counts, wall time and the ABIDES comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1440)
    ap.add_argument("--noise", type=int, default=1100)
    ap.add_argument("--order-prob", type=float, default=0.012)
    args = ap.parse_args(argv)

    warm, _ = _world(20, 20, 0.05)  # compile / load every kernel once
    for _ in range(20):
        warm.step()

    model, cfg = _world(args.steps, args.noise, args.order_prob)
    counter = _EventCounter(model)
    start = time.perf_counter()
    for _ in range(cfg.steps):
        model.step()
    wall = time.perf_counter() - start
    n_traders = sum(len(p.accounts) for p in model.protocols)
    n_mesa = len(model.agents)
    events = counter.events
    orders = counter.orders
    fills = sum(b.n_fills for b in model.books)
    print(f"world: {cfg.steps} steps of {cfg.market.step_seconds:g} s, {len(model.books)} books")
    print(f"agents: {n_traders} trading accounts ({n_mesa} Mesa agents: vectorised populations "
          f"count as one)")
    print(f"book-touching events: {events:,} ({orders:,} new orders, {events - orders:,} cancels); "
          f"fills: {fills:,}")
    print(f"wall time of the stepping loop: {wall:.2f} s ({events / wall / 1e3:,.0f}k events/s)")
    scaled = ABIDES_RMSC04_SECONDS * events / ABIDES_RMSC04_BOOK_MESSAGES
    print(f"ABIDES rmsc04 (quoted): {ABIDES_RMSC04_AGENTS} agents, ~{ABIDES_RMSC04_BOOK_MESSAGES:,} "
          f"book messages, {ABIDES_RMSC04_SECONDS} s per day; scaled to {events:,} events: "
          f"{scaled:.1f} s")
    print(f"speed ratio vs ABIDES (same event count): {scaled / wall:.1f}x (target >= 20x)")


class _EventCounter:
    """Counts every event that reaches a book by wrapping the model's submit path."""

    def __init__(self, model) -> None:
        self.events = 0
        self.orders = 0
        self._submit = model.submit
        model.submit = self.submit

    def submit(self, j, events):
        from sim.book import CANCEL

        self.events += len(events)
        self.orders += int((events["kind"] != CANCEL).sum())
        return self._submit(j, events)


if __name__ == "__main__":
    main()
