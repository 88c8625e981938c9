"""Per-protocol random streams: each protocol's agents and liquidation order draw from their own.

With ``contagion.rng_streams`` = ``per_protocol`` (or ``auto`` with several
protocols) the model keeps one generator per protocol
(``MarketModel._rng_streams``); :class:`StreamedLiquidationEngine` draws each
protocol's visiting and offer order from that protocol's stream, so
liquidations on one venue do not shift the random numbers of another.
"""

from __future__ import annotations

from typing import Any

from sim.venue.liquidation import LiquidationEngine

__all__ = ["StreamedLiquidationEngine"]


class StreamedLiquidationEngine(LiquidationEngine):
    """Liquidation rounds drawing each protocol's random order from its own stream."""

    def _round_protocol(self, proto: Any, margins: Any) -> bool:
        m = self.model
        prev = m._rng_active
        m._rng_active = m._rng_streams[proto.index]
        try:
            return super()._round_protocol(proto, margins)
        finally:
            m._rng_active = prev
