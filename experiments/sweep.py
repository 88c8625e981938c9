"""A small, resumable sweep runner: run specs in, one output directory per run out.

Each :class:`RunSpec` (a name, Hydra overrides and free metadata such as the
regime, scenario and replicate) is run by ``sim.run`` into its own directory
``<sweep_dir>/<name>/``, which streams the run's files there as usual.

**What a finished run is.** A run is finished when ``done.json`` exists and
records the *provenance* asked for: the fingerprint of the run's full resolved
config (``sim.load_config(spec.overrides)`` hashed by
:func:`sim.output.provenance.config_fingerprint`) and the fingerprint of the world's
code (:func:`sim.output.provenance.code_fingerprint`). Both are computed in the
parent before anything is dispatched (once per spec). A ``done.json`` with
other fingerprints, or none, is *stale*: it is removed and the run is redone,
so a directory name reused with new parameters or new code never passes off
an old result. ``done.json`` is written last, atomically (temporary file +
``os.replace``), and removed before a run starts, so a sweep killed at any
point resumes by calling :func:`run_sweep` again with the same specs.

A run that raises is recorded in ``failed.json`` (one-line error plus
traceback) and the sweep carries on; the next call retries it. A spec whose
config does not resolve fails the same way without being started.
:class:`SweepReport` counts done, skipped (reused), re-run and failed runs.

**One sweep per directory.** :func:`run_sweep` holds ``<sweep_dir>/.lock``
(created with ``O_EXCL``; it names the owner's pid and that process's start
time) for its whole call. A second sweep on the same directory while the owner
lives raises :class:`SweepLocked`; a lock left by a dead process is taken over.

**Executors.** The runs are handed to an :class:`experiments.executor.Executor`
(default :class:`~experiments.executor.LocalPool` of ``workers`` processes:
serial in this process for one worker, else a *spawn* ``ProcessPoolExecutor``
whose workers watch their parent and exit at once when it is gone, so a killed
sweep leaves no worker behind to race a resume; the multiprocessing resource
tracker then sees its last client go and exits too). Whatever the executor,
each run is the same task, :func:`_execute_task`, which writes the run's
``done.json`` / ``failed.json`` itself; a run whose worker dies under it is
recorded in ``failed.json`` here.

Results never pile up in memory: :func:`collect` reads the finished runs'
``summary.json`` files back into one flat table afterwards, keeping only runs
whose recorded provenance is the one expected (pass ``expected``, e.g.
:attr:`SweepReport.expected` or :func:`expected_provenance`).

Neighbours: ``sim.output.provenance`` (the fingerprints), ``experiments.common``
(``start_study`` / ``run_and_aggregate``: a study's sweep, failure counts and
exit status), ``experiments.tail_risk`` (``replicate_seeds``), studies
``experiments.compare_regimes``, ``experiments.stress_sweep`` and
``experiments.backtest_report`` which build specs and post-process
:func:`collect`'s table.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from experiments.executor import Executor, LocalPool
from sim.output.provenance import code_fingerprint, package_version, provenance_record
from sim.output.provenance import provenance_matches as _matches
from sim.output.runner import write_json_atomic

__all__ = ["DONE", "FAILED", "LOCK", "RunSpec", "SweepLocked", "SweepReport", "collect",
           "expected_provenance", "flatten", "overrides_provenance", "provenance_matches",
           "run_sweep", "sim_provenance", "sweep_lock"]

DONE = "done.json"
FAILED = "failed.json"
SPEC = "spec.json"
LOCK = ".lock"

Runner = Callable[..., Any]
Provenance = Callable[["RunSpec"], Mapping[str, str]]


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
        skipped: Names of runs already finished (same provenance) before this call.
        failed: Name → one-line error of runs that raised (or whose config did
            not resolve) in this call.
        rerun: Names of runs whose earlier result was stale (other config or
            code fingerprint) and which were therefore run again; each is also
            in ``done`` or ``failed``.
        expected: Name → provenance asked for (``config_sha256``,
            ``code_sha256``, ``version``) of every spec that resolved; pass it
            to :func:`collect`.
        total: Number of specs.
        wall_seconds: Wall time of the call.
    """

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    rerun: list[str] = field(default_factory=list)
    expected: dict[str, dict[str, str]] = field(default_factory=dict)
    total: int = 0
    wall_seconds: float = 0.0

    @property
    def finished(self) -> list[str]:
        """Names of runs with a usable result of the provenance asked for."""
        return [*self.skipped, *self.done]

    def line(self) -> str:
        """The closing summary line, e.g. ``sweep: 4 done, 2 skipped, 1 failed in 9.1 s; …``."""
        stale = f" ({len(self.rerun)} re-run: stale config or code)" if self.rerun else ""
        return (f"sweep: {len(self.done)} done, {len(self.skipped)} skipped, "
                f"{len(self.failed)} failed in {self.wall_seconds:.1f} s{stale}; "
                f"{len(self.failed)} of {self.total} runs failed")


