"""Perpetual funding: premium sampling, the funding-rate formula and the mark price.

Binance USDⓈ-M (Binance Futures "Introduction to Funding Rates", and the mark
price FAQ): the premium index ``P = (impact mid - index) / index`` is sampled
every step and averaged over the funding interval; the funding rate is
``F = clamp(P + clamp(I - P, -c, c), -cap, cap)`` with interest rate ``I`` per
interval (0.01 % per 8 h), ``c = 0.05 %``; longs pay shorts ``position x mark x
F`` when ``F > 0``. The mark price is Binance's median of price 1 (index with
the funding basis), price 2 (index plus the 30-sample moving-average basis) and
the last trade.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FundingClock", "binance_mark_price", "funding_rate", "mark_price"]


def funding_rate(
    avg_premium: float, interest_rate: float, premium_clamp: float, cap: float
) -> float:
    """Binance funding rate from the interval's average premium index."""
    inner = min(max(interest_rate - avg_premium, -premium_clamp), premium_clamp)
    return float(min(max(avg_premium + inner, -cap), cap))


def mark_price(index: float, mid: float | None, last: float | None) -> float:
    """Median of index, book mid and last trade; missing values fall back to the index."""
    a = float(index)
    b = a if mid is None else float(mid)
    c = a if last is None else float(last)
    return max(min(a, b), min(max(a, b), c))  # median of three without allocating


def binance_mark_price(index: float, last_rate: float, frac_to_funding: float, basis_ma: float,
                       last: float | None) -> float:
    """Binance USDⓈ-M mark price: median of two index-anchored prices and the last trade.

    ``price1 = index x (1 + last funding rate x time to next funding / interval)``,
    ``price2 = index + moving average of the basis (mid - index)``, mark =
    median(price1, price2, last) (Binance "Mark Price and Price Index" FAQ).
    Two of the three are anchored to the index, so a book swept to a few ticks
    cannot drag the mark (and margins) with it.
    """
    p1 = index * (1.0 + last_rate * frac_to_funding)
    p2 = index + basis_ma
    return mark_price(p1, p2, last)


class FundingClock:
    """Accumulates premium samples of one perpetual and emits a rate every interval.

    Args:
        interval: Steps between funding payments.
        interest_rate: Interest component per interval.
        premium_clamp: Clamp on (interest - premium).
        cap: Absolute cap on the rate.
    """

    def __init__(self, interval: int, interest_rate: float, premium_clamp: float, cap: float,
                 basis_window: int = 30) -> None:
        self.interval = int(interval)
        self._basis = np.zeros(int(basis_window))
        self._basis_n = 0
        self.interest_rate = interest_rate
        self.premium_clamp = premium_clamp
        self.cap = cap
        self._sum = 0.0
        self._n = 0
        self.last_rate = 0.0

    def sample(self, mid: float | None, index: float) -> None:
        """Record one premium and basis observation (skipped when the book has no mid)."""
        if mid is not None and index > 0:
            self._sum += (mid - index) / index
            self._n += 1
            self._basis[self._basis_n % len(self._basis)] = mid - index
            self._basis_n += 1

    @property
    def basis_ma(self) -> float:
        """Moving average of the basis (mid - index) over the last ``basis_window`` samples."""
        k = min(self._basis_n, len(self._basis))
        return float(self._basis[:k].mean()) if k else 0.0

    def mark(self, index: float, last: float | None, step: int) -> float:
        """Binance mark price (:func:`binance_mark_price`) at ``step``."""
        frac = (self.interval - step % self.interval) / self.interval
        return binance_mark_price(index, self.last_rate, frac, self.basis_ma, last)

    def due(self, step: int) -> bool:
        """Whether funding is paid at this step."""
        return step > 0 and step % self.interval == 0

    def settle(self) -> float:
        """The rate for the closing interval; resets the accumulator."""
        avg = self._sum / self._n if self._n else 0.0
        self._sum, self._n = 0.0, 0
        self.last_rate = funding_rate(avg, self.interest_rate, self.premium_clamp, self.cap)
        return self.last_rate
