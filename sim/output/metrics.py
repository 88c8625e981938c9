"""Headline metrics of a finished run, written to ``summary.json``.

Market-quality measures follow the usual microstructure definitions: quoted
spread in basis points of the mid, tracking error of the book mid against the
fundamental, realised volatility of one-step log returns annualised with the
step length, traded volume and notional, fees and funding transfers from the
ledger. Margin measures come from the per-step engine evaluation.

Insurance fund (per protocol, :mod:`sim.venue.insurance`): ``insurance_cash`` (its
quote balance; ``insurance_fund`` is the same number, kept for compatibility),
``insurance_equity`` (marked equity: balances at the index plus taken-over perp
positions at the mark against their cost basis), ``insurance_positions`` (per
perp: size, mark, entry, notional at mark, unrealised P&L), ``insurance_balances``
(non-quote units and value), ``insurance_position_notional``, ``insurance_loss``
(initial fund minus marked equity) with its split ``insurance_paid_out``,
``insurance_fee_income`` and ``insurance_takeover_pnl``, and bad debt at mark:
``bad_debt_uncovered_at_mark`` (the fund's negative equity, which nobody has
absorbed) and ``bad_debt_total_at_mark`` (that plus the recorded bad debt).

Conservation (``conservation``): what the ledger checks measured
(:class:`sim.ledger.ConservationMonitor`), per asset and per perp the final and
worst discrepancy, relative to the terms compared and to the round-off
tolerance it was judged against; ``ledger_conserved`` is its verdict.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from margin.methods.apc import max_n_step_increase, peak_to_trough

__all__ = ["amplification", "annualised_vol", "max_drawdown", "summarize", "tail_metrics"]


def annualised_vol(prices: np.ndarray, step_years: float) -> float:
    """Standard deviation of one-step log returns, annualised (NaNs dropped)."""
    p = np.asarray(prices, dtype=np.float64)
    p = p[np.isfinite(p) & (p > 0)]
    if len(p) < 3:
        return float("nan")
    r = np.diff(np.log(p))
    return float(r.std(ddof=1) / np.sqrt(step_years))


def max_drawdown(prices: np.ndarray) -> float:
    """Largest peak-to-trough fall of a price series, as a positive fraction (NaNs dropped)."""
    p = np.asarray(prices, dtype=np.float64)
    p = p[np.isfinite(p) & (p > 0)]
    if len(p) < 2:
        return 0.0
    return float(np.max(1.0 - p / np.maximum.accumulate(p)))


def amplification(simulated_drawdown: float, fundamental_drawdown: float) -> float:
    """Endogenous amplification: simulated drawdown over the exogenous one (NaN if none)."""
    if fundamental_drawdown <= 0.0:
        return float("nan")
    return float(simulated_drawdown / fundamental_drawdown)


def tail_metrics(insolvent_debt: np.ndarray, liquidation_volume: np.ndarray,
                 q: float = 0.95) -> dict[str, float]:
    """Gauntlet's tail metrics over repeated runs (contagion_and_peers.md §3.3).

    Value at Risk = the ``q`` quantile of insolvent debt across runs; Liquidations
    at Risk = the ``q`` quantile of liquidation volume across runs.
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must lie in (0, 1), got {q}")
    debt = np.asarray(insolvent_debt, dtype=np.float64)
    vol = np.asarray(liquidation_volume, dtype=np.float64)
    if debt.size == 0 or vol.size == 0:
        raise ValueError("tail_metrics needs at least one run")
    return {"VaR": float(np.quantile(debt, q)), "LaR": float(np.quantile(vol, q)),
            "runs": int(debt.size), "quantile": q}


def _posted(series: pd.Series, burn_in: int = 0) -> np.ndarray:
    """A margin series after ``burn_in`` rows, from the first step with a positive value."""
    m = series.to_numpy(dtype=np.float64)[max(int(burn_in), 0):]
    first = np.flatnonzero(m > 0)
    return m[first[0]:] if len(first) else m[:0]


def _ratio(num: float, den: float) -> float | None:
    """``num / den`` rounded as :func:`_f`, None unless ``den > 0``."""
    return _f(num / den) if den > 0 else None


def _f(x: Any) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else round(x, 10)


