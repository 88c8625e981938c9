"""Named reference worlds a paper can cite: each a function from a seed and a few sizes.

As ABIDES's ``rmsc04`` names one market configuration, each function here names
one world of this simulator and returns the Hydra overrides of the run config
that build it (``sim.load_config(world(...))``); a study adds what it varies
(regime, shock, seed per replicate) and output switches after them. Passing
``seed`` appends ``seed=<seed>``; leaving it out keeps the world's default seed
(or lets the study set one per replicate).

* :func:`default_crash` — the default world (``conf/config.yaml``): one venue,
  BTC/ETH, cross margin, the default population, a jump crash over a day.
* :func:`bench_session` — the default world topped up with noise traders to
  ABIDES ``rmsc04``'s 1,117 agents over a 6.5-hour session (the end-to-end
  benchmark, :mod:`experiments.bench.world`).
* :func:`cascade_scale` — the default world's crash with a leveraged population
  of any size sharing the same capital (the cascade benchmark,
  :mod:`experiments.bench.cascade`).
* :func:`two_venue_token` — two venues linked by alpha's receipt token aLP,
  calm prices, no insurance, write-off bad debt (the contagion matrix,
  :mod:`experiments.contagion_matrix`).
* :func:`isolated_crash` — two venues, a one-step gap crash in an asset only
  alpha lists (the agent model of :mod:`experiments.contagion_topology`).
* :func:`gamma_squeeze` — options: dealers short one-day puts to protective-put
  buyers, an 8 % sell-off, dealers hedging or not (:mod:`experiments.gamma_squeeze`).
* :func:`options_books` — the default world listing BTC and ETH options, with
  traders of every option-book type and account snapshots (the capital
  efficiency study, :mod:`experiments.capital_efficiency`).
* :func:`hyperliquid_oct2025` — the 10 Oct 2025 cascade replayed on a
  Hyperliquid-like venue (the validation study, :mod:`experiments.validate_oct2025`).

:data:`WORLDS` maps each name to its function; :data:`AGENT_MODEL_REGIMES`
lists the margin regimes beta may take in the isolated-crash world.
"""

from __future__ import annotations

from collections.abc import Callable

from experiments.worlds.reference import (
    AGENT_MODEL_REGIMES,
    BENCH_ACCOUNTS,
    CASCADE_CAPITAL,
    bench_session,
    cascade_scale,
    default_crash,
    hyperliquid_oct2025,
    isolated_crash,
    options_books,
    two_venue_token,
)
from experiments.worlds.squeeze import gamma_squeeze

__all__ = ["AGENT_MODEL_REGIMES", "BENCH_ACCOUNTS", "CASCADE_CAPITAL", "WORLDS", "bench_session",
           "cascade_scale", "default_crash", "gamma_squeeze", "hyperliquid_oct2025",
           "isolated_crash", "options_books", "two_venue_token"]

WORLDS: dict[str, Callable[..., list[str]]] = {
    "default_crash": default_crash,
    "bench_session": bench_session,
    "cascade_scale": cascade_scale,
    "two_venue_token": two_venue_token,
    "isolated_crash": isolated_crash,
    "gamma_squeeze": gamma_squeeze,
    "options_books": options_books,
    "hyperliquid_oct2025": hyperliquid_oct2025,
}
"""World name → function returning its run-config overrides."""
