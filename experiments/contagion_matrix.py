"""The agent-model contagion matrix: loss at protocol ``j`` given a shock at ``i``.

For each channel setting and seed, the world runs once unshocked and once per
protocol with a confined shock there (:data:`sim.contagion.SHOCKS`,
default an exploit that leaves the protocol with a deficit); the loss at every
protocol — recorded bad debt, liquidations, and the fall of its traders'
equity (:func:`sim.contagion.contagion_matrix`) — is the difference to the
unshocked run of the same seed (common random numbers, Law & Kelton §11.2),
summarised by its mean and paired-*t* interval (§10.2.1) across seeds.

Usage::

    python -m experiments.contagion_matrix [key=value ...]

The world is a named reference world (``world``, default
:func:`experiments.worlds.two_venue_token`) plus ``overrides``. Each (channel,
seed) — its unshocked run and one shocked run per protocol — is one task of the
study's executor (``executor``: :mod:`experiments.executor`).

Parameters: ``conf/experiment/contagion_matrix.yaml``. Writes ``matrix.json``
(every seed's matrices), ``tables/contagion_matrix.{csv,md,tex}`` and one
heat-map per channel setting and measure in ``figures/``. Each finished
(channel, seed) is appended to ``matrix_runs.jsonl``: run again with the same
parameters, the study re-runs only what is missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from experiments.analysis import write_table
from experiments.common import RowCheckpoint, StudyRunsFailed, study_exit
from experiments.executor import executor_for
from experiments.stats import paired_ci
from experiments.study_args import study_config
from experiments.worlds import WORLDS

__all__ = ["MEASURES", "cell_table", "main", "run_matrices", "run_study"]

MEASURES = {"bad_debt": ("bad debt", "USD"), "liquidations": ("liquidations", "count"),
            "equity_loss": ("traders' equity loss", "USD")}
"""Loss measures of :func:`sim.contagion.contagion_matrix`: title and unit."""


def world_overrides(cfg: Any) -> list[str]:
    """The run-config overrides of the study's world: ``WORLDS[cfg.world]()`` then ``overrides``.

    Args:
        cfg: The study config (``world``: a name of :data:`experiments.worlds.WORLDS`
            or None; ``overrides``).

    Returns:
        The overrides every run starts from.
    """
    name = cfg.get("world") if hasattr(cfg, "get") else getattr(cfg, "world", None)
    return [*(WORLDS[str(name)]() if name else []), *list(cfg.overrides or [])]


def _losses_task(task: tuple[Any, ...]) -> dict[str, Any]:
    """One (channel, seed): the unshocked run and one shocked run per protocol (executor task).

    Args:
        task: ``(key, run config, protocol names, size, shock_step, shock kind,
            applied)``; ``key`` is ``[channel, seed]`` (not used here).

    Returns:
        ``{"baseline": {...}, "shock_applied": bool, "shocked": [{...} or None]}``.
    """
    from sim.contagion import run_with_shock, trader_equity

    _key, rc, names, size, shock_step, kind, applied = task
    n = len(names)

    def losses(i: int | None) -> dict[str, list[float]]:
        m = run_with_shock(rc, i, size, shock_step, kind=kind)
        liq = m.liquidation
        return {"bad_debt": [float(liq.bad_debt[k]) for k in range(n)],
                "liquidations": [float(liq.totals[k]["liquidations"]) for k in range(n)],
                "trader_equity": trader_equity(m).tolist()}

    return {"baseline": losses(None), "shock_applied": applied,
            "shocked": [losses(i) if applied else None for i in range(n)]}


def run_matrices(cfg: Any, checkpoint: Any = None) -> dict[str, Any]:
    """Every channel setting x seed: the protocols and the raw per-run losses.

    Args:
        cfg: The study config.
        checkpoint: Optional :class:`experiments.common.RowCheckpoint`: finished
            (channel, seed) results are taken from it and new ones added.

    Returns:
        ``{"protocols": names, "runs": {channel: {seed: {"baseline": {...},
        "shocked": [{...} per protocol]}}}}`` where each ``{...}`` maps a measure
        to the per-protocol values of one run (bad debt, liquidations, traders'
        equity). When ``shock_step`` is not a step of the run (the shock would
        never happen) the shocked runs are not made: each is ``None``, and
        :func:`cell_table` shows NaN with ``runs_failed``, never a zero loss.

    Raises:
        ValueError: An unknown shock kind, or no seeds (one line).
        RuntimeError: A (channel, seed) task failed (its one-line error).
    """
    from sim.config import load_config
    from sim.contagion import SHOCKS

    if cfg.shock not in SHOCKS:
        raise ValueError(f"shock must be one of {', '.join(SHOCKS)}, got {cfg.shock!r}")
    if not len(cfg.seeds):
        raise ValueError("seeds must list at least one seed")
    runs: dict[str, Any] = {}
    names: list[str] = []
    world = world_overrides(cfg)
    todo = []
    for channel, extra in cfg.channels.items():
        runs[channel] = {}
        for seed in cfg.seeds:
            rc = load_config([*world, *extra, f"seed={int(seed)}",
                              "output.figures=false", "progress=false"])
            names = [p.name for p in rc.protocols]
            # sim.contagion.run_with_shock applies the shock at step t == shock_step
            applied = 0 <= int(cfg.shock_step) < int(rc.steps)
            key = [channel, int(seed)]
            done = None if checkpoint is None else checkpoint.get(key)
            runs[channel][int(seed)] = done
            if done is None:
                todo.append((key, rc, list(names), float(cfg.size), int(cfg.shock_step),
                             str(cfg.shock), applied))
    for out in executor_for(cfg).map(_losses_task, todo):
        channel, seed = out.item[0]
        if out.error is not None:
            raise RuntimeError(f"contagion_matrix: channel {channel}, seed {seed}: "
                               f"{type(out.error).__name__}: {out.error}") from out.error
        done = out.value if checkpoint is None else checkpoint.add([channel, seed], out.value)
        runs[channel][seed] = done
    return {"protocols": names, "runs": runs}


def cell_table(result: dict[str, Any], confidence: float = 0.95) -> pd.DataFrame:
    """Long table: channel, measure, shocked, at, mean loss and its paired-*t* interval.

    A seed whose shocked run is missing (``None``: the shock never happened)
    is left out of the cell and counted in ``runs_failed``; a cell without
    any pair has NaN mean and bounds and ``n = 0``.

    Args:
        result: :func:`run_matrices`' result.
        confidence: Level of the paired-*t* interval.

    Returns:
        Columns ``channels, measure, shocked, at, mean, ci_low, ci_high, n,
        runs_failed``.
    """
    names = result["protocols"]
    rows = []
    nan = float("nan")
    for channel, seeds in result["runs"].items():
        for measure in MEASURES:
            key = "trader_equity" if measure == "equity_loss" else measure
            sign = -1.0 if measure == "equity_loss" else 1.0
            for i, shocked in enumerate(names):
                for j, at in enumerate(names):
                    runs = [seeds[s]["shocked"][i] for s in seeds]
                    x = [nan if r is None else sign * r[key][j] for r in runs]
                    y = [sign * seeds[s]["baseline"][key][j] for s in seeds]
                    ci = paired_ci(x, y, confidence)
                    rows.append({"channels": channel, "measure": measure, "shocked": shocked,
                                 "at": at, "mean": ci["diff"], "ci_low": ci["ci_low"],
                                 "ci_high": ci["ci_high"], "n": ci["n"],
                                 "runs_failed": sum(r is None for r in runs)})
    return pd.DataFrame(rows)


def _missed_shocks(result: dict[str, Any]) -> tuple[int, int]:
    """``(shocked runs missing, shocked runs asked for)`` over every channel and seed."""
    missing = total = 0
    for seeds in result["runs"].values():
        for rec in seeds.values():
            total += len(rec["shocked"])
            missing += sum(r is None for r in rec["shocked"])
    return missing, total


def run_study(cfg: Any) -> Path:
    """Run the matrices; write ``matrix.json``, the table and the heat-maps; return the dir.

    Raises:
        experiments.common.StudyRunsFailed: The shock never happened
            (``shock_step`` outside the run): raised after the table (NaN
            cells with ``runs_failed``) and figures are written.
    """
    from sim.output.figures import contagion_matrix_figure

    out = Path(str(cfg.output_dir))
    out.mkdir(parents=True, exist_ok=True)
    identity = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items()
                if k not in ("output_dir", "confidence", "executor", "workers", "dask_address")}
    result = run_matrices(cfg, RowCheckpoint(out / "matrix_runs.jsonl", identity))
    (out / "matrix.json").write_text(json.dumps(result, indent=1, sort_keys=True))
    conf = float(cfg.confidence)
    table = cell_table(result, conf)
    write_table(table, out / "tables", "contagion_matrix", group="channels",
                caption=(f"Loss at protocol 'at' given a {cfg.shock} shock of "
                         f"{float(cfg.size):,.0f} USD at 'shocked' "
                         f"(step {int(cfg.shock_step)}), minus the unshocked "
                         f"run, mean over {len(cfg.seeds)} seeds with {conf:.0%} paired-t "
                         f"intervals"))
    names = result["protocols"]
    for (channel, measure), sub in table.groupby(["channels", "measure"], sort=False):
        what, unit = MEASURES[measure]
        m = sub.pivot(index="shocked", columns="at", values="mean").loc[names, names]
        contagion_matrix_figure(m.to_numpy(), names, out / "figures",
                                name=f"contagion_matrix_{channel}_{measure}", unit=unit,
                                what=f"{what} ({channel})")
    missing, total = _missed_shocks(result)
    if missing:
        raise StudyRunsFailed("contagion_matrix", missing, total, total - missing,
                              {"shock": f"shock_step {int(cfg.shock_step)} is not a step of "
                                        f"the run; the shock never happened"})
    print(StudyRunsFailed("contagion_matrix", 0, total, total).line())
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: ``key=value`` overrides of ``conf/experiment/contagion_matrix.yaml``.

    Arguments are checked first (:data:`experiments.study_args.SCHEMAS`): a bad one
    stops with one line on stderr and exit status 2, before anything is written.
    """
    cfg = study_config("contagion_matrix", sys.argv[1:] if argv is None else argv)
    with study_exit():
        out = run_study(cfg)
    table = pd.read_csv(out / "tables" / "contagion_matrix.csv")
    view = table[table["measure"] != "liquidations"].copy()
    view["mean"] = view["mean"].map(lambda v: f"{v:,.0f}")
    print(view[["channels", "measure", "shocked", "at", "mean"]].to_string(index=False))
    print(f"contagion_matrix outputs in {out.resolve()}: matrix.json, tables/, figures/")


if __name__ == "__main__":
    main()
