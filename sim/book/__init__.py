"""The order book on its own, at its short public path: ``from sim.book import OrderBook``.

A thin re-export of :mod:`sim.market.book` (where the book lives) for the names
users call: the per-call :class:`OrderBook`, :class:`Side` and the event and
result record types of the batched kernel.
"""

from sim.market.book import EVENT_DTYPE, FILL_DTYPE, RESULT_DTYPE, OrderBook, Side, SweepCost

__all__ = ["EVENT_DTYPE", "FILL_DTYPE", "RESULT_DTYPE", "OrderBook", "Side", "SweepCost"]
