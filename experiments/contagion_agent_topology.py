"""The agent model on random topologies: one part of ``contagion_topology``.

The agent model on small networks from the generators of
:mod:`experiments.contagion_networks` (:mod:`sim.contagion.topology_world`: protocol
``i`` holds protocol ``j``'s receipt token where ``A[i, j] > 0``, plus
token-backed loans; every protocol on the regime, write-off bad debt, a small
insurance fund). An exploit at a random protocol marks its token down by
``shock_fraction``; each regime runs unshocked and shocked on the replicate's
network and seed (common random numbers, Law & Kelton §11.2). Per run:
protocols hit (more liquidations or bad debt than unshocked), hit with bad
debt, furthest hop, total bad debt, traders' equity loss, time to contagion,
and the network models' Gai–Kapadia defaults and DebtRank for the same shock.
Per topology x density x regime: P(any / multi-protocol / second-hop
contagion) with Wilson intervals, means with *t*-intervals
(:func:`experiments.stats.summarise_cell`). In-process; each finished row is
checkpointed (:class:`experiments.common.RowCheckpoint`) so an interrupted
study resumes.

Outputs: ``agent_topology_runs.csv``,
``tables/contagion_agent_topology.{csv,md,tex}`` and
``figures/contagion_agent_topology.{png,pdf}``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from tqdm import tqdm

from experiments.analysis import write_table
from experiments.common import RowCheckpoint
from experiments.contagion_networks import (
    capital_buffers,
    density_figure,
    draw_network,
    shock_outcome,
    topology_cells,
)
from experiments.stats import replicate_seeds, summarise_cell
from sim.network import exposure_density, exposure_matrix

__all__ = ["TOPOLOGY_FLAGS", "TOPOLOGY_VALUES", "run_agent_topology", "topology_trial"]

def _topology_block(cfg: DictConfig | Any) -> Any:
    """The ``agent_topology`` block, checked (one-line ValueError naming the bad key)."""
    from sim.contagion.topology_world import REGIMES

    b = cfg.agent_topology
    bad = [r for r in b.regimes if r not in REGIMES]
    if bad:
        raise ValueError(f"agent_topology.regimes: unknown {bad}; valid: {', '.join(REGIMES)}")
    for key, lo in (("n", 2), ("replicates", 1), ("multi_threshold", 1), ("steps", 2)):
        v = b[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"agent_topology.{key} must be an integer >= {lo}, got {v!r}")
    if not all(0.0 <= float(d) <= 1.0 for d in b.densities) or not len(b.densities):
        raise ValueError(f"agent_topology.densities must be values in [0, 1], got "
                         f"{list(b.densities)!r}")
    return b


def topology_trial(A: Any, shocked: int, regime: str, seed: int, block: Any,
                   multi_threshold: int = 2) -> dict[str, Any]:
    """One agent-model run on exposure network ``A`` with an exploit at ``shocked``.

    Builds :func:`sim.contagion.topology_world.topology_world` with ``block.world``
    parameters and the regime on every protocol, runs it unshocked and shocked
    with the same seed (common random numbers), and returns
    :func:`sim.contagion.topology_world.topology_outcome` plus ``multi`` (reach >=
    ``multi_threshold``: the multi-protocol contagion event, as
    ``multi_threshold`` Gai–Kapadia defaults in the network part),
    ``any_contagion`` (reach >= 1), ``second_hop`` (a protocol two or more
    holder links away hit) and ``total_bad_debt``.
    """
    from sim.contagion.topology_world import run_topology, topology_outcome, topology_world

    w = dict(block.world)
    w["leverage"] = tuple(float(x) for x in w.get("leverage", (3.0, 10.0)))
    world = topology_world(A, regime=str(regime), seed=int(seed), steps=int(block.steps),
                           token_impairment=bool(block.token_impairment),
                           overrides=list(block.get("overrides") or []), **w)
    frac, step = float(block.shock_fraction), int(block.shock_step)
    base = run_topology(world, None, frac, step)
    hit = run_topology(world, int(shocked), frac, step)
    out = topology_outcome(hit, base, int(shocked), world.exposures)
    out.update({"multi": out["reach"] >= int(multi_threshold),
                "any_contagion": out["reach"] >= 1, "second_hop": out["max_hops"] >= 2,
                "total_bad_debt": out["shocked_bad_debt"] + out["bad_debt_beyond"]})
    return out


TOPOLOGY_FLAGS = ["any_contagion", "multi", "second_hop"]
TOPOLOGY_VALUES = ["reach", "reach_bad_debt", "max_hops", "total_bad_debt", "bad_debt_beyond",
                   "liquidations_beyond", "equity_loss", "time_to_contagion", "exposed",
                   "gk_defaults", "debtrank"]


def _study_identity(cfg: DictConfig | Any) -> Any:
    """The study config without where and how it is shown (what results depend on)."""
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    return {k: v for k, v in plain.items()
            if k not in ("output_dir", "progress", "executor", "dask_address")}


def run_agent_topology(cfg: DictConfig | Any, out: Path) -> pd.DataFrame:
    """Agent model on random topologies: topology x density x regime x replicate (in-process).

    Replicate ``k`` draws one network per (topology, concentration, density)
    from seed ``k`` (:func:`draw_network`, the network part's generators) and
    the shocked protocol uniformly from the same generator; every regime runs
    on that network with run seed ``k`` (common random numbers across regimes,
    Law & Kelton §11.2). The same shock is also scored by the network models
    (Gai–Kapadia defaults and DebtRank with ``capital_ratio``) for comparison.
    Writes ``agent_topology_runs.csv``, ``tables/contagion_agent_topology.*``
    and ``figures/contagion_agent_topology.*``; returns the table.

    Runs are kept in-process (two short runs per row, no run directories); each
    finished row is appended to ``agent_topology_runs.jsonl``
    (:class:`experiments.common.RowCheckpoint`), so a study interrupted and
    started again with the same config re-runs only the missing rows.
    """
    b = _topology_block(cfg)
    ckpt = RowCheckpoint(out / "agent_topology_runs.jsonl", _study_identity(cfg))
    seeds = replicate_seeds(int(b.base_seed), int(b.replicates))
    cells = [(t, p, c, float(d)) for t, p, c in topology_cells(b) for d in b.densities]
    n, thr = int(b.n), int(b.multi_threshold)
    ratios = tuple(float(r) for r in cfg.core_periphery_ratios)
    rows = []
    bar = tqdm(total=len(cells) * len(seeds) * len(b.regimes), desc="agent topologies",
               unit="run", disable=not bool(cfg.get("progress", False)))
    for topo, param, conc, dens in cells:
        for k, seed in enumerate(seeds):
            rng = np.random.default_rng(seed)
            G = draw_network(topo, n, dens, rng, conc, str(b.weight_dist), ratios)
            _, A = exposure_matrix(G)
            shocked = int(rng.integers(n))
            net = shock_outcome(A, capital_buffers(A, float(cfg.capital_ratio)), shocked, thr)
            for regime in b.regimes:
                key = [topo, param, dens, str(regime), k, int(seed)]
                row = ckpt.get(key)
                if row is None:
                    res = topology_trial(A, shocked, str(regime), int(seed) % (2**31), b, thr)
                    row = ckpt.add(key, {
                        "topology": topo, "concentration_param": param,
                        "concentration": math.nan if conc is None else conc,
                        "density": dens, "regime": str(regime), "replicate": k,
                        "seed": seed, "shocked": shocked,
                        "density_realised": exposure_density(A),
                        "gk_defaults": net["gk_defaults"], "debtrank": net["debtrank"], **res})
                rows.append(row)
                bar.update(1)
    bar.close()
    runs = pd.DataFrame(rows)
    runs.to_csv(out / "agent_topology_runs.csv", index=False)
    conf = float(cfg.confidence)
    keys = ["topology", "concentration_param", "concentration", "density", "regime"]
    table = pd.DataFrame([{**dict(zip(keys, key, strict=True)),
                           **summarise_cell(g, TOPOLOGY_FLAGS, TOPOLOGY_VALUES, conf)}
                          for key, g in runs.groupby(keys, sort=False, dropna=False)])
    write_table(table, out / "tables", "contagion_agent_topology", group="topology",
                caption=(f"Agent model on random {n}-protocol exposure networks: an exploit "
                         f"marks the shocked protocol's receipt token down by "
                         f"{float(b.shock_fraction):.0%}; multi-protocol contagion = "
                         f"liquidations or bad debt at >= {thr} other protocols; "
                         f"{int(b.replicates)} networks per cell, {conf:.0%} intervals"))
    pc = f"{conf:.0%}"
    density_figure(table, out / "figures", "contagion_agent_topology",
                   ["regime", "concentration_param", "concentration"],
                   [("p_multi", f"P(≥ {thr} other protocols hit)\n({pc} Wilson band)"),
                    ("p_second_hop", f"P(a protocol ≥ 2 links away hit)\n({pc} Wilson band)"),
                    ("reach", f"mean protocols hit beyond the shocked one\n({pc} t band)")],
                   label=lambda topo, key: (key[0] if not key[1] or not np.isfinite(key[2])
                                            else f"{key[0]}, {key[1]} = {key[2]:g}"))
    return table
