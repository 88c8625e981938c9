"""Validation of the ``agents`` section of a run config (schema: :mod:`agents.config`).

One function per population, each raising :class:`sim.config.checks.ConfigError`
with one line naming the key; :func:`validate_agents` checks the whole section.
"""

from __future__ import annotations

from typing import Any

from agents.config import BOOK_TYPES, LEVERAGE_DISTS, RULES
from sim.config.checks import check_choice as _choice_check
from sim.config.checks import check_number as _number
from sim.config.checks import invalid as _fail

__all__ = ["validate_agents", "validate_arbitrageur_config", "validate_fundamentalist_config",
           "validate_leveraged_config", "validate_liquidator_config", "validate_momentum_config",
           "validate_option_books_config", "validate_option_maker_config",
           "validate_withdrawal_config"]


def validate_option_maker_config(cfg: Any, prefix: str = "agents.option_maker") -> None:
    """Check an :class:`OptionMakerConfig` (option market makers and dealers).

    Raises:
        ValueError: One line naming the first bad key, its value and what is allowed.
    """
    _number(f"{prefix}.per_underlying", cfg.per_underlying, 0, 100)
    _number(f"{prefix}.half_spread_vol", cfg.half_spread_vol, 0.0, 1.0)
    _number(f"{prefix}.min_half_spread", cfg.min_half_spread, 0.0, 1.0)
    for key in ("bids", "asks", "otm_only"):
        if not isinstance(getattr(cfg, key), bool):
            _fail(f"{prefix}.{key}", getattr(cfg, key), "must be true or false")
    for key in ("size", "max_contract_position", "hedge_band"):
        for asset, v in getattr(cfg, key).items():
            _number(f"{prefix}.{key}.{asset}", v, 0.0, 1e9)
    _number(f"{prefix}.vega_limit", cfg.vega_limit, 0.0)
    _number(f"{prefix}.vega_lean_vol", cfg.vega_lean_vol, 0.0, 1.0)
    _number(f"{prefix}.hedge_every", cfg.hedge_every, 1, 1_000_000)
    _number(f"{prefix}.requote_steps", cfg.requote_steps, 1, 1_000_000)
    _number(f"{prefix}.requote_frac", cfg.requote_frac, 0.0, 100.0)
    _number(f"{prefix}.usd", cfg.usd, 0.0)
    _number(f"{prefix}.base_notional", cfg.base_notional, 0.0)


def validate_option_books_config(cfg: Any, prefix: str = "agents.option_books") -> None:
    """Check an :class:`OptionBooksConfig` (traders holding option-world books).

    Raises:
        ValueError: One line naming the first bad key, its value and what is allowed.
    """
    for book, n in cfg.counts.items():
        if book not in BOOK_TYPES:
            _fail(f"{prefix}.counts.{book}", n,
                  f"unknown book type; valid: {', '.join(BOOK_TYPES)}")
        _number(f"{prefix}.counts.{book}", n, 0, 100_000)
    _number(f"{prefix}.notional", cfg.notional, 0.0, lo_open=True)
    _number(f"{prefix}.usd", cfg.usd, 0.0)
    _choice_check(f"{prefix}.underlying_leg", cfg.underlying_leg, ("perp", "spot"))
    _number(f"{prefix}.moneyness", cfg.moneyness, 0.0, 0.9)
    _number(f"{prefix}.tenor_days", cfg.tenor_days, 0.0, 3650.0, lo_open=True)
    _number(f"{prefix}.near_days", cfg.near_days, 0.0, 3650.0, lo_open=True)
    _number(f"{prefix}.enter_steps", cfg.enter_steps, 1, 10_000_000)
    _number(f"{prefix}.option_slippage", cfg.option_slippage, 0.0, 10.0)
    _number(f"{prefix}.retry_steps", cfg.retry_steps, 1, 1_000_000)

_check_range = _number