class SweepLocked(RuntimeError):
    """Another live sweep holds the sweep directory's lock.

    Attributes:
        path: The sweep directory.
        pid: The owner's process id.
    """

    def __init__(self, path: Path, pid: int) -> None:
        self.path = Path(path)
        self.pid = int(pid)
        super().__init__(f"experiments: {self.path} is in use by a running sweep (pid {self.pid}); "
                         f"wait for it to finish or stop it, then run again")


# --------------------------------------------------------------------------- provenance

@lru_cache(maxsize=4096)
def _sim_provenance(overrides: tuple[str, ...]) -> dict[str, str]:
    import sim

    return provenance_record(sim.load_config(list(overrides)))


def sim_provenance(spec: RunSpec) -> dict[str, str]:
    """Provenance of a ``sim.run`` spec: its fully resolved config and the code.

    ``sim.load_config(spec.overrides)`` is fingerprinted, so overrides that
    resolve to the same config (another order, a default spelled out) share a
    fingerprint. Cached per override tuple (about 0.1 s per new one).

    Args:
        spec: The run.

    Returns:
        ``{"config_sha256", "code_sha256", "version"}``.

    Raises:
        sim.config.ConfigError: The overrides do not resolve (one line).
    """
    return dict(_sim_provenance(tuple(spec.overrides)))


def overrides_provenance(spec: RunSpec) -> dict[str, str]:
    """Provenance of a spec for a custom runner: its override list (in order) and the code.

    The default of :func:`run_sweep` when a ``runner`` other than ``sim.run``
    is given, since such a runner's overrides need not be run-config keys.

    Args:
        spec: The run.

    Returns:
        ``{"config_sha256", "code_sha256", "version"}``.
    """
    text = json.dumps(list(spec.overrides))
    return {"config_sha256": hashlib.sha256(text.encode()).hexdigest()[:16],
            "code_sha256": code_fingerprint(), "version": package_version()}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _resolve(specs: Sequence[RunSpec], provenance: Provenance
             ) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    expected: dict[str, dict[str, str]] = {}
    errors: dict[str, str] = {}
    for s in specs:
        try:
            expected[s.name] = dict(provenance(s))
        except Exception as exc:  # noqa: BLE001 - a spec that does not resolve fails alone
            errors[s.name] = _one_line(exc)
    return expected, errors


def expected_provenance(specs: Sequence[RunSpec], provenance: Provenance | None = None
                        ) -> dict[str, dict[str, str]]:
    """Name → provenance asked for, for every spec that resolves (others are left out).

    Args:
        specs: The runs.
        provenance: ``provenance(spec)``; default :func:`sim_provenance`.

    Returns:
        The mapping :func:`collect` takes as ``expected``.
    """
    return _resolve(specs, provenance or sim_provenance)[0]


def provenance_matches(record: Mapping[str, Any] | None, expected: Mapping[str, str] | None
                       ) -> bool:
    """Whether a ``done.json`` record carries the config and code fingerprints expected.

    Args:
        record: The parsed ``done.json`` (None: no marker).
        expected: The provenance asked for (None: the spec did not resolve).

    Returns:
        True only if both ``config_sha256`` and ``code_sha256`` are present and
        equal (:func:`sim.output.provenance.provenance_matches`).
    """
    return bool(record) and _matches(record.get("provenance") or {}, expected)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


# --------------------------------------------------------------------------- lock

def _start_ticks(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[19])


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] != "Z"


def _lock_owner_live(rec: dict[str, Any] | None) -> bool:
    """Whether a lock record names a live process (unreadable records count as stale)."""
    if not rec or not isinstance(rec.get("pid"), int):
        return False
    if rec.get("host") not in (None, socket.gethostname()):
        return True  # another machine's process: cannot be checked, assume it lives
    pid = rec["pid"]
    if not _alive(pid):
        return False
    ticks = _start_ticks(pid)
    return rec.get("start_ticks") is None or ticks is None or ticks == rec["start_ticks"]


