"""Every agent's configuration schema: plain dataclasses, no behaviour.

The run config (``sim.config.schema.RunConfig``) holds one :class:`AgentsConfig`;
``conf/agents/*.yaml`` fill it in. The checks of these values live with the
rest of the run config's validation (``sim.config.agents``), so this module is
pure data and the behaviour modules (one per agent type) read their
parameters from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "BOOK_TYPES",
    "LEVERAGE_DISTS",
    "RULES",
    "AgentsConfig",
    "ArbitrageurConfig",
    "FundamentalistConfig",
    "LeveragedConfig",
    "LiquidatorConfig",
    "LiquidityWithdrawalConfig",
    "MarketMakerConfig",
    "MomentumConfig",
    "NoiseConfig",
    "OptionBooksConfig",
    "OptionMakerConfig",
]

BOOK_TYPES = ("directional", "basis", "covered_call", "cash_secured_put", "protective_put",
              "calendar_spread", "strike_spread")
"""Option-world books a trader may hold (``OptionBooksConfig``, ``agents.option_books``)."""

RULES = ("top_up", "deleverage", "none")
"""Leveraged traders' behaviour near maintenance (``LeveragedConfig.rule``)."""

LEVERAGE_DISTS = ("loguniform", "pareto")
"""Distributions of leveraged traders' target leverage (``LeveragedConfig.leverage_dist``)."""


@dataclass
class ArbitrageurConfig:
    """Capital-limited index and cross-venue arbitrage (Shleifer & Vishny 1997).

    Attributes:
        enabled: Build the arbitrageur.
        threshold_bps: Act when the mid deviates from the index (or one venue's
            bid from another's ask) by more than this; above the 5 bps taker
            fee so each trade is expected to pay.
        band_bps: Index-arbitrage orders are limited at ``index × (1 ∓ band)``:
            the book is pushed back to within the band of the index.
        unwind_bps: Unwind inventory once the mid is within this of the index.
        unwind_notional: Most notional unwound per instrument and step.
        max_order_notional: Cap on one order's notional, in quote units.
        max_inventory_notional: Cap on one instrument's absolute inventory.
        max_leverage: Cap on the account's gross inventory notional, as a
            multiple of its equity.
        cross_venue: Also arbitrage the same asset across protocols.
        depth_levels: Book levels read when sizing orders.
        usd: Initial quote collateral per account (one per protocol).
        base_notional: Initial holding of each base asset, in quote value
            (lets spot inventory start from a neutral book).
    """

    enabled: bool = True
    threshold_bps: float = 15.0
    band_bps: float = 5.0
    unwind_bps: float = 5.0
    unwind_notional: float = 50_000.0
    max_order_notional: float = 250_000.0
    max_inventory_notional: float = 1_000_000.0
    max_leverage: float = 3.0
    cross_venue: bool = True
    depth_levels: int = 100
    usd: float = 2_000_000.0
    base_notional: float = 1_000_000.0


@dataclass
class FundamentalistConfig:
    """Value investors trading toward the oracle index (Chiarella 1992; Farmer & Joshi 2002).

    Attributes:
        n: Number of traders (each one ledger account); 0 disables the population.
        trade_prob: Probability that a trader sends an order in a step.
        threshold_bps: Deadband: no order while ``|index − mid| / index`` is
            below this many basis points (Farmer & Joshi's entry threshold;
            a taker fee of 5 bps makes smaller deviations unprofitable).
        beta_min: Lowest aggressiveness ``β`` (order notional per unit of
            relative mispricing, as a multiple of ``usd``).
        beta_max: Highest aggressiveness; ``β`` is uniform on ``[beta_min,
            beta_max]`` per trader, as TFG's funds differ in ``β``. With the
            defaults a 10 bps mispricing gives orders of 1,000–5,000 USD.
        market_prob: Share of orders sent as market orders; the rest are IOC
            limit orders at the index.
        max_order_notional: Cap on one order's notional, in quote units.
        max_position_notional: Orders may not take the absolute exposure of a
            trader past this notional (perp position, or spot holding away
            from the initial one).
        usd: Initial quote collateral per trader (also the wealth ``W`` that
            scales orders).
        base_notional: Initial holding of each base asset, in quote value.
    """

    n: int = 50
    trade_prob: float = 0.05
    threshold_bps: float = 5.0
    beta_min: float = 10.0
    beta_max: float = 50.0
    market_prob: float = 0.5
    max_order_notional: float = 20_000.0
    max_position_notional: float = 100_000.0
    usd: float = 100_000.0
    base_notional: float = 50_000.0


