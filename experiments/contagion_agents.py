"""The agent model's contagion from alpha to beta: one part of ``contagion_topology``.

The question of :mod:`experiments.contagion_networks` on the simulated
two-venue world :func:`experiments.worlds.isolated_crash`
(:func:`sim.contagion.isolated_crash_overrides`): a one-step gap crash in an
asset only alpha lists gives alpha recorded bad debt, which impairs its
receipt token aLP held by every beta trader. Beta's margin regime
(``agent_model.regimes``, one of :data:`experiments.worlds.AGENT_MODEL_REGIMES`)
x crash size (``crashes``) x ``replicates`` runs (replicate ``k`` has one seed
in every cell: common random numbers, Law & Kelton §11.2). Per run,
*multi-protocol contagion* = beta records a liquidation or bad debt;
``reach`` = protocols with a liquidation or bad debt; ``time_to_contagion`` =
beta's first distress step (below maintenance, liquidation or bad debt) minus
alpha's first bad-debt step. Per cell: probability with a Wilson interval,
means with *t*-intervals (:func:`experiments.stats.summarise_cell`). With the
token channel off beta is untouched by construction
(``tests/sim/test_contagion.py``), so every beta loss here is contagion.

The runs are a resumable sweep (:func:`experiments.sweep.run_sweep`) on the
study's executor (``executor``, ``agent_model.workers``). Outputs:
``agent_runs/`` (one simulation per directory), ``agent_runs.csv`` and
``tables/contagion_agent_model.{csv,md,tex}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from experiments.analysis import write_table
from experiments.stats import replicate_seeds, summarise_cell
from experiments.worlds import AGENT_MODEL_REGIMES

__all__ = ["AGENT_REGIMES", "agent_outcomes", "agent_specs", "agent_table", "run_agent_model"]

AGENT_REGIMES = AGENT_MODEL_REGIMES
"""Margin regimes beta may take (:data:`experiments.worlds.AGENT_MODEL_REGIMES`)."""


def agent_specs(cfg: DictConfig | Any) -> list[Any]:
    """Run specs: beta regime x crash x replicate on the isolated-crash reference world.

    Beta's regime is the run's global ``margin`` (beta has no own margin here;
    alpha keeps its cross margin), with beta's haircut on aLP ``token_haircut``.

    Raises:
        ValueError: An unknown regime or a bad size (one line naming it).
    """
    from experiments.sweep import RunSpec
    from experiments.worlds import isolated_crash

    a = cfg.agent_model
    bad = [r for r in a.regimes if r not in AGENT_REGIMES]
    if bad:
        raise ValueError(f"agent_model.regimes: unknown {bad}; valid: {', '.join(AGENT_REGIMES)}")
    if not 0.0 <= float(a.token_haircut) < 1.0:
        raise ValueError(f"agent_model.token_haircut must be in [0, 1), got {a.token_haircut!r}")
    if int(a.replicates) < 1:
        raise ValueError(f"agent_model.replicates must be >= 1, got {a.replicates!r}")
    seeds = replicate_seeds(int(a.base_seed), int(a.replicates))
    specs = []
    for crash in a.crashes:
        world = isolated_crash(float(crash), None, int(a.start_step), int(a.horizon),
                               int(a.noise), int(a.leveraged), float(a.supply))
        for regime in a.regimes:
            for k, seed in enumerate(seeds):
                ov = [*world, f"margin={regime}", "protocols.1.margin=null",
                      f"+margin.haircuts.aLP={float(a.token_haircut)}", f"seed={seed}",
                      "output.figures=false", "progress=false", *list(a.overrides or [])]
                specs.append(RunSpec(f"crash{float(crash):g}__{regime}__r{k:02d}", tuple(ov),
                                     {"regime": str(regime), "crash": float(crash),
                                      "replicate": k, "seed": seed}))
    return specs


def agent_outcomes(agg: pd.DataFrame, source: str = "alpha", target: str = "beta"
                   ) -> pd.DataFrame:
    """Per run (a :func:`experiments.sweep.collect` table): contagion, reach, losses, timing."""
    def col(key: str) -> pd.Series:
        return pd.to_numeric(agg.get(key, pd.Series(np.nan, index=agg.index)), errors="coerce")

    protocols = sorted({c.split(".")[2] for c in agg.columns
                        if c.startswith("contagion.protocols.") and c.count(".") == 3})
    distressed = {p: (col(f"contagion.protocols.{p}.liquidations").fillna(0) > 0)
                  | (col(f"contagion.protocols.{p}.bad_debt").fillna(0) > 0) for p in protocols}
    first = pd.concat([col(f"contagion.protocols.{target}.{k}").where(lambda s: s >= 0)
                       for k in ("first_below_maintenance", "first_liquidation",
                                 "first_bad_debt")], axis=1).min(axis=1)
    src = col(f"contagion.protocols.{source}.first_bad_debt").where(lambda s: s >= 0)
    out = agg[["run", "regime", "crash", "replicate", "seed"]].copy()
    out["contagion"] = distressed.get(target, pd.Series(False, index=agg.index))
    out["reach"] = sum(d.astype(int) for d in distressed.values()) if distressed else 0
    out[f"{source}_bad_debt"] = col(f"contagion.protocols.{source}.bad_debt")
    out["token_price_end"] = col("assets.aLP.fundamental_end")
    out[f"{target}_liquidations"] = col(f"contagion.protocols.{target}.liquidations")
    out[f"{target}_liquidation_notional"] = col(f"liquidation.{target}.notional")
    out[f"{target}_bad_debt"] = col(f"contagion.protocols.{target}.bad_debt")
    out["time_to_contagion"] = first - src
    return out


def agent_table(runs: pd.DataFrame, confidence: float = 0.95,
                failed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (crash, regime): P(contagion) with a Wilson interval, means with t-intervals.

    Args:
        runs: :func:`agent_outcomes` of the finished runs.
        confidence: Interval level.
        failed: ``crash``, ``regime`` of each run without a result; counted
            in ``runs_failed`` (a cell with no finished run is a NaN row).

    Returns:
        One row per cell with ``replicates`` (runs summarised) and ``runs_failed``.
    """
    value_cols = [c for c in runs.columns if c not in
                  ("run", "regime", "crash", "replicate", "seed", "contagion")]
    fails = ({} if failed is None or failed.empty
             else failed.groupby(["crash", "regime"], sort=False).size().to_dict())
    rows = [{"crash": crash, "regime": regime,
             **summarise_cell(g, ["contagion"], value_cols, confidence),
             "runs_failed": int(fails.get((crash, regime), 0))}
            for (crash, regime), g in runs.groupby(["crash", "regime"], sort=False)]
    seen = {(r["crash"], r["regime"]) for r in rows}
    rows += [{"crash": crash, "regime": regime, "replicates": 0, "runs_failed": int(k)}
             for (crash, regime), k in fails.items() if (crash, regime) not in seen]
    return pd.DataFrame(rows)


