"""The reference worlds' definitions (see :mod:`experiments.worlds`).

Each function returns Hydra overrides of the run config (``conf/config.yaml``)
in a fixed order, so the same arguments always resolve to the same config
fingerprint; studies append their own overrides after them.
"""

from __future__ import annotations

import functools

__all__ = ["AGENT_MODEL_REGIMES", "BENCH_ACCOUNTS", "CASCADE_CAPITAL", "bench_session",
           "cascade_scale", "default_crash", "hyperliquid_oct2025", "isolated_crash",
           "options_books", "two_venue_token"]

AGENT_MODEL_REGIMES = ("static", "cross", "portfolio", "adaptive")
"""Margin regimes beta may take in :func:`isolated_crash` (``conf/margin/*.yaml``)."""

BENCH_ACCOUNTS = 1117
"""Trading accounts of :func:`bench_session`: ABIDES ``rmsc04``'s 1,117 agents."""

CASCADE_CAPITAL = 1e7
"""Capital (USD) of the whole leveraged population in :func:`cascade_scale`: 1,000 of the
default world's 10,000-USD traders."""


def _seeded(overrides: list[str], seed: int | None) -> list[str]:
    return overrides if seed is None else [*overrides, f"seed={int(seed)}"]


def default_crash(seed: int | None = None, steps: int | None = None) -> list[str]:
    """The default world: ``conf/config.yaml`` as it stands.

    One venue (``protocols=single``) listing BTC and ETH perpetuals
    (``market=btc_eth``), cross margin with tiered rates, the default population
    (noise, market makers, fundamentalists, momentum, leveraged traders,
    arbitrage; ``agents=default``) and a jump crash (``scenario=jump_crash``)
    over 1,440 one-minute steps, seed 42. Every margin-regime study
    (:mod:`experiments.compare_regimes`, :mod:`experiments.stress_sweep`,
    :mod:`experiments.tail_risk`) starts from it and overrides the regime and
    scenario.

    Args:
        seed: Run seed (None: the config's 42).
        steps: One-minute steps (None: the config's 1,440).

    Returns:
        The overrides (empty for the world as configured).
    """
    ov = [] if steps is None else [f"steps={int(steps)}"]
    return _seeded(ov, seed)


def bench_session(noise: int, order_prob: float = 0.065, steps: int = 390,
                  seed: int | None = None) -> list[str]:
    """The end-to-end benchmark's world: the default world sized like ABIDES ``rmsc04``.

    :func:`default_crash` with ``noise`` noise traders ordering with
    probability ``order_prob`` per step, over ``steps`` one-minute steps. With
    the noise count that brings the world to :data:`BENCH_ACCOUNTS` (1,117)
    trading accounts (``experiments.bench.world.noise_for``), 390 steps
    (09:30–16:00) and ``order_prob = 0.065`` about 72,000 events reach the
    books: ABIDES ``rmsc04``'s trading day (1 exchange, 2 market makers, 102
    value, 12 momentum and 1,000 noise agents; Byrd, Hybinette & Balch,
    "ABIDES: Towards high-fidelity multi-agent market simulation", SIGSIM-PADS
    2020). The ``24h`` variant is ``steps=1440``.

    Args:
        noise: Noise traders.
        order_prob: Noise order probability per trader and step.
        steps: One-minute steps.
        seed: Run seed (None: the config's).

    Returns:
        The overrides.
    """
    return _seeded([f"steps={steps}", f"agents.noise.n={noise}",
                    f"agents.noise.order_prob={order_prob}"], seed)


