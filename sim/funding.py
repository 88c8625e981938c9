"""Perpetual funding: premium sampling, the funding-rate formula and the mark price.

Binance USDⓈ-M (Binance Futures "Introduction to Funding Rates", and the mark
price FAQ): the premium index ``P = (impact mid - index) / index`` is sampled
every step and averaged over the funding interval; the funding rate is
``F = clamp(P + clamp(I - P, -c, c), -cap, cap)`` with interest rate ``I`` per
interval (0.01 % per 8 h), ``c = 0.05 %``; longs pay shorts ``position x mark x
F`` when ``F > 0``. The mark price is the median of the index, the book mid and
the last trade, Binance's "median of price 1, price 2 and the last price"
simplified (see ASSUMPTIONS.md).
"""

from __future__ import annotations


__all__ = ["FundingClock", "funding_rate", "mark_price"]


def funding_rate(avg_premium: float, interest_rate: float, premium_clamp: float, cap: float) -> float:
    """Binance funding rate from the interval's average premium index."""
    inner = min(max(interest_rate - avg_premium, -premium_clamp), premium_clamp)
    return float(min(max(avg_premium + inner, -cap), cap))


def mark_price(index: float, mid: float | None, last: float | None) -> float:
    """Median of index, book mid and last trade; missing values fall back to the index."""
    a = float(index)
    b = a if mid is None else float(mid)
    c = a if last is None else float(last)
    return max(min(a, b), min(max(a, b), c))  # median of three without allocating


class FundingClock:
    """Accumulates premium samples of one perpetual and emits a rate every interval.

    Args:
        interval: Steps between funding payments.
        interest_rate: Interest component per interval.
        premium_clamp: Clamp on (interest - premium).
        cap: Absolute cap on the rate.
    """

    def __init__(self, interval: int, interest_rate: float, premium_clamp: float, cap: float) -> None:
        self.interval = int(interval)
        self.interest_rate = interest_rate
        self.premium_clamp = premium_clamp
        self.cap = cap
        self._sum = 0.0
        self._n = 0
        self.last_rate = 0.0

    def sample(self, mid: float | None, index: float) -> None:
        """Record one premium observation (skipped when the book has no mid)."""
        if mid is not None and index > 0:
            self._sum += (mid - index) / index
            self._n += 1

    def due(self, step: int) -> bool:
        """Whether funding is paid at this step."""
        return step > 0 and step % self.interval == 0

    def settle(self) -> float:
        """The rate for the closing interval; resets the accumulator."""
        avg = self._sum / self._n if self._n else 0.0
        self._sum, self._n = 0.0, 0
        self.last_rate = funding_rate(avg, self.interest_rate, self.premium_clamp, self.cap)
        return self.last_rate
