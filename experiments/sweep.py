"""A small, resumable sweep runner: run specs in, one output directory per run out.

Each :class:`RunSpec` (a name, Hydra overrides and free metadata such as the
regime, scenario and replicate) is run by ``sim.run`` into its own directory
``<sweep_dir>/<name>/``, which streams the run's files there as usual. The run
is *finished* when ``done.json`` exists: it is written last, atomically
(temporary file + ``os.replace``), so a sweep killed at any point resumes by
re-running :func:`run_sweep` with the same specs — finished runs are skipped,
unfinished ones redone. A run that raises is recorded in ``failed.json`` (one-
line error plus traceback) and the sweep carries on; the next call retries it.

Runs go serially or in a ``ProcessPoolExecutor`` with the *spawn* start method
(no forked RNG or Mesa state), each worker calling ``sim.run``. Results never
pile up in memory: :func:`collect` reads the finished runs' ``summary.json``
files back into one flat table afterwards.

Neighbours: ``experiments.tail_risk`` (``replicate_seeds``), studies
``experiments.compare_regimes``, ``experiments.stress_sweep`` and
``experiments.backtest_report`` which build specs and post-process
:func:`collect`'s table.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from sim.runner import write_json_atomic

__all__ = ["DONE", "FAILED", "RunSpec", "SweepReport", "collect", "flatten", "run_sweep"]

DONE = "done.json"
FAILED = "failed.json"
SPEC = "spec.json"

Runner = Callable[..., Any]


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep.

    Attributes:
        name: Directory name of the run inside the sweep directory (unique,
            no path separators).
        overrides: Hydra overrides passed to ``sim.run``.
        meta: Free, JSON-serialisable labels (regime, scenario, replicate,
            parameter values …) copied into ``done.json`` and :func:`collect`.
    """

    name: str
    overrides: tuple[str, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or os.sep in self.name or self.name in {".", ".."}:
            raise ValueError(f"run name must be a plain directory name, got {self.name!r}")
        object.__setattr__(self, "overrides", tuple(self.overrides))


@dataclass
class SweepReport:
    """Outcome of :func:`run_sweep`.

    Attributes:
        done: Names of runs completed in this call.
        skipped: Names of runs already finished before this call.
        failed: Name → one-line error of runs that raised in this call.
        wall_seconds: Wall time of the call.
    """

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    wall_seconds: float = 0.0

    def line(self) -> str:
        """The closing summary line."""
        return (f"sweep: {len(self.done)} done, {len(self.skipped)} skipped, "
                f"{len(self.failed)} failed in {self.wall_seconds:.1f} s")


def _sim_run(overrides: list[str], *, out_dir: Path, progress: bool = False) -> Any:
    import sim

    return sim.run(overrides, out_dir=out_dir, progress=progress)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _execute(spec: RunSpec, run_dir: Path, runner: Runner) -> tuple[str, str, str | None]:
    """Run one spec; returns ``(name, "done" | "failed", error)``. Never raises ``Exception``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"name": spec.name, "overrides": list(spec.overrides), "meta": dict(spec.meta)}
    write_json_atomic(run_dir / SPEC, record)
    start = time.perf_counter()
    try:
        runner(list(spec.overrides), out_dir=run_dir, progress=False)
    except Exception as exc:  # one run's failure must not stop the sweep
        err = _one_line(exc)
        write_json_atomic(run_dir / FAILED, {**record, "error": err,
                                              "traceback": traceback.format_exc()})
        return spec.name, "failed", err
    (run_dir / FAILED).unlink(missing_ok=True)
    write_json_atomic(run_dir / DONE, {**record,
                                        "wall_seconds": round(time.perf_counter() - start, 3)})
    return spec.name, "done", None


def run_sweep(specs: Sequence[RunSpec], sweep_dir: str | Path, *, workers: int = 1,
              runner: Runner | None = None, progress: bool = True) -> SweepReport:
    """Run every spec not yet finished in ``sweep_dir``.

    Args:
        specs: The runs (unique names).
        sweep_dir: Parent directory; run ``name`` writes to ``sweep_dir/name``.
        workers: 1 runs serially in this process; ``n > 1`` uses a spawn-context
            ``ProcessPoolExecutor(max_workers=n)``.
        runner: ``runner(overrides, out_dir=..., progress=False)``; default
            ``sim.run``. Must be a picklable module-level function when
            ``workers > 1``.
        progress: Show a tqdm bar over runs and print the summary line.

    Returns:
        A :class:`SweepReport`.

    Raises:
        ValueError: Duplicate run names or ``workers < 1``.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"duplicate run names: {dup}")
    runner = runner or _sim_run
    root = Path(sweep_dir)
    root.mkdir(parents=True, exist_ok=True)
    report = SweepReport()
    start = time.perf_counter()
    todo = []
    for s in specs:
        if (root / s.name / DONE).exists():
            report.skipped.append(s.name)
        else:
            todo.append(s)
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=not progress)

    def record(result: tuple[str, str, str | None]) -> None:
        name, status, err = result
        if status == "done":
            report.done.append(name)
        else:
            report.failed[name] = err or "error"
        bar.update(1)

    try:
        if workers == 1 or len(todo) <= 1:
            for s in todo:
                record(_execute(s, root / s.name, runner))
        else:
            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = {pool.submit(_execute, s, root / s.name, runner): s for s in todo}
                for fut in as_completed(futures):
                    s = futures[fut]
                    try:
                        record(fut.result())
                    except Exception as exc:  # e.g. a worker killed by the OS
                        err = _one_line(exc)
                        (root / s.name).mkdir(parents=True, exist_ok=True)
                        write_json_atomic(root / s.name / FAILED,
                                           {"name": s.name, "overrides": list(s.overrides),
                                            "meta": dict(s.meta), "error": err})
                        record((s.name, "failed", err))
    finally:
        bar.close()
        report.wall_seconds = time.perf_counter() - start
    if progress:
        print(report.line())
    return report


def flatten(obj: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Flatten nested mappings: ``{"a": {"b": 1}}`` → ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten(v, key, sep))
        else:
            out[key] = v
    return out


def collect(sweep_dir: str | Path, names: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per finished run: its metadata, overrides and flattened summary.

    Columns: ``run`` (directory name), each ``meta`` key as is, ``overrides``
    (space-joined), one ``override.<key>`` column per ``key=value`` override
    (as strings), and every leaf of ``summary.json`` as a dotted path, e.g.
    ``liquidation.alpha.notional`` or ``instruments.alpha:BTC-PERP.amplification``.
    Unfinished or failed runs are left out.

    Args:
        sweep_dir: The sweep directory.
        names: Restrict to these run names (default: every finished run).

    Returns:
        The table, sorted by ``run`` (empty if nothing finished).
    """
    root = Path(sweep_dir)
    wanted = None if names is None else set(names)
    rows = []
    for done in sorted(root.glob(f"*/{DONE}")):
        run_dir = done.parent
        if wanted is not None and run_dir.name not in wanted:
            continue
        rec = json.loads(done.read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
        row: dict[str, Any] = {"run": run_dir.name, **rec.get("meta", {}),
                               "overrides": " ".join(rec.get("overrides", []))}
        for ov in rec.get("overrides", []):
            if "=" in ov:
                k, v = ov.split("=", 1)
                row[f"override.{k.lstrip('+~')}"] = v
        row.update(flatten(summary))
        rows.append(row)
    df = pd.DataFrame(rows)
    return df.sort_values("run", ignore_index=True) if len(df) else df
