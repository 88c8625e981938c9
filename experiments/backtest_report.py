"""Study: backtest each margin regime's requirement against realised P&L on a replay.

For each regime the same historical replay (default: 19 May 2021, time-
compressed) runs once with the same seed; the backtest then reads only the
run's ``timeseries.parquet``.

Exact definition (protocol level, one venue ``p``). The timeseries has no
per-account P&L, so the *representative account* is each side of the
protocol's perpetual book:

* long side P&L over period ``[t, t+h]``:
  ``pnl_t = Σ_perps OI_t · (mark_{t+h} - mark_t)`` where ``OI_t`` is
  ``<p:X-PERP>.open_interest`` (base units, one side) and ``mark`` is
  ``<p:X-PERP>.mark``; the short side's P&L is its negative;
* margin held against it: half the protocol's requirement at ``t``,
  ``½ · <p>.initial_margin_t`` (and, separately, ``½ · maintenance``), i.e.
  the two sides are assumed to carry equal requirements (exact for
  per-position flat rates with a balanced book, approximate under netting);
* periods are non-overlapping (``t = 0, h, 2h, …``), starting at the first
  step with positive margin and valid marks.

An exceedance is a side's loss above its margin; :func:`margin.risk.backtest.backtest`
gives Kupiec's POF, Christoffersen's independence and conditional coverage and
the Basel traffic light at ``confidence``. Honest limits: this ignores the
accounts' own collateral moves, fees and funding and intra-period
liquidations (which cut ``OI``), and a short replay has few periods, so the
tests have little power; zero exceedances is the common outcome.

Usage::

    python -m experiments.backtest_report [horizon=30 confidence=0.99 ...]

Outputs in ``output_dir``: ``runs/``, ``tables/backtest.{csv,md,tex}``. A
regime whose run failed has one NaN row (``runs_failed`` = 1) and the study
exits with status 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from experiments.analysis import write_table
from experiments.common import start_study, study_exit
from experiments.study_args import study_config
from experiments.sweep import RunSpec

__all__ = ["backtest_table", "build_specs", "main", "run_study", "side_pnl"]


def build_specs(cfg: DictConfig | Any) -> list[RunSpec]:
    """One run per regime, same scenario and seed."""
    return [RunSpec(str(r), (f"margin={r}", f"scenario={cfg.scenario}",
                             *list(cfg.scenario_overrides or []), f"steps={int(cfg.steps)}",
                             f"seed={int(cfg.seed)}", "output.figures=false", "progress=false",
                             *list(cfg.overrides or [])), {"regime": str(r)})
            for r in cfg.regimes]


def side_pnl(ts: pd.DataFrame, protocol: str, horizon: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Long-side P&L and half the initial / maintenance margin per period.

    Args:
        ts: A run's time series.
        protocol: Protocol name (column prefix).
        horizon: Steps per non-overlapping period.

    Returns:
        ``(pnl_long, half_initial_margin, half_maintenance_margin)`` (USD).
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    perps = [c[:-len(".open_interest")] for c in ts.columns
             if c.startswith(f"{protocol}:") and c.endswith(".open_interest")]
    im = ts[f"{protocol}.initial_margin"].to_numpy(dtype=float)
    mm = ts[f"{protocol}.maintenance_margin"].to_numpy(dtype=float)
    marks = np.column_stack([ts[f"{p}.mark"].to_numpy(dtype=float) for p in perps])
    oi = np.column_stack([ts[f"{p}.open_interest"].to_numpy(dtype=float) for p in perps])
    ok = np.flatnonzero((im > 0) & np.isfinite(marks).all(axis=1))
    if ok.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    idx = np.arange(ok[0], len(ts) - horizon, horizon)
    pnl = np.nansum(oi[idx] * (marks[idx + horizon] - marks[idx]), axis=1)
    keep = np.isfinite(pnl)
    return pnl[keep], 0.5 * im[idx][keep], 0.5 * mm[idx][keep]


def backtest_table(run_dirs: dict[str, Path], horizon: int, confidence: float = 0.99,
                   level: float = 0.05, failed: dict[str, str] | None = None) -> pd.DataFrame:
    """Backtest rows per regime x protocol x side x margin measure (reads run outputs only).

    Args:
        run_dirs: Regime → finished run directory.
        horizon: Steps per P&L period.
        confidence: Coverage the margin is tested against.
        level: Size of the likelihood-ratio tests.
        failed: Regime → one-line error of regimes without a finished run;
            each gets one row with NaN results, ``runs = 0`` and
            ``runs_failed = 1`` (never an empty or zero result).

    Returns:
        One row per regime x protocol x side x margin, with ``runs`` (1) and
        ``runs_failed`` (0), plus the failed regimes' rows.
    """
    from margin.risk.backtest import backtest

    rows = []
    for regime, run_dir in run_dirs.items():
        ts = pd.read_parquet(Path(run_dir) / "timeseries.parquet")
        protos = [c[:-len(".initial_margin")] for c in ts.columns if c.endswith(".initial_margin")]
        for proto in protos:
            pnl, half_im, half_mm = side_pnl(ts, proto, horizon)
            for side, sign in (("long", 1.0), ("short", -1.0)):
                for measure, m in (("initial", half_im), ("maintenance", half_mm)):
                    if pnl.size < 2:
                        continue
                    r = backtest(sign * pnl, m, confidence, level)
                    rows.append({"regime": regime, "protocol": proto, "side": side,
                                 "margin": measure, "periods": r.n_obs,
                                 "exceedances": r.n_exceptions,
                                 "expected": round((1 - confidence) * r.n_obs, 2),
                                 "kupiec_p": r.kupiec.p_value,
                                 "christoffersen_p": r.independence.p_value,
                                 "cc_p": r.conditional.p_value,
                                 "traffic_light": r.traffic_light.zone,
                                 "worst_loss_over_margin": float(np.max(-sign * pnl / m)),
                                 "runs": 1, "runs_failed": 0})
    empty = {"protocol": np.nan, "side": np.nan, "margin": np.nan, "periods": np.nan,
             "exceedances": np.nan, "expected": np.nan, "kupiec_p": np.nan,
             "christoffersen_p": np.nan, "cc_p": np.nan, "worst_loss_over_margin": np.nan}
    tested = {r["regime"] for r in rows}
    for regime in run_dirs:  # finished, but too few periods to test: say so
        if regime not in tested:
            rows.append({"regime": regime, **empty, "traffic_light": "too few periods",
                         "runs": 1, "runs_failed": 0})
    for regime in failed or {}:
        rows.append({"regime": regime, **empty, "traffic_light": "failed",
                     "runs": 0, "runs_failed": 1})
    return pd.DataFrame(rows)


def run_study(cfg: DictConfig | Any) -> Path:
    """Run (or resume) one replay per regime and write the backtest table.

    Only runs of the current config (resolved run config and code) are read.

    Raises:
        experiments.common.StudyRunsFailed: A regime's run has no result
            (raised after the table is written, with a NaN row for it).
    """
    specs = build_specs(cfg)
    runs = start_study(cfg, specs)
    out = runs.out
    done = set(runs.finished)
    dirs = {s.name: out / "runs" / s.name for s in specs if s.name in done}
    failed = {s.name: runs.errors.get(s.name, "not run") for s in specs if s.name not in done}
    table = backtest_table(dirs, int(cfg.horizon), float(cfg.confidence), float(cfg.level),
                           failed)
    write_table(table, out / "tables", "backtest",
                caption=f"Margin backtest on {cfg.scenario}: {int(cfg.horizon)}-step P&L of each "
                        f"side of the perp book vs half the protocol margin "
                        f"({float(cfg.confidence):.0%}); {len(dirs)} of {len(specs)} regime "
                        f"runs finished")
    runs.finish("backtest_report")
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: ``key=value`` overrides of ``conf/experiment/backtest_report.yaml``.

    Arguments are checked first (:data:`experiments.study_args.SCHEMAS`): a bad one
    stops with one line on stderr and exit status 2, before anything is written.
    """
    cfg = study_config("backtest_report", sys.argv[1:] if argv is None else argv)
    with study_exit():
        out = run_study(cfg)
    print(f"backtest_report outputs in {out.resolve()}:")
    print(f"  {out / 'tables'}")


if __name__ == "__main__":
    main()
