"""Study: how network topology shapes cross-protocol contagion, in three parts.

One study, one config (``conf/experiment/contagion_topology.yaml``), one
output directory; each part is its own module:

* :mod:`experiments.contagion_networks` — network models (Gai–Kapadia,
  DebtRank, Eisenberg–Noe) on random Erdős–Rényi, scale-free and
  core–periphery exposure networks swept over density and concentration;
  P(multi-protocol contagion) with Wilson intervals, extents with
  *t*-intervals.
* :mod:`experiments.contagion_agents` (``agent_model``) — the agent model on
  the reference world :func:`experiments.worlds.isolated_crash`: contagion
  from alpha to beta by beta's margin regime and crash size (a resumable
  sweep on the study's executor).
* :mod:`experiments.contagion_agent_topology` (``agent_topology``) — the agent
  model on small random topologies, each regime on every protocol.

Every part shares replicate seeds across cells (common random numbers, Law &
Kelton §11.2; :func:`experiments.stats.replicate_seeds`) and reports its
intervals through :mod:`experiments.stats`.

Usage::

    python -m experiments.contagion_topology
    python -m experiments.contagion_topology replicates=1000 n=50 capital_ratio=0.1
    python -m experiments.contagion_topology executor=dask agent_model.workers=2

Outputs in ``output_dir``: ``agent_topology_runs.csv``,
``tables/contagion_agent_topology.{csv,md,tex}`` and
``figures/contagion_agent_topology.{png,pdf}`` (agents on random topologies),
``agent_runs/`` (one simulation per directory),
``agent_runs.csv`` and ``tables/contagion_agent_model.{csv,md,tex}`` (agent
model), ``trials.csv`` (one row per network),
``tables/contagion_topology.{csv,md,tex}``,
``figures/contagion_probability.{png,pdf}`` (probability and DebtRank vs
density per topology, with confidence bands) and
``figures/example_<topology>.{png,pdf}`` (one network coloured by DebtRank
distress).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from experiments.analysis import write_table
from experiments.common import study_exit
from experiments.contagion_agent_topology import (
    TOPOLOGY_FLAGS,
    TOPOLOGY_VALUES,
    run_agent_topology,
    topology_trial,
)
from experiments.contagion_agents import (
    AGENT_REGIMES,
    agent_outcomes,
    agent_specs,
    agent_table,
    run_agent_model,
)
from experiments.contagion_networks import (
    CONCENTRATION,
    TOPOLOGIES,
    capital_buffers,
    cell_table,
    contagion_probability,
    density_figure,
    draw_network,
    example_figures,
    probability_figure,
    run_trials,
    shock_outcome,
)
from experiments.study_args import study_config

__all__ = ["AGENT_REGIMES", "CONCENTRATION", "TOPOLOGIES", "TOPOLOGY_FLAGS", "TOPOLOGY_VALUES",
           "agent_outcomes", "agent_specs", "agent_table", "capital_buffers", "cell_table",
           "contagion_probability", "density_figure", "draw_network", "main",
           "probability_figure", "run_agent_model", "run_agent_topology", "run_study",
           "run_trials", "shock_outcome", "topology_trial"]


def run_study(cfg: DictConfig | Any) -> Path:
    """Draw the networks (and run the agent model); write tables and figures; return the dir.

    Raises:
        experiments.common.StudyRunsFailed: Agent-model runs have no result
            (raised after every table and figure is written).
    """
    out = Path(str(cfg.output_dir))
    out.mkdir(parents=True, exist_ok=True)
    failure = None
    if cfg.get("agent_model") is not None and bool(cfg.agent_model.enabled):
        failure = run_agent_model(cfg, out).attrs.get("failure")
    if cfg.get("agent_topology") is not None and bool(cfg.agent_topology.enabled):
        run_agent_topology(cfg, out)
    trials = run_trials(cfg)
    trials.to_csv(out / "trials.csv", index=False)
    conf = float(cfg.confidence)
    table = cell_table(trials, conf)
    write_table(table, out / "tables", "contagion_topology", group="topology",
                caption=(f"Multi-protocol contagion (≥ {int(cfg.multi_threshold)} defaults beyond "
                         f"a random shocked node) on {int(cfg.n)}-node exposure networks, "
                         f"capital ratio {float(cfg.capital_ratio):g}, "
                         f"{int(cfg.replicates)} networks per cell, {conf:.0%} intervals"))
    probability_figure(table, out / "figures", conf, int(cfg.multi_threshold))
    example_figures(cfg, out / "figures")
    if failure is not None:
        raise failure
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: ``key=value`` overrides of ``conf/experiment/contagion_topology.yaml``.

    Arguments are checked first (:data:`experiments.study_args.SCHEMAS`): a bad one
    stops with one line on stderr and exit status 2, before anything is written.
    """
    cfg = study_config("contagion_topology", sys.argv[1:] if argv is None else argv)
    with study_exit():
        out = run_study(cfg)
    table = pd.read_csv(out / "tables" / "contagion_topology.csv")
    cols = ["topology", "concentration", "density", "p_multi", "p_multi_low", "p_multi_high",
            "debtrank_mean"]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    agent = out / "tables" / "contagion_agent_model.csv"
    if agent.exists():
        t = pd.read_csv(agent)
        print(t[["crash", "regime", "p_contagion", "p_contagion_low", "p_contagion_high",
                 "beta_liquidations_mean", "time_to_contagion_mean"]].to_string(
                     index=False, float_format=lambda v: f"{v:.3f}"))
    topo = out / "tables" / "contagion_agent_topology.csv"
    if topo.exists():
        t = pd.read_csv(topo)
        print(t[["topology", "density", "regime", "p_any_contagion", "p_multi", "p_multi_low",
                 "p_multi_high", "p_second_hop", "reach_mean", "total_bad_debt_mean",
                 "equity_loss_mean"]].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"contagion_topology outputs in {out.resolve()}:")
    for sub in ("trials.csv", "agent_runs.csv", "agent_topology_runs.csv", "tables", "figures"):
        print(f"  {out / sub}")


if __name__ == "__main__":
    main()