def validate_arbitrageur_config(cfg: Any, prefix: str = "agents.arbitrageur") -> None:
    """Check an :class:`ArbitrageurConfig` (or an OmegaConf node of that shape).

    Raises:
        ValueError: One line naming the first bad key, its value and what is allowed.
    """
    for key in ("enabled", "cross_venue"):
        if not isinstance(getattr(cfg, key), bool):
            _fail(f"{prefix}.{key}", getattr(cfg, key), "must be true or false")
    _number(f"{prefix}.threshold_bps", cfg.threshold_bps, 0.0, 10_000.0)
    _number(f"{prefix}.band_bps", cfg.band_bps, 0.0, 10_000.0)
    if cfg.band_bps > cfg.threshold_bps:
        _fail(f"{prefix}.band_bps", cfg.band_bps,
              f"must be <= threshold_bps ({cfg.threshold_bps})")
    _number(f"{prefix}.unwind_bps", cfg.unwind_bps, 0.0, 10_000.0)
    if cfg.unwind_bps > cfg.threshold_bps:
        _fail(f"{prefix}.unwind_bps", cfg.unwind_bps,
              f"must be <= threshold_bps ({cfg.threshold_bps})")
    _number(f"{prefix}.unwind_notional", cfg.unwind_notional, 0.0)
    _number(f"{prefix}.max_order_notional", cfg.max_order_notional, 0.0, lo_open=True)
    _number(f"{prefix}.max_inventory_notional", cfg.max_inventory_notional, 0.0)
    _number(f"{prefix}.max_leverage", cfg.max_leverage, 0.0)
    _number(f"{prefix}.depth_levels", cfg.depth_levels, 1, 100_000)
    _number(f"{prefix}.usd", cfg.usd, 0.0)
    _number(f"{prefix}.base_notional", cfg.base_notional, 0.0)


def validate_fundamentalist_config(cfg: Any, prefix: str = "agents.fundamentalist") -> None:
    """Check a :class:`FundamentalistConfig` (or an OmegaConf node of that shape).

    Raises:
        ValueError: One line naming the first bad key, its value and what is allowed.
    """
    _number(f"{prefix}.n", cfg.n, 0, 1_000_000)
    _number(f"{prefix}.trade_prob", cfg.trade_prob, 0.0, 1.0)
    _number(f"{prefix}.threshold_bps", cfg.threshold_bps, 0.0, 10_000.0)
    _number(f"{prefix}.beta_min", cfg.beta_min, 0.0)
    _number(f"{prefix}.beta_max", cfg.beta_max, 0.0)
    if cfg.beta_max < cfg.beta_min:
        _fail(f"{prefix}.beta_max", cfg.beta_max, f"must be >= beta_min ({cfg.beta_min})")
    _number(f"{prefix}.market_prob", cfg.market_prob, 0.0, 1.0)
    _number(f"{prefix}.max_order_notional", cfg.max_order_notional, 0.0, lo_open=True)
    _number(f"{prefix}.max_position_notional", cfg.max_position_notional, 0.0, lo_open=True)
    _number(f"{prefix}.usd", cfg.usd, 0.0)
    _number(f"{prefix}.base_notional", cfg.base_notional, 0.0)


