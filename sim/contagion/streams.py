"""Per-protocol random streams: each protocol's agents and liquidation order draw from their own.

With ``contagion.rng_streams`` = ``per_protocol`` (or ``auto`` with several
protocols) the model keeps one generator per protocol
(:func:`protocol_streams`), and ``MarketModel.in_stream(p)`` is the one place
that makes protocol ``p``'s stream the active one; agents built for a protocol
step inside it, and :class:`StreamedLiquidationEngine` draws each protocol's
visiting and offer order inside it, so liquidations on one venue do not shift
the random numbers of another.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.venue.liquidation import LiquidationEngine

__all__ = ["StreamedLiquidationEngine", "protocol_streams", "uses_protocol_streams"]


def protocol_streams(seed: int, n_protocols: int, per_protocol: bool,
                     base: np.random.Generator) -> list[np.random.Generator]:
    """One generator per protocol: its own ``SeedSequence([seed, p, 0x5EED])`` stream, or ``base``.

    Args:
        seed: The run's seed.
        n_protocols: Number of protocols.
        per_protocol: Give each protocol its own stream (else every entry is ``base``).
        base: The run's generator.
    """
    if not per_protocol:
        return [base] * n_protocols
    return [np.random.default_rng(np.random.SeedSequence([int(seed), p, 0x5EED]))
            for p in range(n_protocols)]


def uses_protocol_streams(rng_streams: str, n_protocols: int) -> bool:
    """Whether ``contagion.rng_streams`` asks for per-protocol streams (``auto``: >1 protocol)."""
    return rng_streams == "per_protocol" or (rng_streams == "auto" and n_protocols > 1)


class StreamedLiquidationEngine(LiquidationEngine):
    """Liquidation rounds drawing each protocol's random order from its own stream."""

    def _round_protocol(self, proto: Any, margins: Any) -> bool:
        with self.model.in_stream(proto.index):
            return super()._round_protocol(proto, margins)
