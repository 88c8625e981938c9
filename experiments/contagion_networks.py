"""Network models on random protocol-exposure topologies: one part of ``contagion_topology``.

Random protocol-exposure networks from :mod:`sim.network` — Erdős–Rényi,
scale-free (Chung–Lu, degree exponent ``gamma``) and core–periphery (core
fraction) — are swept over density and concentration, ``replicates`` networks
per cell. Replicate ``k`` uses the same seed in every cell (common random
numbers, as in the other studies; seeds from
:func:`experiments.stats.replicate_seeds`). In each network one node,
drawn uniformly at random, defaults, and the network models of
:mod:`sim.network.models` measure the spread (:func:`shock_outcome`):

* Gai–Kapadia zero-recovery cascade: defaults beyond the shocked node;
  *multi-protocol contagion* = at least ``multi_threshold`` (default 2) of them;
* DebtRank of the shock (``psi = 1``; value = relative interbank liabilities):
  share of economic value lost beyond the shocked node;
* Eisenberg–Noe clearing with the shocked node's external assets wiped out:
  share of the other nodes' capital lost, and their defaults.

Balance sheets: node ``i`` has capital ``K_i = capital_ratio x sum_j A[i, j]``
(its total interbank exposure, a Gai–Kapadia buffer); for Eisenberg–Noe it
holds external assets ``K_i + sum_j A[j, i]`` and owes ``sum_j A[i, j]``
outside the network, so its pre-shock equity is exactly ``K_i``.

Per cell (topology, concentration, density) the table reports the
probability of multi-protocol contagion with a Wilson score interval, and
mean extents with *t*-intervals (:func:`experiments.stats.summarise_cell`),
plus the realised density, Herfindahl index and core share. The network
generators (:func:`draw_network`) and :func:`density_figure` are shared with
:mod:`experiments.contagion_agent_topology`.

Outputs (written by :func:`experiments.contagion_topology.run_study`):
``trials.csv`` (one row per network), ``tables/contagion_topology.*``,
``figures/contagion_probability.*`` and ``figures/example_<topology>.*``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from omegaconf import DictConfig
from scipy.optimize import brentq
from tqdm import tqdm

from experiments.stats import replicate_seeds, summarise_cell
from sim.network.models import debtrank, eisenberg_noe, gai_kapadia_cascade
from sim.network import (
    core_periphery_exposures,
    core_share,
    erdos_renyi_exposures,
    exposure_density,
    exposure_matrix,
    herfindahl,
    scale_free_exposures,
)

__all__ = ["CONCENTRATION", "LABELS", "TOPOLOGIES", "capital_buffers", "cell_table",
           "contagion_probability", "density_figure", "draw_network", "example_figures",
           "probability_figure", "run_trials", "shock_outcome", "topology_cells"]

TOPOLOGIES = ("erdos_renyi", "scale_free", "core_periphery")
"""Topologies of :func:`draw_network`."""

CONCENTRATION = {"erdos_renyi": None, "scale_free": "gamma", "core_periphery": "core_fraction"}
"""Concentration parameter of each topology (None: no concentration axis)."""

LABELS = {"erdos_renyi": "Erdős–Rényi", "scale_free": "scale-free",
          "core_periphery": "core–periphery"}



# --------------------------------------------------------------------------- one shock

def capital_buffers(A: Any, capital_ratio: float) -> np.ndarray:
    """Capital ``K_i = capital_ratio x sum_j A[i, j]`` (total interbank exposure)."""
    if not capital_ratio >= 0:
        raise ValueError(f"capital_ratio must be >= 0, got {capital_ratio!r}")
    return capital_ratio * np.asarray(A, dtype=np.float64).sum(axis=1)


def shock_outcome(A: Any, capital: Any, shocked: int, multi_threshold: int = 2
                  ) -> dict[str, Any]:
    """Spread of the default of node ``shocked`` under the three network models.

    Args:
        A: Exposures (n x n), ``A[i, j]`` = what ``i`` loses if ``j`` defaults.
            Integer (or Fraction) ``A`` and ``capital`` make the Gai–Kapadia
            comparison exact.
        capital: Capital buffers ``K`` (n,), >= 0.
        shocked: Index of the defaulting node.
        multi_threshold: Defaults beyond the shocked node that count as
            multi-protocol contagion.

    Returns:
        ``gk_defaults`` (Gai–Kapadia defaults beyond the shocked node),
        ``multi`` (``gk_defaults >= multi_threshold``), ``gk_rounds``,
        ``debtrank`` (value lost beyond the shock, in [0, 1]), ``debtrank_h``
        (final distress per node), ``en_defaults`` (Eisenberg–Noe defaults
        beyond the shocked node), ``en_loss_share`` (share of the other nodes'
        capital lost; NaN if they hold none).
    """
    gk = gai_kapadia_cascade(A, capital, [int(shocked)])
    Af = np.asarray(A, dtype=np.float64)
    K = np.asarray(capital, dtype=np.float64)
    n = Af.shape[0]
    beyond = int(gk.n_defaults) - 1
    # DebtRank needs E > 0: a zero buffer is "wiped out by any loss"
    scale = max(float(Af.max(initial=0.0)), 1.0)
    dr = debtrank(Af, np.maximum(K, 1e-12 * scale), shocked=[int(shocked)], psi=1.0)
    e = K + Af.sum(axis=0)
    e[shocked] = 0.0
    en = eisenberg_noe(Af.T, external_assets=e, external_liabilities=Af.sum(axis=1))
    others = np.arange(n) != shocked
    k_other = float(K[others].sum())
    lost = np.clip(K - en.equity, 0.0, None)[others].sum()
    return {"gk_defaults": beyond, "multi": beyond >= int(multi_threshold),
            "gk_rounds": int(gk.rounds), "debtrank": float(dr.debtrank), "debtrank_h": dr.h,
            "en_defaults": int(en.defaulted[others].sum()),
            "en_loss_share": float(lost / k_other) if k_other > 0 else math.nan}


def contagion_probability(A: Any, capital: Any, shocks: Any = None,
                          multi_threshold: int = 2) -> float:
    """Share of the given single-node shocks (default: every node) causing multi-protocol contagion.

    Gai–Kapadia only (exact for integer inputs): the fraction of ``shocks``
    whose cascade defaults at least ``multi_threshold`` nodes beyond the
    shocked one.
    """
    n = np.asarray(A).shape[0]
    shocks = range(n) if shocks is None else list(shocks)
    hits = [gai_kapadia_cascade(A, capital, [int(s)]).n_defaults - 1 >= multi_threshold
            for s in shocks]
    return float(np.mean(hits)) if hits else math.nan


# --------------------------------------------------------------------------- networks

def _core_periphery_densities(n: int, k: int, density: float,
                              ratios: tuple[float, float, float]) -> tuple[float, float, float]:
    """Block link probabilities proportional to ``ratios`` (capped at 1) at ``density``."""
    r = np.asarray(ratios, dtype=np.float64)
    if r.shape != (3,) or np.any(r < 0) or not np.any(r > 0):
        raise ValueError(f"core_periphery_ratios must be 3 non-negative numbers, got {ratios!r}")
    pairs = np.array([k * (k - 1), 2 * k * (n - k), (n - k) * (n - k - 1)], dtype=np.float64)
    target = density * n * (n - 1)

    def edges(s: float) -> float:
        return float(pairs @ np.minimum(1.0, s * r))

    s_max = 1.0 / r[r > 0].min()
    if target <= 0:
        s = 0.0
    elif edges(s_max) <= target:
        s = s_max
    else:
        s = brentq(lambda s: edges(s) - target, 0.0, s_max, xtol=1e-14, rtol=1e-12)
    pc, px, pp = np.minimum(1.0, s * r)
    return float(pc), float(px), float(pp)


def draw_network(topology: str, n: int, density: float, rng: np.random.Generator,
                 concentration: float | None = None, weight_dist: str = "exponential",
                 core_periphery_ratios: tuple[float, float, float] = (1.0, 0.25, 0.02)
                 ) -> nx.DiGraph:
    """One random exposure network of :data:`TOPOLOGIES` with expected density ``density``.

    ``concentration`` is ``gamma`` for ``scale_free`` (default 2.5) and the core
    fraction for ``core_periphery`` (core size ``max(1, round(f n))``, default
    0.2); ignored for ``erdos_renyi``.
    """
    if topology == "erdos_renyi":
        return erdos_renyi_exposures(n, density, rng, weight_dist=weight_dist)
    if topology == "scale_free":
        gamma = 2.5 if concentration is None else float(concentration)
        return scale_free_exposures(n, density, rng, gamma=gamma, weight_dist=weight_dist)
    if topology == "core_periphery":
        f = 0.2 if concentration is None else float(concentration)
        if not 0.0 < f <= 1.0:
            raise ValueError(f"core_fraction must be in (0, 1], got {f!r}")
        k = min(n, max(1, round(f * n)))
        pc, px, pp = _core_periphery_densities(n, k, density, tuple(core_periphery_ratios))
        return core_periphery_exposures(n, k, rng, density_core=pc, density_cross=px,
                                        density_periphery=pp, weight_dist=weight_dist)
    raise ValueError(f"topology must be one of {TOPOLOGIES}, got {topology!r}")


def topology_cells(cfg: DictConfig | Any) -> list[tuple[str, str, float | None]]:
    """``(topology, concentration parameter name, value)`` for every configured concentration.

    Args:
        cfg: A config with ``topologies`` (topology -> {gamma | core_fraction: [values]}).

    Returns:
        One tuple per cell; the value is None for a topology without that axis.

    Raises:
        ValueError: An unknown topology.
    """
    out = []
    for topo, spec in dict(cfg.topologies).items():
        if topo not in TOPOLOGIES:
            raise ValueError(f"unknown topology {topo!r} (expected one of {TOPOLOGIES})")
        param = CONCENTRATION[topo]
        spec = dict(spec or {})
        if param is None or param not in spec:
            out.append((topo, param or "", None))
        else:
            out.extend((topo, param, float(v)) for v in spec[param])
    return out


# --------------------------------------------------------------------------- study

def run_trials(cfg: DictConfig | Any) -> pd.DataFrame:
    """One row per (topology, concentration, density, replicate) network and its shock."""
    seeds = replicate_seeds(int(cfg.base_seed), int(cfg.replicates))
    cells = [(t, p, c, float(d)) for t, p, c in topology_cells(cfg) for d in cfg.densities]
    n = int(cfg.n)
    ratios = tuple(float(r) for r in cfg.core_periphery_ratios)
    rows = []
    bar = tqdm(total=len(cells) * len(seeds), desc="networks", unit="net",
               disable=not bool(cfg.get("progress", False)))
    for topo, param, conc, dens in cells:
        for k, seed in enumerate(seeds):
            rng = np.random.default_rng(seed)
            G = draw_network(topo, n, dens, rng, conc, str(cfg.weight_dist), ratios)
            _, A = exposure_matrix(G)
            K = capital_buffers(A, float(cfg.capital_ratio))
            shocked = int(rng.integers(n))
            out = shock_outcome(A, K, shocked, int(cfg.multi_threshold))
            core = [i for i in G if G.nodes[i].get("core", False)]
            rows.append({
                "topology": topo, "concentration_param": param,
                "concentration": math.nan if conc is None else conc, "density": dens,
                "replicate": k, "seed": seed, "shocked": shocked,
                "density_realised": exposure_density(A),
                "herfindahl": herfindahl(A) if A.sum() > 0 else math.nan,
                "core_share": core_share(A, core) if core and A.sum() > 0 else math.nan,
                **{key: v for key, v in out.items() if key != "debtrank_h"}})
            bar.update(1)
    bar.close()
    return pd.DataFrame(rows)


def cell_table(trials: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per cell: P(multi-protocol contagion) with a Wilson interval; means with t-intervals."""
    keys = ["topology", "concentration_param", "concentration", "density"]
    rows = []
    for key, g in trials.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, key, strict=True))
        row.update(summarise_cell(g, ["multi"], ["gk_defaults", "debtrank", "en_loss_share",
                                                 "en_defaults"], confidence))
        for col in ("density_realised", "herfindahl", "core_share"):
            row[col] = float(g[col].mean()) if g[col].notna().any() else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _series_label(topo: str, param: str, conc: float) -> str:
    return LABELS.get(topo, topo) if not param or not np.isfinite(conc) else f"{param} = {conc:g}"