def cascade_scale(leveraged: int = 10_000, noise: int = 200, crash_step: int = 240,
                  window: int = 40, capital: float = CASCADE_CAPITAL,
                  seed: int | None = None) -> list[str]:
    """The default world's crash with ``leveraged`` traders sharing the same capital.

    :func:`default_crash` (one venue, cross margin, the default population, a
    30 % jump crash over 10 steps) with ``leveraged`` leveraged traders whose
    capital adds up to ``capital`` at every size: each starts with
    ``capital / leveraged`` USD and sends orders of at most 2.5 times that
    (the default's 25,000 per 10,000 USD). The leveraged population's open
    interest, the price path and the share of traders liquidated are then
    about the same at every size, and the number of accounts a crash step
    liquidates grows in proportion to ``leveraged``; with the default world's
    full 10,000 USD each, a large population would open positions only as
    fast as the books' liquidity allows and most traders would be flat at
    the crash. At 1,000 traders this is the default world's trader. The crash
    starts at ``crash_step`` (the default world's step 600 leaves more
    warm-up than the positions need: they are built within about 150 steps)
    and the run ends ``window`` steps later. The cascade benchmark
    (:mod:`experiments.bench.cascade`) times the crash window at 1,000,
    10,000 and 100,000 traders.

    Args:
        leveraged: Leveraged traders.
        noise: Noise traders (the default world's 200).
        crash_step: First step of the crash.
        window: Steps from the crash's first step to the end of the run.
        capital: Capital of the whole leveraged population, USD.
        seed: Run seed (None: the config's).

    Returns:
        The overrides.
    """
    usd = float(capital) / int(leveraged)
    return _seeded([f"steps={int(crash_step) + int(window) - 1}",
                    f"scenario.params.start_step={int(crash_step)}",
                    f"agents.noise.n={int(noise)}", f"agents.leveraged.n={int(leveraged)}",
                    f"agents.leveraged.usd={usd!r}",
                    f"agents.leveraged.max_order_notional={2.5 * usd!r}"], seed)


def two_venue_token(seed: int | None = None, steps: int = 60, noise: int = 30,
                    leveraged: int = 20, supply: float = 800000) -> list[str]:
    """Two venues linked by alpha's receipt token aLP, calm prices (the contagion matrix).

    ``protocols=two_venues`` (alpha and beta; beta's traders hold aLP as
    collateral), ``scenario=calm``, ``noise`` noise and ``leveraged`` leveraged
    traders per venue, no insurance fund at either venue and write-off bad
    debt (a deficit is recorded bad debt, which impairs aLP when it is
    alpha's), ``supply`` aLP units outstanding. Shocks are the study's
    (:data:`sim.contagion.SHOCKS`); the calibration of the two-venue world is
    in ASSUMPTIONS.md, "Several protocols and contagion".

    Args:
        seed: Run seed (None: set by the study per replicate).
        steps: One-minute steps.
        noise: Noise traders per venue.
        leveraged: Leveraged traders per venue.
        supply: aLP units outstanding.

    Returns:
        The overrides.
    """
    return _seeded(["protocols=two_venues", f"steps={steps}", "scenario=calm",
                    f"agents.noise.n={noise}", f"agents.leveraged.n={leveraged}",
                    "protocols.0.insurance_fund=0", "protocols.1.insurance_fund=0",
                    "protocols.0.liquidation.bad_debt=write_off",
                    "protocols.1.liquidation.bad_debt=write_off",
                    f"protocols.0.issues.supply={supply}"], seed)


def isolated_crash(crash: float = 0.3, seed: int | None = None, start_step: int = 30,
                   horizon: int = 20, noise: int = 30, leveraged: int = 30,
                   supply: float = 8e5) -> list[str]:
    """Two venues, a crash confined to alpha that reaches beta only through aLP.

    :func:`sim.contagion.isolated_crash_overrides`: a one-step gap crash of
    ``crash`` in ETH, listed by alpha only, at ``start_step``, run ``horizon``
    steps beyond; alpha (cross margin, 15–25× long traders, empty insurance
    fund, no ADL) records bad debt, aLP is repriced from it, and beta's
    traders (portfolio margin by default) hold 10,000 aLP each. Calibrated in
    ASSUMPTIONS.md ("Several protocols and contagion"): about 0.45–0.49 M USD
    of bad debt at alpha and 16–21 beta liquidations, none with the token
    channel shut. The agent model of :mod:`experiments.contagion_topology`
    varies beta's regime (:data:`AGENT_MODEL_REGIMES`) and ``crash``.

    Args:
        crash: Gap crash size in (0, 1).
        seed: Run seed (None: set by the study per replicate).
        start_step: Crash step.
        horizon: Steps after the crash.
        noise: Noise traders per venue.
        leveraged: Leveraged traders per venue (alpha's all long).
        supply: aLP units outstanding.

    Returns:
        The overrides.

    Raises:
        ValueError: A size out of range (one line naming it).
    """
    from sim.contagion import isolated_crash_overrides

    return _seeded(isolated_crash_overrides(float(crash), int(start_step), int(horizon),
                                            int(noise), int(leveraged), float(supply)), seed)


