"""Structured run configuration, its Hydra registration, validation and loading.

The schema is a tree of dataclasses registered in Hydra's ConfigStore as
``base_run``; the YAML groups under ``conf/`` (``market``, ``protocols``,
``margin``, ``agents``, ``scenario``) fill it in. Simulation code receives the
resulting config object and never calls ``HydraConfig`` itself, so the Compose
API (``load_config``) gives exactly what the command line gives.

Every loaded config passes :func:`validate`, which raises :class:`ConfigError`
with one line naming the key, the bad value and what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from agents.arbitrageur import ArbitrageurConfig, validate_arbitrageur_config
from agents.fundamentalist import FundamentalistConfig, validate_fundamentalist_config
from agents.leveraged import LeveragedConfig, validate_leveraged_config
from agents.liquidator import LiquidatorConfig, validate_liquidator_config
from agents.market_maker import LiquidityWithdrawalConfig, validate_withdrawal_config
from agents.momentum import MomentumConfig, validate_momentum_config
from sim.checks import check_number
from sim.liquidation import LiquidationConfig, validate_liquidation_config

__all__ = [
    "AgentsConfig",
    "AssetConfig",
    "ConfigError",
    "ContagionConfig",
    "IssuedTokenConfig",
    "MarginConfig",
    "MarketConfig",
    "MarketMakerConfig",
    "NoiseConfig",
    "OracleConfig",
    "OutputConfig",
    "ProtocolConfig",
    "RunConfig",
    "ScenarioConfig",
    "apply_protocol_margin_overrides",
    "finish_config",
    "load_config",
    "plain_config",
    "register_configs",
    "split_protocol_margin_overrides",
    "universal_margin_config",
    "validate",
]

STP_MODES = ("none", "cancel_resting", "cancel_taker", "cancel_both")


class ConfigError(ValueError):
    """A configuration value is invalid; the message is one line naming the key."""


@dataclass
class AssetConfig:
    """One risky asset quoted against the quote asset.

    Attributes:
        name: Asset symbol, e.g. ``BTC``.
        price: Initial fundamental price in quote units.
        vol: Annualised volatility of the fundamental (GBM sigma).
        drift: Annualised drift of the fundamental (GBM mu).
        tick_size: Price increment of this asset's books, in quote units.
        lot_size: Quantity increment of this asset's books, in base units.
    """

    name: str = "BTC"
    price: float = 60000.0
    vol: float = 0.6
    drift: float = 0.0
    tick_size: float = 0.1
    lot_size: float = 0.001


@dataclass
class MarketConfig:
    """The exogenous market: assets, their correlation and the step length."""

    quote: str = "USD"
    step_seconds: float = 60.0
    assets: list[AssetConfig] = field(default_factory=lambda: [AssetConfig()])
    correlation: list[list[Any]] = field(default_factory=lambda: [[1.0]])
    """Correlation matrix of the assets' GBM shocks, one row per asset (numbers; integers
    such as ``1`` are read as floats)."""


@dataclass
class MarginConfig:
    """Margin regime of the run (every protocol without its own ``margin``).

    Attributes:
        name: Registered regime: ``static``, ``cross``, ``portfolio`` or ``adaptive``.
        _target_: Optional class path of a user's ``MarginEngine`` subclass; it is
            built with ``params`` plus ``asset_names`` and ``name`` is then a label.
        haircuts: Collateral haircut per asset (fraction of value not counted).
        params: The regime's own parameters (see ``conf/margin/<name>.yaml``).
    """

    name: str = "cross"
    _target_: str | None = None
    haircuts: dict[str, float] = field(default_factory=lambda: {"USD": 0.0})
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class IssuedTokenConfig:
    """A token a protocol issues; it becomes a world asset (see :mod:`sim.tokens`).

    Attributes:
        name: Asset symbol (must differ from market assets and the quote).
        kind: ``receipt`` (LP / deposit receipt, claim on the issuer's assets) or
            ``stablecoin`` (pegged, backed by a reserve).
        par: Value of one unit at issue, in quote units (the peg of a stablecoin).
        supply: Units outstanding (fixed; deposits to holders are counted in it).
        backing_ratio: Stablecoin only: reserve / (supply * par) at issue.
        run_threshold: Stablecoin only: below this collateral ratio a run starts.
        run_discount: Stablecoin only: extra fractional discount once the run starts.
        floor: Lowest price as a fraction of ``par``.
        holdings: ``{protocol name: quote value}`` of the token each trader on that
            protocol starts with (minted from the outside world).
        venue: Protocol name listing a spot book ``<venue>:<name>-SPOT`` for the
            token (empty: no book). With ``contagion.venue_oracle`` its mid is the
            collateral price everywhere.
    """

    name: str = "aUSD"
    kind: str = "receipt"
    par: float = 1.0
    supply: float = 10_000_000.0
    backing_ratio: float = 1.0
    run_threshold: float = 1.0
    run_discount: float = 0.0
    floor: float = 0.0
    holdings: dict[str, float] = field(default_factory=dict)
    venue: str = ""


@dataclass
class ProtocolConfig:
    """A venue: its markets, fees, funding rule and insurance fund.

    ``mark_price``: ``binance`` (median of the index with the funding basis, the
    index plus the 30-sample average basis, and the last trade — robust to a
    swept book) or ``median`` (median of index, book mid and last trade — marks
    follow the book within a step, so liquidation trades re-mark at once).

    ``assets`` restricts the listed markets (and the base assets its new
    accounts are funded with) to some of the market's assets, so that a shock
    to an asset only one venue lists reaches the others through the contagion
    channels alone (the ATOM print on one venue, contagion_and_peers.md §2.6).

    Funding follows Binance USDⓈ-M: every ``funding_interval`` steps the rate is
    ``clamp(P + clamp(I - P, -premium_clamp, premium_clamp), -funding_cap,
    funding_cap)`` with P the average premium index over the interval and I the
    interest rate per interval.
    """

    name: str = "alpha"
    spot: bool = True
    perp: bool = True
    assets: list[str] = field(default_factory=list)
    """Market assets this protocol lists (spot/perp books); empty: every market asset."""
    maker_fee: float = 0.0002
    taker_fee: float = 0.0005
    funding_interval: int = 480
    interest_rate: float = 0.0001
    premium_clamp: float = 0.0005
    funding_cap: float = 0.0075
    insurance_fund: float = 1_000_000.0
    stp: str = "cancel_resting"
    mark_price: str = "binance"
    liquidation: LiquidationConfig = field(default_factory=LiquidationConfig)
    margin: MarginConfig | None = None
    """This protocol's own ``MarginConfig`` (``None``: the run's global ``margin``)."""
    issues: IssuedTokenConfig | None = None
    """An ``IssuedTokenConfig`` (``None``: the protocol issues no token)."""


@dataclass
class NoiseConfig:
    """Zero-intelligence noise traders (Farmer, Patelli & Zovko 2005 style).

    Attributes:
        n: Number of traders (each one ledger account).
        order_prob: Probability a trader sends an order in a step.
        market_prob: Share of orders that are market orders.
        marketable_prob: Share of limit orders priced through the opposite best.
        offset_bps: Mean distance (exponential) of passive limits from the
            reference price, in basis points.
        size_notional: Mean order notional in quote units (exponential sizes).
        lifetime_steps: Resting orders are cancelled after this many steps.
        max_position_notional: Above this absolute perp notional a trader only
            sends orders that reduce the position.
        usd: Initial quote collateral per trader.
        base_notional: Initial holding of each base asset, in quote value.
    """

    n: int = 200
    order_prob: float = 0.08
    market_prob: float = 0.25
    marketable_prob: float = 0.05
    offset_bps: float = 8.0
    size_notional: float = 2000.0
    lifetime_steps: int = 30
    max_position_notional: float = 50_000.0
    usd: float = 100_000.0
    base_notional: float = 50_000.0


@dataclass
class MarketMakerConfig:
    """Avellaneda–Stoikov (2008) market makers, one or more per book.

    Attributes:
        per_book: Market makers per order book.
        gamma: Risk aversion (per unit of inventory measured in order sizes).
        k: Order-arrival decay in 1/relative-price units (half-spread ~ 1/k).
        horizon_steps: Horizon T - t of the quote formula, in steps.
        vol_halflife_steps: Half-life of the EWMA volatility estimate.
        levels: Quote levels per side.
        level_spacing_bps: Distance between successive levels.
        order_notional: Notional of each quote, in quote units.
        inventory_limit_notional: Stop quoting the side that would grow the
            inventory beyond this notional.
        usd: Initial quote collateral.
        base_notional: Initial holding of each base asset, in quote value.
    """

    per_book: int = 1
    gamma: float = 1.0
    k: float = 2500.0
    horizon_steps: int = 60
    vol_halflife_steps: int = 30
    levels: int = 5
    level_spacing_bps: float = 3.0
    order_notional: float = 20_000.0
    inventory_limit_notional: float = 1_000_000.0
    usd: float = 5_000_000.0
    base_notional: float = 2_000_000.0
    withdrawal: LiquidityWithdrawalConfig = field(default_factory=LiquidityWithdrawalConfig)


@dataclass
class AgentsConfig:
    """Agent populations."""

    noise: NoiseConfig = field(default_factory=NoiseConfig)
    market_maker: MarketMakerConfig = field(default_factory=MarketMakerConfig)
    liquidator: LiquidatorConfig = field(default_factory=LiquidatorConfig)
    fundamentalist: FundamentalistConfig = field(default_factory=FundamentalistConfig)
    momentum: MomentumConfig = field(default_factory=MomentumConfig)
    leveraged: LeveragedConfig = field(default_factory=LeveragedConfig)
    arbitrageur: ArbitrageurConfig = field(default_factory=ArbitrageurConfig)


@dataclass
class ScenarioConfig:
    """Exogenous scenario driving the fundamental prices.

    Attributes:
        name: Scenario kind (see ``sim.scenarios``).
        params: Its parameters (see ``conf/scenario/<name>.yaml``).
    """

    name: str = "calm"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class OracleConfig:
    """Oracle publishing the index price: latency and TWAP window, in steps."""

    latency_steps: int = 0
    twap_steps: int = 1


@dataclass
class OutputConfig:
    """What a run writes besides its Parquet tables and summary.

    Attributes:
        figures: Draw the per-run figures.
        burn_in_steps: Steps left out of the margin procyclicality measures in
            ``summary.json`` (peak-to-trough, largest 60-step increase): the
            start-up transient while agents build their positions from zero
            (a warm-up period, Law & Kelton §9.5.1). The time series keeps them.
    """

    figures: bool = True
    burn_in_steps: int = 60


@dataclass
class ContagionConfig:
    """Switches of the cross-protocol contagion channels (DESIGN.md, collateral graph).

    Attributes:
        fire_sales: Prices linked across venues by trading: the arbitrageur's
            cross-venue trades (with ``arbitrage``). Off: no cross-venue arbitrage.
        arbitrage: The arbitrageur's cross-venue trades (``agents.arbitrageur.cross_venue``
            must also be on); both this and ``fire_sales`` must be true for it.
        token_impairment: Issued tokens are revalued from the issuer's bad debt /
            collateral ratio each step (off: tokens stay at par).
        venue_oracle: Collateral oracle prices each issued token from its venue's
            book mid instead of its fundamental (issuer-solvency) value.
        universal_margin: Cross-protocol (universal) margin: an owner's trader
            sub-accounts on several protocols (ledger rows sharing an ``owner``,
            one per protocol; liquidators excluded) are margined as one
            (:mod:`sim.universal`). The run's top-level ``margin`` engine
            evaluates the owner's positions netted across protocols (one
            column per underlying); the owner's positive balances, wherever
            they sit, are placed on the protocols' shares of the requirement
            by :func:`margin.risk.optimisation.allocate_keeping_best` with each
            protocol's own haircuts; every sub-account then reports the
            owner's equity, IM and MM scaled by one weight, so it is below
            maintenance exactly when the owner is, and orders of such owners
            pass the universal pre-trade check. A loss on one venue can so
            liquidate the owner's positions on another. Off: each protocol
            margins its own rows (siloed). Use with
            ``agents.leveraged.all_venues`` or the arbitrageur for owners on
            several venues.
        universal_cover: With ``universal_margin``, a bankrupt sub-account
            draws on the owner's other sub-accounts (their balances, up to
            their value) before its protocol's insurance fund; off, each
            protocol's waterfall bears its sub-account's loss alone.
        universal_spread_charge: Charge on each cross-venue spread (a long on
            one venue against a short on another, same underlying) as a
            fraction of its notional, added to the owner's IM and MM: the
            basis risk netting removes (SPAN intra-commodity charge; default
            NSE's 1.75 %, margin_methods.md §1.4).
        universal_regime: The engine of the universal requirement: a
            ``conf/margin`` preset name (``cross``, ``portfolio``, ...), or
            empty for the run's top-level ``margin``.
        shared_liquidator_capital: Liquidators' capital is one pool across
            venues: the capacity of a liquidator on any venue is its equity
            minus requirements summed over all its venue accounts (minus, with
            ``agents.liquidator.lock_capital``, the margin committed to
            positions it took this step on any venue), so a liquidation taken
            on one venue uses capacity another venue's candidates would have
            had. Off: each venue account's own capital (and commitments).
        rng_streams: ``shared`` (one generator, as a single-venue world), or
            ``per_protocol`` (the scenario keeps the run generator, each protocol's
            agents and liquidation order draw from their own stream), or ``auto``
            (``per_protocol`` with more than one protocol).
    """

    fire_sales: bool = True
    arbitrage: bool = True
    token_impairment: bool = True
    venue_oracle: bool = False
    universal_margin: bool = False
    universal_regime: str = ""
    universal_cover: bool = True
    universal_spread_charge: float = 0.0175
    shared_liquidator_capital: bool = False
    rng_streams: str = "auto"


@dataclass
class RunConfig:
    """One simulation run.

    Attributes:
        seed: Seed of the run's single random generator.
        steps: Number of model steps.
        progress: Show a progress bar.
        check_invariants: Run the ledger conservation check every step.
    """

    seed: int = 42
    steps: int = 1440
    progress: bool = True
    check_invariants: bool = False
    market: MarketConfig = field(default_factory=MarketConfig)
    protocols: list[ProtocolConfig] = field(default_factory=lambda: [ProtocolConfig()])
    margin: MarginConfig = field(default_factory=MarginConfig)
    contagion: ContagionConfig = field(default_factory=ContagionConfig)
    agents: AgentsConfig = field(default_factory=AgentsConfig)
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    oracle: OracleConfig = field(default_factory=OracleConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


def register_configs() -> None:
    """Register the structured schema as ``base_run`` in Hydra's ConfigStore."""
    ConfigStore.instance().store(name="base_run", node=RunConfig)


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"{key} = {value!r} is invalid: {allowed}")


