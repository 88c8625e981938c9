"""Margin methodologies the regimes are built from, usable on their own.

Modules:
    tiers: bracket tables (Binance, dYdX), their kernels and liquidation prices.
    scenarios: scan grids (SPAN, Deribit) and correlated scenario sets.
    pricing: Black–Scholes and Black-76 prices and Greeks (numba).
    option_margin: Deribit standard (non-portfolio) option margin per position
        (numba), used by the cross and static regimes.
    kernels: scan kernels, worst loss and tail (VaR / ES) risk of exposures
        over a scenario set, serial and parallel.
    apc: EMIR anti-procyclicality tools (buffer, stressed-period weight, floor)
        and procyclicality measures.
"""
