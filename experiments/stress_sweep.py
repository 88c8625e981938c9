r"""Study: a protocol designer's stress grid — response surfaces and a target set.

Every combination of the ``grid`` values (run-config paths such as
``margin.haircuts.BTC``, ``protocols.0.liquidation.liquidation_fee``,
``protocols.0.liquidation.close_factor``, ``agents.leveraged.leverage_max``,
``protocols.0.insurance_fund``, ``margin.params.buffer``) runs ``replicates``
times under one regime and scenario. Replicate ``k`` has the same seed in every
cell (common random numbers, Law & Kelton, *Simulation Modeling and Analysis*,
§11.2), so differences between cells are not seed noise.

Per cell, across replicates (Gauntlet's tail metrics):

* ``debt_ratio_q`` — the ``target.quantile`` quantile of
  ``debt_metric / open_interest``; ``debt_metric`` is ``insolvency`` (debt
  beyond the liquidated accounts' collateral, before insurance) or
  ``bad_debt`` (written off); open interest = final open interest x final
  fundamental, summed over perpetuals, in USD
  (:func:`experiments.analysis.open_interest_notional`);
* ``VaR`` — quantile of insolvent debt (USD); ``LaR`` — quantile of liquidated
  notional (USD).

The *target set* is the cells with ``debt_ratio_q <= target.threshold``
(default: 95th percentile of insolvent debt below 0.1 % of open interest).
Heat maps show ``debt_ratio_q`` and LaR over the two ``heatmap`` parameters;
any further grid axes are collapsed by their worst (largest) value.

Usage::

    python -m experiments.stress_sweep
    python -m experiments.stress_sweep replicates=10 \
      'grid={margin.haircuts.BTC: [0.05, 0.1, 0.2], agents.leveraged.leverage_max: [5, 10, 20]}' \
      'heatmap=[margin.haircuts.BTC,agents.leveraged.leverage_max]'

Outputs in ``output_dir``: ``runs/``, ``aggregated.csv``, ``tables/cells.{csv,md,tex}``
(every cell, with ``meets_target``, ``runs`` and ``runs_failed``: a cell whose
runs failed is listed with NaN statistics and never meets the target),
``tables/target_set.{csv,md,tex}``, ``figures/heatmap_debt_ratio.{png,pdf}``,
``figures/heatmap_lar.{png,pdf}``.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from experiments.analysis import write_table
from experiments.common import run_and_aggregate, study_exit
from experiments.stats import quantile, replicate_seeds
from experiments.study_args import study_config
from experiments.sweep import RunSpec
from experiments.worlds import default_crash

__all__ = ["build_specs", "cell_table", "heatmap", "main", "report", "run_study", "target_set"]


def _param_col(key: str) -> str:
    return f"param.{key}"


def build_specs(cfg: DictConfig | Any) -> list[RunSpec]:
    """One spec per grid cell x replicate (seed shared across cells)."""
    keys = list(cfg.grid.keys())
    values = [list(cfg.grid[k]) for k in keys]
    seeds = replicate_seeds(int(cfg.base_seed), int(cfg.replicates))
    specs = []
    for c, combo in enumerate(itertools.product(*values)):
        for k, seed in enumerate(seeds):
            ov = [*default_crash(), f"margin={cfg.regime}", f"scenario={cfg.scenario}",
                  *list(cfg.scenario_overrides or []), f"steps={int(cfg.steps)}",
                  f"seed={seed}", "output.figures=false", "progress=false",
                  *[f"{key}={val}" for key, val in zip(keys, combo, strict=True)],
                  *list(cfg.overrides or [])]
            meta = {"cell": c, "replicate": k, "seed": seed,
                    **{_param_col(key): val for key, val in zip(keys, combo, strict=True)}}
            specs.append(RunSpec(f"cell{c:03d}__r{k:02d}", tuple(ov), meta))
    return specs


def cell_table(agg: pd.DataFrame, params: list[str], debt_metric: str = "insolvency",
               q: float = 0.95, threshold: float = 0.001, lar_q: float = 0.95) -> pd.DataFrame:
    """Per-cell tail statistics and the target flag.

    Only finished runs (``status == "done"`` when the column is present) with
    a value enter the statistics; a failed or missing run is never read as
    zero. A cell without any such run is still listed, with NaN statistics.
    A cell meets the target only if none of its runs failed.

    Args:
        agg: Aggregated runs with ``param.<key>`` columns, ``debt_metric``,
            ``insolvency``, ``liquidation_notional``, ``open_interest`` and
            optionally ``status``.
        params: Grid keys (without the ``param.`` prefix).
        debt_metric: ``insolvency`` or ``bad_debt``.
        q: Quantile of the debt ratio across replicates.
        threshold: Target on that quantile (fraction of open interest).
        lar_q: Quantile for VaR / LaR.

    Returns:
        One row per cell: the parameters, ``replicates`` (runs configured),
        ``runs`` (runs the statistics rest on), ``runs_failed``,
        ``debt_ratio_q``, ``VaR``, ``LaR``, ``mean_open_interest`` and
        ``meets_target``.
    """
    cols = [_param_col(p) for p in params]
    df = agg.copy()
    done = (df["status"].astype(str) == "done" if "status" in df.columns
            else pd.Series(True, index=df.index))
    oi = pd.to_numeric(df["open_interest"], errors="coerce").where(done)
    debt = pd.to_numeric(df[debt_metric], errors="coerce").where(done)
    ins = pd.to_numeric(df["insolvency"], errors="coerce").where(done)
    lar = pd.to_numeric(df["liquidation_notional"], errors="coerce").where(done)
    # no open interest: any debt is infinitely large relative to it, none is 0
    ratio = np.where(oi > 0, debt / oi.where(oi > 0, 1.0), np.where(debt > 0, np.inf, 0.0))
    df["debt_ratio"] = pd.Series(ratio, index=df.index).where(debt.notna() & oi.notna())
    rows = []
    for key, g in df.groupby(cols, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        r = g["debt_ratio"].dropna().to_numpy()
        failed = int((~done.loc[g.index]).sum())
        ratio_q = quantile(r, q)  # NaN without runs; inf when infinite ratios reach rank q
        v, lv = ins.loc[g.index].dropna(), lar.loc[g.index].dropna()
        rows.append({**dict(zip(params, key, strict=True)), "replicates": len(g),
                     "runs": int(r.size), "runs_failed": failed,
                     "debt_ratio_q": ratio_q,
                     "VaR": quantile(v, lar_q), "LaR": quantile(lv, lar_q),
                     "mean_open_interest": (float(oi.loc[g.index].mean())
                                            if oi.loc[g.index].notna().any() else np.nan),
                     "meets_target": bool(r.size and failed == 0 and ratio_q <= threshold)})
    return pd.DataFrame(rows)


def target_set(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells meeting the target, lowest debt ratio first."""
    return cells[cells["meets_target"]].sort_values("debt_ratio_q", kind="stable",
                                                    ignore_index=True)


