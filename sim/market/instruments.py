"""Tradable instruments: a spot market, a linear perpetual or a European option slot.

Books work in integer ticks and lots (ABIDES/hftbacktest style); the ledger and
margin engines work in floats (quote units per base unit, base units). An
:class:`Instrument` converts between the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from margin.engine import OPTION, PERP, SPOT

__all__ = ["OPTION", "PERP", "SPOT", "Instrument"]


@dataclass(frozen=True)
class Instrument:
    """One market listed by one protocol.

    Attributes:
        index: Position of the instrument in the world's instrument arrays.
        name: Display name, ``"<protocol>:<BASE>-PERP"``, ``"<protocol>:<BASE>-SPOT"``
            or, for an option slot, ``"<protocol>:<BASE>-OPT<group>-<strike#><C|P>"``.
        protocol: Index of the listing protocol.
        kind: ``SPOT``, ``PERP`` or ``OPTION``.
        base: Asset index of the base (underlying) asset.
        quote: Asset index of the quote asset (prices, premium and P&L): the
            quote currency, or the underlying for an inverse option.
        tick_size: Price increment in quote units.
        lot_size: Quantity increment in base units.
    """

    index: int
    name: str
    protocol: int
    kind: int
    base: int
    quote: int
    tick_size: float
    lot_size: float

    @property
    def is_perp(self) -> bool:
        """True for a perpetual."""
        return self.kind == PERP

    @property
    def is_option(self) -> bool:
        """True for an option slot."""
        return self.kind == OPTION

    def price(self, ticks: np.ndarray | int) -> np.ndarray | float:
        """Ticks to quote-unit prices."""
        return np.asarray(ticks, dtype=np.float64) * self.tick_size

    def qty(self, lots: np.ndarray | int) -> np.ndarray | float:
        """Lots to base units."""
        return np.asarray(lots, dtype=np.float64) * self.lot_size

    def ticks(self, price: np.ndarray | float, side: int = 0) -> np.ndarray:
        """Quote-unit prices to ticks (>= 1): side +1 rounds down (bids), -1 up (asks), 0 nearest.

        Returns int64 ticks.
        """
        x = np.asarray(price, dtype=np.float64) / self.tick_size
        if side > 0:
            t = np.floor(x + 1e-9)
        elif side < 0:
            t = np.ceil(x - 1e-9)
        else:
            t = np.rint(x)
        return np.maximum(t, 1).astype(np.int64)

    def lots(self, qty: np.ndarray | float) -> np.ndarray:
        """Base units to whole lots (rounded to nearest, at least 1)."""
        return np.maximum(np.rint(np.asarray(qty, dtype=np.float64) / self.lot_size), 1).astype(
            np.int64
        )
