"""Leveraged perpetual traders: the population whose distress is studied.

After the leveraged value funds of Thurner, Farmer & Geanakoplos (2012,
"Leverage causes fat tails and clustered volatility", Quantitative Finance
12(5):695–707; reference note ``contagion_and_peers.md`` §1.6) and the
leverage-targeting banks of Aymanns & Farmer (2015, "The dynamics of the
leverage cycle", JEDC 50:155–179). Each trader holds one perpetual, long or
short, and targets a leverage ``L`` (notional / equity):

* **Build-up and procyclical re-levering.** Once its leverage is below
  ``L (1 − rebalance_band)`` (or it is flat) the trader builds up: with
  probability ``trade_prob`` per step it sends a market order adding
  ``min(L·E − N, max_order_notional)`` of notional in its direction, until
  its leverage is within 1 % of ``L`` (``E`` equity, ``N = |q| × mark``). From flat this
  opens the position over a few steps; after a favourable move (equity up,
  leverage down) it buys more — TFG's funds at their leverage cap, whose
  holdings are proportional to wealth.
* **Rule near maintenance** (``rule``), when ``E / MM < trigger_ratio``:

  - ``top_up``: deposit quote collateral from outside the world (the investor
    meets the margin call, as TFG's investors add capital) to bring ``E / MM``
    back to ``target_ratio``, within a per-trader budget of
    ``top_up_budget_frac × usd`` over its life;
  - ``deleverage``: a reduce-only market order cutting the position by the
    fraction ``1 − E / (target_ratio × MM)`` (the requirement is about
    proportional to notional), or closing it when ``E ≤ 0`` — the
    margin-call selling into a falling market that makes leverage
    procyclical (TFG; Brunnermeier & Pedersen 2009's margin spiral);
  - ``none``: do nothing and be liquidated.

  A trader in distress does not re-lever in the same step.
* **Close-out and re-entry.** A trader whose position went to zero (liquidated
  by the protocol, or fully deleveraged) stops trading; afterwards, each step
  with probability ``reopen_prob`` it re-enters with the same ``L`` and
  direction (0 = never). With ``refill_on_reopen`` its account is first
  topped up to ``usd`` from outside and its top-up budget renewed — TFG's
  bankrupt fund replaced by a new one with the initial wealth.

Equity and requirements come from ``view.margin`` (the margin engine's result
at the end of the previous step, or the latest liquidation round), notional
from ``view.mark`` of the same moment, so a trader reacts to a move one step
after it happens, like an exchange client polling its margin ratio. Accounts
not yet evaluated count their quote balance as equity.

Per trader, ``L`` is drawn on ``[leverage_min, leverage_max]``
(``leverage_dist``): log-uniform, or Pareto with tail index ``leverage_tail``
capped at ``leverage_max`` — most traders lightly levered and a heavy tail of
highly levered ones, the shape of leverage across crypto perpetual accounts
(Hyperliquid's 10 Oct 2025 ADL replay: median leverage 0.20× against a mean of
2,006× over 437,723 accounts, shared/data/liquidations/hyperliquid_adl_2025-10-10_summary.json).
The direction is long with probability ``long_share`` and the instrument is
drawn uniformly from the population's perpetuals, all from ``model.rng`` when
the model assigns ``accounts``; with ``entry_steps > 0`` each trader then draws
the step at which it starts building (uniform on ``[0, entry_steps)``), so
open interest accumulates over a warm-up rather than at step 1. Every step
then draws ``n`` re-entry uniforms and ``n`` trade uniforms, in that order.
"""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np

from agents.base import order_events
from agents.config import RULES
from sim.market.view import REDUCE_ONLY

__all__ = ["RULES", "LeveragedTraderPopulation", "draw_leverage"]

"""Behaviours near maintenance."""

_REACHED = 0.01
"""A build-up stops once notional is within this fraction of ``L × equity``."""


