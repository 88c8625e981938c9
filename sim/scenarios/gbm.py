"""Correlated geometric Brownian motion of the fundamental prices.

Exact log-normal discretisation (Glasserman 2003, *Monte Carlo Methods in
Financial Engineering*, §3.2.3): ``log S_{t+dt} = log S_t + (mu - sigma^2/2) dt
+ sigma sqrt(dt) Z`` with ``Z = L eps``, ``L`` the Cholesky factor of the
correlation matrix and ``eps`` standard normal draws from the run's generator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SECONDS_PER_YEAR", "CorrelatedGBM"]

SECONDS_PER_YEAR = 365.0 * 24 * 3600


class CorrelatedGBM:
    """Fundamental prices of several assets following correlated GBM.

    Args:
        prices: Initial prices, one per asset.
        vol: Annualised volatilities.
        drift: Annualised drifts.
        correlation: Correlation matrix (positive semi-definite).
        dt_years: Step length in years.
    """

    def __init__(self, prices: np.ndarray, vol: np.ndarray, drift: np.ndarray,
                 correlation: np.ndarray, dt_years: float) -> None:
        self.prices = np.asarray(prices, dtype=np.float64).copy()
        self.vol = np.asarray(vol, dtype=np.float64)
        self.drift = np.asarray(drift, dtype=np.float64)
        corr = np.asarray(correlation, dtype=np.float64)
        # eigen-decomposition tolerates a singular (rho = 1) but valid matrix
        w, v = np.linalg.eigh(corr)
        self.chol = v * np.sqrt(np.clip(w, 0.0, None))
        self.dt = float(dt_years)
        self.initial = self.prices.copy()

    @classmethod
    def from_config(cls, market_cfg: Any) -> CorrelatedGBM:
        """Build from a ``MarketConfig``."""
        a = market_cfg.assets
        return cls(np.array([x.price for x in a]), np.array([x.vol for x in a]),
                   np.array([x.drift for x in a]), np.asarray(market_cfg.correlation, dtype=float),
                   market_cfg.step_seconds / SECONDS_PER_YEAR)

    def advance(self, rng: np.random.Generator) -> np.ndarray:
        """Move one step and return the new prices (a view; copy to keep)."""
        z = self.chol @ rng.standard_normal(len(self.prices))
        step = (self.drift - 0.5 * self.vol**2) * self.dt + self.vol * np.sqrt(self.dt) * z
        self.prices *= np.exp(step)
        return self.prices