def validate_leveraged_config(cfg: Any, prefix: str = "agents.leveraged") -> None:
    """Check a :class:`LeveragedConfig` (or an OmegaConf node of that shape).

    Raises:
        ValueError: One line naming the first bad key, its value and what is allowed.
    """
    _number(f"{prefix}.n", cfg.n, 0, 1_000_000)
    _number(f"{prefix}.usd", cfg.usd, 0.0, lo_open=True)
    _number(f"{prefix}.leverage_min", cfg.leverage_min, 0.0, 1000.0, lo_open=True)
    _number(f"{prefix}.leverage_max", cfg.leverage_max, 0.0, 1000.0, lo_open=True)
    if cfg.leverage_max < cfg.leverage_min:
        _fail(f"{prefix}.leverage_max", cfg.leverage_max,
              f"must be >= leverage_min ({cfg.leverage_min})")
    _choice_check(f"{prefix}.leverage_dist", cfg.leverage_dist, LEVERAGE_DISTS)
    _number(f"{prefix}.leverage_tail", cfg.leverage_tail, 0.0, 100.0, lo_open=True)
    _number(f"{prefix}.entry_steps", cfg.entry_steps, 0, 10_000_000)
    if not isinstance(cfg.entry_steps, int) or isinstance(cfg.entry_steps, bool):
        _fail(f"{prefix}.entry_steps", cfg.entry_steps, "must be an integer")
    _number(f"{prefix}.long_share", cfg.long_share, 0.0, 1.0)
    _number(f"{prefix}.trade_prob", cfg.trade_prob, 0.0, 1.0)
    _number(f"{prefix}.max_order_notional", cfg.max_order_notional, 0.0, lo_open=True)
    _number(f"{prefix}.rebalance_band", cfg.rebalance_band, 0.0, 1.0)
    _choice_check(f"{prefix}.rule", cfg.rule, RULES)
    _number(f"{prefix}.trigger_ratio", cfg.trigger_ratio, 0.0, lo_open=True)
    _number(f"{prefix}.target_ratio", cfg.target_ratio, 0.0, lo_open=True)
    if cfg.target_ratio < cfg.trigger_ratio:
        _fail(f"{prefix}.target_ratio", cfg.target_ratio,
              f"must be >= trigger_ratio ({cfg.trigger_ratio})")
    _number(f"{prefix}.top_up_budget_frac", cfg.top_up_budget_frac, 0.0, 1.0)
    _number(f"{prefix}.reopen_prob", cfg.reopen_prob, 0.0, 1.0)
    for key in ("refill_on_reopen", "all_venues"):
        if not isinstance(getattr(cfg, key), bool):
            _fail(f"{prefix}.{key}", getattr(cfg, key), "must be true or false")


def validate_liquidator_config(cfg: Any, prefix: str = "agents.liquidator") -> Any:
    """Check a :class:`LiquidatorConfig` (dataclass or OmegaConf node); return it.

    Raises:
        ValueError: One line naming the first bad field and the allowed range.
    """
    if not isinstance(cfg.lock_capital, bool):
        _fail(f"{prefix}.lock_capital", cfg.lock_capital, "must be true or false")
    for name, hi in (("n", 10_000), ("latency_steps", 1_000_000)):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
            _fail(f"{prefix}.{name}", v, f"must be an integer in [0, {hi}]")
    for name, lo, hi in (("capital", 0.0, 1e15), ("min_profit", -1e15, 1e15),
                         ("max_notional_per_step", 0.0, 1e18), ("taker_fee", 0.0, 0.01)):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            _fail(f"{prefix}.{name}", v, f"must be a number in [{lo}, {hi}]")
    return cfg


def validate_withdrawal_config(cfg: Any, prefix: str = "agents.market_maker.withdrawal") -> None:
    """Check a :class:`LiquidityWithdrawalConfig` (or an OmegaConf node of that shape).

    Raises:
        ValueError: One line naming the first bad key, its value and what is allowed.
    """
    if not isinstance(cfg.enabled, bool):
        _fail(f"{prefix}.enabled", cfg.enabled, "must be true or false")
    for key in ("calm_halflife_steps", "vol_widen_ratio", "vol_pull_ratio", "usage_widen",
                "usage_pull", "max_spread_mult", "min_size_frac"):
        _number(f"{prefix}.{key}", getattr(cfg, key))
    if cfg.calm_halflife_steps < 1:
        _fail(f"{prefix}.calm_halflife_steps", cfg.calm_halflife_steps, "must be >= 1")
    if cfg.vol_widen_ratio < 1.0:
        _fail(f"{prefix}.vol_widen_ratio", cfg.vol_widen_ratio, "must be >= 1")
    if cfg.vol_pull_ratio <= cfg.vol_widen_ratio:
        _fail(f"{prefix}.vol_pull_ratio", cfg.vol_pull_ratio,
              f"must be > vol_widen_ratio ({cfg.vol_widen_ratio})")
    if cfg.usage_widen < 0.0:
        _fail(f"{prefix}.usage_widen", cfg.usage_widen, "must be >= 0")
    if cfg.usage_pull <= cfg.usage_widen:
        _fail(f"{prefix}.usage_pull", cfg.usage_pull, f"must be > usage_widen ({cfg.usage_widen})")
    if cfg.usage_pull > 1.0:
        _fail(f"{prefix}.usage_pull", cfg.usage_pull,
              "must be <= 1 (a share of equity: IM / equity above 1 already blocks new quotes)")
    if cfg.max_spread_mult < 1.0:
        _fail(f"{prefix}.max_spread_mult", cfg.max_spread_mult, "must be >= 1")
    if not 0.0 <= cfg.min_size_frac <= 1.0:
        _fail(f"{prefix}.min_size_frac", cfg.min_size_frac, "must be in [0, 1]")


