"""Oracle: publishes index prices from the fundamental with latency and a TWAP.

At step t the index of an asset is the mean of the fundamental over steps
``t - latency - twap + 1 .. t - latency`` (clipped at the first step), i.e. a
time-weighted average price delayed by ``latency`` steps — the two distortions
of on-chain and exchange index oracles (Chainlink heartbeat/deviation delays,
Binance's averaged spot index).
"""

from __future__ import annotations

import numpy as np

__all__ = ["Oracle"]


class Oracle:
    """Delayed, time-averaged index prices.

    Args:
        initial: Fundamental prices at step 0.
        latency_steps: Publication delay in steps (0 = current price).
        twap_steps: Averaging window in steps (1 = no averaging).
    """

    def __init__(self, initial: np.ndarray, latency_steps: int = 0, twap_steps: int = 1) -> None:
        if latency_steps < 0 or twap_steps < 1:
            raise ValueError(f"Oracle needs latency_steps >= 0 and twap_steps >= 1, got "
                             f"{latency_steps}, {twap_steps}")
        self.latency = int(latency_steps)
        self.twap = int(twap_steps)
        size = self.latency + self.twap
        self._ring = np.tile(np.asarray(initial, dtype=np.float64), (size, 1))
        self._head = 0
        self.prices = np.asarray(initial, dtype=np.float64).copy()

    def publish(self, fundamental: np.ndarray) -> np.ndarray:
        """Record this step's fundamental and return the new index prices."""
        size = len(self._ring)
        self._head = (self._head + 1) % size
        self._ring[self._head] = fundamental
        idx = (self._head - self.latency - np.arange(self.twap)) % size
        self.prices = self._ring[idx].mean(axis=0)
        return self.prices
