"""The market view: everything an agent may read from, or send to, the world.

Agents (``agents/``) hold strategy parameters and ledger row ids only; they see
prices, books and their own balances through this view and act by submitting
arrays of order events (``EVENT_DTYPE``) to an instrument. The view is the one
seam between behaviour and mechanics (DESIGN.md: ``agents -> sim``'s public
market view only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.book import CANCEL, EVENT_DTYPE, IOC, LIMIT, MARKET, POST_ONLY, REDUCE_ONLY, STATUS_RESTING
from sim.instruments import Instrument

if TYPE_CHECKING:  # pragma: no cover
    from sim.model import MarketModel

__all__ = [
    "CANCEL",
    "EVENT_DTYPE",
    "IOC",
    "LIMIT",
    "MARKET",
    "POST_ONLY",
    "REDUCE_ONLY",
    "STATUS_RESTING",
    "MarketView",
]


class MarketView:
    """Read access to prices, books and own balances; order submission.

    Args:
        model: The model this view looks into.
    """

    def __init__(self, model: MarketModel) -> None:
        self._m = model

    @property
    def step(self) -> int:
        """Current model step (1 during the first step; 0 while seeding liquidity)."""
        return self._m.steps

    @property
    def instruments(self) -> list[Instrument]:
        """All instruments of the world, by index."""
        return self._m.instruments

    @property
    def step_years(self) -> float:
        """Length of one step in years."""
        return self._m.scenario.dt

    def index_price(self, asset: int) -> float:
        """The oracle's index price of an asset (quote units)."""
        return float(self._m.asset_prices[asset])

    def underlying_price(self, instrument: int) -> float:
        """Index price of an instrument's base asset."""
        return self.index_price(self._m.instruments[instrument].base)

    def mark(self, instrument: int) -> float:
        """Current mark price of an instrument."""
        return float(self._m.marks[instrument])

    def best_bid(self, instrument: int) -> float | None:
        """Best bid in quote units, None when the bid side is empty."""
        t = self._m.books[instrument].best_bid()
        return None if t is None else t * self._m.instruments[instrument].tick_size

    def best_ask(self, instrument: int) -> float | None:
        """Best ask in quote units, None when the ask side is empty."""
        t = self._m.books[instrument].best_ask()
        return None if t is None else t * self._m.instruments[instrument].tick_size

    def mid(self, instrument: int) -> float | None:
        """Mid price in quote units, None unless both sides are quoted."""
        m = self._m.books[instrument].mid()
        return None if m is None else m * self._m.instruments[instrument].tick_size

    def reference_price(self, instrument: int) -> float:
        """Book mid when both sides exist, otherwise the index of the base asset."""
        mid = self.mid(instrument)
        return self.underlying_price(instrument) if mid is None else mid

    def positions(self, rows: np.ndarray, instrument: int) -> np.ndarray:
        """Perpetual positions (base units) of some accounts (a copy)."""
        return self._m.ledger.position[rows, instrument].copy()

    def balances(self, rows: np.ndarray, asset: int) -> np.ndarray:
        """Collateral balances of some accounts in one asset (a copy)."""
        return self._m.ledger.collateral[rows, asset].copy()

    def new_events(self, n: int) -> np.ndarray:
        """A zeroed array of ``n`` order events to fill in and submit."""
        return np.zeros(n, dtype=EVENT_DTYPE)

    def submit(self, instrument: int, events: np.ndarray) -> np.ndarray:
        """Send order events (owner = the sending account row) to an instrument's book.

        Orders pass the protocol's pre-trade margin check first; rejected ones
        get order id -1 and status ``REJECTED_MARGIN`` in the returned rows.

        Returns:
            ``RESULT_DTYPE`` rows aligned with ``events``.
        """
        return self._m.submit(instrument, events)
