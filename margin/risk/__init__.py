"""Risk tools around margin engines: validating, calibrating and allocating.

Modules:
    backtest: VaR backtests (Kupiec, Christoffersen, Basel traffic light).
    calibration: price CSV loading, volatility, EWMA, correlation.
    optimisation: collateral allocation across sub-accounts.
"""
