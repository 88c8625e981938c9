"""Study: how network topology shapes cross-protocol contagion (analytic part).

Random protocol-exposure networks from :mod:`sim.network` — Erdős–Rényi,
scale-free (Chung–Lu, degree exponent ``gamma``) and core–periphery (core
fraction) — are swept over density and concentration, ``replicates`` networks
per cell. Replicate ``k`` uses the same seed in every cell (common random
numbers, as in the other studies; seeds from
:func:`experiments.tail_risk.replicate_seeds`). In each network one node,
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
probability of multi-protocol contagion with a Wilson score interval
(:func:`wilson_interval`), and mean extents with *t*-intervals
(:func:`t_interval`), plus the realised density, Herfindahl index and core
share.

**Agent-model part** (``agent_model`` in the config, :func:`run_agent_model`):
the same question on the simulated two-venue world of
:func:`sim.contagion.isolated_crash_overrides` — a one-step gap crash in an
asset only alpha lists gives alpha recorded bad debt, which impairs its
receipt token aLP held by every beta trader. Beta's margin regime
(``regimes``) x crash size (``crashes``) x ``replicates`` runs (replicate
``k`` has one seed in every cell: common random numbers). Per run,
*multi-protocol contagion* = beta records a liquidation or bad debt;
``reach`` = protocols with a liquidation or bad debt; ``time_to_contagion`` =
beta's first distress step (below maintenance, liquidation or bad debt) minus
alpha's first bad-debt step. Per cell: probability with a Wilson interval,
means with *t*-intervals (as for the networks). With the token channel off
beta is untouched by construction (``tests/sim/test_contagion.py``), so every
beta loss here is contagion.

**Agents on random topologies** (``agent_topology``, :func:`run_agent_topology`):
the agent model on small networks from the same generators
(:mod:`sim.contagion.topology_world`: protocol ``i`` holds protocol ``j``'s receipt token
where ``A[i, j] > 0``, plus token-backed loans; every protocol on the regime,
write-off bad debt, a small insurance fund). An exploit at a random protocol
marks its token down by ``shock_fraction``; each regime runs unshocked and
shocked on the replicate's network and seed. Per run: protocols hit (more
liquidations or bad debt than unshocked), hit with bad debt, furthest hop,
total bad debt, traders' equity loss, time to contagion, and the network
models' Gai–Kapadia defaults and DebtRank for the same shock. Per topology x
density x regime: P(any / multi-protocol / second-hop contagion) with Wilson
intervals, means with *t*-intervals. In-process, not resumable.

Usage::

    python -m experiments.contagion_topology
    python -m experiments.contagion_topology replicates=1000 n=50 capital_ratio=0.1

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

import math
import sys
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from omegaconf import DictConfig
from scipy import stats
from scipy.optimize import brentq
from tqdm import tqdm

from experiments.analysis import write_table
from experiments.common import RowCheckpoint, study_exit
from experiments.study_args import study_config
from experiments.tail_risk import replicate_seeds
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

__all__ = ["AGENT_REGIMES", "CONCENTRATION", "TOPOLOGIES", "agent_outcomes", "agent_specs",
           "agent_table", "capital_buffers", "cell_table", "contagion_probability",
           "density_figure", "draw_network", "main", "probability_figure", "run_agent_model",
           "run_agent_topology", "run_study", "run_trials", "shock_outcome", "summarise_cell",
           "t_interval", "topology_trial", "wilson_interval"]

TOPOLOGIES = ("erdos_renyi", "scale_free", "core_periphery")
"""Topologies of :func:`draw_network`."""

CONCENTRATION = {"erdos_renyi": None, "scale_free": "gamma", "core_periphery": "core_fraction"}
"""Concentration parameter of each topology (None: no concentration axis)."""

LABELS = {"erdos_renyi": "Erdős–Rényi", "scale_free": "scale-free",
          "core_periphery": "core–periphery"}


# --------------------------------------------------------------------------- intervals

def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927).

    ``(p̂ + z²/2n ± z √(p̂(1-p̂)/n + z²/4n²)) / (1 + z²/n)`` with
    ``z = Φ⁻¹((1 + c)/2)``; e.g. 5 of 10 at 95 %: [0.2366, 0.7634]. Unlike the
    Wald interval it stays inside [0, 1] and is not degenerate at 0 or n
    successes. ``(nan, nan)`` for zero trials.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return math.nan, math.nan
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    lo = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends (no rounding)
    hi = 1.0 if successes == trials else min(1.0, centre + half)
    return lo, hi


def t_interval(x: Any, confidence: float = 0.95) -> dict[str, float]:
    """Mean and Student-*t* interval ``x̄ ± t_{n-1} s / √n`` (NaNs dropped; NaN bounds if n < 2)."""
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    n = int(a.size)
    mean = float(a.mean()) if n else math.nan
    if n < 2:
        return {"mean": mean, "ci_low": math.nan, "ci_high": math.nan, "n": n}
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1) * a.std(ddof=1) / math.sqrt(n))
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": n}


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


def _cells(cfg: DictConfig | Any) -> list[tuple[str, str, float | None]]:
    """``(topology, concentration parameter name, value)`` for every configured concentration."""
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
    cells = [(t, p, c, float(d)) for t, p, c in _cells(cfg) for d in cfg.densities]
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


def summarise_cell(g: pd.DataFrame, flags: list[str], values: list[str],
                   confidence: float = 0.95) -> dict[str, Any]:
    """One cell's summary: counts and Wilson intervals of flags, t-intervals of values.

    Per boolean column ``f`` its count ``f`` and ``p_f`` with a Wilson interval
    (``p_f_low``, ``p_f_high``); per value column ``v`` its mean with a
    Student-*t* interval (``v_mean``, ``v_low``, ``v_high``); and
    ``replicates`` (rows summarised).
    """
    tot = len(g)
    row: dict[str, Any] = {"replicates": tot}
    for f in flags:
        succ = int(g[f].astype(bool).sum())
        lo, hi = wilson_interval(succ, tot, confidence)
        row.update({f: succ, f"p_{f}": succ / tot if tot else math.nan,
                    f"p_{f}_low": lo, f"p_{f}_high": hi})
    for v in values:
        ci = t_interval(g[v], confidence)
        row.update({f"{v}_mean": ci["mean"], f"{v}_low": ci["ci_low"], f"{v}_high": ci["ci_high"]})
    return row


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


def _example_figures(cfg: DictConfig | Any, out_dir: Path) -> dict[str, Path]:
    """One network per topology at ``example_density``, coloured by its DebtRank distress."""
    from sim.output.figures import collateral_graph_figure

    files: dict[str, Path] = {}
    seed = replicate_seeds(int(cfg.base_seed), 1)[0]
    n = int(cfg.n)
    ratios = tuple(float(r) for r in cfg.core_periphery_ratios)
    done = set()
    for topo, _param, conc in _cells(cfg):
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


# --------------------------------------------------------------------------- agent model

AGENT_REGIMES = ("static", "cross", "portfolio", "adaptive")
"""Margin regimes beta may take in the agent-model part (``conf/margin/*.yaml``)."""


def agent_specs(cfg: DictConfig | Any) -> list[Any]:
    """Run specs: beta regime x crash x replicate on the isolated-crash reference world.

    Beta's regime is the run's global ``margin`` (beta has no own margin here;
    alpha keeps its cross margin), with beta's haircut on aLP ``token_haircut``.

    Raises:
        ValueError: An unknown regime or a bad size (one line naming it).
    """
    from experiments.sweep import RunSpec
    from sim.contagion import isolated_crash_overrides

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
        world = isolated_crash_overrides(float(crash), int(a.start_step), int(a.horizon),
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
    from experiments.sweep import collect, run_sweep

    specs = agent_specs(cfg)
    a = cfg.agent_model
    rep = run_sweep(specs, out / "agent_runs", workers=int(a.workers),
                    progress=bool(cfg.get("progress", False)))
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


# --------------------------------------------------------------------------- agents on networks

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
    return {k: v for k, v in plain.items() if k not in ("output_dir", "progress")}


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
    cells = [(t, p, c, float(d)) for t, p, c in _cells(b) for d in b.densities]
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
    _example_figures(cfg, out / "figures")
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