def heatmap(cells: pd.DataFrame, x: str, y: str, value: str, out_dir: Path, name: str,
            label: str, threshold: float | None = None) -> dict[str, Path]:
    """Heat map of ``value`` over parameters ``x`` and ``y`` (reads ``cells`` only).

    Further grid axes are collapsed by their maximum (worst case). Cells meeting
    the target are outlined when ``threshold`` is given.
    """
    import matplotlib.pyplot as plt

    from sim.output.figures import save

    grid = cells.pivot_table(index=y, columns=x, values=value, aggfunc="max", dropna=False)
    fig, ax = plt.subplots(figsize=(1.8 + 1.1 * grid.shape[1], 1.4 + 0.8 * grid.shape[0]))
    im = ax.imshow(grid.to_numpy(dtype=float), origin="lower", aspect="auto", cmap="cividis")
    ax.set_xticks(range(grid.shape[1]), [f"{v:g}" if isinstance(v, float) else str(v)
                                         for v in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [f"{v:g}" if isinstance(v, float) else str(v)
                                         for v in grid.index])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = grid.iat[i, j]
            ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=7,
                    color="white" if np.isfinite(v) and v < np.nanmean(grid.to_numpy())
                    else "black")
            if threshold is not None and np.isfinite(v) and v <= threshold:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                           edgecolor="#D55E00", linewidth=2))
    fig.colorbar(im, ax=ax, label=label)
    return save(fig, Path(out_dir), name)


def report(out_dir: str | Path, cfg: DictConfig | Any) -> dict[str, Path]:
    """Cell table, target set and heat maps from ``aggregated.csv`` (never re-runs)."""
    out = Path(out_dir)
    agg = pd.read_csv(out / "aggregated.csv")
    params = list(cfg.grid.keys())
    t = cfg.target
    cells = cell_table(agg, params, str(t.debt_metric), float(t.quantile), float(t.threshold),
                       float(cfg.lar_quantile))
    files: dict[str, Path] = {}
    for k, v in write_table(cells, out / "tables", "cells",
                            caption=f"Stress grid: q{float(t.quantile):.0%} of "
                                    f"{t.debt_metric}/open interest, VaR and LaR "
                                    f"(USD) per cell").items():
        files[f"cells_{k}"] = v
    for k, v in write_table(target_set(cells), out / "tables", "target_set",
                            caption=f"Cells with q{float(t.quantile):.0%} of {t.debt_metric}"
                                    f" <= {float(t.threshold):.3%} of open interest").items():
        files[f"target_{k}"] = v
    x, y = (list(cfg.heatmap) + params)[:2] if len(params) >= 2 else (params[0], params[0])
    if x != y:
        files.update(heatmap(cells, x, y, "debt_ratio_q", out / "figures", "heatmap_debt_ratio",
                             f"q{float(t.quantile):.0%} {t.debt_metric} / open interest "
                             f"(fraction)", float(t.threshold)))
        files.update(heatmap(cells, x, y, "LaR", out / "figures", "heatmap_lar",
                             f"LaR {float(cfg.lar_quantile):.0%}: liquidated notional (USD)"))
    return files


def run_study(cfg: DictConfig | Any) -> Path:
    """Run (or resume) the grid, aggregate and report; returns the output directory.

    Raises:
        experiments.common.StudyRunsFailed: Some runs have no result (raised
            after the tables and figures are written; their cells show it).
    """
    runs, _ = run_and_aggregate(cfg, build_specs(cfg))
    report(runs.out, cfg)
    runs.finish("stress_sweep")
    return runs.out


def main(argv: list[str] | None = None) -> None:
    """Command line: ``key=value`` overrides of ``conf/experiment/stress_sweep.yaml``.

    Arguments are checked first (:data:`experiments.study_args.SCHEMAS`): a bad one
    stops with one line on stderr and exit status 2, before anything is written.
    """
    cfg = study_config("stress_sweep", sys.argv[1:] if argv is None else argv)
    with study_exit():
        out = run_study(cfg)
    print(f"stress_sweep outputs in {out.resolve()}:")
    for sub in ("aggregated.csv", "tables", "figures"):
        print(f"  {out / sub}")


if __name__ == "__main__":
    main()