def _check_range(key: str, value: float, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False) -> None:
    try:
        check_number(key, value, lo, hi, lo_open)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _choice(key: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        _fail(key, value, f"must be one of {', '.join(options)}")


def _validate_market(m: Any) -> None:
    _check_range("market.step_seconds", m.step_seconds, 0.0, lo_open=True)
    if len(m.assets) == 0:
        _fail("market.assets", [], "must list at least one asset")
    names = [a.name for a in m.assets]
    if len(set(names)) != len(names) or m.quote in names:
        _fail("market.assets", names, "asset names must be unique and differ from market.quote")
    for i, a in enumerate(m.assets):
        _check_range(f"market.assets[{i}].price", a.price, 0.0, lo_open=True)
        _check_range(f"market.assets[{i}].vol", a.vol, 0.0, 10.0)
        _check_range(f"market.assets[{i}].drift", a.drift, -10.0, 10.0)
        _check_range(f"market.assets[{i}].tick_size", a.tick_size, 0.0, lo_open=True)
        _check_range(f"market.assets[{i}].lot_size", a.lot_size, 0.0, lo_open=True)
        from sim.capacity import MAX_TICKS, MIN_TICKS

        ticks = a.price / a.tick_size
        if ticks > MAX_TICKS:
            _fail(f"market.assets[{i}].tick_size", a.tick_size,
                  f"price/tick_size must be <= {MAX_TICKS:.0e}")
        if ticks < MIN_TICKS:
            _fail(f"market.assets[{i}].tick_size", a.tick_size,
                  f"must be <= price/{MIN_TICKS:.0f} = {a.price / MIN_TICKS:g} (a tick of at most "
                  f"1 % of the price; coarser books cannot quote a spread)")
        if a.lot_size * a.price > 1e9:
            _fail(f"market.assets[{i}].lot_size", a.lot_size,
                  f"a lot is worth {a.lot_size * a.price:.3g} {m.quote}: must be <= 1e9")
    n = len(m.assets)
    for r, row in enumerate(m.correlation):
        if not isinstance(row, list | ListConfig) or len(row) != n:
            _fail("market.correlation", m.correlation,
                  f"must be a {n}x{n} matrix (one row per asset)")
        for c, x in enumerate(row):
            _check_range(f"market.correlation[{r}][{c}]", x, -1.0, 1.0)
    try:
        corr = np.asarray(m.correlation, dtype=float)
    except ValueError:
        _fail("market.correlation", m.correlation, f"must be a {n}x{n} matrix (one row per asset)")
    if corr.shape != (n, n):
        _fail("market.correlation", m.correlation, f"must be a {n}x{n} matrix (one row per asset)")
    if not np.allclose(corr, corr.T) or not np.allclose(np.diag(corr), 1.0):
        _fail("market.correlation", m.correlation, "must be symmetric with a unit diagonal")
    if np.any(np.abs(corr) > 1.0) or np.linalg.eigvalsh(corr).min() < -1e-12:
        _fail("market.correlation", m.correlation, "must be positive semi-definite with |rho| <= 1")


def _validate_protocols(protocols: Any, market_assets: list[str]) -> None:
    if len(protocols) == 0:
        _fail("protocols", [], "must list at least one protocol")
    names = [p.name for p in protocols]
    if len(set(names)) != len(names):
        _fail("protocols", names, "protocol names must be unique")
    for i, p in enumerate(protocols):
        k = f"protocols[{i}]"
        if not (p.spot or p.perp):
            _fail(f"{k}.spot", p.spot, "a protocol needs a spot or a perp market")
        listed = list(p.assets)
        unknown = [a for a in listed if a not in market_assets]
        if unknown or len(set(listed)) != len(listed):
            _fail(f"{k}.assets", listed,
                  f"must be distinct market assets ({', '.join(market_assets)}); empty lists all")
        _check_range(f"{k}.maker_fee", p.maker_fee, -0.01, 0.01)
        _check_range(f"{k}.taker_fee", p.taker_fee, 0.0, 0.01)
        if p.maker_fee + p.taker_fee < 0:
            _fail(f"{k}.maker_fee", p.maker_fee, "maker rebate must not exceed the taker fee")
        _check_range(f"{k}.funding_interval", p.funding_interval, 1)
        _check_range(f"{k}.interest_rate", p.interest_rate, -0.01, 0.01)
        _check_range(f"{k}.premium_clamp", p.premium_clamp, 0.0, 0.1)
        _check_range(f"{k}.funding_cap", p.funding_cap, 0.0, 0.1)
        _check_range(f"{k}.insurance_fund", p.insurance_fund, 0.0)
        _choice(f"{k}.stp", p.stp, STP_MODES)
        _choice(f"{k}.mark_price", p.mark_price, ("binance", "median"))
        try:
            validate_liquidation_config(p.liquidation, f"{k}.liquidation")
        except ValueError as exc:
            raise ConfigError(str(exc).splitlines()[0]) from None


def _validate_margin(m: Any, assets: list[str], quote: str, step_seconds: float,
                     key: str = "margin", market_assets: list[str] | None = None) -> None:
    from margin.engine import available_engines
    from sim.regimes import build_engine, check_param_kinds
    from sim.scenarios.gbm import SECONDS_PER_YEAR

    if not m._target_:
        _choice(f"{key}.name", m.name, tuple(available_engines()))
    known = [quote, *assets]
    stale = [name for name in m.haircuts if name not in known]
    if stale:
        name = stale[0]
        unpriced = [a for a in assets if a not in m.haircuts]
        if len(stale) == 1 and len(unpriced) == 1 and market_assets is not None \
                and unpriced[0] in market_assets:
            i = market_assets.index(unpriced[0])
            _fail(f"market.assets[{i}].name", unpriced[0],
                  f"{key}.haircuts still names {name}, which is no longer an asset; give the "
                  f"renamed asset its haircut ({key}.haircuts.{unpriced[0]}=... "
                  f"~{key}.haircuts.{name})")
        _fail(f"{key}.haircuts.{name}", m.haircuts[name],
              f"unknown asset; known: {', '.join(known)}")
    for name, h in m.haircuts.items():
        _check_range(f"{key}.haircuts.{name}", h, 0.0, 1.0)
        if h >= 1.0:
            _fail(f"{key}.haircuts.{name}", h, "must be < 1")
    try:
        check_param_kinds(m, key)
    except ValueError as exc:
        raise ConfigError(str(exc).splitlines()[0]) from None
    try:
        build_engine(m, [quote, *assets], SECONDS_PER_YEAR / step_seconds)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any engine's constructor: one line, never a traceback
        text = str(exc).strip().splitlines()
        detail = text[0] if text else type(exc).__name__
        if not isinstance(exc, ValueError | ImportError):
            detail = f"{key}.params do not fit the {m.name} engine ({type(exc).__name__}: {detail})"
        raise ConfigError(f"{key} ({m.name}): {detail}") from None


TOKEN_KINDS = ("receipt", "stablecoin")
RNG_STREAMS = ("auto", "shared", "per_protocol")


def token_names(cfg: Any) -> list[str]:
    """Names of the issued tokens, in protocol order (world assets after the market's)."""
    return [p.issues.name for p in cfg.protocols if p.issues is not None]


def _validate_tokens(cfg: Any) -> None:
    market = [cfg.market.quote, *[a.name for a in cfg.market.assets]]
    pnames = [p.name for p in cfg.protocols]
    seen: list[str] = []
    for i, p in enumerate(cfg.protocols):
        t = p.issues
        if t is None:
            continue
        k = f"protocols[{i}].issues"
        if t.name in market or t.name in seen:
            _fail(f"{k}.name", t.name, "must differ from market assets, the quote and other tokens")
        seen.append(t.name)
        _choice(f"{k}.kind", t.kind, TOKEN_KINDS)
        _check_range(f"{k}.par", t.par, 0.0, lo_open=True)
        _check_range(f"{k}.supply", t.supply, 0.0, lo_open=True)
        _check_range(f"{k}.backing_ratio", t.backing_ratio, 0.0, 100.0, lo_open=True)
        _check_range(f"{k}.run_threshold", t.run_threshold, 0.0, 100.0)
        _check_range(f"{k}.run_discount", t.run_discount, 0.0, 1.0)
        _check_range(f"{k}.floor", t.floor, 0.0, 1.0)
        for name, v in t.holdings.items():
            if name not in pnames:
                _fail(f"{k}.holdings.{name}", v, f"unknown protocol; known: {', '.join(pnames)}")
            _check_range(f"{k}.holdings.{name}", v, 0.0)
        if t.venue and t.venue not in pnames:
            _fail(f"{k}.venue", t.venue, f"unknown protocol; known: {', '.join(pnames)}")


def _validate_contagion(c: Any, n_protocols: int) -> None:
    _choice("contagion.rng_streams", c.rng_streams, RNG_STREAMS)
    for key in ("fire_sales", "arbitrage", "token_impairment", "venue_oracle",
                "universal_margin", "universal_cover", "shared_liquidator_capital"):
        if not isinstance(getattr(c, key), bool):
            _fail(f"contagion.{key}", getattr(c, key), "must be true or false")
    _check_range("contagion.universal_spread_charge", c.universal_spread_charge, 0.0, 1.0)


def universal_margin_config(c: Any, default: Any = None) -> Any:
    """The margin config of the universal engine: ``contagion.universal_regime``'s preset,
    or ``default`` (the run's ``margin``) when it is empty.

    Raises:
        ConfigError: An unknown preset name (one line listing the known ones).
    """
    if not c.universal_regime:
        return default
    return _margin_preset(str(c.universal_regime))


def _validate_scenario(s: Any, market: Any, steps: int) -> None:
    """Build the scenario once (it checks its own params and data files) and check the path.

    Beyond its params, the fundamental path must stay where the books can quote
    it (:func:`sim.capacity.check_price_path`): a tick of at most 1 % of the
    price and at most 1e12 ticks, over a replayed window at the start and for
    the volatility the scenario can reach.
    """
    from sim.capacity import check_scenario_path
    from sim.scenarios import build_scenario

    try:
        scenario = build_scenario(s, market)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any builder: one line, never a traceback
        text = str(exc).strip().splitlines()
        detail = text[0] if text else type(exc).__name__
        if not isinstance(exc, ValueError | TypeError | OSError):
            detail = f"{type(exc).__name__}: {detail}"
        raise ConfigError(f"scenario ({s.name}): {detail}") from None
    check_scenario_path(scenario, s, market, steps)


def _validate_agents(a: Any) -> None:
    n = a.noise
    _check_range("agents.noise.n", n.n, 0, 1_000_000)
    for key in ("order_prob", "market_prob", "marketable_prob"):
        _check_range(f"agents.noise.{key}", getattr(n, key), 0.0, 1.0)
    for key in ("offset_bps", "size_notional", "max_position_notional"):
        _check_range(f"agents.noise.{key}", getattr(n, key), 0.0, lo_open=True)
    _check_range("agents.noise.lifetime_steps", n.lifetime_steps, 1)
    _check_range("agents.noise.usd", n.usd, 0.0)
    _check_range("agents.noise.base_notional", n.base_notional, 0.0)
    mm = a.market_maker
    _check_range("agents.market_maker.per_book", mm.per_book, 0, 100)
    _check_range("agents.market_maker.gamma", mm.gamma, 0.0, lo_open=True)
    _check_range("agents.market_maker.k", mm.k, 0.0, lo_open=True)
    _check_range("agents.market_maker.horizon_steps", mm.horizon_steps, 1)
    _check_range("agents.market_maker.vol_halflife_steps", mm.vol_halflife_steps, 1)
    _check_range("agents.market_maker.levels", mm.levels, 1, 100)
    _check_range("agents.market_maker.level_spacing_bps", mm.level_spacing_bps, 0.0, lo_open=True)
    _check_range("agents.market_maker.order_notional", mm.order_notional, 0.0, lo_open=True)
    _check_range("agents.market_maker.inventory_limit_notional", mm.inventory_limit_notional,
                 0.0, lo_open=True)
    _check_range("agents.market_maker.usd", mm.usd, 0.0)
    _check_range("agents.market_maker.base_notional", mm.base_notional, 0.0)
    try:
        validate_liquidator_config(a.liquidator)
    except ValueError as exc:
        raise ConfigError(f"agents.liquidator: {str(exc).splitlines()[0]}") from None
    checks = ((validate_withdrawal_config, a.market_maker.withdrawal,
               "agents.market_maker.withdrawal"),
              (validate_fundamentalist_config, a.fundamentalist, "agents.fundamentalist"),
              (validate_momentum_config, a.momentum, "agents.momentum"),
              (validate_leveraged_config, a.leveraged, "agents.leveraged"),
              (validate_arbitrageur_config, a.arbitrageur, "agents.arbitrageur"))
    for check, node, key in checks:
        try:
            check(node, key)
        except ValueError as exc:
            raise ConfigError(str(exc).splitlines()[0]) from None


def validate(cfg: Any) -> Any:
    """Check every value of a run config; return it unchanged when valid.

    Args:
        cfg: A ``RunConfig`` or an OmegaConf node with its structure.

    Returns:
        The same config.

    Raises:
        ConfigError: One line naming the first bad key, its value and what is
            allowed.
    """
    from sim.config_schema import check_schema, resolve_or_fail

    check_schema(cfg)
    resolve_or_fail(cfg)
    _check_type("seed", cfg.seed, int)
    _check_range("seed", cfg.seed, 0, 2**63 - 1)
    _check_type("steps", cfg.steps, int)
    _check_range("steps", cfg.steps, 1, 100_000_000)
    for key in ("progress", "check_invariants"):
        _check_type(key, getattr(cfg, key), bool)
    _check_type("output.figures", cfg.output.figures, bool)
    _validate_market(cfg.market)
    _validate_protocols(cfg.protocols, [a.name for a in cfg.market.assets])
    _validate_tokens(cfg)
    market_assets = [a.name for a in cfg.market.assets]
    assets = market_assets + token_names(cfg)
    _validate_margin(cfg.margin, assets, cfg.market.quote, cfg.market.step_seconds,
                     market_assets=market_assets)
    for i, p in enumerate(cfg.protocols):
        if p.margin is not None:
            _validate_margin(p.margin, assets, cfg.market.quote, cfg.market.step_seconds,
                             f"protocols[{i}].margin")
    _validate_contagion(cfg.contagion, len(cfg.protocols))
    if cfg.contagion.universal_regime:
        try:
            universal = universal_margin_config(cfg.contagion)
        except ConfigError as exc:
            raise ConfigError(f"contagion.universal_regime: {exc}") from None
        _validate_margin(universal, assets, cfg.market.quote, cfg.market.step_seconds,
                         "contagion.universal_regime")
    _validate_agents(cfg.agents)
    from sim.capacity import check_run_memory

    check_run_memory(cfg)
    _validate_scenario(cfg.scenario, cfg.market, int(cfg.steps))
    _check_range("oracle.latency_steps", cfg.oracle.latency_steps, 0, 1_000_000)
    _check_range("oracle.twap_steps", cfg.oracle.twap_steps, 1, 1_000_000)
    _check_range("output.burn_in_steps", cfg.output.burn_in_steps, 0, 100_000_000)
    return cfg


def _check_type(key: str, value: Any, kind: type) -> None:
    """``value`` is exactly of ``kind`` (a bool is not an int here, an int not a bool)."""
    if kind is bool and not isinstance(value, bool):
        _fail(key, value, "must be true or false")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        _fail(key, value, "must be an integer")


def _one_line(exc: BaseException) -> str:
    """Collapse an OmegaConf/Hydra error (and its cause) into one line."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 2:
        lines = [ln.strip() for ln in str(seen).strip().splitlines() if ln.strip()]
        if lines:
            parts.append(lines[0])
            for i, ln in enumerate(lines[1:], start=1):
                if ln.startswith("Available options"):
                    opts = [o for o in lines[i + 1 :] if o.isidentifier() or o.replace("-", "_").isidentifier()]
                    parts.append(ln.rstrip(":") + ": " + ", ".join(opts))
                    break
        seen = seen.__cause__
    return ": ".join(dict.fromkeys(parts)) or type(exc).__name__


_PROTOCOL_MARGIN = re.compile(r"^\+{0,2}protocols\.(\d+)\.margin(\.[^=]+)?=(.*)$")


def split_protocol_margin_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """Separate per-protocol margin overrides from the ones Hydra applies itself.

    ``ProtocolConfig.margin`` starts as ``None`` (inherit the run's ``margin``),
    and OmegaConf cannot set a key below a ``None`` node, so Hydra rejects
    ``protocols.0.margin.name=static``. These overrides are applied after
    composition by :func:`apply_protocol_margin_overrides` instead.

    Returns:
        ``(hydra_overrides, protocol_margin_overrides)``, each in the given order.
    """
    hydra_ov, margin_ov = [], []
    for o in overrides:
        (margin_ov if _PROTOCOL_MARGIN.match(o) else hydra_ov).append(o)
    return hydra_ov, margin_ov


def _margin_preset(name: str) -> DictConfig:
    """``conf/margin/<name>.yaml`` as a structured ``MarginConfig`` node."""
    from importlib.resources import files

    folder = files("conf") / "margin"
    presets = sorted(f.name[:-5] for f in folder.iterdir() if f.name.endswith(".yaml"))
    if name not in presets:
        raise ConfigError(f"margin preset {name!r} is unknown; known: {', '.join(presets)}")
    node = OmegaConf.create((folder / f"{name}.yaml").read_text())
    return OmegaConf.merge(OmegaConf.structured(MarginConfig), node)


def apply_protocol_margin_overrides(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """Apply ``protocols.<i>.margin...`` overrides to a composed config, in order (in place).

    Syntax (documented in ``conf/protocols/two_venues.yaml``):

    * ``protocols.<i>.margin=<preset>``: protocol ``i`` uses ``conf/margin/<preset>.yaml``
      (as the ``margin=<preset>`` group choice does for the run);
      ``protocols.<i>.margin=null`` reverts it to the run's ``margin``.
    * ``protocols.<i>.margin.<key>=<value>`` (``+`` allowed for new keys under
      ``params``): sets one key; a protocol without its own margin first gets
      a copy of the run's ``margin``.

    Values are parsed with Hydra's override grammar, so types match the CLI.

    Raises:
        ConfigError: One line naming the override and what was wrong.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for text in overrides:
        match = _PROTOCOL_MARGIN.match(text)
        if match is None:
            raise ConfigError(f"{text!r} is not a protocols.<i>.margin override")
        i, rest = int(match.group(1)), match.group(2)
        if i >= len(cfg.protocols):
            raise ConfigError(f"{text}: no protocol {i}; the run has {len(cfg.protocols)} "
                              f"(indices 0..{len(cfg.protocols) - 1})")
        try:
            value = parser.parse_override(text.lstrip("+")).value()
        except Exception as exc:  # noqa: BLE001 - Hydra's grammar raises several types
            raise ConfigError(f"{text}: {_one_line(exc)}") from None
        proto = cfg.protocols[i]
        try:
            if not rest:
                proto.margin = None if value is None else _margin_preset(str(value))
                continue
            if proto.margin is None:
                proto.margin = OmegaConf.merge(OmegaConf.structured(MarginConfig), cfg.margin)
            key = rest[1:]
            if text.startswith("+"):
                with open_dict(proto.margin):
                    OmegaConf.update(proto.margin, key, value, merge=True)
            else:
                if OmegaConf.select(proto.margin, key, default=_MISSING) is _MISSING:
                    raise ConfigError(f"key protocols.{i}.margin{rest} does not exist "
                                      f"(prefix + to add a key under params)")
                OmegaConf.update(proto.margin, key, value, merge=False)
        except ConfigError as exc:
            raise ConfigError(f"{text}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - OmegaConf type errors
            raise ConfigError(f"{text}: {_one_line(exc)}") from None
    return cfg


_MISSING = object()


def load_config(overrides: list[str] | None = None, *, validate_values: bool = True) -> DictConfig:
    """Compose the run config exactly as ``python -m sim`` would, via Hydra's Compose API.

    Args:
        overrides: Hydra override strings, e.g. ``["steps=200", "seed=7"]``;
            ``protocols.<i>.margin...`` ones go through
            :func:`apply_protocol_margin_overrides`.
        validate_values: Run :func:`validate` on the result.

    Returns:
        The composed, typed config (an OmegaConf DictConfig backed by ``RunConfig``).

    Raises:
        ConfigError: For an unknown key, a type mismatch or an invalid value.
    """
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf.errors import OmegaConfBaseException

    register_configs()
    gh = GlobalHydra.instance()
    was_initialized = gh.is_initialized()
    try:
        if not was_initialized:
            initialize_config_module(config_module="conf", version_base="1.3")
        hydra_ov, _ = split_protocol_margin_overrides(list(overrides or []))
        from sim.config_schema import check_overrides

        check_overrides(hydra_ov, None)
        cfg = compose(config_name="config", overrides=hydra_ov)
    except (OmegaConfBaseException, Exception) as exc:  # noqa: BLE001 - Hydra raises many types
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(_one_line(exc)) from None
    finally:
        if not was_initialized:
            GlobalHydra.instance().clear()
    return finish_config(cfg, list(overrides or []), validate_values=validate_values)


def finish_config(cfg: DictConfig, overrides: list[str], *, validate_values: bool = True
                  ) -> DictConfig:
    """What :func:`load_config` does after Hydra composed ``cfg`` from ``overrides``.

    Checks the override values composition would silently change
    (:func:`sim.config_schema.check_overrides`), applies the
    ``protocols.<i>.margin`` ones and validates the result.

    Raises:
        ConfigError: One line naming the key and what is allowed.
    """
    from omegaconf.errors import OmegaConfBaseException

    from sim.config_schema import check_overrides

    hydra_ov, margin_ov = split_protocol_margin_overrides(overrides)
    try:
        check_overrides(hydra_ov, cfg)
        apply_protocol_margin_overrides(cfg, margin_ov)
    except ConfigError:
        raise
    except (OmegaConfBaseException, Exception) as exc:  # noqa: BLE001 - OmegaConf raises many types
        raise ConfigError(_one_line(exc)) from None
    if validate_values:
        validate(cfg)
    return cfg


def plain_config(cfg: Any) -> RunConfig:
    """The config as plain ``RunConfig`` dataclasses (fast attribute access in hot loops).

    OmegaConf nodes cost microseconds per attribute read; the model reads its
    config every step, so it converts once. Accepts a DictConfig (typed or
    not) or a ``RunConfig``.
    """
    if isinstance(cfg, RunConfig):
        return cfg
    if not isinstance(cfg, DictConfig) or OmegaConf.get_type(cfg) is not RunConfig:
        cfg = OmegaConf.merge(OmegaConf.structured(RunConfig), cfg)
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]


def to_container(cfg: Any) -> dict[str, Any]:
    """Resolved plain-dict form of a config, for writing next to run outputs."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]
