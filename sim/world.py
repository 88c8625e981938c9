"""Building a world from config: protocols, books, the ledger's accounts, agents, liquidators.

:func:`build_markets` lists each protocol's instruments (spot and perpetual
books per listed asset, a spot book per issued token on its venue), builds its
margin engine, the books, the ledger with every protocol's treasury, insurance
and clearing rows, and the insurance funds' deposits. :func:`build_agents`
creates the agents in a fixed order (per protocol: market makers per book and
the noise population; then per protocol the fundamentalist, momentum and
leveraged populations; the arbitrageur; the liquidators), each in its
protocol's random stream, and opens their funded accounts through
``model.open_trader``. Both return what they built; the model
(:class:`sim.model.MarketModel`) keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from margin.engine import InstrumentSpecs
from sim.ledger import HolderKind, Ledger
from sim.market.instruments import OPTION, PERP, SPOT, Instrument
from sim.market.options import ExpiryCalendar, OptionChain, OptionSlot
from sim.scenarios.gbm import SECONDS_PER_YEAR
from sim.venue.engines import build_engine
from sim.venue.protocol import Protocol, make_book

__all__ = ["Agents", "Markets", "build_agents", "build_liquidators", "build_markets"]


@dataclass
class Markets:
    """The protocols and their markets, and the ledger that holds every balance.

    Attributes:
        instruments: Every instrument, by index.
        protocols: The protocols, by index.
        books: One order book per instrument.
        specs: Instrument kinds, underlyings and quotes for the margin engines.
        ledger: The array ledger with each protocol's treasury, insurance and
            clearing rows (insurance funds deposited).
        haircuts: Collateral haircut per asset of the run's ``margin``.
        protocol_haircuts: Haircuts of protocols with their own ``margin``.
        chain: The option chain (None when no protocol lists options).
    """

    instruments: list[Instrument]
    protocols: list[Protocol]
    books: list[Any]
    specs: InstrumentSpecs
    ledger: Ledger
    haircuts: np.ndarray
    protocol_haircuts: dict[int, np.ndarray] = field(default_factory=dict)
    chain: OptionChain | None = None


def _option_chain(cfg: Any, asset_names: list[str], protocols: list[Protocol],
                  instruments: list[Instrument]) -> OptionChain | None:
    """Option slots of every protocol listing options, appended to ``instruments``.

    Per protocol and underlying, one expiry group per expiry the calendar can
    list at once, each with a call and a put per strike (:mod:`sim.market.options`).
    The slots come after every other instrument, so a world without options
    keeps its instrument indices.
    """
    ocfg = cfg.market.options
    if not ocfg.enabled:
        return None
    calendar = ExpiryCalendar([(s.name, s.period_days, s.offset_days, s.live)
                               for s in ocfg.series], ocfg.expiry_hour, cfg.market.step_seconds)
    n_strikes = 2 * int(ocfg.strikes_per_side) + 1
    slots: list[OptionSlot] = []
    group_key: list[tuple[int, int]] = []
    prefix: dict[tuple[int, int], str] = {}
    for proto in protocols:
        if not proto.cfg.options:
            continue
        for a in proto.listed_assets:
            name = asset_names[a]
            if ocfg.assets and name not in ocfg.assets:
                continue
            inverse = ocfg.premium == "inverse"
            quote, tick = (a, float(ocfg.coin_tick)) if inverse else (0, float(ocfg.tick[name]))
            prefix[(proto.index, a)] = f"{proto.name}:{name}"
            for _ in range(calendar.max_live()):
                g = len(group_key)
                group_key.append((proto.index, a))
                for k in range(n_strikes):
                    for call in (True, False):
                        inst = Instrument(len(instruments),
                                          f"{proto.name}:{name}-OPT{g}-{k}{'C' if call else 'P'}",
                                          proto.index, OPTION, a, quote, tick,
                                          float(ocfg.lot[name]))
                        instruments.append(inst)
                        proto.options.append(inst)
                        slots.append(OptionSlot(inst.index, proto.index, a, g, k, call))
    if not slots:
        return None
    return OptionChain(slots, group_key, calendar, ocfg.strikes_per_side, ocfg.strike_spacing,
                       prefix)


def build_markets(cfg: Any, asset_names: list[str], tokens: Any) -> Markets:
    """Protocols, instruments, books, the ledger and the protocols' own rows from ``cfg``.

    Args:
        cfg: The run config (plain ``RunConfig``).
        asset_names: World assets, quote first, then market assets and issued tokens.
        tokens: The :class:`sim.contagion.tokens.TokenBook` (its tokens' venue
            books are recorded in it).
    """
    instruments: list[Instrument] = []
    protocols: list[Protocol] = []
    for p_idx, pcfg in enumerate(cfg.protocols):
        mcfg = cfg.margin if pcfg.margin is None else pcfg.margin
        engine = build_engine(mcfg, asset_names, SECONDS_PER_YEAR / cfg.market.step_seconds)
        proto = Protocol(p_idx, pcfg.name, pcfg, engine)
        proto.listed_assets = [a for a, acfg in enumerate(cfg.market.assets, start=1)
                               if not pcfg.assets or acfg.name in pcfg.assets]
        for a_idx, acfg in enumerate(cfg.market.assets, start=1):
            if a_idx not in proto.listed_assets:
                continue
            for kind, listed, suffix in ((SPOT, pcfg.spot, "SPOT"), (PERP, pcfg.perp, "PERP")):
                if listed:
                    inst = Instrument(len(instruments), f"{pcfg.name}:{acfg.name}-{suffix}",
                                      p_idx, kind, a_idx, 0, acfg.tick_size, acfg.lot_size)
                    instruments.append(inst)
                    proto.add_instrument(inst)
        for t_idx, tok in tokens.on_venue(pcfg.name):
            inst = Instrument(len(instruments), f"{pcfg.name}:{tok.name}-SPOT", p_idx,
                              SPOT, t_idx, 0, tok.tick_size, tok.lot_size)
            instruments.append(inst)
            proto.add_instrument(inst)
            tokens.books[t_idx] = inst.index
        protocols.append(proto)
    chain = _option_chain(cfg, asset_names, protocols, instruments)
    books = [make_book(protocols[i.protocol].cfg.stp) for i in instruments]
    specs = InstrumentSpecs(
        kind=np.array([i.kind for i in instruments], np.int64),
        underlying=np.array([i.base for i in instruments], np.int64),
        quote=np.array([i.quote for i in instruments], np.int64),
        contract_size=np.ones(len(instruments)))
    if chain is not None:  # unlisted slots: a positive strike, expired (finite marks)
        specs.strike[chain.instruments] = [float(cfg.market.assets[s.asset - 1].price)
                                           for s in chain.slots]
        specs.is_call[chain.instruments] = [s.is_call for s in chain.slots]
    ledger = Ledger(asset_names, specs.kind, specs.underlying, specs.quote)
    haircuts = np.array([cfg.margin.haircuts.get(a, 0.0) for a in asset_names])
    protocol_haircuts = {proto.index: np.array([proto.cfg.margin.haircuts.get(a, 0.0)
                                                for a in asset_names])
                         for proto in protocols if proto.cfg.margin is not None}
    for proto in protocols:
        proto.treasury = ledger.open_account(HolderKind.TREASURY, protocol=proto.index)
        proto.insurance = ledger.open_account(HolderKind.INSURANCE, protocol=proto.index)
        proto.clearing = ledger.open_account(HolderKind.CLEARING, protocol=proto.index)
        for inst in proto.instruments:
            if inst.is_perp:
                ledger.set_clearing(inst.index, proto.clearing)
        for inst in proto.options:  # coin-settled options clear in a row of their own coin
            if inst.quote not in proto.option_clearing:
                proto.option_clearing[inst.quote] = (
                    proto.clearing if inst.quote == 0
                    else ledger.open_account(HolderKind.CLEARING, protocol=proto.index))
            ledger.set_clearing(inst.index, proto.option_clearing[inst.quote])
        if proto.cfg.insurance_fund > 0:
            ledger.deposit(proto.insurance, 0, proto.cfg.insurance_fund)
    return Markets(instruments, protocols, books, specs, ledger, haircuts, protocol_haircuts,
                   chain)


@dataclass
class Agents:
    """The agents a world is built with (all registered with Mesa).

    Attributes:
        makers: Market makers, per protocol and book.
        leveraged: Leveraged-trader populations, per protocol with perpetuals.
        arbitrageurs: The arbitrageur (if enabled).
        liquidators: Liquidator agents.
        option_dealers: Ledger rows of the option market makers and dealers.
        option_books: The option-book populations.
    """

    makers: list[Any]
    leveraged: list[Any]
    arbitrageurs: list[Any]
    liquidators: list[Any]
    option_dealers: list[int] = field(default_factory=list)
    option_books: list[Any] = field(default_factory=list)


def build_agents(model: Any, in_stream: Callable[[int, Callable[[], None]], None]) -> Agents:
    """Every agent of ``model.cfg.agents``, in the fixed order of the module docstring.

    Args:
        model: The model being built (its protocols, instruments and ``open_trader``).
        in_stream: ``in_stream(p, build)`` runs ``build()`` in protocol ``p``'s
            random stream and makes the agents it creates step in that stream.
    """
    acfg = model.cfg.agents
    makers: list[Any] = []
    for proto in model.protocols:
        in_stream(proto.index,
                  lambda proto=proto: makers.extend(_venue_agents(model, proto, acfg)))
    leveraged: list[Any] = []
    for proto in model.protocols:
        in_stream(proto.index,
                  lambda proto=proto: leveraged.extend(_strategy_agents(model, proto, acfg)))
    arbitrageurs = _arbitrageurs(model, acfg)
    liquidators = build_liquidators(model, acfg.liquidator)
    dealers: list[int] = []
    books: list[Any] = []
    for proto in model.protocols:  # last, so worlds without options build exactly as before
        if proto.options:
            in_stream(proto.index, lambda proto=proto: _option_agents(model, proto, acfg, dealers,
                                                                      books))
    return Agents(makers, leveraged, arbitrageurs, liquidators, dealers, books)


def _option_agents(model: Any, proto: Protocol, acfg: Any, dealers: list[int],
                   books: list[Any]) -> None:
    """Option market makers, dealers and option-book traders of one protocol.

    Per underlying with options: ``option_maker.per_underlying`` makers and
    ``option_dealer.per_underlying`` dealers (their rows go to ``dealers``),
    then one population per book type with ``option_books.counts[type]``
    traders (to ``books``). Makers quote once at once, so the option books
    start two-sided.
    """
    from agents.config import BOOK_TYPES
    from agents.option_books import OptionBookPopulation
    from agents.option_maker import OptionMarketMaker

    assets = list(dict.fromkeys(i.base for i in proto.options))
    bcfg = acfg.option_books
    for a in assets:
        name = model.asset_names[a]
        for mcfg in (acfg.option_maker, acfg.option_dealer):
            for _ in range(mcfg.per_underlying):
                agent = OptionMarketMaker(model, proto.index, a, mcfg, name)
                agent.account = model.open_trader(proto.index, agent.unique_id, mcfg.usd,
                                                  mcfg.base_notional)
                dealers.append(agent.account)
                agent.quote()
        if bcfg.assets and name not in bcfg.assets:
            continue
        for book in BOOK_TYPES:
            n = int(bcfg.counts.get(book, 0))
            if n <= 0:
                continue
            pop = OptionBookPopulation(model, book, proto.index, a, bcfg)
            pop.set_accounts(np.array([model.open_trader(proto.index, pop.unique_id, bcfg.usd,
                                                         0.0) for _ in range(n)], np.int64))
            books.append(pop)


def _venue_agents(model: Any, proto: Protocol, acfg: Any) -> list[Any]:
    """Market makers (per book) and the noise population of one protocol; the makers."""
    from agents.market_maker import AvellanedaStoikovMaker
    from agents.noise import NoiseTraderPopulation

    makers = []
    for inst in proto.instruments:
        for _ in range(acfg.market_maker.per_book):
            agent = AvellanedaStoikovMaker(model, inst.index, acfg.market_maker)
            agent.account = model.open_trader(proto.index, agent.unique_id,
                                              acfg.market_maker.usd,
                                              acfg.market_maker.base_notional)
            makers.append(agent)
    if acfg.noise.n > 0:
        pop = NoiseTraderPopulation(model, [i.index for i in proto.instruments], acfg.noise)
        pop.accounts = np.array([
            model.open_trader(proto.index, pop.unique_id, acfg.noise.usd,
                              acfg.noise.base_notional)
            for _ in range(acfg.noise.n)], np.int64)
    return makers


def _strategy_agents(model: Any, proto: Protocol, acfg: Any) -> list[Any]:
    """Fundamentalists, momentum and leveraged traders of one protocol; the leveraged ones."""
    from agents.fundamentalist import FundamentalistPopulation
    from agents.leveraged import LeveragedTraderPopulation
    from agents.momentum import MomentumPopulation

    insts = [i.index for i in proto.instruments]
    for cls, c in ((FundamentalistPopulation, acfg.fundamentalist),
                   (MomentumPopulation, acfg.momentum)):
        if c.n > 0:
            pop = cls(model, insts, c)
            # assigning accounts draws each trader's parameters from model.rng
            pop.accounts = np.array([model.open_trader(proto.index, pop.unique_id, c.usd,
                                                       c.base_notional)
                                     for _ in range(c.n)], np.int64)
    out = []
    lc = acfg.leveraged
    if lc.n > 0 and any(i.is_perp for i in proto.instruments):
        pop = LeveragedTraderPopulation(model, insts, lc)
        if lc.all_venues:  # trader i of every venue is one owner (sim.contagion.universal)
            from sim.contagion.universal import MULTI_VENUE_OWNER

            owners = [MULTI_VENUE_OWNER + i for i in range(lc.n)]
        else:
            owners = [pop.unique_id] * lc.n
        pop.accounts = np.array([model.open_trader(proto.index, o, lc.usd, 0.0)
                                 for o in owners], np.int64)
        out.append(pop)
    return out


def _arbitrageurs(model: Any, acfg: Any) -> list[Any]:
    """The arbitrageur with an account on every protocol (if enabled)."""
    from agents.arbitrageur import Arbitrageur

    ac = acfg.arbitrageur
    if not ac.enabled:
        return []
    contagion = model.cfg.contagion
    if ac.cross_venue and not (contagion.arbitrage and contagion.fire_sales):
        ac = replace(ac, cross_venue=False)  # contagion channel switched off
    arb = Arbitrageur(model, [i.index for i in model.instruments if not i.is_option], ac)
    arb.accounts = {p.index: model.open_trader(p.index, arb.unique_id, ac.usd, ac.base_notional)
                    for p in model.protocols}
    return [arb]


def build_liquidators(model: Any, cfg: Any) -> list[Any]:
    """Create ``cfg.n`` liquidator agents, each with a funded account on every protocol.

    Args:
        model: The model (its ``open_trader`` opens the accounts).
        cfg: A :class:`agents.config.LiquidatorConfig`.

    Returns:
        The agents (also registered with Mesa, so their ``step`` runs in phase 3).
    """
    from agents.liquidator import Liquidator

    out = []
    contagion = getattr(getattr(model, "cfg", None), "contagion", None)
    shared = bool(getattr(contagion, "shared_liquidator_capital", False))
    for _ in range(int(cfg.n)):
        agent = Liquidator(model, cfg, shared_capital=shared)
        for proto in model.protocols:
            agent.accounts[proto.index] = model.open_trader(proto.index, agent.unique_id,
                                                            float(cfg.capital), 0.0)
        out.append(agent)
    return out
