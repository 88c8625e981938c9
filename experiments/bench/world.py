"""End-to-end benchmark: the default world sized like ABIDES's ``rmsc04`` day.

ABIDES's reference configuration ``rmsc04`` (1 exchange, 2 adaptive market
makers, 102 value, 12 momentum and 1,000 noise agents: 1,117 agents) produces
about 640k messages of which about 72k reach the book, and takes 16.3 s for
one trading day on this kind of 2-core machine (figures quoted in the
project's performance target, not re-run here). Its day is the 6.5-hour
session 09:30-16:00 that its noise agents' wake-up window spans.

Two worlds are timed in one process, both the reference world
:func:`experiments.worlds.bench_session`: the default population (every agent
type, cross margin, jump crash) topped up with noise traders to the same 1,117
trading accounts:

* ``session`` — the like-for-like comparison: 390 one-minute steps (the same
  6.5 simulated hours), the noise order rate set so that about 72,000 events
  (new orders and cancels) reach the books. Ratio = 16.3 s / our wall time,
  no scaling. This is the target's comparison.
* ``24h`` — a crypto day: 1,440 one-minute steps at the same order rate, so
  more events than ABIDES's day; the ratio here scales ABIDES's time linearly
  to our event count (an event-driven simulator's cost grows with messages).
* ``options`` — the step time options add: the default world
  (:func:`experiments.worlds.default_crash`, 1,440 steps) without and with
  ``market=btc_eth_options`` (option books, market makers, dealers and
  option-book traders), timed alternately in the same process; it prints both
  times per step, the difference and the ratio.

Usage::

    python -m experiments.bench.world [--agents 1117] [--order-prob 0.065]
                                      [--only session|24h|options] [--repeats 2]

Wall time covers the stepping loop only (construction and numba compilation
are excluded: a warm-up run first). Agent and order counts are printed beside
each time.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

ABIDES_RMSC04_SECONDS = 16.3
ABIDES_RMSC04_AGENTS = 1117
"""ABIDES ``rmsc04``'s agents (:data:`experiments.worlds.BENCH_ACCOUNTS`)."""
ABIDES_RMSC04_BOOK_MESSAGES = 72_000
SESSION_STEPS = 390
"""09:30-16:00 in one-minute steps."""
DAY_STEPS = 1440
TARGET = 20.0


def _world(steps: int, noise: int, order_prob: float) -> tuple[Any, Any]:
    from experiments.worlds import bench_session
    from sim.config import load_config
    from sim.model import MarketModel

    cfg = load_config([*bench_session(noise, order_prob, steps), "output.figures=false",
                       "progress=false"])
    return MarketModel(cfg), cfg


def trading_accounts(model: Any) -> int:
    """Ledger rows of trading agents (every protocol's trader accounts)."""
    return sum(len(p.accounts) for p in model.protocols)


def noise_for(agents: int) -> int:
    """Noise traders that bring the default world to ``agents`` trading accounts."""
    base, _ = _world(1, 0, 0.0)
    n = agents - trading_accounts(base)
    if n < 0:
        raise ValueError(f"--agents {agents} is too few: the default world without noise "
                         f"traders already has {trading_accounts(base)} trading accounts")
    return n


def time_world(steps: int, noise: int, order_prob: float) -> dict[str, Any]:
    """Step one world; return its counts and the wall time of the stepping loop."""
    model, cfg = _world(steps, noise, order_prob)
    counter = _EventCounter(model)
    start = time.perf_counter()
    for _ in range(cfg.steps):
        model.step()
    wall = time.perf_counter() - start
    return {"steps": cfg.steps, "books": len(model.books), "agents": trading_accounts(model),
            "mesa_agents": len(model.agents), "events": counter.events,
            "orders": counter.orders, "fills": sum(b.n_fills for b in model.books),
            "wall": wall}


def time_options(steps: int = DAY_STEPS, repeats: int = 2) -> dict[str, Any]:
    """Time the default world without and with options, alternately, ``repeats`` times each.

    Returns:
        ``{"plain": [seconds...], "options": [seconds...], "steps", "books",
        "option_books", "events_plain", "events_options"}`` (stepping loop only).
    """
    from experiments.worlds import default_crash
    from sim.config import load_config
    from sim.model import MarketModel

    out: dict[str, Any] = {"plain": [], "options": [], "steps": steps}
    warm = MarketModel(load_config(["market=btc_eth_options", "steps=20", "progress=false"]))
    for _ in range(20):  # compile / load the option kernels outside the timed region
        warm.step()
    for _ in range(repeats):
        for name, extra in (("plain", []), ("options", ["market=btc_eth_options"])):
            cfg = load_config([*default_crash(steps=steps), *extra, "output.figures=false",
                               "progress=false"])
            model = MarketModel(cfg)
            counter = _EventCounter(model)
            start = time.perf_counter()
            for _ in range(cfg.steps):
                model.step()
            out[name].append(time.perf_counter() - start)
            out[f"events_{name}"] = counter.events
            if name == "options":
                out["books"] = len(model.books)
                out["option_books"] = sum(1 for i in model.instruments if i.is_option)
    return out