def options_books(seed: int | None = None, steps: int | None = None, per_book: int = 8,
                  accounts_every: int = 30) -> list[str]:
    """The options world with every option book held: the capital-efficiency study's world.

    The default world (:func:`default_crash`: one venue, the default population,
    a jump crash over 1,440 one-minute steps) listing Deribit-style European
    options on BTC and ETH (``market=btc_eth_options``: daily, weekly and
    four-weekly expiries, seven strikes, marks from the implied-volatility
    surface, settlement at the 30-minute index TWAP; ASSUMPTIONS.md,
    "Options"), with an option market maker and a delta-hedging dealer per
    underlying (``conf/agents/default.yaml``) and ``per_book`` traders of every
    option-book type per underlying (``agents.config.BOOK_TYPES``: directional,
    basis, covered call, cash-secured put, protective put, calendar spread,
    strike spread; ``agents/option_books.py``), each holding 20,000 USD of
    underlying notional on 50,000 USD of collateral. Every trader account is
    snapshotted every ``accounts_every`` steps (``accounts.parquet``: equity,
    requirements, haircuts held, the reference-grid risk and Greeks), which
    :mod:`experiments.capital_efficiency` reads.

    Args:
        seed: Run seed (None: set by the study per replicate).
        steps: One-minute steps (None: the config's 1,440).
        per_book: Traders per book type and underlying.
        accounts_every: Steps between account snapshots.

    Returns:
        The overrides.
    """
    from agents.config import BOOK_TYPES

    ov = ["market=btc_eth_options", *[f"agents.option_books.counts.{b}={int(per_book)}"
                                      for b in BOOK_TYPES],
          f"output.accounts_every={int(accounts_every)}"]
    ov += [] if steps is None else [f"steps={int(steps)}"]
    return _seeded(ov, seed)


def hyperliquid_oct2025(seed: int | None = None, start: str | None = None,
                        end: str | None = None, steps: int | None = None,
                        protocol: str = "hyperliquid") -> list[str]:
    """The 10 Oct 2025 cascade replayed on a Hyperliquid-like venue (the validation study).

    ``protocols=hyperliquid`` (``conf/protocols/hyperliquid.yaml``: cross margin
    with Hyperliquid's tiers, ``MMR = 1 / (2 × max leverage)``, BTC 40x and ETH
    25x; the venue's own 20 % close-outs in the book, the insurance fund as
    the HLP backstop below 2/3 of maintenance, ADL once an account's value is
    negative; margin_methods.md §3.3) and ``scenario=replay_oct2025`` (Binance
    spot 5-minute BTC and ETH bars in real time, 9 Oct 12:00 to 11 Oct 11:55
    UTC, 2,880 one-minute steps; ``shared/data/README.md``), the default
    population (``agents=default``). ``start`` / ``end`` replay a part of the
    window (the scenario's ``start`` / ``end``: UTC times of the first and
    last bar); ``steps`` left out then covers that part
    (:attr:`sim.scenarios.replay.Replay.n_steps`, read from the price files).
    The experiment is :mod:`experiments.validate_oct2025`.

    Args:
        seed: Run seed (None: set by the study per replicate).
        start: First bar replayed, e.g. ``"2025-10-10 06:00"`` (None: the scenario's).
        end: Last bar replayed (None: the scenario's).
        steps: One-minute steps (None: the replayed part, 2,880 for the whole window).
        protocol: The venue's config (``conf/protocols/<protocol>.yaml``).

    Returns:
        The overrides.

    Raises:
        ValueError: ``start`` / ``end`` the replay rejects (one line).
    """
    ov = [f"protocols={protocol}", "scenario=replay_oct2025"]
    ov += [] if start is None else [f"scenario.params.start='{start}'"]
    ov += [] if end is None else [f"scenario.params.end='{end}'"]
    if steps is None and (start is not None or end is not None):
        steps = _replay_steps(tuple(ov))
    ov += [] if steps is None else [f"steps={int(steps)}"]
    return _seeded(ov, seed)


@functools.lru_cache(maxsize=16)
def _replay_steps(overrides: tuple[str, ...]) -> int:
    """Steps of the replayed window of a run config (its last knot, in real time)."""
    from sim.config import load_config
    from sim.scenarios.replay import replay

    rc = load_config(list(overrides))
    return int(replay(rc.scenario.params, rc.market).n_steps)
