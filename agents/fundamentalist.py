"""Value investors (fundamentalists) acting as one vectorised population.

A fundamentalist believes the asset is worth its oracle index ``v`` and trades
against the book's deviation from it: with mispricing ``m = (v − mid) / v`` it
buys when ``m > 0`` and sells when ``m < 0``, with a demand proportional to
``|m|``. This is the fundamentalist of Chiarella (1992, "The dynamics of
speculative behaviour", Annals of Operations Research 37:101–123), the value
investor of Farmer & Joshi (2002, "The price dynamics of common trading
strategies", JEBO 49:149–171, §3.1: a deadband threshold below which the
mispricing is ignored) and of Thurner, Farmer & Geanakoplos (2012, "Leverage
causes fat tails and clustered volatility", Quantitative Finance 12(5), demand
``β · m · W`` with a per-fund aggressiveness ``β``; reference note
``contagion_and_peers.md`` §1.6).

Per step, each trader independently trades with probability ``trade_prob`` on
one of the population's instruments drawn uniformly. Its order notional is
``β_i · |m| · usd`` (``β_i`` drawn once per trader, uniform in ``[beta_min,
beta_max]``), capped at ``max_order_notional`` and by the room left under
``max_position_notional`` (perp position, or spot holding away from its initial
one; orders that shrink the exposure are never capped by it). A share
``market_prob`` of orders are market orders; the rest are immediate-or-cancel
limit orders priced at the index — a value investor sweeps the book up to its
value and no further.

Randomness: every step draws, from ``model.rng`` and in this order, ``n``
activation uniforms, then for the active traders an instrument index and a
market-order uniform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mesa
import numpy as np

from sim.checks import check_number as _number
from sim.checks import invalid as _fail
from sim.view import IOC, LIMIT, MARKET

__all__ = [
    "FundamentalistConfig",
    "FundamentalistPopulation",
    "capped_notional",
    "exposure_notional",
    "order_events",
    "validate_fundamentalist_config",
]


@dataclass
class FundamentalistConfig:
    """Value investors trading toward the oracle index (Chiarella 1992; Farmer & Joshi 2002).

    Attributes:
        n: Number of traders (each one ledger account); 0 disables the population.
        trade_prob: Probability that a trader sends an order in a step.
        threshold_bps: Deadband: no order while ``|index − mid| / index`` is
            below this many basis points (Farmer & Joshi's entry threshold;
            a taker fee of 5 bps makes smaller deviations unprofitable).
        beta_min: Lowest aggressiveness ``β`` (order notional per unit of
            relative mispricing, as a multiple of ``usd``).
        beta_max: Highest aggressiveness; ``β`` is uniform on ``[beta_min,
            beta_max]`` per trader, as TFG's funds differ in ``β``. With the
            defaults a 10 bps mispricing gives orders of 1,000–5,000 USD.
        market_prob: Share of orders sent as market orders; the rest are IOC
            limit orders at the index.
        max_order_notional: Cap on one order's notional, in quote units.
        max_position_notional: Orders may not take the absolute exposure of a
            trader past this notional (perp position, or spot holding away
            from the initial one).
        usd: Initial quote collateral per trader (also the wealth ``W`` that
            scales orders).
        base_notional: Initial holding of each base asset, in quote value.
    """

    n: int = 50
    trade_prob: float = 0.05
    threshold_bps: float = 5.0
    beta_min: float = 10.0
    beta_max: float = 50.0
    market_prob: float = 0.5
    max_order_notional: float = 20_000.0
    max_position_notional: float = 100_000.0
    usd: float = 100_000.0
    base_notional: float = 50_000.0


def validate_fundamentalist_config(cfg: Any, prefix: str = "agents.fundamentalist") -> None:
    """Check a :class:`FundamentalistConfig` (or an OmegaConf node of that shape).

    Raises:
        ValueError: One line naming the first bad key, its value and what is allowed.
    """
    _number(f"{prefix}.n", cfg.n, 0, 1_000_000)
    _number(f"{prefix}.trade_prob", cfg.trade_prob, 0.0, 1.0)
    _number(f"{prefix}.threshold_bps", cfg.threshold_bps, 0.0, 10_000.0)
    _number(f"{prefix}.beta_min", cfg.beta_min, 0.0)
    _number(f"{prefix}.beta_max", cfg.beta_max, 0.0)
    if cfg.beta_max < cfg.beta_min:
        _fail(f"{prefix}.beta_max", cfg.beta_max, f"must be >= beta_min ({cfg.beta_min})")
    _number(f"{prefix}.market_prob", cfg.market_prob, 0.0, 1.0)
    _number(f"{prefix}.max_order_notional", cfg.max_order_notional, 0.0, lo_open=True)
    _number(f"{prefix}.max_position_notional", cfg.max_position_notional, 0.0, lo_open=True)
    _number(f"{prefix}.usd", cfg.usd, 0.0)
    _number(f"{prefix}.base_notional", cfg.base_notional, 0.0)


def exposure_notional(view: Any, rows: np.ndarray, j: int, base0: np.ndarray | None) -> np.ndarray:
    """Signed exposure of accounts to instrument ``j``, in quote units at the index.

    Args:
        view: The :class:`sim.view.MarketView`.
        rows: Ledger rows.
        j: Instrument index.
        base0: Initial base-asset balances of ``rows`` (spot only; ignored for perps).

    Returns:
        Perp position × index, or (spot holding − initial holding) × index.
    """
    inst = view.instruments[j]
    price = view.underlying_price(j)
    if inst.is_perp:
        return view.positions(rows, j) * price
    held = view.balances(rows, inst.base)
    return (held - (0.0 if base0 is None else base0)) * price


def capped_notional(side: np.ndarray, notional: np.ndarray, exposure: np.ndarray,
                    cap: float) -> np.ndarray:
    """Order notionals clipped so that growing orders stay within ``|exposure| <= cap``.

    An order on the side of the current exposure (or from flat) may add at most
    ``cap − |exposure|``; an order against it is limited to what closes the
    exposure and re-opens at most ``cap`` on the other side.
    """
    growing = side * exposure >= 0.0
    room = np.where(growing, cap - np.abs(exposure), np.abs(exposure) + cap)
    return np.clip(np.minimum(notional, room), 0.0, None)


def order_events(view: Any, j: int, rows: np.ndarray, side: np.ndarray, qty: np.ndarray,
                 is_market: np.ndarray, limit_price: np.ndarray, flags: int = 0) -> np.ndarray:
    """Market or IOC-limit events for ``rows``; orders rounding to zero lots are dropped.

    Args:
        view: The market view.
        j: Instrument index.
        rows: Sending ledger rows.
        side: +1 buy / −1 sell per order.
        qty: Base quantity per order (non-negative).
        is_market: Market order (True) or IOC limit (False) per order.
        limit_price: Limit price in quote units (ignored for market orders);
            buys round down to a tick, sells up, so no limit is looser than asked.
        flags: Extra flags for every order (e.g. ``REDUCE_ONLY``).

    Returns:
        An ``EVENT_DTYPE`` array, possibly empty.
    """
    inst = view.instruments[j]
    lots = np.rint(np.asarray(qty, np.float64) / inst.lot_size).astype(np.int64)
    keep = lots > 0
    ev = view.new_events(int(keep.sum()))
    if len(ev) == 0:
        return ev
    side = np.asarray(side, np.int64)[keep]
    is_market = np.asarray(is_market, np.bool_)[keep]
    limit = np.asarray(limit_price, np.float64)[keep]
    ticks = np.where(side > 0, inst.ticks(limit, side=1), inst.ticks(limit, side=-1))
    ev["owner"] = np.asarray(rows, np.int64)[keep]
    ev["side"] = side
    ev["qty"] = lots[keep]
    ev["kind"] = np.where(is_market, MARKET, LIMIT)
    ev["price"] = np.where(is_market, 0, ticks)
    ev["flags"] = np.where(is_market, 0, IOC) | flags
    return ev


def initial_spot_holdings(view: Any, cache: dict[int, np.ndarray], rows: np.ndarray,
                          j: int) -> np.ndarray | None:
    """Holdings of instrument ``j``'s base asset when a population first traded it.

    The inventory rule measures spot exposure as drift from these holdings;
    ``None`` for a perpetual (its position is the exposure). ``cache`` maps
    base asset → holdings and is filled on first use.
    """
    inst = view.instruments[j]
    if inst.is_perp:
        return None
    if inst.base not in cache:
        cache[inst.base] = view.balances(rows, inst.base)
    return cache[inst.base]


class FundamentalistPopulation(mesa.Agent):
    """A population of value investors on one protocol's books.

    Args:
        model: The Mesa model (exposes ``view``, a :class:`sim.view.MarketView`,
            and ``rng``).
        instruments: World indices of the instruments the population trades.
        cfg: A :class:`FundamentalistConfig`.

    Attributes:
        accounts: int64[n] ledger rows, one per trader (set by the model;
            assigning it draws each trader's aggressiveness ``beta``).
        beta: float64[n] aggressiveness per trader.
    """

    def __init__(self, model: mesa.Model, instruments: list[int], cfg: Any) -> None:
        super().__init__(model)
        validate_fundamentalist_config(cfg)
        self.instruments = np.asarray(instruments, np.int64)
        self.cfg = cfg
        self._accounts = np.zeros(0, np.int64)
        self.beta = np.zeros(0)
        self._base0: dict[int, np.ndarray] = {}

    @property
    def accounts(self) -> np.ndarray:
        """Ledger rows of the traders."""
        return self._accounts

    @accounts.setter
    def accounts(self, rows: np.ndarray) -> None:
        self._accounts = np.asarray(rows, np.int64)
        cfg = self.cfg
        self.beta = self.model.rng.uniform(cfg.beta_min, cfg.beta_max, len(self._accounts))
        self._base0 = {}

    def _initial_base(self, j: int) -> np.ndarray | None:
        return initial_spot_holdings(self.model.view, self._base0, self._accounts, j)

    def step(self) -> None:
        """Let the active traders trade toward the index on one instrument each."""
        cfg = self.cfg
        rng = self.model.rng
        n = len(self._accounts)
        if n == 0 or len(self.instruments) == 0:
            return
        active = np.flatnonzero(rng.random(n) < cfg.trade_prob)
        if len(active) == 0:
            return
        choice = rng.integers(0, len(self.instruments), len(active))
        is_market = rng.random(len(active)) < cfg.market_prob
        for c, j in enumerate(self.instruments):
            sel = active[choice == c]
            if len(sel):
                self._trade(int(j), sel, is_market[choice == c])

    def _trade(self, j: int, idx: np.ndarray, is_market: np.ndarray) -> None:
        view = self.model.view
        cfg = self.cfg
        mid = view.mid(j)
        if mid is None:
            return
        value = view.underlying_price(j)
        m = (value - mid) / value
        if abs(m) * 1e4 < cfg.threshold_bps or m == 0.0:
            return
        side = np.full(len(idx), 1 if m > 0 else -1, np.int64)
        rows = self._accounts[idx]
        base0 = self._initial_base(j)
        exposure = exposure_notional(view, rows, j, None if base0 is None else base0[idx])
        notional = np.minimum(self.beta[idx] * abs(m) * cfg.usd, cfg.max_order_notional)
        notional = capped_notional(side, notional, exposure, cfg.max_position_notional)
        ev = order_events(view, j, rows, side, notional / value, is_market,
                          np.full(len(idx), value))
        if len(ev):
            view.submit(j, ev)
