"""Distress tracking across protocols: first steps of distress, liquidation and bad debt.

:class:`ContagionTracker` records, per protocol, the first step with an account
below maintenance, the first liquidation and the first bad debt;
:func:`contagion_summary` writes them to ``summary.json`` (key ``contagion``, in
worlds with more than one protocol or an issued token); :func:`trader_equity`
gives traders' equity per protocol, the loss measure of the contagion matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sim.scenarios.confined import EXPLOIT_OWNER, SHOCK_OWNER

__all__ = ["ContagionTracker", "contagion_summary", "trader_equity"]


class ContagionTracker:
    """First-distress steps per protocol (``-1``: never).

    An account counts as below maintenance in a step if it is so after the
    step's liquidation rounds or if the rounds liquidated or resolved a
    bankrupt account (which was below maintenance when they started), so a
    spell that the liquidation engine closes within one step is not missed.
    """

    KEYS = ("first_below_maintenance", "first_liquidation", "first_bad_debt")

    def __init__(self, model: Any) -> None:
        self.first = {p.index: dict.fromkeys(self.KEYS, -1) for p in model.protocols}

    def update(self, step: int, margins: Mapping[int, Any],
               step_stats: Mapping[int, Mapping[str, float]],
               bad_debt: Mapping[int, float]) -> None:
        """Record this step as the first of each kind of distress not seen before.

        Args:
            step: The model step.
            margins: The step's final margins ``{protocol: (rows, MarginResult)}``.
            step_stats: The liquidation engine's counters of this step, per protocol.
            bad_debt: Recorded bad debt per protocol (cumulative).
        """
        t = int(step)
        for p, f in self.first.items():
            stats = step_stats[p]
            if f["first_below_maintenance"] < 0 and (
                    margins[p][1].below_maintenance.any()
                    or stats["liquidations"] > 0 or stats["insolvency"] > 0):
                f["first_below_maintenance"] = t
            if f["first_liquidation"] < 0 and stats["liquidations"] > 0:
                f["first_liquidation"] = t
            if f["first_bad_debt"] < 0 and bad_debt[p] > 0:
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


def trader_equity(model: Any, exclude: Sequence[int] = ()) -> np.ndarray:
    """Engine equity of each protocol's trader accounts, by index.

    Shock accounts are always excluded, and so are accounts of the owner ids
    in ``exclude`` (e.g. :data:`sim.contagion.topology_world.BORROWER_OWNER`).
    """
    owners = model.ledger.owner
    out = np.zeros(len(model.protocols))
    skip = np.array([SHOCK_OWNER, EXPLOIT_OWNER, *exclude], dtype=np.int64)
    for p, (rows, res) in model.margin_state.items():
        keep = ~np.isin(owners[rows], skip)
        out[p] = float(res.equity[keep].sum())
    return out
