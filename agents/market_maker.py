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
the horizon is a rolling constant number of steps, ``s`` is the maker's
fair value (the oracle index by default; see "Fair value" below), and σ is an
EWMA of squared returns of ``s``. Quotes are a ladder of ``levels`` limit orders per side, replaced
every step; the side that would push inventory past its limit is not quoted.
Quotes are plain (not post-only) limits: a quote that crosses a stale resting
order trades against it, so the maker picks off stale liquidity and keeps the
book anchored to its fair value.

Liquidity withdrawal (:class:`LiquidityWithdrawalConfig`, on by default). Market
makers supply less liquidity when volatility or their own funding constraint
binds: Brunnermeier & Pedersen (2009, "Market liquidity and funding
liquidity", RFS 22(6), the margin spiral; reference note §1.7), Comerton-Forde
et al. (2010, "Time variation in liquidity: the role of market-maker
inventories and revenues", J. Finance 65(1): spreads widen with losses and
inventory), Nagel (2012, "Evaporating liquidity", RFS 25(7): liquidity
provision shrinks when volatility rises) and the 2010 Flash Crash, where
intermediaries withdrew (Kirilenko, Kyle, Samadi & Tuzun 2017, J. Finance
72(3)). Two stress gauges, each mapped linearly to ``[0, 1]`` between a
"widen" and a "pull" threshold:

* volatility: the ratio of the EWMA volatility above to a slow EWMA of the
  same returns (half-life ``calm_halflife_steps``), the maker's calm level;
* margin usage: initial requirement / equity of its own account from
  ``view.margin`` (the last evaluation).

With stress ``x`` (the larger of the two) the total spread is multiplied by
``1 + (max_spread_mult − 1) x`` around its centre and the quote size by
``1 − (1 − min_size_frac) x``; at or above either pull threshold the maker
cancels its quotes and places none. Below both widen thresholds the quotes
are exactly those of the plain model.

Fair value. By default the maker quotes around the oracle index. With
``index_weight < 1`` the index is one input: the maker's fair value ``s``
moves each step by ``w (ln I − ln s)`` towards the index ``I``, by ``b (ln µ −
ln s)`` towards the microprice ``µ`` of its book (Stoikov 2018, "The
micro-price", Quantitative Finance 18(12)) and by ``−κ`` per order size of
inventory it absorbed since its last quote: order flow carries information
(Kyle 1985, "Continuous auctions and insider trading", Econometrica 53(6);
Glosten & Milgrom 1985), so a maker whose bids are hit marks its fair value
down and a run of sells walks the venue's price away from the index. With
``w = 1`` and ``κ = 0`` (the defaults) ``s`` is the index.

Market-wide liquidity. The maker also reads ``view.liquidity`` if the model
has that attribute — a float in ``[0, 1]`` or a per-instrument array of such,
set by a liquidity-drought scenario — and multiplies its quote size by it (0:
no quotes). A model without the attribute counts as 1. This applies whether or
not withdrawal is enabled.
"""

from __future__ import annotations

import math
from typing import Any

import mesa
import numpy as np

from agents.config import LiquidityWithdrawalConfig
from sim.market.view import CANCEL, LIMIT, STATUS_RESTING

__all__ = [
    "AvellanedaStoikovMaker",
    "avellaneda_stoikov_quotes",
    "withdrawal_factors",
]


def withdrawal_factors(vol_ratio: float, usage: float, cfg: Any) -> tuple[float, float]:
    """Spread and size multipliers of a stressed maker (module docstring).

    Args:
        vol_ratio: EWMA volatility over its calm level.
        usage: Margin usage, initial requirement / equity (``inf`` when equity <= 0).
        cfg: A :class:`LiquidityWithdrawalConfig`.

    Returns:
        ``(spread_mult, size_mult)``; ``(1.0, 1.0)`` when unstressed or disabled,
        ``size_mult == 0.0`` when quotes are pulled.
    """
    if not cfg.enabled:
        return 1.0, 1.0
    if vol_ratio >= cfg.vol_pull_ratio or usage >= cfg.usage_pull:
        return 1.0, 0.0
    x_vol = (vol_ratio - cfg.vol_widen_ratio) / (cfg.vol_pull_ratio - cfg.vol_widen_ratio)
    x_use = (usage - cfg.usage_widen) / (cfg.usage_pull - cfg.usage_widen)
    x = min(max(x_vol, x_use, 0.0), 1.0)
    if x == 0.0:
        return 1.0, 1.0
    return 1.0 + (cfg.max_spread_mult - 1.0) * x, 1.0 - (1.0 - cfg.min_size_frac) * x


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
        withdrawal: The :class:`LiquidityWithdrawalConfig` in force
            (``cfg.withdrawal``, or the defaults when the config has none).
        vol_ratio: EWMA volatility over its calm level, as of the last quote.
        margin_usage: Initial requirement / equity, as of the last quote.
        spread_mult: Spread multiplier applied at the last quote.
        size_mult: Quote-size multiplier applied at the last quote (including
            the market-wide liquidity; 0 when pulled).
        pulled: Whether the last quote placed nothing because of stress or
            zero market liquidity.
    """

    def __init__(self, model: mesa.Model, instrument: int, cfg: Any) -> None:
        super().__init__(model)
        self.instrument = int(instrument)
        self.cfg = cfg
        withdrawal = getattr(cfg, "withdrawal", None)
        self.withdrawal = LiquidityWithdrawalConfig() if withdrawal is None else withdrawal
        self.account = -1
        self._live = np.zeros(0, np.int64)
        self._last_s: float | None = None
        self._var: float | None = None
        self._calm_var: float | None = None
        self._base0: float | None = None
        self.fair_value: float | None = None
        self._inv_at_quote = 0.0
        self.vol_ratio = 1.0
        self.margin_usage = 0.0
        self.spread_mult = 1.0
        self.size_mult = 1.0
        self.pulled = False

    def _update_vol(self, s: float) -> float:
        view = self.model.view
        prior = self._var
        calm = self._calm_var
        if prior is None:
            # prior from the per-step variance implied by a 60 % annualised vol
            prior = 0.36 * view.step_years
        if calm is None:
            calm = prior
        if self._last_s is not None and self._last_s > 0:
            r = math.log(s / self._last_s)
            lam = 0.5 ** (1.0 / self.cfg.vol_halflife_steps)
            prior = lam * prior + (1.0 - lam) * r * r
            lam_calm = 0.5 ** (1.0 / self.withdrawal.calm_halflife_steps)
            calm = lam_calm * calm + (1.0 - lam_calm) * r * r
        self._var = prior
        self._calm_var = calm
        self._last_s = s
        self.vol_ratio = math.sqrt(prior / calm) if calm > 0 else 1.0
        return math.sqrt(prior)

    def _margin_usage(self) -> float:
        """Initial requirement over equity of the maker's account (0 before any evaluation)."""
        equity, initial, _mm = self.model.view.margin(np.array([self.account]))
        eq, im = float(equity[0]), float(initial[0])
        if math.isnan(eq) or math.isnan(im) or im <= 0.0:
            return 0.0
        return im / eq if eq > 0.0 else math.inf

    def _market_liquidity(self) -> float:
        """The market-wide liquidity multiplier for this book, from the view (1 without one)."""
        view = getattr(self.model, "view", None)
        x = 1.0 if view is None else view.liquidity
        if np.ndim(x) > 0:
            x = np.asarray(x)[self.instrument]
        x = float(x)
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"view.liquidity = {x!r} is invalid: must be in [0, 1]")
        return x

    def _own_fair_value(self) -> bool:
        """Whether the maker forms its own fair value (anything but ``index_weight = 1``)."""
        cfg = self.cfg
        return (getattr(cfg, "index_weight", 1.0) != 1.0
                or getattr(cfg, "flow_impact", 0.0) != 0.0)

    def _microprice(self) -> float | None:
        """Best bid and ask weighted by the opposite side's size (None if a side is empty)."""
        bids, asks = self.model.view.book_depth(self.instrument, 1)
        if len(bids) == 0 or len(asks) == 0:
            return None
        (pb, qb), (pa, qa) = bids[0], asks[0]
        return float((pb * qa + pa * qb) / (qa + qb))

    def _fair_value(self, index: float) -> float:
        """The price the maker quotes around (module docstring, "Fair value").

        ``ln s_t = ln s_{t−1} + w (ln I_t − ln s_{t−1}) + b (ln µ_t − ln s_{t−1}) −
        κ Δq_t``: the index ``I`` and the book's microprice ``µ`` pull the previous
        fair value with weights ``w = index_weight`` and ``b = book_weight``, and
        the inventory ``Δq`` the maker took on since its last quote (in order
        sizes) moves it by ``κ = flow_impact`` per size against the flow. With
        ``w = 1`` and ``κ = 0`` (the defaults) it is the index.
        """
        if not self._own_fair_value():
            return index
        cfg = self.cfg
        prev = index if self.fair_value is None else self.fair_value
        log_s = math.log(prev) + cfg.index_weight * math.log(index / prev)
        if cfg.book_weight > 0.0:
            micro = self._microprice()
            if micro is not None and micro > 0.0:
                log_s += cfg.book_weight * math.log(micro / prev)
        if cfg.flow_impact > 0.0:
            taken = (self._inventory(prev) - self._inv_at_quote) / (cfg.order_notional / prev)
            log_s -= cfg.flow_impact * taken
        self.fair_value = math.exp(log_s)
        return self.fair_value

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
        s = self._fair_value(view.underlying_price(j))
        sigma = self._update_vol(s)
        self.margin_usage = self._margin_usage()
        spread_mult, size_mult = withdrawal_factors(self.vol_ratio, self.margin_usage,
                                                    self.withdrawal)
        size_mult *= self._market_liquidity()
        self.spread_mult, self.size_mult = spread_mult, size_mult
        size = cfg.order_notional / s
        inv = self._inventory(s)
        bid, ask = avellaneda_stoikov_quotes(s, inv / size, cfg.gamma, sigma, cfg.horizon_steps,
                                             cfg.k)
        if spread_mult != 1.0:
            centre, half = 0.5 * (bid + ask), 0.5 * (ask - bid) * spread_mult
            bid, ask = centre - half, centre + half
        levels = np.arange(cfg.levels)
        spacing = cfg.level_spacing_bps * 1e-4
        bid_ticks = inst.ticks(bid * (1.0 - spacing * levels), side=1)
        ask_ticks = inst.ticks(ask * (1.0 + spacing * levels), side=-1)
        ask_ticks = np.maximum(ask_ticks, bid_ticks[0] + 1)
        quote_bids = inv * s < cfg.inventory_limit_notional
        quote_asks = inv * s > -cfg.inventory_limit_notional
        if size_mult == 1.0:
            lots = int(inst.lots(size))
        else:
            lots = int(np.rint(size * size_mult / inst.lot_size))
        self.pulled = lots <= 0
        if self.pulled:
            quote_bids = quote_asks = False
        n_cancel = len(self._live)
        n_bid = cfg.levels if quote_bids else 0
        n_ask = cfg.levels if quote_asks else 0
        ev = view.new_events(n_cancel + n_bid + n_ask)
        ev["kind"][:n_cancel] = CANCEL
        ev["order_id"][:n_cancel] = self._live
        new = ev[n_cancel:]  # a view: filling it fills ev
        new["kind"] = LIMIT
        new["owner"] = self.account
        new["side"][:n_bid] = 1
        new["side"][n_bid:] = -1
        if n_bid:
            new["price"][:n_bid] = bid_ticks
        if n_ask:
            new["price"][n_bid:] = ask_ticks
        new["qty"] = lots
        res = view.submit(j, ev)
        placed = res[n_cancel:]
        self._live = placed["order_id"][placed["status"] == STATUS_RESTING].astype(np.int64)
        if self._own_fair_value():
            self._inv_at_quote = self._inventory(s)

    def step(self) -> None:
        """Requote every step."""
        self.quote()
