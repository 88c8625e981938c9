"""Cross-protocol contagion: per-protocol random streams, distress tracking, shocks.

* :class:`StreamedLiquidationEngine` — the liquidation engine with each
  protocol's visiting/offer order drawn from that protocol's own generator
  (``contagion.rng_streams``), so liquidations on one venue do not shift the
  random numbers of another.
* :class:`ContagionTracker` — per protocol, the first step with an account
  below maintenance, the first liquidation and the first bad debt; summarised by
  :func:`contagion_summary` (``summary.json`` key ``contagion`` in worlds with
  more than one protocol or an issued token).
* :func:`sell_shock` — a confined shock: a whale account on one protocol sells
  a given notional at market on each of that protocol's perpetual books.
* :func:`contagion_matrix` — run a shock at each protocol ``i`` and record the
  loss (bad debt, liquidations) at every ``j``.

Contagion channels (``contagion.*`` switches, DESIGN.md "collateral graph"):
``fire_sales``/``arbitrage`` gate the arbitrageur's cross-venue trades (the only
agent trading on several venues' books); ``token_impairment`` lets the issuer's
bad debt lower its token's price and so collateral values elsewhere
(:mod:`sim.tokens`); ``venue_oracle`` prices tokens off one venue's book;
``universal_margin`` margins owners with sub-accounts on several venues as one
(:mod:`sim.universal`); ``shared_liquidator_capital`` pools each liquidator's
capital across venues (:mod:`agents.liquidator`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sim.liquidation import LiquidationEngine

__all__ = ["ContagionTracker", "StreamedLiquidationEngine", "contagion_matrix",
           "contagion_summary", "sell_shock"]


SHOCK_OWNER = 999_999_999
"""Ledger owner id of :func:`sell_shock`'s whale account."""


class StreamedLiquidationEngine(LiquidationEngine):
    """Liquidation rounds drawing each protocol's random order from its own stream."""

    def _round_protocol(self, proto: Any, margins: Any) -> bool:
        m = self.model
        prev = m._rng_active
        m._rng_active = m._rng_streams[proto.index]
        try:
            return super()._round_protocol(proto, margins)
        finally:
            m._rng_active = prev


class ContagionTracker:
    """First-distress steps per protocol (``-1``: never)."""

    KEYS = ("first_below_maintenance", "first_liquidation", "first_bad_debt")

    def __init__(self, model: Any) -> None:
        self.first = {p.index: dict.fromkeys(self.KEYS, -1) for p in model.protocols}

    def update(self, model: Any, margins: dict[int, Any]) -> None:
        t = int(model.steps)
        liq = model.liquidation
        for p in model.protocols:
            f = self.first[p.index]
            if f["first_below_maintenance"] < 0 and margins[p.index][1].below_maintenance.any():
                f["first_below_maintenance"] = t
            if f["first_liquidation"] < 0 and liq.step_stats[p.index]["liquidations"] > 0:
                f["first_liquidation"] = t
            if f["first_bad_debt"] < 0 and liq.bad_debt[p.index] > 0:
                f["first_bad_debt"] = t


