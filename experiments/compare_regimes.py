"""Study: margin regimes compared across stress scenarios with common random numbers.

Every regime in ``regimes`` runs every scenario in ``scenarios`` for
``replicates`` replicates. Replicate ``k`` uses seed ``replicate_seeds(base_seed,
N)[k]`` under *every* regime and scenario: the model draws all randomness from
one generator seeded by ``seed``, so for a given scenario and replicate each
regime sees the same exogenous (fundamental) path and the same agent random
streams — common random numbers (Law & Kelton, *Simulation Modeling and
Analysis*, §11.2). Regime differences are then estimated from per-replicate
*paired* differences to the baseline regime with a paired-*t* interval
(§10.2.1, :func:`experiments.stats.paired_ci`). Across replicates the
Gauntlet tail metrics are reported as point values: VaR = 95th percentile of
insolvent debt, LaR = 95th percentile of liquidated notional
(:func:`experiments.stats.tail_metrics`). Every run is the default world
(:func:`experiments.worlds.default_crash`) with the regime and scenario set.

Usage::

    python -m experiments.compare_regimes                       # small default
    python -m experiments.compare_regimes replicates=10 steps=1440 workers=2
    python -m experiments.compare_regimes report_only=true      # re-draw only

Parameters: ``conf/experiment/compare_regimes.yaml``. Output directory
(``output_dir``)::

    runs/<scenario>__<regime>__rNN/   one run each (sim outputs + done.json)
    aggregated.csv                    one row per run of this config (status; NaN if failed)
    tables/compare_regimes.{csv,md,tex}   mean per regime, paired diff + CI
    tables/tail_risk.{csv,md,tex}     VaR / LaR per scenario x regime
    figures/<metric>.{png,pdf}        regime means with CI error bars per scenario
    study.yaml                        the parameters used

Running (:func:`run_study`) and post-processing (:func:`report`, which reads
``aggregated.csv`` only) are separate; an interrupted study resumes where it
stopped, reusing only runs of the same resolved config and code
(``experiments.sweep``). Failed runs are NaN in every table, with counts
(``runs``, ``runs_failed``); the study then exits with status 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from experiments.analysis import METRIC_LABELS, write_table
from experiments.common import run_and_aggregate, study_exit
from experiments.stats import paired_ci, replicate_seeds, t_half_width, tail_metrics
from experiments.study_args import study_config
from experiments.sweep import RunSpec
from experiments.worlds import default_crash

__all__ = ["build_specs", "comparison_table", "main", "plot_metric", "report", "run_study",
           "tail_table"]


def build_specs(cfg: DictConfig | Any) -> list[RunSpec]:
    """Run specs for regimes x scenarios x replicates (same seed per replicate).

    Args:
        cfg: The study config (``regimes``, ``scenarios``, ``replicates``,
            ``steps``, ``base_seed``, ``overrides``).

    Returns:
        One :class:`RunSpec` per run, named ``<scenario>__<regime>__rNN``.
    """
    seeds = replicate_seeds(int(cfg.base_seed), int(cfg.replicates))
    specs = []
    for scenario, extra in cfg.scenarios.items():
        for regime in cfg.regimes:
            for k, seed in enumerate(seeds):
                ov = [*default_crash(), f"margin={regime}", f"scenario={scenario}",
                      *list(extra or []), f"steps={int(cfg.steps)}", f"seed={seed}",
                      "output.figures=false", "progress=false", *list(cfg.overrides or [])]
                specs.append(RunSpec(f"{scenario}__{regime}__r{k:02d}", tuple(ov),
                                     {"scenario": str(scenario), "regime": str(regime),
                                      "replicate": k, "seed": seed}))
    return specs


def _done(agg: pd.DataFrame) -> pd.Series:
    """Rows of finished runs (all rows of a table without a ``status`` column)."""
    if "status" not in agg.columns:
        return pd.Series(True, index=agg.index)
    return agg["status"].astype(str) == "done"


def comparison_table(agg: pd.DataFrame, metrics: list[str], baseline: str,
                     confidence: float = 0.95) -> pd.DataFrame:
    """Mean per regime and paired difference to ``baseline``, per scenario x metric.

    Failed or missing runs (``status`` other than ``done``) never count as
    values: a regime with no finished run has a NaN mean, and the counts say
    how many runs each row rests on.

    Args:
        agg: Aggregated runs (columns ``scenario``, ``regime``, ``replicate``,
            the metrics and optionally ``status``).
        metrics: Metric columns.
        baseline: Baseline regime (its own rows have difference 0).
        confidence: Level of the paired-*t* interval.

    Returns:
        Columns ``scenario, metric, regime, mean, diff_vs_<baseline>, ci_low,
        ci_high, n_pairs, runs, runs_failed`` (``runs``: finished runs with a
        value of the metric; ``runs_failed``: runs of the cell without a result).
    """
    rows = []
    pct = f"{confidence:.0%}"
    agg = agg.copy()
    done = _done(agg)
    for metric in metrics:
        agg[metric] = pd.to_numeric(agg[metric], errors="coerce").where(done)
    for scenario, sub in agg.groupby("scenario", sort=False):
        for metric in metrics:
            wide = sub.pivot_table(index="replicate", columns="regime", values=metric,
                                   aggfunc="first", dropna=False)
            for regime in sub["regime"].drop_duplicates():
                cell = sub[sub["regime"] == regime]
                x = cell[metric]
                row = {"scenario": scenario, "metric": metric, "regime": regime,
                       "mean": float(np.nanmean(x)) if x.notna().any() else np.nan}
                if baseline in wide and regime in wide:
                    ci = paired_ci(wide[regime].to_numpy(), wide[baseline].to_numpy(),
                                   confidence)
                else:
                    ci = {"diff": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": 0}
                row.update({f"diff_vs_{baseline}": ci["diff"], f"ci_low_{pct}": ci["ci_low"],
                            f"ci_high_{pct}": ci["ci_high"], "n_pairs": int(ci["n"]),
                            "runs": int(x.notna().sum()),
                            "runs_failed": int((~done.loc[cell.index]).sum())})
                rows.append(row)
    return pd.DataFrame(rows)


def tail_table(agg: pd.DataFrame, q: float = 0.95) -> pd.DataFrame:
    """Gauntlet VaR (insolvent debt) and LaR (liquidated notional) per scenario x regime.

    Quantiles are over the finished runs with both values; a failed or
    missing run is left out (never read as zero), a cell without any is NaN.

    Args:
        agg: Aggregated runs (``scenario``, ``regime``, ``insolvency``,
            ``liquidation_notional``, optionally ``status``).
        q: Quantile.

    Returns:
        Columns ``scenario, regime, VaR_<q>_USD, LaR_<q>_USD, runs, runs_failed``.
    """
    rows = []
    done = _done(agg)
    for (scenario, regime), g in agg.groupby(["scenario", "regime"], sort=False):
        debt = pd.to_numeric(g["insolvency"], errors="coerce")
        liq = pd.to_numeric(g["liquidation_notional"], errors="coerce")
        ok = done.loc[g.index] & debt.notna() & liq.notna()
        if ok.any():
            m = tail_metrics(debt[ok], liq[ok], q)
        else:
            m = {"VaR": np.nan, "LaR": np.nan, "runs": 0}
        rows.append({"scenario": scenario, "regime": regime, f"VaR_{q:.0%}_USD": m["VaR"],
                     f"LaR_{q:.0%}_USD": m["LaR"], "runs": int(m["runs"]),
                     "runs_failed": int((~done.loc[g.index]).sum())})
    return pd.DataFrame(rows)


def plot_metric(agg: pd.DataFrame, metric: str, out_dir: Path, confidence: float = 0.95
                ) -> dict[str, Path]:
    """Regimes' means with t-interval error bars, grouped by scenario (reads ``agg`` only).

    Args:
        agg: Aggregated runs.
        metric: Metric column.
        out_dir: Figure directory (``<metric>.png`` and ``.pdf``).
        confidence: Error-bar level (t-interval of each regime's mean).

    Returns:
        Files written.
    """
    import matplotlib.pyplot as plt

    from sim.output.figures import OKABE_ITO, save

    scenarios = list(agg["scenario"].drop_duplicates())
    regimes = list(agg["regime"].drop_duplicates())
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(scenarios) * max(1, len(regimes)) / 2, 3.6))
    width = 0.8 / max(1, len(regimes))
    for j, regime in enumerate(regimes):
        means, errs = [], []
        for s in scenarios:
            v = agg.loc[(agg["scenario"] == s) & (agg["regime"] == regime) & _done(agg), metric]
            v = pd.to_numeric(v, errors="coerce").dropna().to_numpy()
            means.append(v.mean() if v.size else np.nan)
            errs.append(t_half_width(v, confidence) if v.size > 1 else 0.0)
        xs = np.arange(len(scenarios)) + (j - (len(regimes) - 1) / 2) * width
        ax.bar(xs, means, width * 0.9, yerr=errs, capsize=3, label=regime,
               color=OKABE_ITO[(j + 1) % len(OKABE_ITO)], edgecolor="black", linewidth=0.5)
    label, unit = METRIC_LABELS.get(metric, (metric, ""))
    ax.set_xticks(np.arange(len(scenarios)), scenarios)
    ax.set_ylabel(f"{label} ({unit})" if unit else label)
    ax.set_title(f"{label}: mean over replicates, {confidence:.0%} t-interval", fontsize=9)
    ax.legend(title="margin regime", fontsize=7, title_fontsize=7)
    return save(fig, Path(out_dir), metric)


def report(out_dir: str | Path, cfg: DictConfig | Any) -> dict[str, Path]:
    """Tables and figures from ``out_dir/aggregated.csv`` (never re-runs).

    Args:
        out_dir: The study's output directory.
        cfg: Study config (``metrics``, ``baseline``, ``confidence``, ``tail_quantile``).

    Returns:
        Files written.
    """
    out = Path(out_dir)
    agg = pd.read_csv(out / "aggregated.csv")
    metrics = [m for m in cfg.metrics if m in agg.columns]
    files: dict[str, Path] = {}
    table = comparison_table(agg, metrics, str(cfg.baseline), float(cfg.confidence))
    for k, v in write_table(table, out / "tables", "compare_regimes", group="scenario",
                            caption=f"Margin regimes: mean over replicates and paired "
                                    f"difference to {cfg.baseline} "
                                    f"({float(cfg.confidence):.0%} paired-t CI)").items():
        files[f"compare_{k}"] = v
    tail = tail_table(agg, float(cfg.tail_quantile))
    for k, v in write_table(tail, out / "tables", "tail_risk",
                            caption="Gauntlet VaR (insolvent debt) and LaR (liquidated "
                                    "notional) across replicates").items():
        files[f"tail_{k}"] = v
    for metric in metrics:
        files.update(plot_metric(agg, metric, out / "figures", float(cfg.confidence)))
    return files


def run_study(cfg: DictConfig | Any) -> Path:
    """Run (or resume) the sweep, aggregate it and write the report.

    Args:
        cfg: Study config.

    Returns:
        The output directory.

    Raises:
        experiments.common.StudyRunsFailed: Some runs have no result (raised
            after the tables and figures are written).
    """
    runs, _ = run_and_aggregate(cfg, build_specs(cfg))
    report(runs.out, cfg)
    runs.finish("compare_regimes")
    return runs.out


def main(argv: list[str] | None = None) -> None:
    """Command line: ``key=value`` overrides of ``conf/experiment/compare_regimes.yaml``.

    Arguments are checked first (:data:`experiments.study_args.SCHEMAS`): a bad one
    stops with one line on stderr and exit status 2, before anything is written.
    """
    cfg = study_config("compare_regimes", sys.argv[1:] if argv is None else argv)
    with study_exit():
        out = run_study(cfg)
    print(f"compare_regimes outputs in {out.resolve()}:")
    for sub in ("aggregated.csv", "tables", "figures"):
        print(f"  {out / sub}")


if __name__ == "__main__":
    main()
