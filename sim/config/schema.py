"""The structured run-config schema and its registration in Hydra's ConfigStore.

The schema is a tree of dataclasses registered as ``base_run``; the YAML
groups under ``conf/`` (``market``, ``protocols``, ``margin``, ``agents``,
``scenario``) fill it in. Simulation code receives the resulting config
object and never calls ``HydraConfig`` itself, so the Compose API
(:func:`sim.config.loading.load_config`) gives exactly what the command line
gives. The agents' sections are :mod:`agents.config`; the liquidation section
is :class:`sim.venue.liquidation.LiquidationConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from agents.config import AgentsConfig
from sim.market.volsurface import VolSurfaceConfig
from sim.venue.liquidation import LiquidationConfig

__all__ = [
    "STP_MODES",
    "AssetConfig",
    "ContagionConfig",
    "IssuedTokenConfig",
    "MarginConfig",
    "MarketConfig",
    "OptionSeriesConfig",
    "OptionsConfig",
    "OracleConfig",
    "OutputConfig",
    "ProtocolConfig",
    "RunConfig",
    "ScenarioConfig",
    "plain_config",
    "register_configs",
    "to_container",
]

STP_MODES = ("none", "cancel_resting", "cancel_taker", "cancel_both")


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
class OptionSeriesConfig:
    """One expiry series: expiries every ``period_days`` from ``offset_days``, ``live`` listed.

    The run's clock starts on a Monday at 00:00 UTC, so ``offset_days: 4`` is a
    Friday (Deribit's weekly and monthly expiries).
    """

    name: str = "daily"
    period_days: float = 1.0
    offset_days: float = 0.0
    live: int = 2


@dataclass
class OptionsConfig:
    """European options on the market's assets (Deribit-style; ``sim.market.options``).

    Attributes:
        enabled: List options (protocols with ``options: true``).
        assets: Underlyings with options; empty: every market asset.
        premium: ``usd`` (linear: premium, marks and settlement in the quote
            currency) or ``inverse`` (in the underlying coin, Deribit's BTC and
            ETH options).
        series: Expiry series (daily, weekly, monthly).
        expiry_hour: Expiry time of day, hours UTC (Deribit: 08:00).
        settlement_twap_seconds: Settlement price = TWAP of the index over this
            window before expiry (Deribit: 30 minutes).
        strikes_per_side: Strikes on each side of the at-the-money one.
        strike_spacing: Strike spacing of a one-day expiry as a fraction of the
            index; longer tenors widen it with the square root of the days.
        tick: Premium tick per underlying for ``usd`` premium (quote units).
        coin_tick: Premium tick for ``inverse`` premium (coin units).
        lot: Contract lot per underlying (base units).
        rate: Discount rate of the Black-76 marks (zero carry on the index).
        maker_fee: Option maker fee as a fraction of the underlying notional.
        taker_fee: Option taker fee as a fraction of the underlying notional.
        fee_cap: Cap of the fee as a fraction of the premium (Deribit: 12.5 %).
        close_slippage: Liquidation closes an option in its book when the best
            opposite quote is within this fraction of the underlying index from
            the mark; otherwise the insurance fund takes it over at the mark.
        liquidation_penalty: Penalty of an option takeover, fraction of the
            underlying notional, paid to the insurance fund.
        surface: The mark implied-volatility surface (``sim.market.volsurface``).
    """

    enabled: bool = False
    assets: list[str] = field(default_factory=list)
    premium: str = "usd"
    series: list[OptionSeriesConfig] = field(default_factory=lambda: [
        OptionSeriesConfig("daily", 1.0, 0.0, 2), OptionSeriesConfig("weekly", 7.0, 4.0, 1),
        OptionSeriesConfig("monthly", 28.0, 25.0, 1)])
    expiry_hour: float = 8.0
    settlement_twap_seconds: float = 1800.0
    strikes_per_side: int = 3
    strike_spacing: float = 0.02
    tick: dict[str, float] = field(default_factory=lambda: {"BTC": 1.0, "ETH": 0.1})
    coin_tick: float = 0.0001
    lot: dict[str, float] = field(default_factory=lambda: {"BTC": 0.1, "ETH": 1.0})
    rate: float = 0.0
    maker_fee: float = 0.0003
    taker_fee: float = 0.0003
    fee_cap: float = 0.125
    close_slippage: float = 0.005
    liquidation_penalty: float = 0.0019
    surface: VolSurfaceConfig = field(default_factory=VolSurfaceConfig)


@dataclass
class MarketConfig:
    """The exogenous market: assets, their correlation, the step length and listed options."""

    quote: str = "USD"
    step_seconds: float = 60.0
    assets: list[AssetConfig] = field(default_factory=lambda: [AssetConfig()])
    correlation: list[list[Any]] = field(default_factory=lambda: [[1.0]])
    """Correlation matrix of the assets' GBM shocks, one row per asset (numbers; integers
    such as ``1`` are read as floats)."""
    options: OptionsConfig = field(default_factory=OptionsConfig)


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
    """A token a protocol issues; it becomes a world asset (see :mod:`sim.contagion.tokens`).

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
    options: bool = True
    """List the market's options (when ``market.options.enabled``)."""
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
    """Oracle publishing the index price: latency and TWAP window, in steps.

    Attributes:
        latency_steps: Publication delay of the outside price, in steps.
        twap_steps: Averaging window of the outside price, in steps.
        venue_weight: Weight of the venues' own prices in the index: the index
            is ``(1 − v) × outside + v × median of the venues' mids`` of the
            asset (spot books, or the perpetuals where no venue lists spot), as
            of the end of the previous step. 0 (default): an outside oracle;
            > 0: a composite index, as Binance's index averages spot prices of
            several exchanges including its own, so a venue's cascade feeds its
            own index.
    """

    latency_steps: int = 0
    twap_steps: int = 1
    venue_weight: float = 0.0


@dataclass
class OutputConfig:
    """What a run writes besides its Parquet tables and summary.

    Attributes:
        figures: Draw the per-run figures.
        burn_in_steps: Steps left out of the margin procyclicality measures in
            ``summary.json`` (peak-to-trough, largest 60-step increase): the
            start-up transient while agents build their positions from zero
            (a warm-up period, Law & Kelton §9.5.1). The time series keeps them.
        accounts_every: Steps between snapshots of every trader account in
            ``accounts.parquet`` (equity, requirements, Greeks); 0 writes none.
    """

    figures: bool = True
    burn_in_steps: int = 60
    accounts_every: int = 0


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
            (:mod:`sim.contagion.universal`). The run's top-level ``margin`` engine
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