@dataclass
class LeveragedConfig:
    """Leverage-targeting perpetual traders (Thurner, Farmer & Geanakoplos 2012).

    Attributes:
        n: Number of traders (each one ledger account); 0 disables the population.
        usd: Initial quote collateral (equity) per trader.
        leverage_min: Lowest target leverage (notional / equity).
        leverage_max: Highest target leverage. 20× is TFG's default cap and
            Binance's default for new accounts; 7.5× is about the US equity
            margin limit (§1.6).
        leverage_dist: Distribution of per-trader targets on
            ``[leverage_min, leverage_max]``: ``loguniform``, or ``pareto``
            (``leverage_min × U^(−1/leverage_tail)``, capped at
            ``leverage_max``: most traders near the minimum, a heavy tail of
            highly levered ones).
        leverage_tail: Pareto tail index ``α > 0`` (``pareto`` only): the
            share of traders above ``x × leverage_min`` is ``x^−α``.
        entry_steps: Traders start building their positions at a step drawn
            uniformly from ``[0, entry_steps)`` (a warm-up in which open
            interest accumulates); 0: all start at step 0.
        long_share: Probability that a trader is long.
        trade_prob: Probability per step that an under-levered trader adds to
            its position (spreads the build-up over steps).
        max_order_notional: Cap on one order's notional, in quote units.
        rebalance_band: Re-lever when leverage falls below ``L (1 − band)``.
        rule: Behaviour near maintenance: ``top_up``, ``deleverage`` or ``none``.
        trigger_ratio: The rule fires when equity / maintenance requirement is
            below this (> 1: before the account is liquidatable).
        target_ratio: Equity / maintenance the rule restores.
        top_up_budget_frac: Total top-ups a trader may deposit over its life,
            as a fraction of ``usd`` in [0, 1] (``top_up`` only): at most its
            initial stake again.
        reopen_prob: Probability per step that a closed-out trader re-enters
            (0 = never).
        refill_on_reopen: On re-entry, deposit up to ``usd`` of equity from
            outside and renew the top-up budget.
        all_venues: Trader ``i`` of every protocol's population is one owner
            (ledger owner ``sim.contagion.universal.MULTI_VENUE_OWNER + i``) holding a
            sub-account on each protocol with perpetuals — each sub-account
            runs its own target as before. Only the owner ids change, so with
            ``contagion.universal_margin`` off the run is the same; with it on
            the owner's sub-accounts are margined as one.
    """

    n: int = 50
    usd: float = 10_000.0
    leverage_min: float = 2.0
    leverage_max: float = 20.0
    leverage_dist: str = "loguniform"
    leverage_tail: float = 1.5
    entry_steps: int = 0
    long_share: float = 0.5
    trade_prob: float = 0.2
    max_order_notional: float = 25_000.0
    rebalance_band: float = 0.25
    rule: str = "top_up"
    trigger_ratio: float = 1.5
    target_ratio: float = 3.0
    top_up_budget_frac: float = 1.0
    reopen_prob: float = 0.01
    refill_on_reopen: bool = True
    all_venues: bool = False


@dataclass
class LiquidatorConfig:
    """Liquidator population (nested in ``AgentsConfig.liquidator``).

    Attributes:
        n: Number of liquidator agents (each has an account on every protocol).
        capital: Quote deposit of each liquidator account.
        latency_steps: Steps between an account becoming liquidatable and the
            liquidator acting on it (0 = same step).
        min_profit: Minimum estimated profit (quote units) to accept.
        max_notional_per_step: Cap on notional taken over per step.
        taker_fee: The liquidator's estimate of the taker fee it pays to
            unwind (Binance USDⓈ-M regular tier 0.05 %).
        lock_capital: Keep the margin committed to positions taken this step
            in use until the next step (see the module docstring).
    """

    n: int = 3
    capital: float = 1_000_000.0
    latency_steps: int = 0
    min_profit: float = 0.0
    max_notional_per_step: float = 5_000_000.0
    taker_fee: float = 0.0005
    lock_capital: bool = False


