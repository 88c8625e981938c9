"""Fixtures of scenario tests: a still market and a GBM market."""

from __future__ import annotations

import pytest

from sim.config import MarketConfig

from .helpers import market


@pytest.fixture
def still_market() -> MarketConfig:
    """Zero volatility and drift: the path is the shock profile alone."""
    return market(vol=0.0)


@pytest.fixture
def gbm_market() -> MarketConfig:
    """BTC/ETH, vol 0.6, correlation 0.8, one-minute steps."""
    return market()
