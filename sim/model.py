"""The world and its step loop: ``MarketModel``, a Mesa model over array state.

One step, one direction (DESIGN.md, "One step, one direction"):

1. scenario: the exogenous fundamental prices move (correlated GBM);
2. oracles publish index prices (latency, TWAP); options due expire and settle
   at the index TWAP, new expiries are listed (:mod:`sim.venue.options`), and
   the implied-volatility surface takes the step's index move;
3. agents act in a random order drawn from the model's generator; orders pass
   the protocol's pre-trade margin check and match continuously in the books;
   fills settle in the ledger at once;
4. mark-to-market (perps: median of index, mid, last trade; options: Black-76
   at the surface's mark implied volatility) and funding;
5. each protocol's margin engine computes equity, IM and MM of all its
   accounts in one kernel call; with ``contagion.universal_margin`` the rows of
   owners on several protocols are then replaced by their universal figures
   (:mod:`sim.contagion.universal`), which also serve those owners' pre-trade checks;
6. liquidation rounds (:mod:`sim.venue.liquidation`): undercollateralised accounts
   are offered to liquidators, backstopped by the insurance fund, and losses
   beyond equity go through the insurance fund, ADL or socialisation to
   recorded bad debt; rounds repeat (re-marking and re-margining) up to a cap;
7. issued tokens are revalued from their issuer's bad debt (:mod:`sim.contagion.tokens`)
   when ``contagion.token_impairment`` is on; with ``contagion.venue_oracle`` the
   collateral price of a token is its venue's book mid (set in phase 2);
8. metrics are collected (Mesa ``DataCollector``).

All balances live in the :class:`~sim.ledger.Ledger`; books are numba
:class:`~sim.market.book.OrderBook` instances; agents hold only parameters and row ids.
All randomness derives from ``cfg.seed``: ``self.rng`` (Mesa seeds it, and
``self.random`` used for the activation order) drives the agents; the
exogenous path draws from ``self.scenario_rng``, a stream spawned from the same
seed, so that every regime sees the same path for a seed (common random
numbers); with several protocols each may get its own agent stream
(``contagion.rng_streams``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import mesa
import numpy as np

from margin.engine import MarginInputs
from sim.config import plain_config, token_names, validate
from sim.contagion.streams import protocol_streams, uses_protocol_streams
from sim.config.capacity import MAX_TICKS, check_fundamentals
from sim.ledger import ConservationMonitor, HolderKind
from sim.market.book import CANCEL, FILL_DTYPE, MARKET, REDUCE_ONLY, RESULT_DTYPE
from sim.market.funding import mark_price
from sim.market.instruments import SPOT, Instrument
from sim.market.oracle import Oracle
from sim.market.view import MarketView
from sim.output.accounts import account_snapshot, reference_risk_engine
from sim.scenarios import build_scenario
from sim.scenarios.gbm import SECONDS_PER_YEAR
from sim.venue.engines import build_engine
from sim.venue.insurance import InsuranceState, insurance_metric_names, insurance_state
from sim.venue.liquidation import LiquidationEngine
from sim.venue.options import OPTION_METRICS, OptionGreeks, OptionMarket, fee_rates, option_metrics
from sim.venue.protocol import Protocol, make_book
from sim.world import build_agents, build_markets

__all__ = ["DEPTH_BANDS", "REJECTED_MARGIN", "MarketModel"]

DEPTH_BANDS = (0.0025, 0.005, 0.01, 0.02, 0.05)
"""Distances from the mid (fractions) at which cumulative book depth is recorded."""

_BANDS = np.asarray(DEPTH_BANDS)

REJECTED_MARGIN = -100
"""Result status of an order stopped by the pre-trade margin check."""


def _take_rows(a: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``a[rows]`` for reading: a view (same strides as the copy) when rows are a contiguous run."""
    if (len(rows) > 1 and rows[0] >= 0 and rows[-1] - rows[0] == len(rows) - 1
            and (np.diff(rows) == 1).all()):
        return a[int(rows[0]):int(rows[-1]) + 1]
    return a[rows]


class _MetricsCollector(mesa.DataCollector):
    """A ``DataCollector`` whose model reporters read ``model.metrics`` by name.

    Every metric is an immutable scalar, so once the reporters have been
    validated (first call) the values are appended as they are, without the
    per-value ``deepcopy`` of :meth:`mesa.DataCollector.collect`. Any other
    reporter set falls back to the general method.
    """

    def collect(self, model: mesa.Model) -> None:
        """Append the current value of every metric."""
        mt = model.metrics
        if (not self._validated or self.agent_reporters or self.agenttype_reporters
                or self.model_vars.keys() != mt.keys()):
            super().collect(model)
            return
        if hasattr(self, "_collection_steps"):
            self._collection_steps.append(model.time)
        for var, values in self.model_vars.items():
            values.append(mt[var])


