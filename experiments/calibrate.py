"""Calibration of the world's agents to real market moments by the simulated method of moments.

The simulated method of moments (McFadden 1989; for agent-based models
Franke & Westerhoff 2012, ``contagion_and_peers.md`` §4) chooses parameters
``θ`` to minimise the distance between simulated and real moments::

    J(θ) = Σ_k ((m̄_k(θ) − m*_k) / |m*_k|)²

with ``m*`` the real moments (:func:`experiments.moments.real_moments`, from
``shared/data``), ``m̄(θ)`` their mean over ``replicates`` runs and a
diagonal weight of one over the squared target (every moment counts as a
relative deviation; an identity weight on normalised moments, the simple
choice when the moments' covariance is not estimated). A moment a run cannot
define (NaN) costs :data:`MISSING_PENALTY`. Every evaluation uses the same
replicate seeds — common random numbers (Law & Kelton §11.2) — so ``J`` is a
deterministic, smooth-ish function of ``θ`` and differences between points
are not seed noise.

Each evaluation runs, per replicate seed, a calm run (``calm_overrides``,
``calm_steps``) for the return, liquidity and funding moments and, if
``depth_collapse`` is a target, a crash run (``crash_overrides``) for the
depth collapse over the crash window. ``scipy.optimize.minimize`` with
Nelder–Mead (bounded, on the unit cube: each parameter mapped linearly or
log-linearly between its bounds) searches ``θ`` from the configured start
(default: the run config's own values) for at most ``max_evals`` evaluations.
At the best point ``report_replicates`` seeds give each moment's mean and
95 % Student-*t* interval against its target.

Usage::

    python -m experiments.calibrate [key=value ...]      # conf/experiment/calibrate.yaml

Writes into ``output_dir``: ``runs/`` (every run; an evaluation whose runs
finished under the same config and code is reused, so a stopped calibration
resumes), ``evaluations.csv`` (one row per evaluation: parameters, objective,
moments, failed runs), ``best.json``, ``tables/calibration.{csv,md,tex}``
(target against achieved), ``figures/calibration.{png,pdf}``, and with
``group`` set the fitted parameters as the agents config group
``conf/agents/<group>.yaml`` (the default agents with the fitted and fixed
values), selectable as ``agents=<group>``. A failed run is counted and its
moments are NaN; the study exits with status 1 if the report's runs failed.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from experiments.moments import CRASH_MOMENTS, crash_moments, real_moments, run_moments

__all__ = [
    "MISSING_PENALTY",
    "Evaluation",
    "Param",
    "from_unit",
    "main",
    "objective",
    "params_from",
    "run_study",
    "to_unit",
    "write_group",
]

MISSING_PENALTY = 100.0
"""Cost of one moment a run could not define (NaN), in squared relative deviations."""

CONF_AGENTS = Path(__file__).resolve().parents[1] / "conf" / "agents"
"""Where the fitted group is written (``conf/agents/<group>.yaml``)."""


@dataclass(frozen=True)
class Param:
    """One fitted parameter: a run-config key and its search interval.

    Attributes:
        key: Dotted run-config key (``agents.market_maker.k``).
        low: Lower bound.
        high: Upper bound.
        scale: ``lin`` or ``log`` (the unit-cube map between the bounds).
    """

    key: str
    low: float
    high: float
    scale: str = "lin"


def params_from(spec: Mapping[str, Mapping[str, Any]]) -> list[Param]:
    """Parameters from the study config's ``params`` mapping (key → low, high, scale)."""
    return [Param(k, float(v["low"]), float(v["high"]), str(v.get("scale", "lin")))
            for k, v in spec.items()]


def from_unit(params: Sequence[Param], x: Sequence[float]) -> list[float]:
    """Parameter values of a point ``x`` of the unit cube (clipped to it)."""
    out = []
    for p, u in zip(params, x, strict=True):
        u = min(max(float(u), 0.0), 1.0)
        if p.scale == "log":
            out.append(math.exp(math.log(p.low) + u * (math.log(p.high) - math.log(p.low))))
        else:
            out.append(p.low + u * (p.high - p.low))
    return out


def to_unit(params: Sequence[Param], values: Sequence[float]) -> list[float]:
    """The unit-cube point of parameter values (clipped to the bounds)."""
    out = []
    for p, v in zip(params, values, strict=True):
        v = min(max(float(v), p.low), p.high)
        if p.scale == "log":
            out.append((math.log(v) - math.log(p.low)) / (math.log(p.high) - math.log(p.low)))
        else:
            out.append((v - p.low) / (p.high - p.low))
    return out


