"""Margin regimes: one module per regime, each a registered :class:`margin.engine.MarginEngine`.

Modules:
    cross: cross margin, one account-level equity against summed tiered
        requirements (Binance USDⓈ-M cross mode, dYdX v4 flat fractions).
    static: isolated margin per position with tiered or flat-leverage
        requirements (Binance isolated mode, Hyperliquid).
    aave: the DeFi lending variant of the static family (Aave v3 health factor,
        LTV, close factor).
    portfolio: scenario-based portfolio margin with full revaluation (SPAN /
        Deribit grids, correlated VaR/ES offsets, add-ons).
    adaptive: portfolio margin on EWMA-scaled grids and haircuts with EMIR
        anti-procyclicality tools.

The regimes draw their building blocks from ``margin.methods`` (tiers, scan
grids, pricing, scan kernels, APC) and, for volatility estimates,
``margin.risk.calibration``. Import the engines from ``margin`` itself.
"""
