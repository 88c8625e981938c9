"""Cascade benchmark: time per crash step as the leveraged population grows.

A crash liquidates a share of the leveraged traders; the work of a crash step
should grow in proportion to the accounts it liquidates, not with their square
(a whole-book or whole-ledger scan per liquidated account). The world is
:func:`experiments.worlds.cascade_scale`: the default world's 30 % jump crash
with 1,000, 10,000 and 100,000 leveraged traders sharing the same capital, so
that the share of traders liquidated is about the same at every size and the
number of liquidations grows with the population.

For each size the world is built and stepped to the step before the crash
(untimed), then each of the ``window`` steps from the crash's first step on is
timed (the whole step: agents, matching, margins, liquidation rounds). Numba
compilation or cache loading is paid before, in a small warm-up world that
also goes through a crash. Printed per size: trading accounts, accounts the
window liquidated, liquidation events, the time per crash step and its
growth against the previous size divided by the growth in size (1.0 is
linear); then the verdict on the target: 100,000 traders cost at most 12
times 10,000 (1.2 times linear).

``--reference`` times instead the crash window of the world the liquidation
path was first profiled on: ``agents.noise.n=20000 agents.leveraged.n=5000``
(25,000 trading agents plus makers and liquidators, the default crash at step
600), the 40 steps from the crash's first step.

Usage::

    python -m experiments.bench.cascade [--sizes 1000 10000 100000] [--window 40]
                                        [--crash-step 240] [--noise 200]
    python -m experiments.bench.cascade --reference

The 100,000-trader world takes a few minutes to build up and step on a 2-core
machine; ``--sizes 1000 10000`` is the quick version.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

SIZES = (1000, 10_000, 100_000)
WINDOW = 40
"""Timed steps from the crash's first step: the 10-step fall and 30 after it."""
CRASH_STEP = 240
TARGET = 12.0
"""Largest allowed time(100k) / time(10k): 1.2 times linear growth."""
REFERENCE = ("agents.noise.n=20000", "agents.leveraged.n=5000")
"""The 5,000-leveraged-trader, 25,000-agent world, with the default crash at step 600."""
REFERENCE_CRASH_STEP = 600


def _model(overrides: list[str]) -> Any:
    from sim.config import load_config
    from sim.model import MarketModel

    return MarketModel(load_config([*overrides, "output.figures=false", "progress=false"]))


def time_window(overrides: list[str], crash_step: int, window: int) -> dict[str, Any]:
    """Build a world, step it to the step before the crash, time ``window`` steps.

    Args:
        overrides: The world's run-config overrides (its run must reach
            ``crash_step + window - 1`` steps).
        crash_step: First step of the crash (the model's first step is 1).
        window: Steps to time from ``crash_step`` on.

    Returns:
        ``{"accounts", "liquidated", "events", "steps": [seconds per step],
        "wall", "per_step"}``: trading accounts, distinct accounts with a
        liquidation event in the window, their events, and the timings.
    """
    model = _model(overrides)
    while model.steps < crash_step - 1:
        model.step()
    first = len(model.liquidation.events)
    steps = []
    for _ in range(window):
        start = time.perf_counter()
        model.step()
        steps.append(time.perf_counter() - start)
    events = model.liquidation.events[first:]
    wall = sum(steps)
    return {"accounts": sum(len(p.accounts) for p in model.protocols),
            "liquidated": len({e["account"] for e in events}), "events": len(events),
            "steps": steps, "wall": wall, "per_step": wall / window}


def warm_up() -> None:
    """Compile or cache-load every kernel of a crash step in a small world."""
    from experiments.worlds import cascade_scale

    time_window(cascade_scale(leveraged=200, crash_step=25, window=10), 25, 10)