def _lock_record() -> dict[str, Any]:
    return {"pid": os.getpid(), "start_ticks": _start_ticks(os.getpid()),
            "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _create_lock(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(_lock_record()) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return True


@contextlib.contextmanager
def sweep_lock(sweep_dir: str | Path) -> Iterator[Path]:
    """Hold ``<sweep_dir>/.lock`` for the duration of the block.

    The lock file is created atomically (``O_EXCL``) and names the owner's
    pid, that process's start time (so a recycled pid is not taken for the
    owner) and host. A lock whose owner is dead is taken over (under an
    advisory ``flock`` on the directory, so two sweeps cannot both take over
    the same stale lock); the lock is removed on leaving the block.

    Args:
        sweep_dir: The sweep directory (created if missing).

    Yields:
        The lock file's path.

    Raises:
        SweepLocked: A live process holds the lock.
    """
    import fcntl

    root = Path(sweep_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK
    while not _create_lock(path):
        rec = _read_json(path)
        if _lock_owner_live(rec):
            raise SweepLocked(root, int(rec["pid"]))  # type: ignore[index]
        dfd = os.open(root, os.O_RDONLY)
        try:
            fcntl.flock(dfd, fcntl.LOCK_EX)
            again = _read_json(path)
            if again == rec or again is None:  # still the same stale lock (or gone)
                path.unlink(missing_ok=True)
            if _create_lock(path):
                break
        finally:
            fcntl.flock(dfd, fcntl.LOCK_UN)
            os.close(dfd)
    try:
        yield path
    finally:
        rec = _read_json(path)
        if rec and rec.get("pid") == os.getpid():
            path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- runs

def _sim_run(overrides: list[str], *, out_dir: Path, progress: bool = False) -> Any:
    import sim

    return sim.run(overrides, out_dir=out_dir, progress=progress)


def _execute(spec: RunSpec, run_dir: Path, runner: Runner, prov: Mapping[str, str]
             ) -> tuple[str, str, str | None]:
    """Run one spec; returns ``(name, "done" | "failed", error)``. Never raises ``Exception``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    # no marker may outlive the start of a new attempt: a kill now leaves "unfinished"
    (run_dir / DONE).unlink(missing_ok=True)
    (run_dir / FAILED).unlink(missing_ok=True)
    record = {"name": spec.name, "overrides": list(spec.overrides), "meta": dict(spec.meta),
              "provenance": dict(prov)}
    write_json_atomic(run_dir / SPEC, record)
    start = time.perf_counter()
    try:
        if "code_sha256" in prov and prov["code_sha256"] != code_fingerprint():
            raise RuntimeError("the code changed since the sweep started; run the sweep again")
        runner(list(spec.overrides), out_dir=run_dir, progress=False)
    except Exception as exc:  # noqa: BLE001 - one run's failure must not stop the sweep
        err = _one_line(exc)
        write_json_atomic(run_dir / FAILED, {**record, "error": err,
                                              "traceback": traceback.format_exc()})
        return spec.name, "failed", err
    write_json_atomic(run_dir / DONE, {**record,
                                        "wall_seconds": round(time.perf_counter() - start, 3)})
    return spec.name, "done", None


def _execute_task(task: tuple[RunSpec, Path, Runner, Mapping[str, str]]
                  ) -> tuple[str, str, str | None]:
    """:func:`_execute` of one ``(spec, run_dir, runner, provenance)`` task (executor form)."""
    return _execute(*task)


def run_sweep(specs: Sequence[RunSpec], sweep_dir: str | Path, *, workers: int = 1,
              runner: Runner | None = None, progress: bool = True,
              provenance: Provenance | None = None, executor: Executor | None = None
              ) -> SweepReport:
    """Run every spec of ``sweep_dir`` that has no finished result of its provenance.

    A run is reused only when its ``done.json`` records the provenance asked
    for (config and code fingerprints); a stale marker is removed and the run
    redone. The directory is locked for the call (:func:`sweep_lock`).

    Args:
        specs: The runs (unique names).
        sweep_dir: Parent directory; run ``name`` writes to ``sweep_dir/name``.
        workers: Size of the default executor,
            :class:`experiments.executor.LocalPool`: 1 runs serially in this
            process; ``n > 1`` uses a spawn-context ``ProcessPoolExecutor``
            whose workers exit when this process dies. Ignored when
            ``executor`` is given.
        runner: ``runner(overrides, out_dir=..., progress=False)``; default
            ``sim.run``. Must be a picklable module-level function when the
            runs leave this process.
        progress: Show a tqdm bar over runs and print the summary line.
        provenance: ``provenance(spec)`` → ``{"config_sha256", "code_sha256",
            ...}``; default :func:`sim_provenance` for ``sim.run`` and
            :func:`overrides_provenance` for a custom ``runner``. A spec it
            raises on is recorded as failed without being run.
        executor: Where the runs execute (:mod:`experiments.executor`); the
            records written are the same whatever it is.

    Returns:
        A :class:`SweepReport`.

    Raises:
        ValueError: Duplicate run names or ``workers < 1``.
        SweepLocked: Another live sweep runs on ``sweep_dir``.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    executor = executor if executor is not None else LocalPool(workers)
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"duplicate run names: {dup}")
    if provenance is None:
        provenance = sim_provenance if runner is None else overrides_provenance
    runner = runner or _sim_run
    root = Path(sweep_dir)
    with sweep_lock(root):
        report = _run_locked(specs, root, executor, runner, progress, provenance)
    if progress:
        print(report.line())
    return report


def _run_locked(specs: Sequence[RunSpec], root: Path, executor: Executor, runner: Runner,
                progress: bool, provenance: Provenance) -> SweepReport:
    start = time.perf_counter()
    report = SweepReport(total=len(specs))
    expected, errors = _resolve(specs, provenance)
    report.expected = expected
    todo = []
    for s in specs:
        run_dir = root / s.name
        rec = _read_json(run_dir / DONE)
        if s.name in errors:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / DONE).unlink(missing_ok=True)
            write_json_atomic(run_dir / FAILED, {"name": s.name, "overrides": list(s.overrides),
                                                 "meta": dict(s.meta), "error": errors[s.name]})
            report.failed[s.name] = errors[s.name]
        elif provenance_matches(rec, expected[s.name]):
            report.skipped.append(s.name)
        else:
            if (run_dir / DONE).exists():
                report.rerun.append(s.name)
                (run_dir / DONE).unlink()
            todo.append(s)
    bar = tqdm(total=len(todo), desc="runs", unit="run", disable=not progress)

    def record(result: tuple[str, str, str | None]) -> None:
        name, status, err = result
        if status == "done":
            report.done.append(name)
        else:
            report.failed[name] = err or "error"
        bar.update(1)

    tasks = [(s, root / s.name, runner, expected[s.name]) for s in todo]
    try:
        for out in executor.map(_execute_task, tasks):
            s = out.item[0]
            if out.error is None:
                record(out.value)
                continue
            err = _one_line(out.error)  # e.g. a worker killed by the OS, a lost connection
            (root / s.name).mkdir(parents=True, exist_ok=True)
            write_json_atomic(root / s.name / FAILED,
                              {"name": s.name, "overrides": list(s.overrides),
                               "meta": dict(s.meta), "error": err})
            record((s.name, "failed", err))
    finally:
        bar.close()
        report.wall_seconds = time.perf_counter() - start
    return report


