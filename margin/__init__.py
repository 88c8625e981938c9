"""Margin regimes, methodologies and risk tools.

Usable on its own: imports numpy, numba, scipy and pandas only, never ``sim``,
``agents`` or ``experiments``.

Layout:
    engine: the contract every engine keeps (``MarginInputs``, ``MarginResult``,
        ``MarginEngine`` with its default ``pretrade`` and ``stress``,
        ``InstrumentSpecs`` and the instrument kinds ``SPOT``/``PERP``/``OPTION``)
        and the regime registry (``make_engine``, ``register_engine``,
        ``available_engines``, ``engine_class``).
    testing: the conformance suite ``check_engine`` any engine, built-in or a
        user's, must pass.
    regimes: one module per regime — ``cross``, ``static``, ``aave`` (the DeFi
        lending variant of the static family), ``portfolio`` (SPAN / Deribit
        scan grids with full revaluation, correlated VaR/ES offsets, add-ons),
        ``adaptive`` (EWMA-scaled portfolio margin with EMIR anti-procyclicality).
    methods: the building blocks — ``tiers`` (bracket tables, liquidation
        prices), ``scenarios`` (scan grids, correlated scenario sets),
        ``pricing`` (Black–Scholes, Black-76), ``option_margin`` (Deribit
        standard per-position option margin), ``kernels`` (scan kernels),
        ``apc`` (anti-procyclicality tools).
    risk: ``backtest`` (Kupiec, Christoffersen, Basel traffic light),
        ``calibration`` (price CSVs, volatility, EWMA, correlation),
        ``optimisation`` (collateral allocation across sub-accounts).

This module re-exports the public names: the engines, the contract, the
registry and the tier tables.
"""

from margin.engine import (
    OPTION,
    PERP,
    SPOT,
    InstrumentSpecs,
    MarginEngine,
    MarginInputs,
    MarginResult,
    available_engines,
    make_engine,
    register_engine,
)
from margin.methods.tiers import (
    BINANCE_BTCUSDT,
    BINANCE_ETHUSDT,
    DYDX_LARGE_CAP,
    HYPERLIQUID_BTC,
    HYPERLIQUID_ETH,
    TierTable,
    flat_table,
)
from margin.regimes.aave import AaveLendingEngine
from margin.regimes.adaptive import AdaptiveMarginEngine
from margin.regimes.cross import CrossMarginEngine
from margin.regimes.portfolio import PortfolioMarginEngine
from margin.regimes.static import StaticIsolatedEngine

__all__ = [
    "BINANCE_BTCUSDT",
    "BINANCE_ETHUSDT",
    "DYDX_LARGE_CAP",
    "HYPERLIQUID_BTC",
    "HYPERLIQUID_ETH",
    "OPTION",
    "PERP",
    "SPOT",
    "AaveLendingEngine",
    "AdaptiveMarginEngine",
    "CrossMarginEngine",
    "InstrumentSpecs",
    "MarginEngine",
    "MarginInputs",
    "MarginResult",
    "PortfolioMarginEngine",
    "StaticIsolatedEngine",
    "TierTable",
    "available_engines",
    "flat_table",
    "make_engine",
    "register_engine",
]
