"""Margin regimes, kernels and risk tools.

Usable on its own: imports numpy, numba, scipy and pandas only, never ``sim``
or ``agents``.

Modules:
    engine: the engine contract (inputs, result, ``MarginEngine``) and the
        regime factory ``make_engine``.
    static: isolated margin per position with tiered or flat-leverage requirements.
    aave: the DeFi lending variant of the static family (Aave v3 health factor).
    cross: cross margin with tiered requirements.
    portfolio: scenario-based portfolio margin with full revaluation
        (SPAN / Deribit grids, correlated VaR/ES offsets, add-ons); its kernels
        are in ``kernels``, its scenario sets in ``scenarios``.
    adaptive: portfolio margin on EWMA-scaled grids and haircuts with EMIR
        anti-procyclicality tools (``apc``).
    tiers: bracket tables (Binance, dYdX) and their kernels, liquidation prices.
    pricing: Black–Scholes and Black-76 prices and Greeks.
    backtest: VaR backtests (Kupiec, Christoffersen, Basel traffic light).
    calibration: price CSV loading, volatility, EWMA, correlation.
    optimisation: collateral allocation across sub-accounts.
"""

from margin.aave import AaveLendingEngine
from margin.adaptive import AdaptiveMarginEngine
from margin.cross import CrossMarginEngine
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
from margin.portfolio import PortfolioMarginEngine
from margin.static import StaticIsolatedEngine
from margin.tiers import BINANCE_BTCUSDT, BINANCE_ETHUSDT, DYDX_LARGE_CAP, TierTable, flat_table

__all__ = [
    "BINANCE_BTCUSDT",
    "BINANCE_ETHUSDT",
    "DYDX_LARGE_CAP",
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
