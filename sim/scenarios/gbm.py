"""Correlated geometric Brownian motion of the fundamental prices (scenario ``calm``).

Exact log-normal discretisation (Glasserman 2003, *Monte Carlo Methods in
Financial Engineering*, §3.2.3): ``log S_{t+dt} = log S_t + (mu - sigma^2/2) dt
+ sigma sqrt(dt) Z`` with ``Z = L eps``, ``L`` a square-root factor of the
correlation matrix and ``eps`` standard normal draws from the run's generator.
Volatilities, drifts and correlation come from ``market`` in the config
(``conf/market/btc_eth.yaml``: values close to the 2021–2025 Binance history in
``shared/data/prices``, see its README).

The other scenarios build on this class: :mod:`sim.scenarios.shocks` adds
crashes and volatility regimes to the same draws, :mod:`sim.scenarios.replay`
uses it for the assets it does not replay.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.scenarios.base import Scenario

__all__ = ["SECONDS_PER_YEAR", "CorrelatedGBM", "factor"]

SECONDS_PER_YEAR = 365.0 * 24 * 3600


def factor(correlation: np.ndarray) -> np.ndarray:
    """A matrix ``L`` with ``L L^T = correlation``.

    Uses the eigen-decomposition rather than Cholesky so a singular but valid
    matrix (e.g. ``rho = 1``) works; tiny negative eigenvalues are clipped.
    """
    corr = np.atleast_2d(np.asarray(correlation, dtype=np.float64))
    if corr.size == 0:
        return np.zeros((0, 0))
    w, v = np.linalg.eigh(corr)
    return v * np.sqrt(np.clip(w, 0.0, None))


class CorrelatedGBM(Scenario):
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
        super().__init__(prices, dt_years)
        self.vol = np.asarray(vol, dtype=np.float64).copy()
        self.drift = np.asarray(drift, dtype=np.float64).copy()
        self.correlation = np.asarray(correlation, dtype=np.float64).copy()
        self.chol = factor(self.correlation)

    @classmethod
    def from_config(cls, market_cfg: Any, **kwargs: Any) -> CorrelatedGBM:
        """Build from a ``MarketConfig``; ``kwargs`` go to the subclass constructor."""
        a = market_cfg.assets
        return cls(np.array([x.price for x in a], dtype=float),
                   np.array([x.vol for x in a], dtype=float),
                   np.array([x.drift for x in a], dtype=float),
                   np.asarray(market_cfg.correlation, dtype=float),
                   market_cfg.step_seconds / SECONDS_PER_YEAR, **kwargs)

    def log_increment(self, rng: np.random.Generator, vol: np.ndarray | None = None
                      ) -> np.ndarray:
        """One step's log-price increments ``(mu - sigma^2/2) dt + sigma sqrt(dt) Z``.

        Draws ``n_assets`` standard normals from ``rng`` (always the same number,
        so scenarios built on these draws share the calm path's randomness).

        Args:
            rng: The run's generator.
            vol: Volatilities to use this step (default :attr:`vol`).

        Returns:
            float64 array, one increment per asset.
        """
        sigma = self.vol if vol is None else vol
        z = self.chol @ rng.standard_normal(len(self.prices))
        return (self.drift - 0.5 * sigma**2) * self.dt + sigma * np.sqrt(self.dt) * z

    def _move(self, rng: np.random.Generator) -> None:
        self.prices *= np.exp(self.log_increment(rng))
