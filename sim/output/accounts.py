"""Per-account snapshots (``accounts.parquet``): who holds what, at what margin and risk.

Every ``output.accounts_every`` steps the model records one row per trader
account: its protocol, owner and agent type, the margin engine's equity,
initial and maintenance requirement, its leverage (gross perpetual and
option-underlying notional over equity), the *risk it takes*: its loss in the
worst cell of one reference stress grid, the same for every regime (Deribit's
standard grid per underlying, ±16 % BTC, ±18 % ETH with its volatility shocks,
without roll or delta add-ons, ``margin_methods.md`` §3.1: the scan risk of
:class:`margin.regimes.portfolio.PortfolioMarginEngine` with those grids), and
per underlying its net delta (spot balance, perpetuals and Black-76 option
deltas, base units), gamma, vega (USD per vol point) and theta (USD per day).
The rows reconcile with the ledger at that step (balances, positions) and with
the engine's result. ``haircut_held`` is the value the collateral haircuts
withhold from the account's positive balances: with the initial requirement,
the capital a book ties up. ``equity`` is the regime's own margin equity (under
static isolated margin only the positions' posted margins and P&L, not free
collateral); ``value`` is the same for every regime: the ledger's account value
at the index and marks (every balance, perpetual P&L, option values; no
haircuts; :meth:`sim.ledger.Ledger.account_value`), the account's
mark-to-market worth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["account_snapshot", "reference_risk_engine"]


def reference_risk_engine(asset_names: Sequence[str], vols: Mapping[str, float]) -> Any:
    """The regime-independent yardstick of risk taken (module docstring).

    BTC and ETH use Deribit's grids; another asset a SPAN grid from its
    configured volatility (NSE rule, ``margin_methods.md`` §1.8); the quote
    currency is not scanned. No add-ons, so the result is the scan risk alone.

    Args:
        asset_names: World asset names (quote first).
        vols: Configured annual volatility per asset name.
    """
    from margin.methods.scenarios import span_from_volatility
    from margin.regimes.portfolio import PRESETS, PortfolioMarginEngine, UnderlyingParams

    params: list[Any] = [None]
    for name in asset_names[1:]:
        preset = PRESETS.get(f"deribit_{name.lower()}")
        grid = preset.grid if preset is not None else span_from_volatility(vols.get(name, 0.6))
        params.append(UnderlyingParams(grid))
    return PortfolioMarginEngine(params, liquidity_coeff=0.0)


def account_snapshot(step: int, margins: Mapping[int, tuple[np.ndarray, Any]], ledger: Any,
                     instruments: Sequence[Any], asset_names: Sequence[str],
                     asset_prices: np.ndarray, marks: np.ndarray, agent_of: Mapping[int, str],
                     greeks: Any = None, risk: np.ndarray | None = None,
                     haircuts: Mapping[int, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """One row per evaluated account, as columns.

    Args:
        step: Model step.
        margins: ``{protocol: (rows, MarginResult)}`` of this step.
        ledger: The ledger.
        instruments: Every instrument.
        asset_names: World asset names (quote first).
        asset_prices: Index per asset.
        marks: Mark per instrument (quote units).
        agent_of: Agent type by owner id.
        greeks: :class:`sim.venue.options.OptionGreeks` of the option slots (or None).
        risk: The reference stress loss of every ledger row (``reference_risk_engine``),
            or None.
        haircuts: Collateral haircuts per asset of each protocol; ``haircut_held`` is
            the value they hold back from the account's positive balances (capital
            the account ties up beyond its initial requirement). None: zeros.
    """
    rows = np.concatenate([r for r, _ in margins.values()]) if margins else np.zeros(0, np.int64)
    protocol = np.concatenate([np.full(len(r), p, np.int64) for p, (r, _) in margins.items()])
    res = list(margins.values())
    equity = np.concatenate([m.equity for _, m in res])
    initial = np.concatenate([m.initial for _, m in res])
    maintenance = np.concatenate([m.maintenance for _, m in res])
    pos = ledger.position[rows]
    coll = ledger.collateral[rows]
    owner = ledger.owner[rows]
    perps = np.array([i.index for i in instruments if i.is_perp], np.int64)
    under = np.array([asset_prices[i.base] for i in instruments])
    perp_notional = (np.abs(pos[:, perps]) * marks[perps]).sum(axis=1)
    out: dict[str, np.ndarray] = {
        "step": np.full(len(rows), step, np.int64), "account": rows.astype(np.int64),
        "owner": owner.astype(np.int64), "protocol": protocol,
        "agent": np.array([agent_of.get(int(o), "unknown") for o in owner], dtype=object),
        "equity": equity, "initial": initial, "maintenance": maintenance,
        "value": ledger.account_value(asset_prices, marks)[rows],
        "perp_notional": perp_notional,
    }
    slots = greeks.slots if greeks is not None else np.zeros(0, np.int64)
    opt_notional = (np.abs(pos[:, slots]) * under[slots]).sum(axis=1)
    out["option_notional"] = opt_notional
    gross = perp_notional + opt_notional
    out["leverage"] = np.where(equity > 0.0, gross / np.where(equity > 0.0, equity, 1.0), np.inf)
    out["risk"] = risk[rows] if risk is not None else np.full(len(rows), np.nan)
    cut = (np.stack([haircuts[int(p)] for p in protocol]) if haircuts is not None and len(rows)
           else np.zeros_like(coll))
    out["haircut_held"] = (np.maximum(coll, 0.0) * asset_prices[None, :] * cut).sum(axis=1)
    for a, name in enumerate(asset_names):
        if a == 0:
            continue
        on = np.array([i.base == a for i in instruments])
        delta = coll[:, a] + pos[:, perps[on[perps]]].sum(axis=1)
        gamma = vega = theta = np.zeros(len(rows))
        if len(slots):
            sel = on[slots]
            held = pos[:, slots[sel]]
            delta = delta + held @ greeks.delta[sel]
            gamma = held @ greeks.gamma[sel]
            vega = held @ greeks.vega[sel]
            theta = held @ greeks.theta[sel]
        out[f"delta_{name}"] = delta
        out[f"gamma_{name}"] = gamma
        out[f"vega_{name}"] = vega
        out[f"theta_{name}"] = theta
    return out