def density_figure(table: pd.DataFrame, out_dir: str | Path, name: str,
                   series: list[str], panels: list[tuple[str, str]],
                   label: Any = None) -> dict[str, Path]:
    """Panels of a cell table against density: one column per topology, one row per panel.

    Args:
        table: Cell table with ``topology``, ``density`` and, per panel stem
            ``m``, columns ``m``/``m_low``/``m_high`` (or ``m_mean``/``m_low``/
            ``m_high``); drawn as a line with its confidence band.
        out_dir: Figure directory (:func:`sim.output.figures.save` writes PNG and PDF).
        name: File stem.
        series: Columns whose values make one line each within a topology.
        panels: ``(stem, y label)`` per row.
        label: ``label(topology, key)`` of a series (default: the key joined).
    """
    import matplotlib.pyplot as plt

    from sim.output.figures import OKABE_ITO, save

    topos = list(dict.fromkeys(table["topology"]))
    fig, axes = plt.subplots(len(panels), len(topos), figsize=(4.6 * len(topos),
                                                               3.5 * len(panels)),
                             squeeze=False, sharey="row")
    for c, topo in enumerate(topos):
        sub = table[table["topology"] == topo]
        groups = list(sub.groupby(series, sort=False, dropna=False))
        for k, (key, g) in enumerate(groups):
            g = g.sort_values("density")
            colour = OKABE_ITO[(k * 2 + 5) % 8] if len(groups) > 1 else OKABE_ITO[5]
            text = label(topo, key) if label else ", ".join(map(str, np.atleast_1d(key)))
            for r, (stem, _ylabel) in enumerate(panels):
                mean = stem if stem in g else f"{stem}_mean"
                ax = axes[r, c]
                ax.plot(g["density"], g[mean], marker="o", ms=3, lw=1.2, color=colour,
                        label=text)
                ax.fill_between(g["density"], g[f"{stem}_low"], g[f"{stem}_high"],
                                color=colour, alpha=0.2, lw=0)
        dens = sorted(set(sub["density"]))
        for r in range(len(panels)):
            axes[r, c].set_xscale("log")
            axes[r, c].xaxis.set_minor_locator(plt.NullLocator())
            axes[r, c].set_xticks(dens, [f"{d:g}" for d in dens])
            axes[r, c].set_xlabel("exposure density (share of ordered pairs linked, log scale)")
            axes[r, c].legend(fontsize=7, loc="best")
            axes[r, c].grid(alpha=0.3)
        axes[0, c].set_title(LABELS.get(topo, topo))
    for r, (_stem, ylabel) in enumerate(panels):
        axes[r, 0].set_ylabel(ylabel)
    return save(fig, Path(out_dir), name)