def scale_series(sizes: tuple[int, ...] = SIZES, window: int = WINDOW,
                 crash_step: int = CRASH_STEP, noise: int = 200) -> list[dict[str, Any]]:
    """Time the crash window of :func:`experiments.worlds.cascade_scale` at each size.

    Args:
        sizes: Leveraged traders per world, ascending.
        window: Timed steps from the crash's first step.
        crash_step: First step of the crash.
        noise: Noise traders.

    Returns:
        One :func:`time_window` result per size, with ``leveraged`` added.
    """
    from experiments.worlds import cascade_scale

    out = []
    for n in sizes:
        r = time_window(cascade_scale(leveraged=n, noise=noise, crash_step=crash_step,
                                      window=window), crash_step, window)
        r["leveraged"] = n
        out.append(r)
    return out


def growth(results: list[dict[str, Any]], small: int, large: int) -> float:
    """Time per crash step at ``large`` traders over ``small``, divided by ``large / small``.

    1.0 is linear growth; the target is at most ``TARGET / 10`` for 10x the traders.
    """
    by_size = {r["leveraged"]: r["per_step"] for r in results}
    return by_size[large] / by_size[small] / (large / small)


def report(results: list[dict[str, Any]]) -> None:
    """Print one line per size and the verdict on the target (when 10k and 100k were run)."""
    prev = None
    for r in results:
        line = (f"[cascade] {r['leveraged']:>7,} leveraged traders ({r['accounts']:,} trading "
                f"accounts): {r['liquidated']:,} accounts liquidated, {r['events']:,} "
                f"liquidation events; {1e3 * r['per_step']:.1f} ms per crash step "
                f"(slowest {1e3 * max(r['steps']):.0f} ms)")
        if prev is not None:
            ratio = r["per_step"] / prev["per_step"]
            size = r["leveraged"] / prev["leveraged"]
            line += (f"; {ratio:.2f}x the {prev['leveraged']:,} world for {size:g}x the "
                     f"traders = {ratio / size:.2f}x linear")
        print(line)
        prev = r
    sizes = {r["leveraged"] for r in results}
    if {10_000, 100_000} <= sizes:
        g = growth(results, 10_000, 100_000)
        verdict = "met" if 10 * g <= TARGET else "not met"
        print(f"[cascade] 100,000 / 10,000 traders: {10 * g:.1f}x the time per crash step "
              f"({g:.2f}x linear); target <= {TARGET:g}x: {verdict}")


def reference(window: int = WINDOW) -> dict[str, Any]:
    """Time the crash window of the 5,000-leveraged-trader, 25,000-agent world."""
    return time_window(list(REFERENCE), REFERENCE_CRASH_STEP, window)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark and print its figures; returns the per-size results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES),
                    help="leveraged traders per world")
    ap.add_argument("--window", type=int, default=WINDOW, help="timed steps from the crash on")
    ap.add_argument("--crash-step", type=int, default=CRASH_STEP,
                    help="first step of the crash (scale series)")
    ap.add_argument("--noise", type=int, default=200, help="noise traders (scale series)")
    ap.add_argument("--reference", action="store_true",
                    help="time the 5,000-leveraged / 25,000-agent crash window instead")
    args = ap.parse_args(argv)
    if min(args.sizes) < 1 or args.window < 1 or args.crash_step < 2 or args.noise < 0:
        ap.error("sizes and --window must be >= 1, --crash-step >= 2, --noise >= 0")

    warm_up()
    if args.reference:
        r = reference(args.window)
        print(f"[reference] {' '.join(REFERENCE)}: {r['accounts']:,} trading accounts; crash "
              f"window (steps {REFERENCE_CRASH_STEP}-{REFERENCE_CRASH_STEP + args.window - 1}): "
              f"{r['wall']:.2f} s, {1e3 * r['per_step']:.1f} ms per step, {r['liquidated']:,} "
              f"accounts liquidated, {r['events']:,} liquidation events")
        return [r]
    results = scale_series(tuple(sorted(args.sizes)), args.window, args.crash_step, args.noise)
    report(results)
    return results


if __name__ == "__main__":
    main()
