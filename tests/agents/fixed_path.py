"""Test helper: pin a model's exogenous price path."""

from __future__ import annotations

import numpy as np

from sim.model import MarketModel


class FixedPath:
    """Pins the model's scenario: the fundamental stays where the test puts ``prices``.

    The scenario object is kept (its oracle and liquidity hooks still apply);
    only its ``advance`` is replaced.
    """

    def __init__(self, model: MarketModel) -> None:
        self.prices = model.scenario.prices
        model.scenario.advance = self.advance

    def advance(self, rng: np.random.Generator) -> np.ndarray:
        return self.prices