def probability_figure(table: pd.DataFrame, out_dir: str | Path, confidence: float = 0.95,
                       multi_threshold: int = 2) -> dict[str, Path]:
    """P(multi-protocol contagion) and mean DebtRank vs density per topology, with CI bands."""
    conf = f"{confidence:.0%}"
    panels = [("p_multi", f"P(≥ {multi_threshold} defaults beyond the shocked node)\n"
                          f"(Gai–Kapadia; {conf} Wilson band)"),
              ("debtrank", f"mean DebtRank (share of value lost)\n({conf} t band)")]
    return density_figure(table, out_dir, "contagion_probability",
                          ["concentration_param", "concentration"], panels,
                          label=lambda topo, key: _series_label(topo, *key))


def example_figures(cfg: DictConfig | Any, out_dir: Path) -> dict[str, Path]:
    """One network per topology at ``example_density``, coloured by its DebtRank distress."""
    from sim.output.figures import collateral_graph_figure

    files: dict[str, Path] = {}
    seed = replicate_seeds(int(cfg.base_seed), 1)[0]
    n = int(cfg.n)
    ratios = tuple(float(r) for r in cfg.core_periphery_ratios)
    done = set()
    for topo, _param, conc in topology_cells(cfg):
        if topo in done:
            continue
        done.add(topo)
        rng = np.random.default_rng(seed)
        G = draw_network(topo, n, float(cfg.example_density), rng, conc, str(cfg.weight_dist),
                         ratios)
        _, A = exposure_matrix(G)
        K = capital_buffers(A, float(cfg.capital_ratio))
        shocked = int(rng.integers(n))
        out = shock_outcome(A, K, shocked, int(cfg.multi_threshold))
        files.update(collateral_graph_figure(G, out["debtrank_h"], out_dir, f"example_{topo}",
                                             unit="exposure units"))
    return files