@dataclass
class LiquidityWithdrawalConfig:
    """When a market maker widens, thins and pulls its quotes (see the module docstring).

    The model's ``MarketMakerConfig`` carries one as ``withdrawal``; a maker
    whose config has none uses these defaults.

    Attributes:
        enabled: Apply the volatility and margin-usage rules.
        calm_halflife_steps: Half-life of the slow EWMA variance taken as the
            calm level (one day of one-minute steps).
        vol_widen_ratio: Start widening when EWMA vol / calm vol exceeds this.
        vol_pull_ratio: Pull all quotes at or above this vol ratio.
        usage_widen: Start widening when IM / equity exceeds this.
        usage_pull: Pull all quotes at or above this IM / equity.
        max_spread_mult: Spread multiplier at full stress (just below pulling).
        min_size_frac: Quote-size fraction at full stress.
    """

    enabled: bool = True
    calm_halflife_steps: int = 1440
    vol_widen_ratio: float = 2.0
    vol_pull_ratio: float = 5.0
    usage_widen: float = 0.5
    usage_pull: float = 0.9
    max_spread_mult: float = 4.0
    min_size_frac: float = 0.25


@dataclass
class MomentumConfig:
    """Trend followers on an EWMA of returns (Farmer & Joshi 2002).

    Attributes:
        n: Number of traders (each one ledger account); 0 disables the population.
        trade_prob: Probability that a trader sends an order in a step.
        halflife_min_steps: Shortest trend half-life (steps).
        halflife_max_steps: Longest trend half-life; per-trader half-lives are
            log-uniform between the two (Farmer & Joshi's heterogeneous ``θ``).
        vol_halflife_steps: Half-life of the EWMA variance normalising the signal.
        threshold: Smallest ``|z|`` (trend t-statistic) that triggers an order.
        notional_per_signal: Order notional per unit of ``|z|``, in quote units.
        max_order_notional: Cap on one order's notional.
        max_position_notional: Orders may not take the absolute exposure of a
            trader past this notional.
        warmup_steps: Observations of an instrument before anyone trades it.
        usd: Initial quote collateral per trader.
        base_notional: Initial holding of each base asset, in quote value.
    """

    n: int = 50
    trade_prob: float = 0.05
    halflife_min_steps: float = 5.0
    halflife_max_steps: float = 60.0
    vol_halflife_steps: float = 120.0
    threshold: float = 1.0
    notional_per_signal: float = 3_000.0
    max_order_notional: float = 20_000.0
    max_position_notional: float = 100_000.0
    warmup_steps: int = 10
    usd: float = 100_000.0
    base_notional: float = 50_000.0


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
        index_weight: Pull of the maker's fair value towards the index per
            step, in log terms (1: the fair value is the index, the default;
            smaller: the index is one input among the book and the flow).
        book_weight: Pull towards the microprice of the book (best bid and
            ask weighted by the opposite side's size) per step.
        flow_impact: Fall of the fair value, as a fraction, per order size
            of inventory the maker took on since its last quote (its bids hit:
            down; its asks lifted: up); Kyle's (1985) lambda in relative terms.
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
    index_weight: float = 1.0
    book_weight: float = 0.0
    flow_impact: float = 0.0
    withdrawal: LiquidityWithdrawalConfig = field(default_factory=LiquidityWithdrawalConfig)


@dataclass
class OptionMakerConfig:
    """Option market makers or delta-hedging dealers, one per protocol and underlying.

    They quote every listed option of their underlying around its mark (the
    surface value) with a half-spread in vol points, lean their quotes against
    their vega inventory, stop quoting a side past their limits, and hedge the
    net delta of options plus perpetual in the perpetual book when it leaves a
    band (``agents.option_maker``).

    Attributes:
        per_underlying: Agents per protocol and underlying (0: none).
        half_spread_vol: Half-spread in implied-vol points (0.01 = 1 vol point).
        min_half_spread: Smallest half-spread as a fraction of the mark.
        size: Quote size per side, in base units of the underlying.
        bids: Quote bids (a dealer that only sells protection sets False).
        asks: Quote asks.
        otm_only: Quote only out-of-the-money contracts (puts at or below the
            index, calls at or above it), as a dealer selling protection and
            overwriting does.
        max_contract_position: Largest |position| per contract, base units.
        vega_limit: Largest |net vega| (USD per vol point) a side may grow.
        vega_lean_vol: Quotes move by this many vol points at the vega limit
            (long vega: quotes lower, to sell).
        hedge_band: Net delta (base units) beyond which the delta is hedged.
        hedge_every: Steps between hedge checks (1: every step).
        requote_steps: Requote a contract at least every this many steps.
        requote_frac: Requote when the fair value has moved by more than this
            fraction of the quoted half-spread.
        usd: Initial quote collateral.
        base_notional: Initial holding of each base asset, in quote value.
    """

    per_underlying: int = 1
    half_spread_vol: float = 0.02
    min_half_spread: float = 0.02
    size: dict[str, float] = field(default_factory=lambda: {"BTC": 0.5, "ETH": 5.0})
    bids: bool = True
    asks: bool = True
    otm_only: bool = False
    max_contract_position: dict[str, float] = field(
        default_factory=lambda: {"BTC": 10.0, "ETH": 100.0})
    vega_limit: float = 20_000.0
    vega_lean_vol: float = 0.02
    hedge_band: dict[str, float] = field(default_factory=lambda: {"BTC": 0.5, "ETH": 5.0})
    hedge_every: int = 1
    requote_steps: int = 30
    requote_frac: float = 1.0
    usd: float = 10_000_000.0
    base_notional: float = 0.0


@dataclass
class OptionBooksConfig:
    """Traders holding one option-world book each (``agents.option_books``).

    Each book type has ``counts[type]`` traders per protocol (and underlying of
    ``assets``). A trader enters at a random step of the warm-up, keeps its
    book's legs at their targets with IOC orders, and rolls its options when
    they expire. Book types (``BOOK_TYPES``): ``directional`` (long perpetual),
    ``basis`` (long spot, short perpetual), ``covered_call`` (long underlying,
    short OTM call), ``cash_secured_put`` (cash, short OTM put),
    ``protective_put`` (long underlying, long OTM put), ``calendar_spread``
    (short near ATM call, long far call on the nearest strike),
    ``strike_spread`` (bull put spread: short put near the money, long put
    further out).

    Attributes:
        counts: Traders per book type.
        assets: Underlyings the books are built on (empty: every option asset).
        notional: Underlying notional of each book, quote units.
        usd: Initial quote collateral of each trader.
        underlying_leg: ``perp`` or ``spot`` for the underlying leg of the
            covered call and the protective put.
        moneyness: Distance of the OTM strikes from the index, fraction.
        tenor_days: Target days to expiry of the options (nearest expiry).
        near_days: Calendar spread: target days of the short (near) leg.
        enter_steps: Traders enter uniformly over this many steps (warm-up).
        option_slippage: Largest premium paid above the mark (or given below),
            fraction of the mark.
        retry_steps: Steps a trader waits after sending orders before it
            looks at its legs again.
    """

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BOOK_TYPES, 0))
    assets: list[str] = field(default_factory=list)
    notional: float = 20_000.0
    usd: float = 50_000.0
    underlying_leg: str = "perp"
    moneyness: float = 0.05
    tenor_days: float = 7.0
    near_days: float = 1.0
    enter_steps: int = 120
    option_slippage: float = 0.25
    retry_steps: int = 5


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
    option_maker: OptionMakerConfig = field(default_factory=OptionMakerConfig)
    option_dealer: OptionMakerConfig = field(default_factory=lambda: OptionMakerConfig(
        per_underlying=0, bids=False, otm_only=True, half_spread_vol=0.03,
        size={"BTC": 1.0, "ETH": 10.0}, hedge_band={"BTC": 0.2, "ETH": 2.0},
        max_contract_position={"BTC": 20.0, "ETH": 200.0}, vega_limit=50_000.0))
    option_books: OptionBooksConfig = field(default_factory=OptionBooksConfig)