def summarize(model: Any, ts: pd.DataFrame, trades: pd.DataFrame) -> dict[str, Any]:
    """Headline metrics of a run: per instrument, per protocol and overall."""
    dt = model.scenario.dt
    out: dict[str, Any] = {
        "seed": int(model.cfg.seed),
        "steps": int(model.steps),
        "n_trades": len(trades),
        "orders_submitted": int(model.orders_submitted),
        "orders_rejected_margin": int(model.orders_rejected),
        "ledger_conserved": None,  # set from the conservation report below
        "assets": {},
        "instruments": {},
        "protocols": {},
    }
    for a, name in enumerate(model.asset_names[1:], start=1):
        f = ts[f"{name}.fundamental"].to_numpy()
        out["assets"][name] = {
            "fundamental_start": _f(f[0]), "fundamental_end": _f(f[-1]),
            "fundamental_return": _f(f[-1] / f[0] - 1.0),
            "fundamental_vol_annualised": _f(annualised_vol(f, dt)),
            "configured_vol": (_f(model.cfg.market.assets[a - 1].vol)
                               if a <= len(model.cfg.market.assets) else 0.0),  # issued token
            "fundamental_max_drawdown": _f(max_drawdown(f)),
        }
    for inst in model.instruments:
        if inst.is_option:  # options: the "options" section
            continue
        n = inst.name
        mid = ts[f"{n}.mid"].to_numpy()
        fund = ts[f"{model.asset_names[inst.base]}.fundamental"].to_numpy()
        ok = np.isfinite(mid)
        sel = trades["instrument"] == n if len(trades) else np.zeros(0, bool)
        entry = {
            "trades": int(np.sum(sel)),
            "volume": _f(trades.loc[sel, "qty"].sum()) if len(trades) else 0.0,
            "notional": _f(trades.loc[sel, "notional"].sum()) if len(trades) else 0.0,
            "mean_spread_bps": _f(np.nanmean(ts[f"{n}.spread_bps"])) if ok.any() else None,
            "median_depth_1pct": _f(np.median(ts[f"{n}.depth_1pct"])),
            "two_sided_share": _f(ok.mean()),
            "tracking_error_bps": _f(np.mean(np.abs(mid[ok] / fund[ok] - 1.0)) * 1e4)
            if ok.any()
            else None,
            "mid_vol_annualised": _f(annualised_vol(mid, dt)),
            "final_mid": _f(mid[-1]),
            "max_drawdown": _f(max_drawdown(mid)),
            "amplification": _f(amplification(max_drawdown(mid), max_drawdown(fund))),
        }
        if inst.is_perp:
            entry["final_open_interest"] = _f(ts[f"{n}.open_interest"].iloc[-1])
            entry["mean_leveraged_oi_share"] = _f(ts[f"{n}.leveraged_oi_share"].mean())
            entry["mean_abs_funding_rate"] = _f(np.abs(ts[f"{n}.funding_rate"]).mean())
        out["instruments"][n] = entry
    lg = model.ledger
    burn_in = int(getattr(getattr(model.cfg, "output", None), "burn_in_steps", 0))
    for p in model.protocols:
        k = p.name
        out["protocols"][k] = {
            "fees_collected": _f(lg.collateral[p.treasury, 0]),
            "insurance_fund": _f(lg.collateral[p.insurance, 0]),
            **_insurance(model, p),
            "clearing_balance": _f(lg.collateral[p.clearing, 0]),
            "max_accounts_below_maintenance": int(ts[f"{k}.below_maintenance"].max()),
            "final_accounts_negative_equity": int(ts[f"{k}.negative_equity"].iloc[-1]),
            "mean_initial_margin": _f(ts[f"{k}.initial_margin"].mean()),
            # procyclicality of total initial margin (EMIR Art. 28 review measures),
            # after the burn-in, from the first step with any margin posted
            "margin_peak_to_trough": _f(peak_to_trough(_posted(ts[f"{k}.initial_margin"],
                                                               burn_in))),
            "margin_max_60_step_increase": _f(max_n_step_increase(
                _posted(ts[f"{k}.initial_margin"], burn_in), 60)),
            "n_accounts": len(p.accounts),
            # capital efficiency: gross notional (perps and non-quote balances) carried per
            # unit of capital set aside for it (initial margin plus the value haircuts hold
            # back), so regimes that margin spot in the scan and regimes that haircut it
            # compare; perp_capital_efficiency: perp notional per unit of initial margin
            "capital_efficiency": _ratio(ts[f"{k}.gross_notional"].mean()
                                         + ts[f"{k}.spot_notional"].mean(),
                                         ts[f"{k}.initial_margin"].mean()
                                         + ts[f"{k}.haircut_margin"].mean()),
            "perp_capital_efficiency": _ratio(ts[f"{k}.gross_notional"].mean(),
                                              ts[f"{k}.initial_margin"].mean()),
        }
    if getattr(model, "options", None) is not None:
        out["options"] = _options(model, ts, trades)
    cons = _conservation(model)
    out["conservation"] = cons
    out["ledger_conserved"] = cons["ok"] if cons is not None else None
    return out


