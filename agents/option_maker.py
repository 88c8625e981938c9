"""Option market makers and delta-hedging dealers.

One agent per protocol and underlying quotes every listed option of that
underlying. Its fair value is the option's mark (Black-76 at the mark implied
volatility of the surface, :mod:`sim.venue.options`), leaned against its vega
inventory; its half-spread is ``half_spread_vol`` vol points of vega, at least
``min_half_spread`` of the mark and one tick. This is how crypto option market
makers quote: in implied volatility around a surface, with inventory limits
per contract and on the book's vega, and with delta hedged in the perpetual
(Deribit market-maker programme; Sinclair, *Volatility Trading*, 2nd ed.,
ch. 9 on delta hedging; Garleanu, Pedersen & Poteshman, 2009, "Demand-based
option pricing", RFS 22(10), on dealers leaning their quotes against
inventory).

A contract is requoted when its fair value has moved by more than
``requote_frac`` of the quoted half-spread, every ``requote_steps``, when a
quote has filled away, or when the slot holds a new contract.

Delta hedging. Every ``hedge_every`` steps the agent sums the Black-76 delta of
its options and its perpetual position; beyond ``hedge_band`` it sends a
market order on the perpetual for the whole net delta. A dealer that is short
options is short gamma: as the index falls the delta of its short puts rises
and its hedge sells the perpetual into the fall — the feedback of a gamma
squeeze (Barbon & Buraschi, 2021, "Gamma fragility"; Ni, Pearson, Poteshman &
White, 2021, "Does option trading have mechanical effects on underlying
stock prices?", RFS 34(4)). A *dealer* is the same agent configured to sell
only (``bids: false``), with a tighter band.
"""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np

from sim.market.view import CANCEL, LIMIT, MARKET, STATUS_RESTING

__all__ = ["OptionMarketMaker"]


