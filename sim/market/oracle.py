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
        max_latency: Largest latency a scenario may ask for at some step
            (sizes the history buffer; defaults to ``latency_steps``).
    """

    def __init__(self, initial: np.ndarray, latency_steps: int = 0, twap_steps: int = 1,
                 max_latency: int | None = None) -> None:
        if latency_steps < 0 or twap_steps < 1:
            raise ValueError(f"Oracle needs latency_steps >= 0 and twap_steps >= 1, got "
                             f"{latency_steps}, {twap_steps}")
        self.latency = int(latency_steps)
        self.twap = int(twap_steps)
        size = max(self.latency, int(max_latency or 0)) + self.twap
        self._ring = np.tile(np.asarray(initial, dtype=np.float64), (size, 1))
        self._head = 0
        self.prices = np.asarray(initial, dtype=np.float64).copy()

    def publish(self, fundamental: np.ndarray, latency: int | None = None,
                stale: bool = False) -> np.ndarray:
        """Record this step's fundamental and return the index prices.

        Args:
            fundamental: This step's fundamental prices.
            latency: Latency for this publication (scenario override), else the
                configured one; capped by the buffer.
            stale: Publish nothing new (the oracle is stuck): the previous
                index is returned unchanged, though the fundamental is recorded.
        """
        size = len(self._ring)
        self._head = (self._head + 1) % size
        self._ring[self._head] = fundamental
        if stale:
            return self.prices
        lat = self.latency if latency is None else min(int(latency), size - self.twap)
        idx = (self._head - lat - np.arange(self.twap)) % size
        self.prices = self._ring[idx].mean(axis=0)
        return self.prices
