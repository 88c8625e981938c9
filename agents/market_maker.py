"""Inventory-aware market making after Avellaneda & Stoikov (2008).

Avellaneda, M. & Stoikov, S. (2008), "High-frequency trading in a limit order
book", Quantitative Finance 8(3):217–224. With mid-price ``s``, inventory
``q``, risk aversion ``gamma``, volatility ``sigma``, horizon ``T - t`` and
order-arrival decay ``k``:

* reservation price ``r = s − q γ σ² (T − t)``;
* optimal total spread ``δ_a + δ_b = γ σ² (T − t) + (2/γ) ln(1 + γ/k)``.

Here prices are relative to ``s`` (σ is the per-step volatility of log
returns, ``k`` is in 1/relative-price units, ``q`` is inventory in units of the
quote size, following Guéant, Lehalle & Fernandez-Tapia 2013's normalisation),
the horizon is a rolling constant number of steps, ``s`` is the oracle index
(the maker's estimate of fair value), and σ is an EWMA of squared index
returns. Quotes are a ladder of ``levels`` limit orders per side, replaced
every step; the side that would push inventory past its limit is not quoted.
Quotes are plain (not post-only) limits: a quote that crosses a stale resting
order trades against it, so the maker picks off stale liquidity and keeps the
book anchored to its fair value.
"""

from __future__ import annotations

import math
from typing import Any

import mesa
import numpy as np

from sim.view import CANCEL, LIMIT, STATUS_RESTING

__all__ = ["AvellanedaStoikovMaker", "avellaneda_stoikov_quotes"]


def avellaneda_stoikov_quotes(s: float, q: float, gamma: float, sigma: float, horizon: float,
                              k: float) -> tuple[float, float]:
    """Bid and ask of the Avellaneda–Stoikov model in relative-price form.

    Args:
        s: Reference (mid) price.
        q: Inventory in quote-size units (positive = long).
        gamma: Risk aversion.
        sigma: Volatility of relative price changes per unit time.
        horizon: Remaining horizon ``T − t`` in the same time unit.
        k: Order-arrival decay, in 1/relative-price units.

    Returns:
        ``(bid, ask)`` prices.
    """
    var_t = gamma * sigma * sigma * horizon
    reservation = 1.0 - q * var_t
    half = 0.5 * (var_t + (2.0 / gamma) * math.log1p(gamma / k))
    return s * (reservation - half), s * (reservation + half)


class AvellanedaStoikovMaker(mesa.Agent):
    """One market maker quoting one book.

    Args:
        model: The Mesa model (exposes ``view``).
        instrument: World index of the quoted instrument.
        cfg: A ``MarketMakerConfig``.

    Attributes:
        account: Ledger row (set by the model).
    """

    def __init__(self, model: mesa.Model, instrument: int, cfg: Any) -> None:
        super().__init__(model)
        self.instrument = int(instrument)
        self.cfg = cfg
        self.account = -1
        self._live = np.zeros(0, np.int64)
        self._last_s: float | None = None
        self._var: float | None = None
        self._base0: float | None = None

    def _update_vol(self, s: float) -> float:
        view = self.model.view
        prior = self._var
        if prior is None:
            # prior from the per-step variance implied by a 60 % annualised vol
            prior = 0.36 * view.step_years
        if self._last_s is not None and self._last_s > 0:
            r = math.log(s / self._last_s)
            lam = 0.5 ** (1.0 / self.cfg.vol_halflife_steps)
            prior = lam * prior + (1.0 - lam) * r * r
        self._var = prior
        self._last_s = s
        return math.sqrt(prior)

    def _inventory(self, s: float) -> float:
        """Inventory in base units: perp position, or spot holding above the initial one."""
        view = self.model.view
        inst = view.instruments[self.instrument]
        rows = np.array([self.account])
        if inst.is_perp:
            return float(view.positions(rows, self.instrument)[0])
        held = float(view.balances(rows, inst.base)[0])
        if self._base0 is None:
            self._base0 = held
        return held - self._base0

    def quote(self) -> None:
        """Replace last step's quotes with a fresh Avellaneda–Stoikov ladder."""
        view = self.model.view
        cfg = self.cfg
        j = self.instrument
        inst = view.instruments[j]
        s = view.underlying_price(j)
        sigma = self._update_vol(s)
        size = cfg.order_notional / s
        inv = self._inventory(s)
        bid, ask = avellaneda_stoikov_quotes(s, inv / size, cfg.gamma, sigma, cfg.horizon_steps,
                                             cfg.k)
        levels = np.arange(cfg.levels)
        spacing = cfg.level_spacing_bps * 1e-4
        bid_ticks = inst.ticks(bid * (1.0 - spacing * levels), side=1)
        ask_ticks = inst.ticks(ask * (1.0 + spacing * levels), side=-1)
        ask_ticks = np.maximum(ask_ticks, bid_ticks[0] + 1)
        quote_bids = inv * s < cfg.inventory_limit_notional
        quote_asks = inv * s > -cfg.inventory_limit_notional
        lots = int(inst.lots(size))
        n_cancel = len(self._live)
        n_new = cfg.levels * (int(quote_bids) + int(quote_asks))
        ev = view.new_events(n_cancel + n_new)
        ev["kind"][:n_cancel] = CANCEL
        ev["order_id"][:n_cancel] = self._live
        new = ev[n_cancel:]
        prices = np.concatenate([bid_ticks if quote_bids else [], ask_ticks if quote_asks else []])
        sides = np.concatenate([np.ones(cfg.levels * int(quote_bids), np.int64),
                                -np.ones(cfg.levels * int(quote_asks), np.int64)])
        new["kind"] = LIMIT
        new["owner"] = self.account
        new["side"] = sides
        new["price"] = prices
        new["qty"] = lots
        ev[n_cancel:] = new
        res = view.submit(j, ev)
        placed = res[n_cancel:]
        self._live = placed["order_id"][placed["status"] == STATUS_RESTING].astype(np.int64)

    def step(self) -> None:
        """Requote every step."""
        self.quote()