def _options(model: Any, ts: pd.DataFrame, trades: pd.DataFrame) -> dict[str, Any]:
    """Per protocol and underlying: listings, settlements, trading and the dealers' Greeks."""
    ev = pd.DataFrame(model.option_events_table())
    out: dict[str, Any] = {}
    for p, a in dict.fromkeys(model.options.chain.group_key):
        proto, asset = model.protocols[p].name, model.asset_names[a]
        key = f"{proto}.{asset}"
        prefix = f"{proto}:{asset}-T"
        sel = (trades["instrument"].str.startswith(prefix) if len(trades)
               else np.zeros(0, bool))
        mine = (ev["protocol"] == p) & ev["contract"].str.startswith(prefix) if len(ev) \
            else np.zeros(0, bool)
        settles = ev[mine & (ev["kind"] == "settle")] if len(ev) else ev
        col = f"{key}.opt_"
        out[key] = {
            "contracts_listed": int((ev[mine]["kind"] == "list").sum()) if len(ev) else 0,
            "contracts_settled": len(settles),
            "settled_with_open_interest": int((settles["open_interest"] > 0).sum())
            if len(settles) else 0,
            "paid_at_settlement": _f(settles["paid_to_longs"].sum()) if len(settles) else 0.0,
            "trades": int(np.sum(sel)),
            "volume": _f(trades.loc[sel, "qty"].sum()) if len(trades) else 0.0,
            "premium_usd": _f(ts[col + "premium"].sum()),
            "final_open_interest": _f(ts[col + "open_interest"].iloc[-1]),
            "max_open_interest": _f(ts[col + "open_interest"].max()),
            "final_dealer_delta": _f(ts[col + "dealer_delta"].iloc[-1]),
            "final_dealer_gamma": _f(ts[col + "dealer_gamma"].iloc[-1]),
            "min_dealer_gamma": _f(ts[col + "dealer_gamma"].min()),
            "final_dealer_vega": _f(ts[col + "dealer_vega"].iloc[-1]),
            "mean_atm_iv_30d": _f(ts[col + "atm_iv_30d"].mean()),
            "max_atm_iv_30d": _f(ts[col + "atm_iv_30d"].max()),
            "min_skew": _f(ts[col + "skew"].min()),
        }
    return out


def _insurance(model: Any, p: Any) -> dict[str, Any]:
    """The fund's marked books for ``summary.json`` (see :mod:`sim.venue.insurance`)."""
    st = model.insurance_state(p)
    names = [i.name for i in model.instruments]
    totals = model.liquidation.totals.get(p.index, {})
    paid = float(totals.get("insurance_paid", 0.0))
    fees = float(totals.get("fees", 0.0))
    bad = float(model.liquidation.bad_debt.get(p.index, 0.0))
    return {
        "insurance_cash": _f(st.cash),
        "insurance_initial": _f(st.initial),
        "insurance_equity": _f(st.equity),
        "insurance_position_notional": _f(st.position_notional),
        "insurance_positions": {names[j]: {k: _f(v) for k, v in e.items()}
                                for j, e in st.positions.items()},
        "insurance_balances": {model.asset_names[a]: {k: _f(v) for k, v in e.items()}
                               for a, e in st.balances.items()},
        "insurance_loss": _f(st.loss),
        "insurance_paid_out": _f(paid),
        "insurance_fee_income": _f(fees),
        # the remainder of the loss: mark-to-market result of what the fund took over
        "insurance_takeover_pnl": _f(paid - fees - st.loss),
        "bad_debt_recorded": _f(bad),
        "bad_debt_uncovered_at_mark": _f(st.uncovered),
        "bad_debt_total_at_mark": _f(bad + st.uncovered),
    }


def _exact(x: Any) -> Any:
    """Floats as they are (a relative imbalance of 1e-16 must survive), non-finite as None."""
    if isinstance(x, dict):
        return {k: _exact(v) for k, v in x.items()}
    if isinstance(x, float | np.floating):
        return float(x) if np.isfinite(x) else None
    return x


def _conservation(model: Any) -> dict[str, Any] | None:
    """The model's conservation report with instrument names, None if nothing was checked."""
    mon = getattr(model, "conservation", None)
    if mon is None or mon.steps_checked == 0:
        return None
    return _exact(mon.report(model.asset_names, [i.name for i in model.instruments]))