class MarketModel(mesa.Model):
    """A world of protocols, books, a ledger and agents, stepped by Mesa.

    Args:
        cfg: A validated run config (``sim.config.RunConfig`` structure).
        check_invariants: Run the ledger conservation check after every step
            (defaults to ``cfg.check_invariants``).

    Attributes:
        conservation: The :class:`~sim.ledger.ConservationMonitor` that checks
            the ledger after every step (with ``check_invariants``) and at the
            end of a run (:func:`sim.output.runner.execute`), and records the worst
            imbalance per asset and per perp for ``summary.json``.
    """

    @property
    def rng(self) -> np.random.Generator:
        """The generator in use: the run's, or the acting protocol's own stream.

        With per-protocol streams (``contagion.rng_streams``) each protocol's
        agents and liquidation order draw from their own generator, so what
        happens on one venue cannot shift another venue's random numbers; the
        scenario always draws from the run generator.
        """
        return self._rng_active

    @rng.setter
    def rng(self, value: np.random.Generator) -> None:  # Mesa's constructor assigns it
        self._rng_base = value
        self._rng_active = value

    @contextmanager
    def in_stream(self, p: int) -> Iterator[None]:
        """Protocol ``p``'s random stream is :attr:`rng` inside the block.

        The one place where the active stream is set.
        """
        prev = self._rng_active
        self._rng_active = self._rng_streams[p]
        try:
            yield
        finally:
            self._rng_active = prev

    def _step_in_stream(self, p: int, step: Any) -> None:
        with self.in_stream(p):
            step()

    def _in_stream(self, p: int, build: Any) -> None:
        """Run ``build()`` with protocol ``p``'s stream active; wrap the agents it creates."""
        if not self.per_protocol_rng:
            build()
            return
        from functools import partial

        before = set(self.agents)
        with self.in_stream(p):
            build()
        for agent in self.agents:
            if agent not in before:
                agent.step = partial(self._step_in_stream, p, agent.step)

    def __init__(self, cfg: Any, *, check_invariants: bool | None = None) -> None:
        cfg = plain_config(cfg)
        validate(cfg)
        super().__init__(rng=int(cfg.seed))
        # The exogenous path has its own stream spawned from the same seed, so every
        # regime (whatever its agents draw) sees the same path for a seed: common
        # random numbers for paired comparisons (Law & Kelton, ch. 11).
        self.scenario_rng = np.random.default_rng(np.random.SeedSequence(int(cfg.seed)).spawn(1)[0])
        self.cfg = cfg
        self.per_protocol_rng = uses_protocol_streams(cfg.contagion.rng_streams,
                                                      len(cfg.protocols))
        self._rng_streams = protocol_streams(int(cfg.seed), len(cfg.protocols),
                                             self.per_protocol_rng, self._rng_base)
        self.check_invariants = (
            cfg.check_invariants if check_invariants is None else check_invariants
        )
        self.conservation = ConservationMonitor()
        m = cfg.market
        self.asset_names: list[str] = [m.quote, *[a.name for a in m.assets], *token_names(cfg)]
        self._n_mkt = 1 + len(m.assets)
        """Quote plus market assets: the oracle's assets; issued tokens follow."""
        ticks = np.array([float(a.tick_size) for a in m.assets])
        self._quotable = (ticks, ticks * MAX_TICKS)
        """Lowest and highest fundamental price per market asset the books can quote."""
        self.scenario = build_scenario(cfg.scenario, m)
        from sim.contagion.tokens import TokenBook

        self.tokens = TokenBook(cfg, self._n_mkt)
        self.fundamental = np.concatenate([[1.0], self.scenario.prices, self.tokens.prices()])
        self.oracle = Oracle(self.scenario.prices, cfg.oracle.latency_steps, cfg.oracle.twap_steps,
                             max_latency=getattr(self.scenario, "max_oracle_latency", 0))
        self.liquidity = 1.0
        """Market-wide liquidity multiplier from the scenario (1 normal, 0 makers withdraw)."""
        self.asset_prices = self.fundamental.copy()
        self.price_history = np.empty((cfg.steps + 1, len(self.asset_names)))
        self.price_history[0] = self.asset_prices
        markets = build_markets(cfg, self.asset_names, self.tokens)
        self.instruments: list[Instrument] = markets.instruments
        self.protocols: list[Protocol] = markets.protocols
        self.books = markets.books
        self.specs = markets.specs
        self.ledger = markets.ledger
        self.haircuts = markets.haircuts
        self.protocol_haircuts: dict[int, np.ndarray] = markets.protocol_haircuts
        """Haircuts of protocols with their own ``margin`` config (others use ``haircuts``)."""
        liq_cls = LiquidationEngine
        if self.per_protocol_rng:
            from sim.contagion.streams import StreamedLiquidationEngine as liq_cls
        self.liquidation = liq_cls(self, {p.index: p.cfg.liquidation for p in self.protocols})
        from sim.contagion.tracker import ContagionTracker

        self.contagion_tracker = ContagionTracker(self)
        self.marks = np.array([self.asset_prices[i.base] for i in self.instruments])
        self._init_options(markets.chain)
        self.last_price = np.full(len(self.instruments), np.nan)
        self.depth = np.zeros(len(self.instruments))
        self._own_depth: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        """Several protocols: per protocol (its instruments' mask, the depth its engine sees)."""
        if len(self.protocols) > 1:
            for proto in self.protocols:
                mask = np.zeros(len(self.instruments))
                mask[[i.index for i in proto.instruments]] = 1.0
                self._own_depth[proto.index] = (mask, np.zeros(len(self.instruments)))
        self.view = MarketView(self)
        self.orders_submitted = 0
        self.orders_rejected = 0
        self._step_volume = np.zeros(len(self.instruments))
        self._step_notional = np.zeros(len(self.instruments))
        self._step_trades = np.zeros(len(self.instruments), np.int64)
        self._trade_chunks: list[tuple[int, np.ndarray]] = []
        self.metrics: dict[str, float] = {}
        self._account_chunks: list[dict[str, np.ndarray]] = []
        self._agent_type_memo: dict[int, str] | None = None
        self._risk_engine: Any = None
        self._inputs_key: tuple[int, int, int] | None = None
        self._inputs: MarginInputs | None = None
        self._rows_cache: dict[int, tuple[tuple[int, Any], np.ndarray]] = {}
        self.margin_state: dict[int, tuple[np.ndarray, Any]] = {}
        self.universal = None
        """:class:`~sim.contagion.universal.UniversalMargin` if ``universal_margin``, else None."""
        if cfg.contagion.universal_margin:
            from sim.config import universal_margin_config
            from sim.contagion.universal import UniversalMargin

            self.universal = UniversalMargin(self, build_engine(
                universal_margin_config(cfg.contagion, cfg.margin), self.asset_names,
                SECONDS_PER_YEAR / cfg.market.step_seconds))
        agents = build_agents(self, self._in_stream)
        self.makers = agents.makers
        self.option_dealers = np.asarray(agents.option_dealers, np.int64)
        """Rows of option market makers and delta-hedging dealers (the dealer Greeks)."""
        self.option_books = agents.option_books
        self.leveraged = agents.leveraged
        self.arbitrageurs = agents.arbitrageurs
        self.liquidators = agents.liquidators
        self._keys = [self._instrument_keys(inst) for inst in self.instruments]
        self.datacollector = _MetricsCollector(
            model_reporters={k: (lambda mdl, k=k: mdl.metrics[k]) for k in self._metric_names()})
        self._seed_liquidity()
        self._update_depth()
        self._collect(self._evaluate_margins())

    # ------------------------------------------------------------------ build
    def _init_options(self, chain: Any) -> None:
        """The option market (None without options), marks in USD and implied vols.

        ``engine_marks`` is ``marks`` itself unless some option is quoted in a
        coin (inverse premium): engines take every mark in the pricing unit.
        """
        n = len(self.instruments)
        self.implied_vols = np.zeros(n)
        """Mark implied volatility per instrument (options; 0 elsewhere)."""
        self.options: OptionMarket | None = None
        self.option_rate = 0.0
        self.option_greeks: OptionGreeks | None = None
        self.option_epoch = 0
        """Counts option re-marks: what agents read of the options changes with it."""
        self._option_mark_key: tuple[Any, ...] | None = None
        self.engine_marks = self.marks
        self._chunk_names: dict[int, str] = {}
        self._plain = np.array([i.index for i in self.instruments if not i.is_option], np.int64)
        self._tick_of = np.array([i.tick_size for i in self.instruments])
        self._lot_of = np.array([i.lot_size for i in self.instruments])
        self._quote_of = np.array([i.quote for i in self.instruments], np.int64)
        if chain is None:
            return
        from sim.market.volsurface import VolSurface

        ocfg = self.cfg.market.options
        assets = sorted({s.asset for s in chain.slots})
        surface = VolSurface(ocfg.surface, self.asset_prices[assets], self.scenario.dt,
                             assets=[self.asset_names[a] for a in assets])
        self.options = OptionMarket(chain, self.instruments, ocfg, self.cfg.market.step_seconds,
                                    self.scenario.dt, surface, assets)
        self._surface_assets = np.array(assets, np.int64)
        self.option_rate = float(ocfg.rate)
        self.option_index = np.full(len(self.instruments), -1, np.int64)
        """Chain position of each instrument (-1 for non-options)."""
        self.option_index[chain.instruments] = np.arange(len(chain.instruments))
        if (self.options.quote != 0).any():
            self.engine_marks = self.marks.copy()
        self.options.list_due(0, self.asset_prices)
        self._write_option_specs()
        self._mark_options()

    def _write_option_specs(self) -> None:
        """Copy the chain's strikes and expiries (years) into the engines' instrument specs.

        An unlisted slot keeps its last strike and expires now (a finite, zero-value mark).
        """
        o = self.options
        listed = o.listed()
        self.specs.strike[o.slots] = np.where(listed, o.chain.strike, self.specs.strike[o.slots])
        self.specs.expiry[o.slots] = np.where(listed, o.chain.expiry_step, self.steps) \
            * self.scenario.dt

    def _mark_options(self) -> None:
        """Option marks (quote unit and USD), implied vols and Greeks from the surface.

        They depend on the step, the chain, the surface and the index only, so a
        re-mark with none of those changed (between liquidation rounds) is skipped.
        """
        o = self.options
        key = (self.steps, len(o.events), self.asset_prices[self._surface_assets].tobytes())
        if key == self._option_mark_key:
            return
        self._option_mark_key = key
        iv = o.implied_vols(self.steps, self.asset_prices)
        greeks = o.greeks(self.steps, self.asset_prices, iv)
        quote_marks, usd_marks = o.marks(greeks, self.asset_prices)
        self.implied_vols[o.slots] = iv
        self.marks[o.slots] = quote_marks
        if self.engine_marks is not self.marks:
            self.engine_marks[self._plain] = self.marks[self._plain]
            self.engine_marks[o.slots] = usd_marks
        self.option_greeks = greeks
        self.option_epoch += 1

    def _expire_and_list(self) -> None:
        """Phase 2 for options: settle what expires now, list new expiries, move the surface.

        A settled slot gets a fresh book (its resting orders are gone with the contract).
        """
        o = self.options
        settled = o.settle_due(self.steps, self.ledger, self.price_history, self.protocols)
        for j in settled:
            self.books[j] = make_book(self.protocols[self.instruments[j].protocol].cfg.stp)
        listed = o.list_due(self.steps, self.asset_prices)
        if settled or listed:
            self._write_option_specs()
        o.surface.update(self.asset_prices[self._surface_assets],
                         self.scenario.vol_factors(self.steps, self._surface_assets - 1))

    def _fee_rate(self, j: int, proto: Protocol, price: np.ndarray) -> float:
        """The taker fee rate a pre-trade check charges on instrument ``j``'s orders.

        The protocol's taker fee, or for an option the highest rate on the
        premium of the batch (Deribit: a share of the underlying, capped).
        """
        if not self.instruments[j].is_option:
            return proto.cfg.taker_fee
        o = self.cfg.market.options
        under = float(self.asset_prices[self.instruments[j].base])
        if len(price) == 0:
            return 0.0
        return float(fee_rates(o.taker_fee, o.fee_cap, under, np.asarray(price)).max())

    def open_trader(self, protocol: int, owner: int, usd: float, base_notional: float) -> int:
        """Open a funded trader account: ``usd`` of quote plus ``base_notional`` of each asset.

        The base assets are those the protocol lists (``ProtocolConfig.assets``),
        and the account gets the protocol's issued-token holdings.
        """
        row = self.ledger.open_account(HolderKind.TRADER, owner=owner, protocol=protocol)
        if usd > 0:
            self.ledger.deposit(row, 0, usd)
        if base_notional > 0:
            for a in self.protocols[protocol].listed_assets:
                self.ledger.deposit(row, a, base_notional / self.asset_prices[a])
        for a, value in self.tokens.holdings(self.protocols[protocol].name):
            self.ledger.deposit(row, a, value / self.asset_prices[a])
        self.protocols[protocol].accounts.append(row)
        return row

    def _seed_liquidity(self) -> None:
        """Market makers quote once before the first step so books start two-sided."""
        for maker in self.makers:
            maker.quote()

    # ----------------------------------------------------------- order path
    def margin_inputs(self) -> MarginInputs:
        """Current ledger state of every row as margin-engine inputs (views, no copies)."""
        lg = self.ledger
        hist = self.price_history[:self.steps + 1]
        entry = lg.entry_price
        if self.engine_marks is not self.marks:  # coin-quoted options: entries in USD too
            entry = entry.copy()
            slots = self.options.slots
            entry[:, slots] *= self.asset_prices[self.options.quote][None, :]
        return MarginInputs(lg.collateral, lg.position, entry, self.asset_prices,
                            self.engine_marks, self.specs, self.haircuts, price_history=hist,
                            implied_vols=self.implied_vols, time=self.steps * self.scenario.dt,
                            rate=self.option_rate, depth=self.depth)

    def shared_margin_inputs(self) -> MarginInputs:
        """:meth:`margin_inputs`, built again only when the step, ledger rows or history change.

        Its arrays are live views, so in-place updates (fills, marks, prices)
        show through; for the model's own read-only use (pre-trade checks,
        per-step evaluation).
        """
        key = (self.steps, self.ledger.n_accounts, id(self.price_history))
        if self._inputs_key != key:
            self._inputs = self.margin_inputs()
            self._inputs_key = key
        return self._inputs

    def protocol_inputs(self, p: int) -> MarginInputs:
        """:meth:`shared_margin_inputs` with protocol ``p``'s own haircuts and book depth.

        With several protocols an engine sees the depth of its own protocol's
        books only (zero elsewhere): a liquidity add-on on a spot balance must
        not read another venue's book, which would be a contagion channel that
        no ``contagion.*`` switch controls.
        """
        inputs = self.shared_margin_inputs()
        changes: dict[str, Any] = {}
        own = self.protocol_haircuts.get(p)
        if own is not None:
            changes["haircuts"] = own
        if p in self._own_depth:
            changes["depth"] = self._own_depth[p][1]
        return replace(inputs, **changes) if changes else inputs

    def _book_prices(self, j: int, events: np.ndarray) -> np.ndarray:
        """Expected fill price of each event in the book's quote unit (market orders: a sweep)."""
        inst = self.instruments[j]
        price = events["price"].astype(np.float64) * inst.tick_size
        market = events["kind"] == MARKET
        if market.any():
            book = self.books[j]
            for e in np.flatnonzero(market):
                side = int(events["side"][e])
                sweep = book.sweep_cost(side, int(events["qty"][e]))
                price[e] = sweep.vwap * inst.tick_size if sweep.filled_qty > 0 else self.marks[j]
        return price

    def _expected_prices(self, j: int, events: np.ndarray) -> np.ndarray:
        """:meth:`_book_prices` in the pricing unit the engines take (coin-quoted options)."""
        price = self._book_prices(j, events)
        quote = self.instruments[j].quote
        return price * self.asset_prices[quote] if quote != 0 else price

    def submit(self, j: int, events: np.ndarray) -> np.ndarray:
        """Pre-trade check, match in book ``j``, settle fills; see :meth:`MarketView.submit`."""
        inst = self.instruments[j]
        proto = self.protocols[inst.protocol]
        new = events["kind"] != CANCEL
        check = new & ((events["flags"] & REDUCE_ONLY) == 0)
        rejected = self._pretrade(j, inst, proto, events, check) if check.any() else None
        self.orders_submitted += int(new.sum())
        if len(events) == 0:
            return np.zeros(0, dtype=RESULT_DTYPE)
        return self._match(inst, proto, events, rejected)

    def _match(self, inst: Instrument, proto: Protocol, events: np.ndarray,
               rejected: np.ndarray | None) -> np.ndarray:
        """Match ``events`` in the instrument's book (but the ``rejected``) and settle fills."""
        book = self.books[inst.index]
        k = book.n_fills
        if rejected is None:
            results = book.apply_events(events, step=self.steps)
        else:
            results = self._apply_with_rejections(book, events, rejected)
        if book.n_fills > k:
            self._settle(inst, proto, book.fills_since(k))
        return results

    def submit_many(self, batch: list[tuple[int, np.ndarray]]) -> list[np.ndarray]:
        """:meth:`submit` of several books of one protocol with one pre-trade check.

        The orders of every item are checked together, in batch order, each
        assuming the earlier ones filled in full (the engine's sequential rule,
        :meth:`margin.MarginEngine.pretrade`), with the highest fee rate of the
        batch; then each book matches its events and fills settle. Used by
        agents quoting many books at once (option market makers); with
        universal margin the items are submitted one by one.
        """
        protos = {self.instruments[j].protocol for j, _ in batch}
        if len(batch) <= 1 or self.universal is not None or len(protos) > 1:
            return [self.submit(j, ev) for j, ev in batch]
        proto = self.protocols[protos.pop()]
        lens = np.array([len(ev) for _, ev in batch], np.int64)
        inst_of = np.repeat(np.array([j for j, _ in batch], np.int64), lens)
        evs = np.concatenate([ev for _, ev in batch])
        new = evs["kind"] != CANCEL
        check = new & ((evs["flags"] & REDUCE_ONLY) == 0)
        self.orders_submitted += int(new.sum())
        ok = np.ones(len(evs), np.bool_)
        if check.any():
            idx = np.flatnonzero(check)
            j_of = inst_of[idx]
            price = evs["price"][idx] * self._tick_of[j_of]
            for e in np.flatnonzero(evs["kind"][idx] == MARKET).tolist():  # rare: a sweep
                price[e] = self._book_prices(int(j_of[e]), evs[idx[e]:idx[e] + 1])[0]
            price *= self.asset_prices[self._quote_of[j_of]]  # engines price in USD
            delta = (evs["side"][idx] * evs["qty"][idx] * self._lot_of[j_of]).astype(np.float64)
            fee = max(self._fee_rate(j, proto, price[j_of == j]) for j in np.unique(j_of).tolist())
            ok[idx] = proto.engine.pretrade(self.protocol_inputs(proto.index), evs["owner"][idx],
                                            j_of, delta, price, fee)
            self.orders_rejected += int((~ok[idx]).sum())
        out, at = [], 0
        for (j, ev), n in zip(batch, lens.tolist(), strict=True):
            bad = np.flatnonzero(~ok[at:at + n])
            at += n
            out.append(self._match(self.instruments[j], proto, ev, bad if len(bad) else None))
        return out

    def _pretrade(self, j: int, inst: Instrument, proto: Protocol, events: np.ndarray,
                  check: np.ndarray) -> np.ndarray | None:
        """Pre-trade margin check of the ``check`` events: indices of rejected ones, or None."""
        everything = check.all()
        ev = events if everything else events[check]
        price = self._expected_prices(j, ev)
        delta = ev["side"] * ev["qty"] * inst.lot_size
        fee = self._fee_rate(j, proto, price)
        if self.universal is not None:
            ok = self._pretrade_universal(j, proto, ev, delta.astype(np.float64), price, fee)
        else:
            ok = proto.engine.pretrade(self.protocol_inputs(proto.index), ev["owner"],
                                       np.full(len(ev), j), delta.astype(np.float64), price,
                                       fee)
        if ok.all():
            return None
        rejected = np.flatnonzero(~ok) if everything else np.flatnonzero(check)[~ok]
        self.orders_rejected += len(rejected)
        return rejected

    def _pretrade_universal(self, j: int, proto: Protocol, ev: np.ndarray, delta: np.ndarray,
                            price: np.ndarray, fee: float) -> np.ndarray:
        """Pre-trade check with universal margin: owners on several venues by the universal engine.

        Rows of universal owners go to :meth:`sim.contagion.universal.UniversalMargin.pretrade`,
        the others to the protocol's engine as in siloed mode (accounts are
        independent, so splitting a batch keeps each account's sequence).
        """
        owners = np.asarray(ev["owner"], np.int64)
        member = self.universal.is_member(owners)
        ok = np.ones(len(ev), np.bool_)
        rest = ~member
        if rest.any():
            ok[rest] = proto.engine.pretrade(self.protocol_inputs(proto.index), owners[rest],
                                             np.full(int(rest.sum()), j), delta[rest], price[rest],
                                             fee)
        if member.any():
            ok[member] = self.universal.pretrade(j, owners[member], delta[member], price[member],
                                                 fee)
        return ok

    def _apply_with_rejections(self, book: Any, events: np.ndarray,
                               rejected: np.ndarray) -> np.ndarray:
        """Match all but the ``rejected`` events; those get order id -1 and ``REJECTED_MARGIN``."""
        results = np.zeros(len(events), dtype=RESULT_DTYPE)
        results["order_id"] = -1
        results["status"][rejected] = REJECTED_MARGIN
        keep = np.ones(len(events), np.bool_)
        keep[rejected] = False
        if keep.any():
            results[keep] = book.apply_events(events[keep], step=self.steps)
        return results

    def _settle(self, inst: Instrument, proto: Protocol, fills: np.ndarray) -> None:
        price = fills["price"] * inst.tick_size
        qty = fills["qty"] * inst.lot_size
        if inst.is_option:  # Deribit: a fraction of the underlying, capped at a share of premium
            o = self.cfg.market.options
            under = 1.0 if inst.quote != 0 else float(self.asset_prices[inst.base])
            self.ledger.settle_fills(inst.index, fills["maker_owner"], fills["taker_owner"],
                                     fills["taker_side"], price, qty,
                                     fee_rates(o.maker_fee, o.fee_cap, under, price),
                                     fee_rates(o.taker_fee, o.fee_cap, under, price),
                                     proto.treasury)
            self._chunk_names[len(self._trade_chunks)] = self.options.chain.names[
                self.option_index[inst.index]]
        else:
            self.ledger.settle_fills(inst.index, fills["maker_owner"], fills["taker_owner"],
                                     fills["taker_side"], price, qty, proto.cfg.maker_fee,
                                     proto.cfg.taker_fee, proto.treasury, checked=False)
        self.last_price[inst.index] = price[-1]
        self._step_volume[inst.index] += qty.sum()
        self._step_notional[inst.index] += (price * qty).sum()
        self._step_trades[inst.index] += len(fills)
        self._trade_chunks.append((inst.index, fills))

    # ------------------------------------------------------------------ step
    def step(self) -> None:
        """Advance the world by one step (phases in the module docstring)."""
        self._step_volume[:] = 0.0
        self._step_notional[:] = 0.0
        self._step_trades[:] = 0
        t = self.steps
        n = self._n_mkt
        self.fundamental[1:n] = self.scenario.advance(self.scenario_rng)
        check_fundamentals(t, self.fundamental[1:n], self.asset_names[1:n], *self._quotable)
        self.asset_prices[1:n] = self.oracle.publish(self.fundamental[1:n],
                                                    latency=self.scenario.oracle_latency(t),
                                                    stale=self.scenario.oracle_stale(t))
        if self.cfg.oracle.venue_weight > 0.0:
            self._blend_venue_prices(n)
        self.liquidity = float(self.scenario.liquidity(t))
        if self.tokens:
            for a, price in self.tokens.publish(self.fundamental, self.books,
                                                self.instruments).items():
                self.asset_prices[a] = price
        if self.steps >= len(self.price_history):  # stepping past cfg.steps: grow
            self.price_history = np.concatenate([self.price_history,
                                                 np.empty_like(self.price_history)])
        self.price_history[self.steps] = self.asset_prices
        if self.options is not None:
            self._expire_and_list()
            self._mark_options()
        self.agents.shuffle_do("step")
        self._mark_and_fund()
        result = self._evaluate_margins()
        result = self.liquidation.run(self.steps, result, self._reprice)  # phase 6: cascades
        if self.tokens:  # phase 7: issued tokens revalued from their issuers' solvency
            self.revalue_tokens()
        self.contagion_tracker.update(self.steps, result, self.liquidation.step_stats,
                                      self.liquidation.bad_debt)
        if self.check_invariants:
            self.conservation.check(self.ledger, self.marks, step=self.steps)
            self.liquidation.check_bad_debt()
        self._collect(result)

    def _depth_profile(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative resting notional within each of ``DEPTH_BANDS`` of the mid: (bid, ask).

        Over the best 5,000 levels per side, in one kernel call per side
        (:func:`sim.market.book.analytics.band_notional`).
        """
        book = self.books[j]
        mid = book.mid()
        if mid is None:
            return np.zeros(len(DEPTH_BANDS)), np.zeros(len(DEPTH_BANDS))
        inst = self.instruments[j]
        return (book.band_notional(1, mid, _BANDS, inst.tick_size, inst.lot_size, 5000),
                book.band_notional(-1, mid, _BANDS, inst.tick_size, inst.lot_size, 5000))

    def _update_depth(self) -> None:
        """One-side average depth within 1 % of the mid: the liquidity add-on's yardstick."""
        for j in self._plain.tolist():
            self.depth[j] = 0.5 * self._depth_within(j, 0.01)
        for mask, own in self._own_depth.values():  # a venue sees only its own books
            np.multiply(self.depth, mask, out=own)

    def update_marks(self) -> None:
        """Re-mark every instrument from its index, book mid and last trade (no funding).

        Called once per step before funding, and again between liquidation
        rounds so that a cascade sees the prices its own trades made.
        """
        self._update_depth()
        for inst in self.instruments:
            j = inst.index
            index = self.asset_prices[inst.base]
            if inst.is_option:
                continue
            if not inst.is_perp:
                self.marks[j] = index
                continue
            last = None if np.isnan(self.last_price[j]) else float(self.last_price[j])
            proto = self.protocols[inst.protocol]
            if proto.cfg.mark_price == "median":
                self.marks[j] = mark_price(float(index), self.view.mid(j), last)
            else:
                self.marks[j] = proto.funding[j].mark(float(index), last, self.steps)
        if self.options is not None:
            self._mark_options()

    def _mark_and_fund(self) -> None:
        self.update_marks()
        for inst in self.instruments:
            if not inst.is_perp:
                continue
            j = inst.index
            clock = self.protocols[inst.protocol].funding[j]
            clock.sample(self.view.mid(j), self.asset_prices[inst.base])
            if clock.due(self.steps):
                self.ledger.apply_funding(j, clock.settle(), float(self.marks[j]))

    def revalue_tokens(self) -> None:
        """Phase 7: write the issued tokens' values from their issuers' solvency.

        Values come from :meth:`sim.contagion.tokens.TokenBook.revalue`; only the model
        writes its price arrays.
        """
        values, prices = self.tokens.revalue(self.liquidation.bad_debt)
        for a, value in values.items():
            self.fundamental[a] = value
        for a, price in prices.items():
            self.asset_prices[a] = price

    def _reprice(self) -> dict[int, tuple[np.ndarray, Any]]:
        """Re-mark the books and re-evaluate every account (between liquidation rounds)."""
        self.update_marks()
        return self._evaluate_margins()

    def evaluate_margins(self) -> dict[int, tuple[np.ndarray, Any]]:
        """Each protocol's engine over its accounts: ``{protocol: (rows, MarginResult)}``.

        The result is also kept as ``self.margin_state`` for agents' views.
        """
        return self._evaluate_margins()

    def _evaluate_margins(self) -> dict[int, Any]:
        out = {}
        for proto in self.protocols:
            rows = self._account_rows(proto)
            inputs = self.protocol_inputs(proto.index)
            out[proto.index] = (rows, proto.engine.evaluate(inputs.subset(rows)))
        if self.universal is not None:
            out = self.universal.apply(out)
        self.margin_state = out
        return out

    def _account_rows(self, proto: Protocol) -> np.ndarray:
        """``proto.accounts`` as a fresh int64 array, converted again only when the list grows."""
        accounts = proto.accounts
        key = (len(accounts), accounts[-1] if accounts else None)
        cached = self._rows_cache.get(proto.index)
        if cached is None or cached[0] != key:
            cached = (key, np.asarray(accounts, np.int64))
            self._rows_cache[proto.index] = cached
        return cached[1].copy()

    # --------------------------------------------------------------- metrics
    def _metric_names(self) -> list[str]:
        names = ["step", "orders_submitted", "orders_rejected_margin"]
        for a in self.asset_names[1:]:
            names += [f"{a}.fundamental", f"{a}.index"]
        for inst in self.instruments:
            if inst.is_option:  # options are reported per protocol and underlying
                continue
            n = inst.name
            names += [f"{n}.mid", f"{n}.spread_bps", f"{n}.last", f"{n}.volume", f"{n}.notional",
                      f"{n}.trades", f"{n}.depth_1pct"]
            names += [
                f"{n}.depth_{side}_{b * 100:g}pct" for side in ("bid", "ask") for b in DEPTH_BANDS
            ]
            if inst.is_perp:
                names += [f"{n}.mark", f"{n}.funding_rate", f"{n}.open_interest",
                          f"{n}.leveraged_oi_share"]
        for p in self.protocols:
            names += [f"{p.name}.{k}" for k in ("equity", "initial_margin", "maintenance_margin",
                                                "gross_notional", "spot_notional",
                                                "haircut_margin",
                                                "below_maintenance", "negative_equity", "treasury",
                                                "insurance_fund")]
            names += insurance_metric_names(p.name)
        names += self._token_collateral_names()
        names += self.liquidation.metric_names()
        names += [name for *_, name in self._option_metric_keys()]
        return names

    def _option_metric_keys(self) -> list[tuple[int, int, str, str]]:
        """``(protocol, asset, field, metric name)`` of the option aggregates (empty without)."""
        if self.options is None:
            return []
        out = []
        for p, a in dict.fromkeys(self.options.chain.group_key):
            prefix = f"{self.protocols[p].name}.{self.asset_names[a]}.opt_"
            out += [(p, a, f, prefix + f) for f in OPTION_METRICS]
        return out

    def _token_collateral_names(self) -> list[str]:
        """``<protocol>.<token>_collateral`` for every token issued by another protocol.

        Only worlds with issued tokens get these columns, so a single-venue run's
        time series is unchanged.
        """
        return [f"{p.name}.{t.name}_collateral" for p in self.protocols
                for t in self.tokens.tokens if t.issuer != p.index]

    def _depth_within(self, j: int, frac: float) -> float:
        """Resting quantity (base units, both sides) within ``frac`` of the mid.

        Counts the best 1,000 levels of each side.
        """
        book = self.books[j]
        mid = book.mid()
        if mid is None:
            return 0.0
        lots = book.lots_within(mid * (1 - frac), mid * (1 + frac), 1000)
        return float(lots * self.instruments[j].lot_size)

    @staticmethod
    def _instrument_keys(inst: Instrument) -> dict[str, Any]:
        """Metric names of one instrument, formatted once (see :meth:`_metric_names`)."""
        n = inst.name
        keys: dict[str, Any] = {k: f"{n}.{k}" for k in (
            "mid", "spread_bps", "last", "volume", "notional", "trades", "depth_1pct", "mark",
            "funding_rate", "open_interest", "leveraged_oi_share")}
        for side in ("bid", "ask"):
            keys[side] = [f"{n}.depth_{side}_{b * 100:g}pct" for b in DEPTH_BANDS]
        return keys

    def _collect(self, margins: dict[int, Any]) -> None:
        mt = self.metrics
        mt["step"] = self.steps
        mt["orders_submitted"] = self.orders_submitted
        mt["orders_rejected_margin"] = self.orders_rejected
        for a, name in enumerate(self.asset_names[1:], start=1):
            mt[f"{name}.fundamental"] = float(self.fundamental[a])
            mt[f"{name}.index"] = float(self.asset_prices[a])
        pos = self.ledger.position
        for inst in self.instruments:
            if not inst.is_option:
                self._collect_instrument(mt, inst, pos)
        self._collect_protocols(mt, margins, pos)
        self.liquidation.write_metrics(mt)
        every = int(self.cfg.output.accounts_every)
        if every > 0 and self.steps % every == 0:
            self._account_chunks.append(account_snapshot(
                self.steps, margins, self.ledger, self.instruments, self.asset_names,
                self.asset_prices, self.marks, self._agent_types(), self.option_greeks,
                self._reference_risk(margins),
                {p.index: self.protocol_haircuts.get(p.index, self.haircuts)
                 for p in self.protocols}))
        if self.options is not None:
            mt.update(option_metrics(self._option_metric_keys(), self.options, self.option_greeks,
                                     pos, self.option_dealers, self.instruments,
                                     self._step_volume, self._step_notional,
                                     self.asset_prices))
        self.datacollector.collect(self)

    def _collect_instrument(self, mt: dict[str, Any], inst: Instrument, pos: np.ndarray) -> None:
        """Prices, flows and depth of one instrument (and mark, funding, OI of a perp)."""
        j = inst.index
        keys = self._keys[j]
        mid = self.view.mid(j)
        book = self.books[j]
        bb, ba = book.best_bid(), book.best_ask()
        mt[keys["mid"]] = np.nan if mid is None else mid
        mt[keys["spread_bps"]] = (np.nan if mid is None
                                  else (ba - bb) * inst.tick_size / mid * 1e4)
        mt[keys["last"]] = float(self.last_price[j])
        mt[keys["volume"]] = float(self._step_volume[j])
        mt[keys["notional"]] = float(self._step_notional[j])
        mt[keys["trades"]] = int(self._step_trades[j])
        mt[keys["depth_1pct"]] = float(self.depth[j] * 2 * (0.0 if mid is None else mid))
        bid, ask = self._depth_profile(j)
        mt.update(zip(keys["bid"], bid, strict=True))
        mt.update(zip(keys["ask"], ask, strict=True))
        if inst.is_perp:
            mt[keys["mark"]] = float(self.marks[j])
            mt[keys["funding_rate"]] = self.protocols[inst.protocol].funding[j].last_rate
            # np.maximum(x, 0) is what np.clip(x, 0, None) computes, minus the wrapper
            oi = float(np.maximum(pos[:, j], 0).sum())
            mt[keys["open_interest"]] = oi
            # the leveraged traders' share of all positions held (long and short sides)
            lev = self._leveraged_rows()
            mt[keys["leveraged_oi_share"]] = (float(np.abs(pos[lev, j]).sum()) / (2.0 * oi)
                                              if oi > 0.0 else np.nan)

    def _blend_venue_prices(self, n: int) -> None:
        """Composite index: ``(1 − v) × outside + v × median venue mid`` per asset.

        The venues' mids are those of the asset's spot books on every
        protocol, or of its perpetuals where no protocol lists spot, as the
        previous step left them (``oracle.venue_weight``; Binance's index is a
        weighted average of spot prices on several exchanges, its own
        included). An asset with no two-sided book keeps the outside price.
        """
        v = float(self.cfg.oracle.venue_weight)
        for a in range(1, n):
            books = [i.index for i in self.instruments if i.base == a and i.kind == SPOT]
            if not books:
                books = [i.index for i in self.instruments if i.base == a and i.is_perp]
            mids = [m for m in (self.view.mid(j) for j in books) if m is not None]
            if mids:
                self.asset_prices[a] = (1.0 - v) * self.asset_prices[a] + v * float(
                    np.median(mids))

    def _leveraged_rows(self) -> np.ndarray:
        """Ledger rows of every leveraged trader (all populations)."""
        pops = getattr(self, "leveraged", ())
        return (np.concatenate([pop.accounts for pop in pops]) if pops
                else np.zeros(0, np.int64))

    def _collect_protocols(self, mt: dict[str, Any], margins: dict[int, Any],
                           pos: np.ndarray) -> None:
        """Margin aggregates, treasury and insurance fund of every protocol."""
        coll = self.ledger.collateral
        for p in self.protocols:
            _rows, res = margins[p.index]
            mt[f"{p.name}.equity"] = float(res.equity.sum())
            mt[f"{p.name}.initial_margin"] = float(res.initial.sum())
            mt[f"{p.name}.maintenance_margin"] = float(res.maintenance.sum())
            perps = [i.index for i in p.instruments if i.is_perp]
            held = _take_rows(pos, _rows)
            mt[f"{p.name}.gross_notional"] = float(
                (np.abs(held[:, perps]) * self.marks[perps]).sum()) if perps else 0.0
            # balances other than the quote asset: their notional, and the value their
            # haircuts hold back (the margin on spot under haircut-based regimes)
            bal = _take_rows(coll, _rows)[:, 1:]
            px = self.asset_prices[1:]
            cut = self.protocol_haircuts.get(p.index, self.haircuts)[1:]
            mt[f"{p.name}.spot_notional"] = float((np.abs(bal) * px).sum())
            mt[f"{p.name}.haircut_margin"] = float((np.maximum(bal, 0.0) * (px * cut)).sum())
            mt[f"{p.name}.below_maintenance"] = int(res.below_maintenance.sum())
            mt[f"{p.name}.negative_equity"] = int((res.equity < 0).sum())
            mt[f"{p.name}.treasury"] = float(coll[p.treasury, 0])
        value = self.ledger.account_value(self.asset_prices, self.marks)
        for p in self.protocols:
            # the fund may hold positions and assets taken over from bankrupt accounts:
            # insurance_fund is its marked equity (as insurance_equity), see sim.venue.insurance
            mt[f"{p.name}.insurance_fund"] = float(value[p.insurance])
            self._collect_insurance(mt, p, float(value[p.insurance]))
            rows = margins[p.index][0]
            for t in self.tokens.tokens:
                if t.issuer != p.index:  # collateral value at the current collateral price
                    mt[f"{p.name}.{t.name}_collateral"] = float(
                        coll[rows, t.asset].sum() * self.asset_prices[t.asset])

    def insurance_state(self, protocol: Protocol, value: float | None = None) -> InsuranceState:
        """The protocol's insurance fund valued at the current prices (:mod:`sim.venue.insurance`).

        Args:
            protocol: The protocol.
            value: The fund row's account value if already computed.
        """
        return insurance_state(self.ledger, protocol.insurance, self.asset_prices, self.marks,
                               float(protocol.cfg.insurance_fund), value=value)

    def _collect_insurance(self, mt: dict[str, Any], p: Protocol, value: float) -> None:
        """The fund's cash, marked equity, position notional, loss and bad debt at mark."""
        st = self.insurance_state(p, value)
        bad = float(self.liquidation.bad_debt.get(p.index, 0.0))
        mt[f"{p.name}.insurance_cash"] = st.cash
        mt[f"{p.name}.insurance_equity"] = st.equity
        mt[f"{p.name}.insurance_position_notional"] = st.position_notional
        mt[f"{p.name}.insurance_loss"] = st.loss
        mt[f"{p.name}.bad_debt_uncovered_at_mark"] = st.uncovered
        mt[f"{p.name}.bad_debt_total_at_mark"] = bad + st.uncovered

    # --------------------------------------------------------------- outputs
    def _agent_types(self) -> dict[int, str]:
        """Agent type by owner id (an option-book population adds its book type)."""
        if self._agent_type_memo is None:
            self._agent_type_memo = {
                a.unique_id: (type(a).__name__ if getattr(a, "book", None) is None
                              else f"{type(a).__name__}:{a.book}") for a in self.agents}
        return self._agent_type_memo

    def _reference_risk(self, margins: dict[int, Any]) -> np.ndarray:
        """Reference stress loss of every ledger row (``sim.output.accounts``), NaN where unset."""
        if self._risk_engine is None:
            vols = {a.name: float(a.vol) for a in self.cfg.market.assets}
            self._risk_engine = reference_risk_engine(self.asset_names, vols)
        out = np.full(self.ledger.n_accounts, np.nan)
        rows = np.concatenate([r for r, _ in margins.values()])
        if len(rows):
            inputs = replace(self.shared_margin_inputs().subset(rows),
                             haircuts=np.zeros(len(self.asset_names)))  # the same for every regime
            out[rows] = self._risk_engine.evaluate(inputs).initial
        return out

    def accounts_table(self) -> dict[str, np.ndarray]:
        """The account snapshots of the run (``output.accounts_every``) as columns."""
        if not self._account_chunks:
            return {}
        return {k: np.concatenate([c[k] for c in self._account_chunks])
                for k in self._account_chunks[0]}

    def option_events_table(self) -> dict[str, np.ndarray]:
        """Listing and settlement events of the options (empty without options)."""
        return {} if self.options is None else self.options.events_table()

    def trades_table(self) -> dict[str, np.ndarray]:
        """All fills of the run as columns (step order, then book order)."""
        if not self._trade_chunks:
            fills = np.zeros(0, dtype=FILL_DTYPE)
            inst_idx = np.zeros(0, np.int64)
        else:
            fills = np.concatenate([f for _, f in self._trade_chunks])
            inst_idx = np.concatenate([np.full(len(f), j, np.int64) for j, f in self._trade_chunks])
        tick = np.array([i.tick_size for i in self.instruments])[inst_idx]
        lot = np.array([i.lot_size for i in self.instruments])[inst_idx]
        price = fills["price"] * tick
        qty = fills["qty"] * lot
        names = [self._chunk_names.get(c, self.instruments[j].name)
                 for c, (j, f) in enumerate(self._trade_chunks) for _ in range(len(f))]
        return {
            "step": fills["step"].astype(np.int64),
            "protocol": np.array([self.instruments[j].protocol for j in inst_idx], np.int64),
            "instrument": np.array(names, dtype=object),
            "price": price,
            "qty": qty,
            "notional": price * qty,
            "taker_side": fills["taker_side"].astype(np.int64),
            "maker_account": fills["maker_owner"].astype(np.int64),
            "taker_account": fills["taker_owner"].astype(np.int64),
            "maker_order": fills["maker_order"].astype(np.int64),
            "taker_order": fills["taker_order"].astype(np.int64),
        }