def _report_options(r: dict[str, Any]) -> None:
    plain, opts = min(r["plain"]), min(r["options"])
    n = r["steps"]
    print(f"[options] default world, {n} steps: without options {plain:.2f} s "
          f"({1e3 * plain / n:.2f} ms/step, {r['events_plain']:,} book events); with options "
          f"{opts:.2f} s ({1e3 * opts / n:.2f} ms/step, {r['books']} books of which "
          f"{r['option_books']} option slots, {r['events_options']:,} book events)")
    print(f"[options] options add {1e3 * (opts - plain) / n:.2f} ms per step "
          f"({opts / plain:.2f}x the world without options; best of {len(r['plain'])} "
          f"alternating runs each: {', '.join(f'{x:.2f}' for x in r['plain'])} s vs "
          f"{', '.join(f'{x:.2f}' for x in r['options'])} s)")


def _report(name: str, r: dict[str, Any], abides_seconds: float, note: str) -> float:
    ratio = abides_seconds / r["wall"]
    print(f"[{name}] {r['steps']} one-minute steps, {r['books']} books, {r['agents']} trading "
          f"accounts ({r['mesa_agents']} Mesa agents: vectorised populations count as one)")
    print(f"[{name}] book-touching events: {r['events']:,} ({r['orders']:,} new orders, "
          f"{r['events'] - r['orders']:,} cancels); fills: {r['fills']:,}")
    print(f"[{name}] wall time of the stepping loop: {r['wall']:.2f} s "
          f"({r['events'] / r['wall'] / 1e3:,.0f}k events/s)")
    print(f"[{name}] ABIDES rmsc04 {note}: {abides_seconds:.1f} s -> {ratio:.1f}x")
    return ratio


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print counts, wall times and the ABIDES comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=ABIDES_RMSC04_AGENTS,
                    help="trading accounts (noise traders fill up the default world)")
    ap.add_argument("--order-prob", type=float, default=0.065,
                    help="noise order probability per trader and step (0.065: ~72k events "
                         "in the 390-step session)")
    ap.add_argument("--only", choices=("session", "24h", "options"), default=None)
    ap.add_argument("--repeats", type=int, default=2, help="alternating runs per arm (options)")
    args = ap.parse_args(argv)

    noise = noise_for(args.agents)
    warm, _ = _world(20, 20, 0.05)  # compile / load every kernel once
    for _ in range(20):
        warm.step()
    print(f"ABIDES rmsc04 (quoted): {ABIDES_RMSC04_AGENTS} agents, "
          f"~{ABIDES_RMSC04_BOOK_MESSAGES:,} book messages, {ABIDES_RMSC04_SECONDS} s per "
          f"6.5-hour day")
    verdicts = []
    if args.only in (None, "session"):
        r = time_world(SESSION_STEPS, noise, args.order_prob)
        ratio = _report("session", r, ABIDES_RMSC04_SECONDS, "(same agents, same 6.5 h, "
                        f"{ABIDES_RMSC04_BOOK_MESSAGES:,} vs {r['events']:,} events, unscaled)")
        verdicts.append(f"session {ratio:.1f}x ({'met' if ratio >= TARGET else 'not met'})")
    if args.only in (None, "24h"):
        r = time_world(DAY_STEPS, noise, args.order_prob)
        scaled = ABIDES_RMSC04_SECONDS * r["events"] / ABIDES_RMSC04_BOOK_MESSAGES
        ratio = _report("24h", r, scaled, "scaled linearly to the same event count")
        verdicts.append(f"24h {ratio:.1f}x (scaled, for reference only: a scaled ratio "
                        f"grows with events per step)")
    if args.only in (None, "options"):
        _report_options(time_options(DAY_STEPS, args.repeats))
    if verdicts:
        print(f"target >= {TARGET:g}x ABIDES: " + "; ".join(verdicts))


class _EventCounter:
    """Counts every event that reaches a book by wrapping the model's matching step.

    Every order path (``submit``, ``submit_many``) ends in ``MarketModel._match``
    with the events it sends to one book, pre-trade rejections included.
    """

    def __init__(self, model: Any) -> None:
        self.events = 0
        self.orders = 0
        self._match = model._match
        model._match = self.match

    def match(self, inst: Any, proto: Any, events: Any, rejected: Any) -> Any:
        from sim.market.book import CANCEL

        self.events += len(events)
        self.orders += int((events["kind"] != CANCEL).sum())
        return self._match(inst, proto, events, rejected)


if __name__ == "__main__":
    main()
