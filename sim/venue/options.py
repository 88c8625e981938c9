"""The option market of a world: listing, marks, Greeks, expiry and settlement.

Deribit's rules (contract specifications; ``ASSUMPTIONS.md``, "Options"):

* European options on the index, cash-settled at expiry at the time-weighted
  average of the index over the last 30 minutes (``settlement_twap_seconds``);
  a call pays ``max(S − K, 0)`` and a put ``max(K − S, 0)`` per unit of the
  underlying, in the quote currency (``premium: usd``, linear) or divided by
  ``S`` in the coin (``premium: inverse``);
* the mark of every option is its Black-76 value on the index (zero carry:
  the index is the forward) at the mark implied volatility of its strike and
  expiry, read from the implied-volatility surface
  (:class:`sim.market.volsurface.VolSurface`), not the book mid; inverse marks
  are that value divided by the index;
* a new expiry is listed when the calendar lists it, with strikes around the
  index of that moment (:mod:`sim.market.options`).

:class:`OptionMarket` holds the chain and the surface and returns what the
model writes (marks, implied vols, strikes, expiries); it moves money only
through the ledger's own operations (settlement). The model calls it in phase
2 (expire and list, after the oracle) and phase 4 (marks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from margin.methods.pricing import black76_greeks_vec
from sim.market.options import OptionChain

__all__ = ["OPTION_EVENT_COLUMNS", "OPTION_METRICS", "OptionGreeks", "OptionMarket", "fee_rates",
           "option_metrics", "settlement_payoff"]

OPTION_METRICS = ("open_interest", "volume", "premium", "listed", "dealer_delta", "dealer_gamma",
                  "dealer_vega", "dealer_theta", "atm_iv_30d", "skew")
"""Per protocol and underlying, each step (``<protocol>.<ASSET>.opt_<field>``):
``open_interest`` (long contracts, base units), ``volume`` (base units traded this
step), ``premium`` (USD premium traded this step), ``listed`` (live contracts),
the dealers' (option market makers' and delta-hedgers') net ``dealer_delta``
(options plus their perpetual hedges, base units), ``dealer_gamma`` (base units
per USD), ``dealer_vega`` (USD per vol point) and ``dealer_theta`` (USD per
day), the surface's 30-day at-the-money implied vol ``atm_iv_30d`` and its
``skew``. The rest of the market holds the opposite option Greeks."""

OPTION_EVENT_COLUMNS = ("step", "protocol", "instrument", "contract", "kind", "strike",
                        "expiry_step", "is_call", "settlement_price", "payoff",
                        "open_interest", "paid_to_longs")
"""Columns of the option event log (``option_events.parquet``); ``kind`` is
``list`` (a contract listed in a slot) or ``settle`` (expiry: the payoff paid)."""


def settlement_payoff(price: float, strike: float, is_call: bool, inverse: bool) -> float:
    """Payoff per unit of a European option settled at ``price``.

    Call ``max(S − K, 0)``, put ``max(K − S, 0)``; an inverse option pays that
    divided by ``S``, in the coin (Deribit's BTC and ETH options).

    Args:
        price: Settlement price (the index TWAP).
        strike: Strike.
        is_call: Call or put.
        inverse: Coin-settled.
    """
    intrinsic = max(price - strike, 0.0) if is_call else max(strike - price, 0.0)
    return intrinsic / price if inverse else intrinsic


@dataclass
class OptionGreeks:
    """Black-76 values and Greeks of every option slot, per unit of the underlying, in USD.

    Attributes:
        slots: Instrument index of each slot.
        value: Mark value (USD).
        delta: ∂V/∂F.
        gamma: ∂²V/∂F².
        vega: ∂V/∂σ per vol point (0.01).
        theta: ∂V/∂t per calendar day (negative for a long option).
    """

    slots: np.ndarray
    value: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray


class OptionMarket:
    """Listing, marking and settling the options of a world.

    Args:
        chain: The option chain (slots and contracts).
        instruments: Every instrument of the world.
        cfg: ``market.options`` (:class:`sim.config.schema.OptionsConfig`).
        step_seconds: Model step length.
        step_years: Model step length in years.
        surface: The implied-volatility surface (``iv(asset, strike, forward, tte)``).
        surface_assets: World asset index of each of the surface's assets.
    """

    def __init__(self, chain: OptionChain, instruments: Sequence[Any], cfg: Any,
                 step_seconds: float, step_years: float, surface: Any,
                 surface_assets: Sequence[int]) -> None:
        self.chain = chain
        self.cfg = cfg
        self.step_seconds = float(step_seconds)
        self.step_years = float(step_years)
        self.surface = surface
        self._surface_index = {int(a): i for i, a in enumerate(surface_assets)}
        self.slots = chain.instruments
        self.asset = np.array([s.asset for s in chain.slots], np.int64)
        self.quote = np.array([instruments[j].quote for j in self.slots], np.int64)
        self.is_call = np.array([s.is_call for s in chain.slots], np.bool_)
        self.inverse = cfg.premium == "inverse"
        self.rate = float(cfg.rate)
        self.twap_steps = max(1, round(float(cfg.settlement_twap_seconds) / step_seconds))
        self.events: list[dict[str, Any]] = []
        self._selection: dict[tuple[int, int], tuple[np.ndarray, list[int]]] = {}
        self._surf = np.array([self._surface_index[int(a)] for a in self.asset], np.int64)

    def selection(self, protocol: int, asset: int,
                  instruments: Sequence[Any]) -> tuple[np.ndarray, list[int]]:
        """Slots (bool over the chain) and perpetuals of one protocol and underlying (memoised)."""
        key = (int(protocol), int(asset))
        if key not in self._selection:
            sel = np.array([s.protocol == protocol and s.asset == asset for s in self.chain.slots])
            perps = [i.index for i in instruments
                     if i.is_perp and i.protocol == protocol and i.base == asset]
            self._selection[key] = (sel, perps)
        return self._selection[key]

    def surface_index(self, asset: int) -> int:
        """The surface's index of a world asset."""
        return self._surface_index[int(asset)]

    # ------------------------------------------------------------------ clock
    def listed(self) -> np.ndarray:
        """bool[n_slots]: the slot holds a live contract."""
        return self.chain.expiry_step >= 0

    def time_to_expiry(self, step: int) -> np.ndarray:
        """Years to expiry of every slot (0 when unlisted)."""
        left = np.where(self.listed(), self.chain.expiry_step - step, 0)
        return np.maximum(left, 0) * self.step_years

    # ------------------------------------------------------------- expiry
    def settle_due(self, step: int, ledger: Any, price_history: np.ndarray,
                   protocols: Sequence[Any]) -> list[int]:
        """Settle every group expiring at or before ``step``; returns the settled instruments.

        The settlement price is the mean of the index over the last
        ``twap_steps`` rows of ``price_history`` up to ``step`` (fewer at the
        start of a run); each slot's holders receive their payoff from the
        option's clearing row (:meth:`sim.ledger.Ledger.settle_option`), and the
        group is freed for the next listing.

        Args:
            step: Current step (its index row is already in ``price_history``).
            ledger: The ledger.
            price_history: float64[steps + 1, n_assets] index history.
            protocols: The protocols (names for the log).
        """
        settled: list[int] = []
        for g in self.chain.due(step):
            for k in self.chain.group_slots(g):
                j = int(self.slots[k])
                a = int(self.asset[k])
                lo = max(0, step - self.twap_steps + 1)
                price = float(price_history[lo:step + 1, a].mean())
                strike = float(self.chain.strike[k])
                payoff = settlement_payoff(price, strike, bool(self.is_call[k]), self.inverse)
                oi = float(np.maximum(ledger.position[:, j], 0.0).sum())
                paid = ledger.settle_option(j, payoff) if oi > 0.0 else 0.0
                self._log(step, k, "settle", price, payoff, oi, paid)
                settled.append(j)
            self.chain.free(g)
        return settled

    def list_due(self, step: int, asset_prices: np.ndarray) -> list[int]:
        """List the expiries the calendar lists and no group holds; returns the new instruments."""
        listed: list[int] = []
        for g, expiry in self.chain.to_list(step):
            a = self.chain.group_key[g][1]
            ks = self.chain.list_group(g, expiry, step, float(asset_prices[a]), self.step_seconds)
            for k in ks.tolist():
                self._log(step, k, "list", np.nan, np.nan, 0.0, 0.0)
                listed.append(int(self.slots[k]))
        return listed

    def _log(self, step: int, k: int, kind: str, price: float, payoff: float, oi: float,
             paid: float) -> None:
        s = self.chain.slots[k]
        self.events.append({
            "step": int(step), "protocol": int(s.protocol), "instrument": int(self.slots[k]),
            "contract": self.chain.names[k],
            "kind": kind, "strike": float(self.chain.strike[k]),
            "expiry_step": int(self.chain.expiry_step[k]), "is_call": bool(s.is_call),
            "settlement_price": float(price), "payoff": float(payoff),
            "open_interest": float(oi), "paid_to_longs": float(paid)})

    # ------------------------------------------------------------- marks
    def implied_vols(self, step: int, asset_prices: np.ndarray) -> np.ndarray:
        """Mark implied volatility of every slot from the surface (unlisted: the ATM vol)."""
        forward = asset_prices[self.asset].astype(np.float64)
        strike = np.where(self.listed(), self.chain.strike, forward)
        tte = np.maximum(self.time_to_expiry(step), self.step_years)
        return np.asarray(self.surface.iv(self._surf, strike, forward, tte), np.float64)

    def greeks(self, step: int, asset_prices: np.ndarray, iv: np.ndarray) -> OptionGreeks:
        """Black-76 value and Greeks of every slot in USD per unit (unlisted slots: zeros)."""
        forward = np.ascontiguousarray(asset_prices[self.asset], dtype=np.float64)
        listed = self.listed()
        strike = np.ascontiguousarray(np.where(listed, self.chain.strike, forward),
                                      dtype=np.float64)
        tte = np.ascontiguousarray(self.time_to_expiry(step), dtype=np.float64)
        price, delta, gamma, vega, theta, _rho = black76_greeks_vec(
            forward, strike, tte, self.rate, np.ascontiguousarray(iv, dtype=np.float64),
            self.is_call)
        z = np.where(listed, 1.0, 0.0)
        return OptionGreeks(self.slots, price * z, delta * z, gamma * z, vega * 0.01 * z,
                            -theta / 365.0 * z)

    def marks(self, greeks: OptionGreeks, asset_prices: np.ndarray) -> tuple[np.ndarray,
                                                                               np.ndarray]:
        """Marks of every slot in its quote unit and in USD: ``(quote_marks, usd_marks)``.

        Inverse marks are the USD value divided by the index (Deribit quotes
        BTC options in BTC). Unlisted slots are marked at 0.
        """
        usd = greeks.value
        if not self.inverse:
            return usd.copy(), usd.copy()
        return usd / asset_prices[self.asset], usd.copy()

    def contract_names(self) -> dict[int, str]:
        """Current contract name of every listed slot, by instrument."""
        return {int(j): n for j, n in zip(self.slots.tolist(), self.chain.names, strict=True)
                if n}

    def events_table(self) -> dict[str, np.ndarray]:
        """The event log as columns (for Parquet), in :data:`OPTION_EVENT_COLUMNS` order."""
        out: dict[str, np.ndarray] = {}
        ints = ("step", "protocol", "instrument", "expiry_step")
        for col in OPTION_EVENT_COLUMNS:
            vals = [e[col] for e in self.events]
            if col in ("contract", "kind"):
                out[col] = np.array(vals, dtype=object)
            elif col == "is_call":
                out[col] = np.array(vals, dtype=np.bool_)
            elif col in ints:
                out[col] = np.array(vals, dtype=np.int64)
            else:
                out[col] = np.array(vals, dtype=np.float64)
        return out


def fee_rates(rate: float, cap: float, underlying_per_unit: float,
              price: np.ndarray) -> np.ndarray:
    """Option fee as a rate on the premium: ``min(rate × underlying / price, cap)``.

    Deribit charges 0.03 % of the underlying per option, capped at 12.5 % of
    the option price; the ledger charges a rate on the premium notional.

    Args:
        rate: Fee as a fraction of the underlying's value.
        cap: Cap as a fraction of the premium.
        underlying_per_unit: Value of one unit of the underlying in the quote unit
            (the index for USD premium, 1 for coin premium).
        price: Premiums per unit, quote units.
    """
    return np.minimum(rate * underlying_per_unit / np.maximum(price, 1e-300), cap)



def option_metrics(keys: Sequence[tuple[int, int, str, str]], market: OptionMarket,
                   greeks: OptionGreeks, positions: np.ndarray, dealers: np.ndarray,
                   instruments: Sequence[Any], step_volume: np.ndarray,
                   step_notional: np.ndarray, asset_prices: np.ndarray) -> dict[str, float]:
    """The option aggregates of :data:`OPTION_METRICS` for every ``(protocol, asset)`` key.

    Args:
        keys: ``(protocol, asset, field, metric name)``.
        market: The option market.
        greeks: Greeks of every slot (USD per unit).
        positions: The ledger's positions.
        dealers: Ledger rows of the dealers.
        instruments: Every instrument.
        step_volume: Base units traded per instrument this step.
        step_notional: Quote notional traded per instrument this step.
        asset_prices: Index per asset.
    """
    out: dict[str, float] = {}
    slots = market.slots
    held = positions[:, slots]
    dealer_held = held[dealers] if len(dealers) else np.zeros((0, len(slots)))
    dealer_opt = {name: (dealer_held * getattr(greeks, name)[None, :]).sum(axis=0)
                  for name in ("delta", "gamma", "vega", "theta")}
    usd_notional = step_notional[slots] * asset_prices[market.quote]
    listed = market.listed()
    cache: dict[tuple[int, int], dict[str, float]] = {}
    for p, a, field, name in keys:
        vals = cache.get((p, a))
        if vals is None:
            sel, perps = market.selection(p, a, instruments)
            hedge = float(positions[dealers][:, perps].sum()) if len(dealers) and perps else 0.0
            sa = market.surface_index(a)
            vals = {
                "open_interest": float(np.maximum(held[:, sel], 0.0).sum()),
                "volume": float(step_volume[slots][sel].sum()),
                "premium": float(usd_notional[sel].sum()),
                "listed": float(listed[sel].sum()),
                "dealer_delta": float(dealer_opt["delta"][sel].sum()) + hedge,
                "dealer_gamma": float(dealer_opt["gamma"][sel].sum()),
                "dealer_vega": float(dealer_opt["vega"][sel].sum()),
                "dealer_theta": float(dealer_opt["theta"][sel].sum()),
                "atm_iv_30d": float(market.surface.atm_vol(np.array([sa]),
                                                           np.array([30.0 / 365.0]))[0]),
                "skew": float(np.asarray(market.surface.skew)[sa]),
            }
            cache[(p, a)] = vals
        out[name] = vals[field]
    return out
