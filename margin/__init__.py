"""Margin regimes, kernels and risk tools.

Usable on its own: imports numpy, numba, scipy and pandas only, never ``sim``
or ``agents``.

Modules:
    engine: the engine contract (inputs, result, ``MarginEngine``) and the
        regime factory ``make_engine``.
    cross: cross margin with tiered requirements.
    tiers: bracket tables (Binance, dYdX) and their kernels, liquidation prices.
    pricing: Black–Scholes and Black-76 prices and Greeks.
    backtest: VaR backtests (Kupiec, Christoffersen, Basel traffic light).
    calibration: price CSV loading, volatility, EWMA, correlation.
    optimisation: collateral allocation across sub-accounts.
"""

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
from margin.tiers import BINANCE_BTCUSDT, BINANCE_ETHUSDT, DYDX_LARGE_CAP, TierTable, flat_table

__all__ = [
    "BINANCE_BTCUSDT",
    "BINANCE_ETHUSDT",
    "DYDX_LARGE_CAP",
    "OPTION",
    "PERP",
    "SPOT",
    "CrossMarginEngine",
    "InstrumentSpecs",
    "MarginEngine",
    "MarginInputs",
    "MarginResult",
    "TierTable",
    "available_engines",
    "flat_table",
    "make_engine",
    "register_engine",
]