def contagion_summary(model: Any, shocked: int | None = None,
                      measure: str = "first_liquidation") -> dict[str, Any]:
    """Per-protocol distress, cascade reach and time to contagion.

    Args:
        model: A stepped :class:`~sim.model.MarketModel`.
        shocked: Index of the shocked protocol; default the one distressed first
            by ``measure``.
        measure: Which first-distress step defines contagion timing.

    Returns:
        ``{"protocols": {name: {first_*, liquidations, bad_debt}}, "cascade_reach",
        "shocked", "time_to_contagion"}``; ``time_to_contagion`` is the earliest
        ``measure`` step on another protocol minus that of the shocked one
        (``None`` when either never happened).
    """
    tr = model.contagion_tracker
    liq = model.liquidation
    per = {}
    for p in model.protocols:
        entry: dict[str, Any] = dict(tr.first[p.index])
        entry["liquidations"] = float(liq.totals[p.index]["liquidations"])
        entry["bad_debt"] = float(liq.bad_debt[p.index])
        per[p.name] = entry
    steps = {p.index: tr.first[p.index][measure] for p in model.protocols}
    if shocked is None:
        hit = [(s, i) for i, s in steps.items() if s >= 0]
        shocked = min(hit)[1] if hit else None
    ttc = None
    if shocked is not None and steps[shocked] >= 0:
        others = [s for i, s in steps.items() if i != shocked and s >= 0]
        if others:
            ttc = int(min(others) - steps[shocked])
    return {"protocols": per,
            "cascade_reach": int(sum(liq.bad_debt[p.index] > 0 for p in model.protocols)),
            "shocked": None if shocked is None else model.protocols[shocked].name,
            "measure": measure,
            "time_to_contagion": ttc}


def sell_shock(model: Any, protocol: int, notional: float, kinds: str = "perp") -> int:
    """A whale on ``protocol`` sells ``notional`` (quote) at market on each of its books.

    Opens a dedicated, amply funded account on that protocol (so the pre-trade
    check passes) and sends one market sell per perpetual (``kinds="perp"``) or
    per book (``"all"``). Touches only that protocol's books and ledger rows.

    Returns:
        The shock account's ledger row.
    """
    from sim.book import MARKET

    proto = model.protocols[protocol]
    row = model.open_trader(protocol, SHOCK_OWNER, 1e4 * notional, 0.0)
    for inst in proto.instruments:
        if kinds == "perp" and not inst.is_perp:
            continue
        ev = model.view.new_events(1)
        ev["kind"] = MARKET
        ev["side"] = -1
        ev["qty"] = max(1, int(notional / model.marks[inst.index] / inst.lot_size))
        ev["owner"] = row
        model.submit(inst.index, ev)
    return row


def run_with_shock(cfg: Any, protocol: int | None, notional: float, shock_step: int) -> Any:
    """Build and step a model, applying :func:`sell_shock` before step ``shock_step``."""
    from sim.model import MarketModel

    model = MarketModel(cfg)
    for t in range(int(model.cfg.steps)):
        if protocol is not None and t == shock_step:
            sell_shock(model, protocol, notional)
        model.step()
    return model


def contagion_matrix(run_fn: Callable[[int | None], Any],
                     protocols: Sequence[str] | int) -> dict[str, Any]:
    """Loss at protocol ``j`` when protocol ``i`` is shocked, for every ``i``.

    Args:
        run_fn: ``run_fn(i)`` returns a stepped model with protocol ``i`` shocked
            (``run_fn(None)``: the unshocked baseline), e.g.
            ``lambda i: run_with_shock(cfg, i, 5e6, 50)``.
        protocols: Protocol names (or their number).

    Returns:
        ``{"protocols": names, "bad_debt": M, "liquidations": L, "baseline": {...}}``
        with ``M[i][j]`` the bad debt at ``j`` in excess of the baseline run when
        ``i`` is shocked (``L`` likewise for liquidation counts).
    """
    names = [f"p{k}" for k in range(protocols)] if isinstance(protocols, int) else list(protocols)
    n = len(names)

    def losses(model: Any) -> tuple[np.ndarray, np.ndarray]:
        liq = model.liquidation
        bd = np.array([liq.bad_debt[k] for k in range(n)])
        nl = np.array([liq.totals[k]["liquidations"] for k in range(n)])
        return bd, nl

    base_bd, base_nl = losses(run_fn(None))
    M = np.zeros((n, n))
    L = np.zeros((n, n))
    for i in range(n):
        bd, nl = losses(run_fn(i))
        M[i] = bd - base_bd
        L[i] = nl - base_nl
    return {"protocols": names, "bad_debt": M.tolist(), "liquidations": L.tolist(),
            "baseline": {"bad_debt": base_bd.tolist(), "liquidations": base_nl.tolist()}}
