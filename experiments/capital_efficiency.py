"""Study: capital a margin regime asks of each option book per unit of risk it takes.

Every regime in ``regimes`` runs every scenario in ``scenarios`` for
``replicates`` replicates of the options world with every book held
(:func:`experiments.worlds.options_books`). Replicate ``k`` uses seed
``replicate_seeds(base_seed, N)[k]`` under *every* regime and scenario; the
exogenous price path has its own random stream, so the regimes of one
scenario and replicate see identical price paths — common random numbers
(Law & Kelton, *Simulation Modeling and Analysis*, §11.2), and differences
between regimes are estimated from replicate-wise *paired* differences with a
paired-*t* interval (§10.2.1, :func:`experiments.stats.paired_ci`).

Per run and book (the option-book types and the dealers) the measures of
:mod:`experiments.book_metrics` are read from the run's ``accounts.parquet``
and ``liquidations.parquet``: capital requirement (initial plus haircuts held)
per unit of risk taken on one regime-independent reference grid (Deribit's
standard grid), the initial requirement alone per unit of risk, requirement
per unit of gross notional, liquidations (count, accounts, notional) and
mark-to-market equity lost after the warm-up. Per protocol, bad debt
(recorded and at mark) comes from ``summary.json``. A portfolio-margin regime
should ask less of hedged books per unit of risk than position-by-position
margin (Deribit portfolio margin, ``margin_methods.md`` §3.1; SPAN, §1); the
verdict table says per scenario and book whether ``candidate`` asks less than
each baseline with the paired interval excluding zero.

Usage::

    python -m experiments.capital_efficiency                      # default design
    python -m experiments.capital_efficiency replicates=3 steps=720 'scenarios={calm: []}'
    python -m experiments.capital_efficiency report_only=true     # re-draw only

Parameters: ``conf/experiment/capital_efficiency.yaml``. Output directory
(``output_dir``)::

    runs/<scenario>__<regime>__rNN/     one run each (sim outputs + done.json)
    aggregated.csv                      one row per run: status, book.<book>.<metric> (NaN: failed)
    tables/books_<metric>.{csv,md,tex}  mean per scenario x book x regime, paired diffs + CIs
    tables/bad_debt.{csv,md,tex}        per protocol: bad debt recorded and at mark
    tables/verdict.{csv,md,tex}         candidate lower than each baseline? yes / no / inconclusive
    figures/<metric>.{png,pdf}          bars by book, one panel per scenario, 95 % error bars
    study.yaml                          the parameters used

Running (:func:`run_study`) and post-processing (:func:`report`, which reads
``aggregated.csv`` only) are separate; an interrupted study resumes where it
stopped, reusing only runs of the same resolved config and code
(``experiments.sweep``). A failed run — or a finished run whose book measures
cannot be read — is NaN in every table, with counts (``runs``,
``runs_failed``); the study then exits with status 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from experiments.analysis import write_table
from experiments.book_metrics import run_book_metrics
from experiments.common import StudyRuns, run_and_aggregate, study_exit
from experiments.compare_regimes import comparison_table
from experiments.stats import replicate_seeds, t_half_width
from experiments.study_args import study_config
from experiments.sweep import RunSpec
from experiments.worlds import options_books

__all__ = ["METRIC_LABELS", "add_book_metrics", "bad_debt_table", "book_table", "build_specs",
           "main", "plot_books", "report", "run_study", "verdict", "verdict_table"]

#: Book measure → (label, unit) for tables and axes.
METRIC_LABELS: dict[str, tuple[str, str]] = {
    "req_per_risk": ("capital requirement per unit of risk", "(IM + haircuts) / stress loss"),
    "im_per_risk": ("initial requirement per unit of risk", "IM / stress loss"),
    "req_per_notional": ("capital requirement per unit of gross notional",
                         "(IM + haircuts) / notional"),
    "liquidations": ("liquidations", "events"),
    "accounts_liquidated": ("accounts liquidated", "count"),
    "liquidation_notional": ("liquidated notional", "USD"),
    "equity_lost": ("mark-to-market equity lost after the warm-up", "USD"),
    "equity_lost_frac": ("mark-to-market equity lost after the warm-up", "share of equity"),
}

BAD_DEBT = {"bad_debt_recorded": "recorded", "bad_debt_total_at_mark": "at_mark"}
"""``summary.json`` ``protocols.<protocol>`` key → the bad-debt measure it is."""


def build_specs(cfg: DictConfig | Any) -> list[RunSpec]:
    """Run specs for regimes x scenarios x replicates (same seed per replicate).

    Args:
        cfg: The study config (``regimes``, ``scenarios``, ``replicates``, ``steps``,
            ``base_seed``, ``per_book``, ``accounts_every``, ``overrides``).

    Returns:
        One :class:`RunSpec` per run, named ``<scenario>__<regime>__rNN``.
    """
    seeds = replicate_seeds(int(cfg.base_seed), int(cfg.replicates))
    world = options_books(per_book=int(cfg.per_book), accounts_every=int(cfg.accounts_every))
    specs = []
    for scenario, extra in cfg.scenarios.items():
        for regime in cfg.regimes:
            for k, seed in enumerate(seeds):
                ov = [*world, f"margin={regime}", f"scenario={scenario}", *list(extra or []),
                      f"steps={int(cfg.steps)}", f"seed={seed}", "output.figures=false",
                      "progress=false", *list(cfg.overrides or [])]
                specs.append(RunSpec(f"{scenario}__{regime}__r{k:02d}", tuple(ov),
                                     {"scenario": str(scenario), "regime": str(regime),
                                      "replicate": k, "seed": seed}))
    return specs


def add_book_metrics(runs: StudyRuns, table: pd.DataFrame, cfg: DictConfig | Any
                     ) -> pd.DataFrame:
    """Add every finished run's book measures to ``aggregated.csv`` (and rewrite it).

    A finished run whose measures cannot be read (no account snapshots after
    the warm-up, a missing file) is turned into a failed run: its row gets
    ``status = failed`` and the error, its values stay NaN, and ``runs`` counts
    it as failed, so the study ends with exit status 1 rather than a silent gap.

    Args:
        runs: The study's runs (:func:`experiments.common.run_and_aggregate`); updated.
        table: Its aggregated table.
        cfg: Study config (``books``, ``settle_steps``, ``risk_floor``).

    Returns:
        The table with ``book.<book>.<metric>`` and ``warmup_step`` columns.
    """
    rows = {}
    for name in list(runs.finished):
        try:
            rows[name] = run_book_metrics(runs.out / "runs" / name, list(cfg.books),
                                          int(cfg.settle_steps), float(cfg.risk_floor))
        except (OSError, ValueError, KeyError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            err = f"book measures: {type(exc).__name__}: {first}"
            runs.finished.remove(name)
            runs.errors[name] = err
            table.loc[table["run"] == name, ["status", "error"]] = ["failed", err]
    cols = [f"book.{b}.{m}" for b in cfg.books for m in (*METRIC_LABELS, "accounts")]
    extra = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=["warmup_step", *cols])
    extra.index.name = "run"
    out = table.drop(columns=[c for c in extra.columns if c in table.columns])
    out = out.merge(extra.reset_index(), on="run", how="left")
    out.to_csv(runs.out / "aggregated.csv", index=False)
    return out


def _against(agg: pd.DataFrame, columns: list[str], baselines: list[str], confidence: float
             ) -> pd.DataFrame:
    """Mean per regime and paired difference to each baseline, per scenario x column."""
    pct = f"{confidence:.0%}"
    keys = ["scenario", "metric", "regime"]
    merged = None
    for base in baselines:
        t = comparison_table(agg, columns, base, confidence).rename(columns={
            f"ci_low_{pct}": f"ci_low_{pct}_vs_{base}",
            f"ci_high_{pct}": f"ci_high_{pct}_vs_{base}", "n_pairs": f"n_pairs_vs_{base}"})
        if merged is None:
            merged = t
        else:
            new = [c for c in t.columns if c.endswith(f"_vs_{base}")]
            merged = merged.merge(t[[*keys, *new]], on=keys, how="left", sort=False)
    assert merged is not None
    paired = [c for c in merged.columns if "_vs_" in c]
    return merged[[*keys, "mean", *paired, "runs", "runs_failed"]]


def book_table(agg: pd.DataFrame, metric: str, books: list[str], baselines: list[str],
               confidence: float = 0.95) -> pd.DataFrame:
    """One measure per scenario x book x regime: mean and paired differences to each baseline.

    Failed or missing runs never count as values (a cell without a finished
    run is NaN); ``runs`` counts finished runs with a value, ``runs_failed``
    runs of the cell without a result.

    Args:
        agg: ``aggregated.csv`` (``scenario``, ``regime``, ``replicate``, ``status``,
            ``book.<book>.<metric>``).
        metric: A name of :data:`METRIC_LABELS`.
        books: Books, in table order.
        baselines: Regimes the differences are taken to (regime − baseline).
        confidence: Level of the paired-*t* intervals.

    Returns:
        Columns ``scenario, book, regime, mean``, per baseline ``b`` ``diff_vs_b,
        ci_low_<level>_vs_b, ci_high_<level>_vs_b, n_pairs_vs_b``, then ``runs,
        runs_failed``.
    """
    cols = [f"book.{b}.{metric}" for b in books]
    for c in cols:
        if c not in agg.columns:
            agg = agg.assign(**{c: np.nan})
    t = _against(agg, cols, baselines, confidence)
    t.insert(1, "book", t.pop("metric").str.split(".").str[1])
    scen = {s: i for i, s in enumerate(agg["scenario"].drop_duplicates())}
    rank = t["scenario"].map(scen) * len(books) + t["book"].map({b: i for i, b in
                                                                 enumerate(books)})
    return t.iloc[np.argsort(rank.to_numpy(), kind="stable")].reset_index(drop=True)


def bad_debt_table(agg: pd.DataFrame, baselines: list[str], confidence: float = 0.95
                   ) -> pd.DataFrame:
    """Bad debt per scenario x protocol x measure x regime, paired to each baseline.

    ``recorded``: the waterfall's written-off bad debt (``bad_debt_recorded``);
    ``at_mark``: that plus the insurance fund's uncovered loss on positions it
    took over, at the mark (``bad_debt_total_at_mark``); both USD, from each
    run's ``summary.json`` (``protocols.<protocol>``).

    Args:
        agg: ``aggregated.csv``.
        baselines: Regimes the differences are taken to.
        confidence: Level of the paired-*t* intervals.

    Returns:
        Columns ``scenario, protocol, measure, regime, mean``, the paired columns per
        baseline, ``runs, runs_failed`` (empty if no finished run reported bad debt).
    """
    cols = [c for c in agg.columns if c.startswith("protocols.") and c.count(".") == 2
            and c.split(".")[2] in BAD_DEBT]
    if not cols:
        return pd.DataFrame(columns=["scenario", "protocol", "measure", "regime", "mean"])
    t = _against(agg, cols, baselines, confidence)
    parts = t.pop("metric").str.split(".")
    t.insert(1, "protocol", parts.str[1])
    t.insert(2, "measure", parts.str[2].map(BAD_DEBT))
    return t


def verdict(low: float, high: float) -> str:
    """``yes`` if the interval of (candidate − baseline) lies below zero, ``no`` above.

    Args:
        low: Lower bound of the paired interval.
        high: Upper bound.

    Returns:
        ``yes`` (lower, significantly), ``no`` (higher, significantly) or
        ``inconclusive`` (the interval holds zero, or it could not be computed:
        fewer than two pairs of finished runs).
    """
    if not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    if high < 0.0:
        return "yes"
    if low > 0.0:
        return "no"
    return "inconclusive"


def verdict_table(table: pd.DataFrame, candidate: str, baselines: list[str],
                  confidence: float = 0.95) -> pd.DataFrame:
    """Per scenario x book: is ``candidate`` lower than each baseline (paired interval < 0)?

    Args:
        table: :func:`book_table` of the verdict measure.
        candidate: The regime judged (e.g. ``portfolio``).
        baselines: Regimes it is compared with.
        confidence: Level of the intervals in ``table``.

    Returns:
        Columns ``scenario, book, <candidate>_mean``, per baseline ``b`` ``diff_vs_b,
        ci_low_vs_b, ci_high_vs_b, n_pairs_vs_b, lower_than_b``, and
        ``lower_than_all`` (``yes`` if every baseline's is, ``no`` if any is
        ``no``, else ``inconclusive``).
    """
    pct = f"{confidence:.0%}"
    rows = []
    for rec in table.loc[table["regime"] == candidate].to_dict("records"):
        row: dict[str, Any] = {"scenario": rec["scenario"], "book": rec["book"],
                               f"{candidate}_mean": rec["mean"]}
        calls = []
        for b in baselines:
            lo, hi = float(rec[f"ci_low_{pct}_vs_{b}"]), float(rec[f"ci_high_{pct}_vs_{b}"])
            call = verdict(lo, hi)
            calls.append(call)
            row.update({f"diff_vs_{b}": rec[f"diff_vs_{b}"], f"ci_low_vs_{b}": lo,
                        f"ci_high_vs_{b}": hi, f"n_pairs_vs_{b}": int(rec[f"n_pairs_vs_{b}"]),
                        f"lower_than_{b}": call})
        row["lower_than_all"] = ("yes" if all(c == "yes" for c in calls) else
                                 "no" if "no" in calls else "inconclusive")
        rows.append(row)
    return pd.DataFrame(rows)


def plot_books(agg: pd.DataFrame, metric: str, books: list[str], out_dir: Path,
               confidence: float = 0.95) -> dict[str, Path]:
    """Bars per book, regimes side by side, one panel per scenario (reads ``agg`` only).

    Each bar is a regime's mean over its finished replicates with the
    Student-*t* interval of that mean as error bar
    (:func:`experiments.stats.t_half_width`); the axis is logarithmic when
    every mean is positive and they span more than two decades.

    Args:
        agg: ``aggregated.csv``.
        metric: A name of :data:`METRIC_LABELS`.
        books: Books on the x axis.
        out_dir: Figure directory (``<metric>.png`` and ``.pdf``).
        confidence: Error-bar level.

    Returns:
        Files written.
    """
    import matplotlib.pyplot as plt

    from sim.output.figures import OKABE_ITO, save

    scenarios = list(agg["scenario"].drop_duplicates())
    regimes = list(agg["regime"].drop_duplicates())
    done = agg["status"].astype(str) == "done" if "status" in agg else pd.Series(True, agg.index)
    fig, axes = plt.subplots(1, len(scenarios), figsize=(1.5 + 0.9 * len(books) * len(scenarios),
                                                          3.8), sharey=True, squeeze=False)
    width = 0.8 / max(1, len(regimes))
    every = []
    for ax, s in zip(axes[0], scenarios, strict=True):
        for j, regime in enumerate(regimes):
            sel = (agg["scenario"] == s) & (agg["regime"] == regime) & done
            means, errs = [], []
            for b in books:
                col = f"book.{b}.{metric}"
                v = (pd.to_numeric(agg.loc[sel, col], errors="coerce").dropna().to_numpy()
                     if col in agg else np.zeros(0))
                means.append(v.mean() if v.size else np.nan)
                errs.append(t_half_width(v, confidence) if v.size > 1 else 0.0)
            every += means
            xs = np.arange(len(books)) + (j - (len(regimes) - 1) / 2) * width
            ax.bar(xs, means, width * 0.9, yerr=np.nan_to_num(errs), capsize=2, label=regime,
                   color=OKABE_ITO[(j + 1) % len(OKABE_ITO)], edgecolor="black", linewidth=0.4)
        ax.set_xticks(np.arange(len(books)), [b.replace("_", " ") for b in books], rotation=45,
                      ha="right", fontsize=7)
        ax.set_title(s, fontsize=9)
    finite = np.array([m for m in every if np.isfinite(m)])
    if finite.size and (finite > 0).all() and finite.max() / finite.min() > 100:
        axes[0][0].set_yscale("log")
    label, unit = METRIC_LABELS.get(metric, (metric, ""))
    axes[0][0].set_ylabel(f"{label}\n({unit})" if unit else label, fontsize=8)
    axes[0][0].legend(title="margin regime", fontsize=7, title_fontsize=7)
    fig.suptitle(f"{label}: mean over replicates, {confidence:.0%} t-interval", fontsize=9)
    fig.tight_layout()
    return save(fig, Path(out_dir), metric)


def report(out_dir: str | Path, cfg: DictConfig | Any) -> dict[str, Path]:
    """Tables and figures from ``out_dir/aggregated.csv`` (never re-runs).

    Args:
        out_dir: The study's output directory.
        cfg: Study config (``books``, ``baselines``, ``candidate``, ``verdict_metric``,
            ``figure_metrics``, ``confidence``).

    Returns:
        Files written.
    """
    out = Path(out_dir)
    agg = pd.read_csv(out / "aggregated.csv")
    books, baselines = list(cfg.books), list(cfg.baselines)
    level = float(cfg.confidence)
    files: dict[str, Path] = {}
    tables = {}
    for metric, (label, unit) in METRIC_LABELS.items():
        tables[metric] = t = book_table(agg, metric, books, baselines, level)
        cap = (f"{label} ({unit}) per option book: mean over replicates and paired difference "
               f"to {', '.join(baselines)} ({level:.0%} paired-t CI)")
        for k, v in write_table(t, out / "tables", f"books_{metric}", caption=cap,
                                group="scenario").items():
            files[f"books_{metric}_{k}"] = v
    debt = bad_debt_table(agg, baselines, level)
    for k, v in write_table(debt, out / "tables", "bad_debt", group="scenario",
                            caption=f"Bad debt per protocol (USD), recorded and at mark: mean "
                                    f"and paired difference to {', '.join(baselines)} "
                                    f"({level:.0%} paired-t CI)").items():
        files[f"bad_debt_{k}"] = v
    metric = str(cfg.verdict_metric)
    table = verdict_table(tables[metric], str(cfg.candidate), baselines, level)
    for k, v in write_table(table, out / "tables", "verdict",
                            caption=f"Is {cfg.candidate}'s {METRIC_LABELS[metric][0]} lower than "
                                    f"{' and '.join(baselines)}? yes: the {level:.0%} paired-t "
                                    f"interval lies below zero; no: above; else "
                                    f"inconclusive").items():
        files[f"verdict_{k}"] = v
    for metric in cfg.figure_metrics:
        files.update(plot_books(agg, str(metric), books, out / "figures", level))
    return files


def run_study(cfg: DictConfig | Any) -> Path:
    """Run (or resume) the sweep, add the book measures, write the report.

    Args:
        cfg: Study config.

    Returns:
        The output directory.

    Raises:
        experiments.common.StudyRunsFailed: Some runs have no result (raised
            after the tables and figures are written).
    """
    runs, table = run_and_aggregate(cfg, build_specs(cfg))
    add_book_metrics(runs, table, cfg)
    report(runs.out, cfg)
    runs.finish("capital_efficiency")
    return runs.out


def main(argv: list[str] | None = None) -> None:
    """Command line: ``key=value`` overrides of ``conf/experiment/capital_efficiency.yaml``.

    Arguments are checked first (:data:`experiments.study_args.SCHEMAS`): a bad one
    stops with one line on stderr and exit status 2, before anything is written.
    """
    cfg = study_config("capital_efficiency", sys.argv[1:] if argv is None else argv)
    with study_exit():
        out = run_study(cfg)
    print(f"capital_efficiency outputs in {out.resolve()}:")
    for sub in ("aggregated.csv", "tables", "figures"):
        print(f"  {out / sub}")


if __name__ == "__main__":
    main()