def flatten(obj: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Flatten nested mappings: ``{"a": {"b": 1}}`` → ``{"a.b": 1}``.

    Args:
        obj: The mapping.
        prefix: Key prefix of this level.
        sep: Separator between levels.

    Returns:
        One entry per leaf, keyed by its dotted path.
    """
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten(v, key, sep))
        else:
            out[key] = v
    return out


def collect(sweep_dir: str | Path, names: Iterable[str] | None = None, *,
            expected: Mapping[str, Mapping[str, str]] | None = None) -> pd.DataFrame:
    """One row per finished run: its metadata, overrides, provenance and flattened summary.

    Columns: ``run`` (directory name), each ``meta`` key as is, ``overrides``
    (space-joined), one ``override.<key>`` column per ``key=value`` override
    (as strings), ``config_sha256`` and ``code_sha256`` (the run's recorded
    provenance), and every leaf of ``summary.json`` as a dotted path, e.g.
    ``liquidation.alpha.notional`` or ``instruments.alpha:BTC-PERP.amplification``.
    Unfinished or failed runs are left out.

    Args:
        sweep_dir: The sweep directory.
        names: Restrict to these run names.
        expected: Name → provenance asked for (:attr:`SweepReport.expected`,
            :func:`expected_provenance`). Given, only those runs are read, and
            only when their ``done.json`` records that provenance: a leftover
            directory of another study, or a run made with other parameters
            or code, is never tabulated. Without it every finished run is
            read unchecked (for a quick look at a directory, not for a study).

    Returns:
        The table, sorted by ``run`` (empty if nothing finished).
    """
    root = Path(sweep_dir)
    wanted = None if names is None else set(names)
    if expected is not None:
        wanted = set(expected) if wanted is None else wanted & set(expected)
    rows = []
    for done in sorted(root.glob(f"*/{DONE}")):
        run_dir = done.parent
        if wanted is not None and run_dir.name not in wanted:
            continue
        rec = _read_json(done)
        if rec is None:
            continue
        if expected is not None and not provenance_matches(rec, expected[run_dir.name]):
            continue
        summary = json.loads((run_dir / "summary.json").read_text())
        prov = rec.get("provenance") or {}
        row: dict[str, Any] = {"run": run_dir.name, **rec.get("meta", {}),
                               "overrides": " ".join(rec.get("overrides", [])),
                               "config_sha256": prov.get("config_sha256"),
                               "code_sha256": prov.get("code_sha256")}
        for ov in rec.get("overrides", []):
            if "=" in ov:
                k, v = ov.split("=", 1)
                row[f"override.{k.lstrip('+~')}"] = v
        row.update(flatten(summary))
        rows.append(row)
    df = pd.DataFrame(rows)
    return df.sort_values("run", ignore_index=True) if len(df) else df