def run_agent_model(cfg: DictConfig | Any, out: Path) -> pd.DataFrame:
    """Run (or resume) the agent-model sweep into ``out/agent_runs``; write runs and table.

    Only runs of the current resolved config and code are read
    (:func:`experiments.sweep.collect` with the expected provenance).

    Returns:
        The cell table; ``table.attrs["failure"]`` is None, or the
        :class:`experiments.common.StudyRunsFailed` that :func:`run_study`
        raises once the study's other parts are written.
    """
    from experiments.common import StudyRunsFailed
    from experiments.executor import executor_for
    from experiments.sweep import collect, run_sweep

    specs = agent_specs(cfg)
    a = cfg.agent_model
    rep = run_sweep(specs, out / "agent_runs", workers=int(a.workers),
                    progress=bool(cfg.get("progress", False)),
                    executor=executor_for(cfg, workers=int(a.workers)))
    done = set(rep.finished)
    agg = collect(out / "agent_runs", expected={n: rep.expected[n] for n in done})
    lost = pd.DataFrame([{"crash": s.meta["crash"], "regime": s.meta["regime"]}
                         for s in specs if s.name not in done], columns=["crash", "regime"])
    runs = (agent_outcomes(agg) if not agg.empty
            else pd.DataFrame(columns=["run", "regime", "crash", "replicate", "seed",
                                       "contagion"]))
    runs.to_csv(out / "agent_runs.csv", index=False)
    conf = float(cfg.confidence)
    table = agent_table(runs, conf, lost)
    write_table(table, out / "tables", "contagion_agent_model",
                caption=(f"Agent model: contagion from alpha (one-step gap crash, bad debt, "
                         f"aLP impaired) to beta by beta's margin regime; "
                         f"{int(a.replicates)} replicates per cell, {conf:.0%} intervals; "
                         f"{len(done)} of {len(specs)} runs finished"))
    table.attrs["failure"] = (StudyRunsFailed("contagion_topology", len(specs) - len(done),
                                              len(specs), len(done), rep.failed)
                              if len(done) < len(specs) else None)
    return table