def draw_leverage(rng: np.random.Generator, n: int, cfg: Any) -> np.ndarray:
    """Target leverage of ``n`` traders (module docstring; ``LeveragedConfig.leverage_dist``).

    ``loguniform``: ``exp(U(ln L_min, ln L_max))``. ``pareto``: ``L_min ×
    U^(−1/α)`` with ``U`` uniform on (0, 1] and ``α = leverage_tail``, capped at
    ``L_max`` (a Pareto type I law, whose survival function is ``(L /
    L_min)^−α``: Thurner, Farmer & Geanakoplos 2012 show that the tail of
    leverage sets the tail of returns). One uniform per trader either way.
    """
    if n == 0:
        return np.zeros(0)
    if cfg.leverage_dist == "pareto":
        u = 1.0 - rng.random(n)  # (0, 1]
        return np.minimum(cfg.leverage_min * u ** (-1.0 / cfg.leverage_tail), cfg.leverage_max)
    lo, hi = np.log(cfg.leverage_min), np.log(cfg.leverage_max)
    return np.exp(rng.uniform(lo, hi, n))


class LeveragedTraderPopulation(mesa.Agent):
    """Leverage-targeting traders on one protocol's perpetuals.

    Args:
        model: The Mesa model (exposes ``view`` and ``rng``).
        instruments: World indices of the perpetuals the population trades
            (spot instruments are ignored).
        cfg: A :class:`LeveragedConfig`.

    Attributes:
        accounts: int64[n] ledger rows (set by the model; assigning draws the
            per-trader parameters below).
        leverage: float64[n] target leverage.
        entry_step: int64[n] each trader starts building in the step after this one.
        direction: int64[n] +1 long, −1 short.
        instrument: int64[n] world index of each trader's perpetual.
        active: bool[n] the trader wants a position (False after a close-out
            until it re-enters).
        budget_left: float64[n] top-up budget remaining.
        topped_up: float64[n] total deposited by the ``top_up`` rule.
        refilled: float64[n] total deposited on re-entries.
        closeouts: int64[n] number of close-outs suffered.
        distressed: bool[n] whether the rule fired in the last step.
    """

    def __init__(self, model: mesa.Model, instruments: list[int], cfg: Any) -> None:
        super().__init__(model)
        view = model.view
        self.instruments = np.asarray([j for j in instruments if view.instruments[j].is_perp],
                                      np.int64)
        self.cfg = cfg
        self.accounts = np.zeros(0, np.int64)

    @property
    def accounts(self) -> np.ndarray:
        """Ledger rows of the traders."""
        return self._accounts

    @accounts.setter
    def accounts(self, rows: np.ndarray) -> None:
        cfg = self.cfg
        rng = self.model.rng
        self._accounts = np.asarray(rows, np.int64)
        n = len(self._accounts)
        self.leverage = draw_leverage(rng, n, cfg)
        self.direction = np.where(rng.random(n) < cfg.long_share, 1, -1).astype(np.int64)
        k = max(len(self.instruments), 1)
        self.instrument = (self.instruments[rng.integers(0, k, n)] if len(self.instruments)
                           else np.full(n, -1, np.int64))
        self.entry_step = (rng.integers(0, cfg.entry_steps, n) if cfg.entry_steps > 0
                           else np.zeros(n, np.int64))
        self.active = np.ones(n, np.bool_)
        self.budget_left = np.full(n, cfg.top_up_budget_frac * cfg.usd)
        self.topped_up = np.zeros(n)
        self.refilled = np.zeros(n)
        self.closeouts = np.zeros(n, np.int64)
        self.distressed = np.zeros(n, np.bool_)
        self._was_open = np.zeros(n, np.bool_)
        self._building = np.zeros(n, np.bool_)

    # ------------------------------------------------------------ reading
    def _positions(self) -> np.ndarray:
        """Each trader's position in its perpetual; float dust under half a lot reads as 0."""
        view = self.model.view
        q = np.zeros(len(self._accounts))
        for j in self.instruments:
            sel = self.instrument == j
            if sel.any():
                qj = view.positions(self._accounts[sel], int(j))
                half_lot = 0.5 * view.instruments[int(j)].lot_size
                q[sel] = np.where(np.abs(qj) < half_lot, 0.0, qj)
        return q

    def _marks(self) -> np.ndarray:
        view = self.model.view
        out = np.zeros(len(self._accounts))
        for j in self.instruments:
            out[self.instrument == j] = view.mark(int(j))
        return out

    def leverage_now(self) -> np.ndarray:
        """Current leverage ``|q| × mark / equity`` of every trader (nan without equity)."""
        eq, _im, _mm = self.model.view.margin(self._accounts)
        n = np.abs(self._positions()) * self._marks()
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(eq > 0, n / eq, np.nan)

    # ------------------------------------------------------------- acting
    def step(self) -> None:
        """Detect close-outs, re-enter, apply the maintenance rule, re-lever."""
        cfg = self.cfg
        rng = self.model.rng
        view = self.model.view
        n = len(self._accounts)
        if n == 0 or len(self.instruments) == 0:
            return
        u_reopen = rng.random(n)
        u_trade = rng.random(n)
        rows = self._accounts
        q = self._positions()
        flat = q == 0.0
        equity, _im, mm = view.margin(rows)
        cash = view.balances(rows, 0)
        equity = np.where(np.isnan(equity) | flat, cash, equity)

        closed = self._was_open & flat
        self.active[closed] = False
        self.closeouts[closed] += 1

        reenter = ~self.active & flat & ~closed & (u_reopen < cfg.reopen_prob)
        for i in np.flatnonzero(reenter):
            if cfg.refill_on_reopen:
                amount = cfg.usd - equity[i]
                if amount > 0:
                    view.deposit(int(rows[i]), float(amount))
                    self.refilled[i] += amount
                    equity[i] += amount
                self.budget_left[i] = cfg.top_up_budget_frac * cfg.usd
        self.active |= reenter

        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(~flat & (mm > 0), equity / mm, np.inf)
        self.distressed = ~flat & (ratio < cfg.trigger_ratio)
        if self.distressed.any():
            if cfg.rule == "top_up":
                self._top_up(equity, mm)
            elif cfg.rule == "deleverage":
                self._deleverage(q, equity, mm)

        marks = self._marks()
        notional = np.abs(q) * marks
        target = self.leverage * equity
        # hysteresis: start building below L (1 - band), keep going until within 1 % of L
        started = self.entry_step < view.step if cfg.entry_steps > 0 else True
        self._building = (self.active & started & ~self.distressed & (equity > 0)
                          & (flat | (np.sign(q) == self.direction))  # never flip through zero
                          & ((notional < target * (1.0 - cfg.rebalance_band))
                             | (self._building & (notional < target * (1.0 - _REACHED)))))
        want = self._building & (u_trade < cfg.trade_prob)
        if want.any():
            add = np.minimum(target - notional, cfg.max_order_notional)
            self._send(want, self.direction, add / np.where(marks > 0, marks, 1.0), 0)
        self._was_open = self._positions() != 0.0

    def _top_up(self, equity: np.ndarray, mm: np.ndarray) -> None:
        view = self.model.view
        need = np.clip(self.cfg.target_ratio * mm - equity, 0.0, None)
        amount = np.where(self.distressed, np.minimum(need, self.budget_left), 0.0)
        for i in np.flatnonzero(amount > 0):
            view.deposit(int(self._accounts[i]), float(amount[i]))
        self.budget_left -= amount
        self.topped_up += amount

    def _deleverage(self, q: np.ndarray, equity: np.ndarray, mm: np.ndarray) -> None:
        with np.errstate(divide="ignore", invalid="ignore"):
            keep = np.clip(equity / (self.cfg.target_ratio * mm), 0.0, 1.0)
        keep = np.where(equity > 0, keep, 0.0)
        cut = np.abs(q) * (1.0 - keep)
        # at least one lot, at most the position: a distressed trader always sells something
        for j in self.instruments:
            lot = self.model.view.instruments[int(j)].lot_size
            sel = self.instrument == j
            cut[sel] = np.minimum(np.maximum(cut[sel], lot), np.abs(q[sel]))
        self._send(self.distressed, -np.sign(q).astype(np.int64), cut, REDUCE_ONLY)

    def _send(self, mask: np.ndarray, side: np.ndarray, qty: np.ndarray, flags: int) -> None:
        view = self.model.view
        for j in self.instruments:
            idx = np.flatnonzero(mask & (self.instrument == j))
            if len(idx) == 0:
                continue
            ev = order_events(view, int(j), self._accounts[idx], side[idx], qty[idx],
                              np.ones(len(idx), np.bool_), np.zeros(len(idx)), flags)
            if len(ev):
                view.submit(int(j), ev)