class OptionMarketMaker(mesa.Agent):
    """Quotes the options of one underlying on one protocol and hedges their delta.

    Args:
        model: The Mesa model (exposes ``view``).
        protocol: Protocol index.
        asset: World index of the underlying.
        cfg: An :class:`agents.config.OptionMakerConfig`.
        asset_name: Name of the underlying (keys of the per-asset settings).

    Attributes:
        account: Ledger row (set by the world builder).
        slots: The option slots it quotes.
        perp: The perpetual it hedges in (-1 when the protocol lists none).
        hedges: Number of hedge orders sent.
        hedged_qty: Signed base quantity the hedge orders traded (sells < 0).
    """

    def __init__(self, model: mesa.Model, protocol: int, asset: int, cfg: Any,
                 asset_name: str) -> None:
        super().__init__(model)
        view = model.view
        self.protocol = int(protocol)
        self.asset = int(asset)
        self.cfg = cfg
        self.account = -1
        self.slots = view.option_slots(protocol, asset)
        perps = [i.index for i in view.instruments
                 if i.is_perp and i.protocol == protocol and i.base == asset]
        self.perp = perps[0] if perps else -1
        self.size = float(cfg.size.get(asset_name, 0.0))
        self.max_pos = float(cfg.max_contract_position.get(asset_name, 0.0))
        self.band = float(cfg.hedge_band.get(asset_name, 0.0))
        n = len(self.slots)
        first = view.instruments[int(self.slots[0])] if n else None
        self.tick = first.tick_size if first is not None else 1.0
        """Premium tick of the slots (one per underlying and premium currency)."""
        self._lots = int(np.rint(self.size / first.lot_size)) if first is not None else 0
        self._live = [np.zeros(0, np.int64) for _ in range(n)]
        self._contract = np.full(n, -2, np.int64)
        self._fair = np.full(n, np.nan)
        self._half = np.zeros(n)
        self._quoted_at = np.full(n, -10**9, np.int64)
        self._pos_at_quote = np.zeros(n)
        self.hedges = 0
        self.hedged_qty = 0.0
        self.book = None if cfg.bids else "dealer"
        """Book label in the outputs: a maker that only sells is a dealer."""

    def net_greeks(self, table: dict[str, np.ndarray]) -> tuple[float, float]:
        """Net delta (options plus the hedge perpetual, base units) and net vega (USD/vol pt)."""
        view = self.model.view
        pos = view.holdings(self.account, self.slots)
        delta = float(pos @ table["delta"])
        if self.perp >= 0:
            delta += float(view.holdings(self.account, self.perp))
        return delta, float(pos @ table["vega"])

    def step(self) -> None:
        """Requote what moved or changed, then hedge."""
        table = self.model.view.option_table(self.slots)
        self._quote(table)
        if self.perp >= 0 and self.model.view.step % self.cfg.hedge_every == 0:
            self.hedge(table)

    def quote(self) -> None:
        """Quote once (before the first step, with the other makers)."""
        self._quote(self.model.view.option_table(self.slots))

    def _quote(self, table: dict[str, np.ndarray]) -> None:
        view = self.model.view
        cfg = self.cfg
        if len(self.slots) == 0 or self.size <= 0.0:
            return
        pos = view.holdings(self.account, self.slots)
        vega_net = float(pos @ table["vega"])
        lean = -cfg.vega_lean_vol * np.clip(vega_net / max(cfg.vega_limit, 1e-12), -1.0, 1.0)
        usd = view.usd_per_quote(int(self.slots[0]))
        fair = (table["mark_usd"] + lean * 100.0 * table["vega"]) / usd
        half = np.maximum(cfg.half_spread_vol * 100.0 * table["vega"] / usd,
                          cfg.min_half_spread * table["mark"])
        step = view.step
        new = table["expiry_step"] != self._contract
        for k in np.flatnonzero(new).tolist():  # a new contract: old ids belong to a gone book
            self._live[k] = np.zeros(0, np.int64)
        self._contract[new] = table["expiry_step"][new]
        stale = (new | (step - self._quoted_at >= cfg.requote_steps)
                 | (np.abs(fair - self._fair) > cfg.requote_frac * self._half)
                 | (pos != self._pos_at_quote))  # a quote filled
        quoted = table["listed"]
        if cfg.otm_only:  # out of the money now; a contract that went in keeps no quotes
            index = view.index_price(self.asset)
            quoted = quoted & np.where(table["is_call"], table["strike"] >= index,
                                       table["strike"] <= index)
            gone = table["listed"] & ~quoted & (self._quoted_at > -10**9)
            for k in np.flatnonzero(gone).tolist():
                self._withdraw(k)
        todo = np.flatnonzero(quoted & stale)
        if len(todo) == 0:
            return
        h = np.maximum(half[todo], self.tick)
        f = fair[todo]
        # a side that would grow |vega| past the limit is not quoted (buying adds vega)
        bid_ok = (cfg.bids & (pos[todo] < self.max_pos) & (f - h >= self.tick)
                  & ((vega_net < cfg.vega_limit) | (table["vega"][todo] <= 0.0)))
        ask_ok = (cfg.asks & (pos[todo] > -self.max_pos)
                  & ((vega_net > -cfg.vega_limit) | (table["vega"][todo] <= 0.0)))
        bid_t = np.floor((f - h) / self.tick + 1e-9).astype(np.int64)
        ask_t = np.maximum(np.ceil((f + h) / self.tick - 1e-9).astype(np.int64), 1)
        self._pos_at_quote[todo] = pos[todo]
        batch = []
        for i, k in enumerate(todo.tolist()):
            ev = self._events(k, int(bid_t[i]) if bid_ok[i] else 0,
                              int(ask_t[i]) if ask_ok[i] else 0)
            if ev is not None:
                batch.append((k, int(self.slots[k]), ev))
        if batch:
            results = view.submit_many([(j, ev) for _k, j, ev in batch])
            for (k, _j, ev), res in zip(batch, results, strict=True):
                placed = res[ev["kind"] != CANCEL]
                self._live[k] = placed["order_id"][placed["status"] == STATUS_RESTING].astype(
                    np.int64)
        self._fair[todo] = f
        self._half[todo] = h
        self._quoted_at[todo] = step

    def _withdraw(self, k: int) -> None:
        """Cancel slot ``k``'s quotes (it is no longer one the agent quotes)."""
        live = self._live[k]
        if len(live):
            view = self.model.view
            ev = view.new_events(len(live))
            ev["kind"] = CANCEL
            ev["order_id"] = live
            view.submit(int(self.slots[k]), ev)
        self._live[k] = np.zeros(0, np.int64)
        self._quoted_at[k] = -10**9

    def _events(self, k: int, bid_t: int, ask_t: int) -> np.ndarray | None:
        """Events cancelling slot ``k``'s quotes and placing a bid and an ask (0: no quote)."""
        live = self._live[k]
        sides = ([1] if bid_t > 0 else []) + ([-1] if ask_t > 0 else [])
        n = len(live) + len(sides)
        if n == 0 or self._lots <= 0:
            return None
        ev = self.model.view.new_events(n)
        ev["kind"][:len(live)] = CANCEL
        ev["order_id"][:len(live)] = live
        quotes = ev[len(live):]
        quotes["kind"] = LIMIT
        quotes["owner"] = self.account
        quotes["qty"] = self._lots
        if sides:
            quotes["side"] = sides
            quotes["price"] = [t for t in (bid_t, ask_t) if t > 0]
        return ev

    def hedge(self, table: dict[str, np.ndarray] | None = None) -> float:
        """Hedge the net delta in the perpetual when it leaves the band; returns what traded."""
        view = self.model.view
        if table is None:
            table = view.option_table(self.slots)
        delta, _vega = self.net_greeks(table)
        if abs(delta) <= self.band:
            return 0.0
        inst = view.instruments[self.perp]
        lots = int(np.rint(abs(delta) / inst.lot_size))
        if lots <= 0:
            return 0.0
        ev = view.new_events(1)
        ev["kind"] = MARKET
        ev["owner"] = self.account
        ev["side"] = -1 if delta > 0 else 1
        ev["qty"] = lots
        before = float(view.holdings(self.account, self.perp))
        view.submit(self.perp, ev)
        qty = float(view.holdings(self.account, self.perp)) - before
        self.hedges += 1
        self.hedged_qty += qty
        return qty