def objective(simulated: Mapping[str, float], targets: Mapping[str, float],
              moments: Sequence[str]) -> float:
    """``Σ_k ((m_k − m*_k) / |m*_k|)²`` over ``moments``; a NaN moment costs the penalty."""
    total = 0.0
    for k in moments:
        m, t = simulated.get(k, math.nan), targets[k]
        total += MISSING_PENALTY if not math.isfinite(m) else ((m - t) / abs(t)) ** 2
    return total


@dataclass
class Evaluation:
    """One evaluated parameter point.

    Attributes:
        values: Parameter values, in ``params`` order.
        tag: Short hash naming its runs.
        moments: Mean over replicates of each moment (NaN if no run defined it).
        per_run: Run name → its moments.
        failed: Runs without a result.
        objective: ``J`` at this point.
    """

    values: list[float]
    tag: str
    moments: dict[str, float] = field(default_factory=dict)
    per_run: dict[str, dict[str, float]] = field(default_factory=dict)
    failed: int = 0
    objective: float = math.nan


def _tag(params: Sequence[Param], values: Sequence[float]) -> str:
    text = json.dumps({p.key: f"{v:.12g}" for p, v in zip(params, values, strict=True)},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


class Calibration:
    """The calibration of one study config (module docstring).

    Args:
        cfg: The study config (``conf/experiment/calibrate.yaml`` with overrides, validated).
        targets: The real moments (default: computed from ``shared/data``).
    """

    def __init__(self, cfg: Any, targets: Mapping[str, float] | None = None) -> None:
        from experiments.stats import replicate_seeds
        from sim.scenarios.replay import data_dir

        self.cfg = cfg
        self.params = params_from(cfg["params"])
        self.moments = list(cfg["moments"])
        self.targets = dict(targets) if targets is not None else real_moments(data_dir())
        self.seeds = replicate_seeds(int(cfg["base_seed"]),
                                     max(int(cfg["replicates"]), int(cfg["report_replicates"])))
        self.out = Path(cfg["output_dir"])
        self.evaluations: list[Evaluation] = []
        self._cache: dict[str, Evaluation] = {}
        self._crash = any(m in CRASH_MOMENTS for m in self.moments)
        self._view = _study_view(cfg)

    # ----------------------------------------------------------------- runs
    def _specs(self, tag: str, values: Sequence[float], seeds: Sequence[int]) -> list[Any]:
        from experiments.sweep import RunSpec

        cfg = self.cfg
        fitted = [f"{p.key}={v!r}" for p, v in zip(self.params, values, strict=True)]
        common = [*cfg["fixed"], *cfg["overrides"], *fitted, "output.figures=false",
                  "progress=false"]
        specs = []
        for k, seed in enumerate(seeds):
            specs.append(RunSpec(f"e{tag}__calm__r{k:02d}",
                                 (*common, *cfg["calm_overrides"], f"steps={cfg['calm_steps']}",
                                  f"seed={seed}"), {"tag": tag, "kind": "calm", "replicate": k}))
            if self._crash:
                specs.append(RunSpec(f"e{tag}__crash__r{k:02d}",
                                     (*common, *cfg["crash_overrides"],
                                      f"steps={cfg['crash_steps']}", f"seed={seed}"),
                                     {"tag": tag, "kind": "crash", "replicate": k}))
        return specs

    def _run_moments(self, run_dir: Path, kind: str) -> dict[str, float]:
        from omegaconf import OmegaConf

        ts = pd.read_parquet(run_dir / "timeseries.parquet")
        rc = OmegaConf.load(run_dir / "config.yaml")
        skip = int(self.cfg["skip_steps"])
        if kind == "calm":
            return run_moments(ts, self.cfg["asset"], float(rc.market.step_seconds), skip,
                               int(rc.protocols[0].funding_interval))
        p = rc.scenario.params
        start = int(p.start_step)
        stop = start + int(p.get("duration_steps", 1)) + int(self.cfg["crash_window_extra"])
        return crash_moments(ts, self.cfg["asset"], start, stop, skip)

    def evaluate(self, values: Sequence[float], seeds: Sequence[int] | None = None,
                 record: bool = True) -> Evaluation:
        """Run (or reuse) the runs of one point and reduce them to moments and ``J``."""
        from experiments.common import start_study

        seeds = list(self.seeds[:int(self.cfg["replicates"])] if seeds is None else seeds)
        values = [float(v) for v in values]
        tag = _tag(self.params, values)
        key = f"{tag}:{len(seeds)}"
        if key in self._cache:
            return self._cache[key]
        specs = self._specs(tag, values, seeds)
        runs = start_study(self._view, specs)
        done = set(runs.finished)
        ev = Evaluation(values, tag, failed=runs.failed)
        per_seed: dict[int, dict[str, float]] = {}
        for s in specs:
            if s.name not in done:
                continue
            try:
                got = self._run_moments(runs.out / "runs" / s.name, s.meta["kind"])
            except (OSError, ValueError, KeyError) as exc:
                ev.failed += 1
                print(f"calibrate: {s.name}: cannot read its moments ({exc})", file=sys.stderr)
                continue
            ev.per_run[s.name] = got
            per_seed.setdefault(int(s.meta["replicate"]), {}).update(got)
        for k in self.moments:
            vals = [m.get(k, math.nan) for m in per_seed.values()]
            vals = [v for v in vals if math.isfinite(v)]
            ev.moments[k] = float(np.mean(vals)) if vals else math.nan
        ev.objective = objective(ev.moments, self.targets, self.moments)
        self._cache[key] = ev
        if record:
            self.evaluations.append(ev)
            print(f"calibrate: evaluation {len(self.evaluations)}: J = {ev.objective:.4g} at "
                  + ", ".join(f"{p.key.split('.')[-1]}={v:.4g}"
                              for p, v in zip(self.params, values, strict=True)), flush=True)
        return ev

    # -------------------------------------------------------------- search
    def start_values(self) -> list[float]:
        """The configured start, else each key's value in the run config (clipped to bounds)."""
        from omegaconf import OmegaConf

        from sim.config import load_config

        start = self.cfg.get("start") or {}
        rc = load_config([*self.cfg["fixed"], *self.cfg["overrides"]])
        out = []
        for p in self.params:
            v = start.get(p.key)
            if v is None:
                v = OmegaConf.select(rc, p.key)
            out.append(min(max(float(v), p.low), p.high))
        return out

    def search(self) -> Evaluation:
        """Nelder–Mead on the unit cube from :meth:`start_values`; the best evaluation."""
        from scipy.optimize import minimize

        x0 = np.array(to_unit(self.params, self.start_values()))
        if int(self.cfg["max_evals"]) <= 1 or not self.params:
            return self.evaluate(from_unit(self.params, x0))
        d = len(x0)
        step = float(self.cfg["initial_step"])
        simplex = np.vstack([x0] + [np.clip(x0 + step * np.eye(d)[i] * (1 if x0[i] + step <= 1
                                                                          else -1), 0.0, 1.0)
                                    for i in range(d)])
        minimize(lambda x: self.evaluate(from_unit(self.params, x)).objective, x0,
                 method="Nelder-Mead", bounds=[(0.0, 1.0)] * d,
                 options={"maxfev": int(self.cfg["max_evals"]), "initial_simplex": simplex,
                          "xatol": 1e-3, "fatol": 1e-4})
        return min(self.evaluations, key=lambda e: (not math.isfinite(e.objective),
                                                     e.objective))


def _study_view(cfg: Any) -> Any:
    """The study config as a DictConfig with ``report_only`` off, for ``start_study``."""
    from omegaconf import DictConfig, OmegaConf

    plain = OmegaConf.to_container(cfg) if isinstance(cfg, DictConfig) else dict(cfg)
    return OmegaConf.create({**plain, "report_only": False})


# -------------------------------------------------------------------- outputs
def report_table(cal: Calibration, best: Evaluation, confidence: float) -> pd.DataFrame:
    """Target against achieved at the best point: mean and t-interval over the report seeds."""
    from experiments.stats import t_interval

    rows = []
    for k in cal.moments:
        vals = [m[k] for m in best.per_run.values() if k in m]
        ci = t_interval(vals, confidence)
        t = cal.targets[k]
        rows.append({"moment": k, "target": t, "achieved": ci["mean"], "ci_low": ci["ci_low"],
                     "ci_high": ci["ci_high"], "runs": ci["n"],
                     "ratio": ci["mean"] / t if t else math.nan,
                     "contribution": (MISSING_PENALTY if not math.isfinite(ci["mean"])
                                      else ((ci["mean"] - t) / abs(t)) ** 2)})
    return pd.DataFrame(rows)


def write_group(path: Path, fitted: Mapping[str, float], fixed: Sequence[str],
                header: Sequence[str]) -> Path:
    """Write an agents config group: ``conf/agents/default.yaml`` with the fitted and fixed values.

    Args:
        path: Target file (``conf/agents/<group>.yaml``).
        fitted: ``agents.*`` key → fitted value.
        fixed: ``agents.*=value`` overrides held fixed during the fit.
        header: Comment lines (provenance) written first.
    """
    base = yaml.safe_load((CONF_AGENTS / "default.yaml").read_text())
    items = [(k, v) for k, v in fitted.items()]
    for text in fixed:
        k, v = text.lstrip("+").split("=", 1)
        if k.startswith("agents."):
            items.append((k, yaml.safe_load(v)))
    for key, value in items:
        node = base
        parts = key.split(".")[1:]
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    body = yaml.safe_dump(base, sort_keys=False)
    path.write_text("".join(f"# {line}\n" for line in header) + body)
    return path


def _figure(table: pd.DataFrame, out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 3.6))
    ax = fig.add_subplot()
    x = np.arange(len(table))
    ratio = table["achieved"] / table["target"]
    lo = (table["achieved"] - table["ci_low"]) / table["target"].abs()
    hi = (table["ci_high"] - table["achieved"]) / table["target"].abs()
    ax.bar(x, ratio, color="#0072B2", yerr=np.vstack([lo.fillna(0), hi.fillna(0)]), capsize=3)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xticks(x, table["moment"], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("achieved / target")
    ax.set_title("Calibration: simulated over real moments (95 % t-intervals)", fontsize=9)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    files = {ext: out / f"calibration.{ext}" for ext in ("png", "pdf")}
    for f in files.values():
        fig.savefig(f, dpi=150)
    return files


def run_study(cfg: Any) -> dict[str, Any]:
    """Fit, report and (optionally) write the group; returns the best point and file paths."""
    from experiments.analysis import write_table

    cal = Calibration(cfg)
    out = cal.out
    out.mkdir(parents=True, exist_ok=True)
    best = cal.search()
    report = cal.evaluate(best.values, seeds=cal.seeds[:int(cfg["report_replicates"])],
                          record=False)
    rows = [{"evaluation": i + 1, "tag": e.tag, "objective": e.objective, "failed": e.failed,
             **{p.key: v for p, v in zip(cal.params, e.values, strict=True)},
             **{f"m.{k}": v for k, v in e.moments.items()}}
            for i, e in enumerate(cal.evaluations)]
    pd.DataFrame(rows).to_csv(out / "evaluations.csv", index=False)
    table = report_table(cal, report, float(cfg["confidence"]))
    files = write_table(table, out / "tables", "calibration",
                        caption=f"Calibration: real moments against the world at the fitted "
                                f"parameters ({int(cfg['report_replicates'])} seeds, "
                                f"{float(cfg['confidence']):.0%} t-intervals)")
    files.update(_figure(table, out / "figures"))
    fitted = {p.key: v for p, v in zip(cal.params, best.values, strict=True)}
    result = {"fitted": fitted, "objective_fit": best.objective,
              "objective_report": objective({r["moment"]: r["achieved"]
                                             for r in table.to_dict("records")},
                                            cal.targets, cal.moments),
              "evaluations": len(cal.evaluations), "targets": cal.targets,
              "report_failed_runs": report.failed}
    (out / "best.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    if cfg.get("group"):
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        files["group"] = write_group(
            CONF_AGENTS / f"{cfg['group']}.yaml", fitted, list(cfg["fixed"]),
            [f"Agents fitted by `python -m experiments.calibrate` ({stamp}): the simulated",
             f"method of moments, {len(cal.evaluations)} evaluations, J = {best.objective:.4g}",
             f"at the fit, {result['objective_report']:.4g} over "
             f"{int(cfg['report_replicates'])} report seeds",
             f"(targets and achieved: {out / 'tables' / 'calibration.md'}).",
             "Fitted: " + ", ".join(f"{k}={v:.6g}" for k, v in fitted.items())])
    result["files"] = {k: str(v) for k, v in files.items()}
    result["failed"] = report.failed
    return result


def main(argv: list[str] | None = None) -> None:
    """Entry point: arguments are checked first (one line, exit status 2, before any run)."""
    from experiments.common import study_exit
    from experiments.study_args import study_config

    cfg = study_config("calibrate", sys.argv[1:] if argv is None else argv)
    with study_exit():
        result = run_study(cfg)
        for name, path in result["files"].items():
            print(f"  {name:<6} {path}")
        if result["failed"]:
            print(f"calibrate: {result['failed']} of the report's runs failed", file=sys.stderr)
            raise SystemExit(1)
        print(f"calibrate: J = {result['objective_report']:.4g} over the report seeds; "
              f"outputs in {cfg['output_dir']}")


if __name__ == "__main__":
    main()