def validate_momentum_config(cfg: Any, prefix: str = "agents.momentum") -> None:
    """Check a :class:`MomentumConfig` (or an OmegaConf node of that shape).

    Raises:
        ValueError: One line naming the first bad key, its value and what is allowed.
    """
    _number(f"{prefix}.n", cfg.n, 0, 1_000_000)
    _number(f"{prefix}.trade_prob", cfg.trade_prob, 0.0, 1.0)
    _number(f"{prefix}.halflife_min_steps", cfg.halflife_min_steps, 0.0, lo_open=True)
    _number(f"{prefix}.halflife_max_steps", cfg.halflife_max_steps, 0.0, lo_open=True)
    if cfg.halflife_max_steps < cfg.halflife_min_steps:
        _fail(f"{prefix}.halflife_max_steps", cfg.halflife_max_steps,
              f"must be >= halflife_min_steps ({cfg.halflife_min_steps})")
    _number(f"{prefix}.vol_halflife_steps", cfg.vol_halflife_steps, 0.0, lo_open=True)
    _number(f"{prefix}.threshold", cfg.threshold, 0.0)
    _number(f"{prefix}.notional_per_signal", cfg.notional_per_signal, 0.0, lo_open=True)
    _number(f"{prefix}.max_order_notional", cfg.max_order_notional, 0.0, lo_open=True)
    _number(f"{prefix}.max_position_notional", cfg.max_position_notional, 0.0, lo_open=True)
    _number(f"{prefix}.warmup_steps", cfg.warmup_steps, 2, 1_000_000)
    _number(f"{prefix}.usd", cfg.usd, 0.0)
    _number(f"{prefix}.base_notional", cfg.base_notional, 0.0)


def validate_agents(a: Any) -> None:
    """Check the ``agents`` section of a run config (every population, the liquidators).

    Raises:
        ConfigError: One line naming the first bad key.
    """
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
    _check_range("agents.market_maker.index_weight", mm.index_weight, 0.0, 1.0)
    _check_range("agents.market_maker.book_weight", mm.book_weight, 0.0, 1.0)
    if mm.index_weight + mm.book_weight > 1.0:
        _fail("agents.market_maker.book_weight", mm.book_weight,
              f"must be <= 1 - index_weight ({1.0 - mm.index_weight:g})")
    if mm.index_weight + mm.book_weight <= 0.0:
        _fail("agents.market_maker.index_weight", mm.index_weight,
              "index_weight + book_weight must be > 0 (the fair value needs an anchor)")
    _check_range("agents.market_maker.flow_impact", mm.flow_impact, 0.0, 0.1)
    _check_range("agents.market_maker.inventory_limit_notional", mm.inventory_limit_notional,
                 0.0, lo_open=True)
    _check_range("agents.market_maker.usd", mm.usd, 0.0)
    _check_range("agents.market_maker.base_notional", mm.base_notional, 0.0)
    validate_liquidator_config(a.liquidator)
    checks = ((validate_withdrawal_config, a.market_maker.withdrawal,
               "agents.market_maker.withdrawal"),
              (validate_fundamentalist_config, a.fundamentalist, "agents.fundamentalist"),
              (validate_momentum_config, a.momentum, "agents.momentum"),
              (validate_leveraged_config, a.leveraged, "agents.leveraged"),
              (validate_arbitrageur_config, a.arbitrageur, "agents.arbitrageur"),
              (validate_option_maker_config, a.option_maker, "agents.option_maker"),
              (validate_option_maker_config, a.option_dealer, "agents.option_dealer"),
              (validate_option_books_config, a.option_books, "agents.option_books"))
    for check, node, key in checks:
        check(node, key)
