"""Helpers shared by the study scripts: config loading, running a study's sweep, exit status.

A study's runs execute through :mod:`experiments.executor` (config keys
``executor``, ``workers``, ``dask_address``); its statistics are
:mod:`experiments.stats`, its worlds :mod:`experiments.worlds`.

A study's parameters live in ``conf/experiment/<study>.yaml`` and are loaded
with OmegaConf (not composed into the run config); ``key=value`` arguments on
the command line override them (values parsed as YAML, so
``regimes=[cross,portfolio]`` and ``scenarios={calm: []}`` replace the
configured values). Figures reuse ``sim.output.figures``
(Okabe-Ito palette, ``save`` → PNG + vector PDF).

:func:`start_study` runs (or resumes) a study's sweep and returns
:class:`StudyRuns`: which runs of the *current* study config have a result
(reused only when the resolved run config and the code are the ones asked
for, see :mod:`experiments.sweep`). :func:`run_and_aggregate` writes
``aggregated.csv`` with one row per run of the current config (failed or
missing runs as NaN, with a ``status``). Once a study has written its tables,
``StudyRuns.finish`` prints ``<study>: N of M runs failed; tables from K runs``
and raises :class:`StudyRunsFailed` when ``N > 0``; the study's ``main()``
wraps ``run_study`` in :func:`study_exit`, which turns that into exit status 1
(and a locked output folder into exit status 2).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

__all__ = [
    "CONF_DIR",
    "RowCheckpoint",
    "StudyArgError",
    "StudyRuns",
    "StudyRunsFailed",
    "load_study_config",
    "run_and_aggregate",
    "start_study",
    "study_exit",
]

CONF_DIR = Path(__file__).resolve().parents[1] / "conf" / "experiment"


def _study_yaml(path: Path) -> dict[str, Any]:
    """A study's YAML as plain containers (parsed once per file version; a fresh copy)."""
    stat = path.stat()
    return copy.deepcopy(_parse_yaml(str(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=32)
def _parse_yaml(path: str, _mtime_ns: int, _size: int) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(path))  # type: ignore[return-value]



class StudyArgError(ValueError):
    """A study argument is invalid; the message is one line naming the key and what is allowed."""


def load_study_config(name: str, argv: list[str] | None = None) -> DictConfig:
    """``conf/experiment/<name>.yaml`` with ``key=value`` overrides (parsed, not yet validated).

    Values are YAML; a value replaces the configured one (``scenarios={calm: []}``
    drops the other scenarios, no merge). Checking the values is
    :func:`experiments.study_args.validate_study_args` (a study's ``main()``
    does both through :func:`experiments.study_args.study_config`).

    Args:
        name: Study name.
        argv: ``key=value`` strings.

    Returns:
        The config with the overrides applied.

    Raises:
        StudyArgError: One line (a ``ValueError``): an
            argument without ``=``, a key the study does not have, a value that
            is not YAML, or an interpolation (``${...}``).
    """
    base = OmegaConf.create(_study_yaml(CONF_DIR / f"{name}.yaml"))
    valid = ", ".join(map(str, base.keys()))
    for arg in list(argv or []):
        if "=" not in arg:
            raise StudyArgError(f"{arg!r} is not key=value (keys: {valid})")
        key, text = (s.strip() for s in arg.split("=", 1))
        if not key:
            raise StudyArgError(f"{arg!r} is not key=value: the key is empty (keys: {valid})")
        if key.split(".")[0] not in base:
            raise StudyArgError(f"{key} = {text!r} is invalid: unknown key (valid keys: {valid})")
        try:
            value = OmegaConf.to_container(OmegaConf.from_dotlist([f"v={text}"]))["v"]
        except Exception as exc:  # noqa: BLE001 - the YAML parser raises several types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StudyArgError(f"{key} = {text!r} is invalid: not a YAML value ({first})"
                                ) from None
        if "${" in json.dumps(value, default=str):
            raise StudyArgError(f"{key} = {text!r} is invalid: interpolations (${{...}}) are "
                                f"not supported in study arguments; give the value")
        try:
            # replace, not merge: scenarios={calm: []} drops the configured scenarios
            OmegaConf.update(base, key, value, merge=False)
        except Exception as exc:  # noqa: BLE001 - OmegaConf raises several types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StudyArgError(f"{key} = {text!r} is invalid: {first}") from None
    return base


class StudyRunsFailed(RuntimeError):
    """Some of a study's runs have no result; raised after the tables were written.

    A study's ``run_study`` raises it once everything that can be written is
    written (tables mark the missing runs as NaN with their counts); the
    study's ``main()`` prints :meth:`line` and exits with status 1.

    Attributes:
        study: The study's name.
        failed: Runs of the current study config without a usable result
            (failed, or not run with ``report_only=true``).
        total: Runs of the current study config.
        finished: Runs the tables were made from.
        errors: Run name → one-line error (``"not run"`` if it never ran).
    """

    def __init__(self, study: str, failed: int, total: int, finished: int | None = None,
                 errors: Mapping[str, str] | None = None) -> None:
        self.study = str(study)
        self.failed = int(failed)
        self.total = int(total)
        self.finished = self.total - self.failed if finished is None else int(finished)
        self.errors = dict(errors or {})
        super().__init__(self.line())

    def line(self) -> str:
        """``<study>: N of M runs failed; tables from K runs`` (plus the first error)."""
        first = next(iter(self.errors.items()), None)
        tail = f" (e.g. {first[0]}: {first[1]})" if first else ""
        return (f"{self.study}: {self.failed} of {self.total} runs failed; "
                f"tables from {self.finished} runs{tail}")


@dataclass
class StudyRuns:
    """The runs of one study config after :func:`start_study`: which have a result.

    Attributes:
        out: The study's output directory (runs in ``out / "runs"``).
        specs: The runs of the current study config.
        expected: Run name → provenance asked for (resolved run config and code).
        finished: Names of runs whose ``done.json`` records that provenance.
        errors: Name → one-line error of every other run (``"not run"`` if
            it has not been attempted under the current config).
        report: The sweep's report (None with ``report_only``).
    """

    out: Path
    specs: list[Any]
    expected: dict[str, dict[str, str]]
    finished: list[str]
    errors: dict[str, str]
    report: Any = None

    @property
    def total(self) -> int:
        """Number of runs of the study config."""
        return len(self.specs)

    @property
    def failed(self) -> int:
        """Number of runs without a usable result."""
        return self.total - len(self.finished)

    def status(self) -> pd.DataFrame:
        """One row per run of the study config: ``run``, its meta, ``status`` and ``error``.

        ``status`` is ``done``, ``failed`` or ``not_run``; ``error`` is the
        one-line error (empty when done).
        """
        done = set(self.finished)
        rows = []
        for s in self.specs:
            err = "" if s.name in done else self.errors.get(s.name, "not run")
            state = "done" if s.name in done else ("not_run" if err == "not run" else "failed")
            rows.append({"run": s.name, **dict(s.meta), "status": state, "error": err})
        return pd.DataFrame(rows)

    def line(self, study: str) -> str:
        """The study's closing line: ``<study>: N of M runs failed; tables from K runs``."""
        return StudyRunsFailed(study, self.failed, self.total, len(self.finished)).line()

    def finish(self, study: str) -> None:
        """Print the closing line, or raise :class:`StudyRunsFailed` if any run has no result.

        Call it after every table and figure is written; the exception's
        message is the closing line then.

        Args:
            study: The study's name (first word of the line).

        Raises:
            StudyRunsFailed: ``failed > 0``.
        """
        if self.failed:
            done = set(self.finished)
            raise StudyRunsFailed(study, self.failed, self.total, len(self.finished),
                                  {n: e for n, e in self.errors.items() if n not in done})
        print(self.line(study))


def _run_errors(root: Path, specs: Sequence[Any], expected: Mapping[str, Any],
                finished: set[str], report: Any) -> dict[str, str]:
    """One-line error of every spec without a result (this call's, else its ``failed.json``)."""
    from experiments.sweep import FAILED

    errors: dict[str, str] = {}
    for s in specs:
        if s.name in finished:
            continue
        if report is not None and s.name in report.failed:
            errors[s.name] = report.failed[s.name]
            continue
        rec = None
        try:
            rec = json.loads((root / s.name / FAILED).read_text())
        except (OSError, ValueError):
            pass
        same = (isinstance(rec, dict) and s.name in expected
                and (rec.get("provenance") or {}).get("config_sha256")
                == expected[s.name].get("config_sha256"))
        unresolved = isinstance(rec, dict) and s.name not in expected and "provenance" not in rec
        errors[s.name] = str(rec.get("error", "error")) if same or unresolved else "not run"
    return errors


def start_study(cfg: Any, specs: Sequence[Any]) -> StudyRuns:
    """Create the study's output directory, record its config and run (or resume) its sweep.

    A run is reused only if its ``done.json`` records the resolved run config
    and code fingerprints asked for (:func:`experiments.sweep.run_sweep`);
    with ``report_only`` nothing runs and only such runs count as finished.

    Args:
        cfg: Study config (``output_dir``, ``report_only``, ``workers``, ``progress``,
            and the executor keys ``executor`` / ``dask_address``,
            :func:`experiments.executor.executor_for`).
        specs: The runs (:class:`experiments.sweep.RunSpec`).

    Returns:
        The :class:`StudyRuns`; runs live in ``<output_dir>/runs``.

    Raises:
        experiments.sweep.SweepLocked: A live sweep runs on the same directory.
    """
    from experiments.executor import executor_for
    from experiments.sweep import DONE, expected_provenance, provenance_matches, run_sweep

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.yaml").write_text(OmegaConf.to_yaml(cfg))
    root = out / "runs"
    report = None
    if not cfg.report_only:
        report = run_sweep(specs, root, workers=int(cfg.workers), progress=bool(cfg.progress),
                           executor=executor_for(cfg))
        expected = report.expected
        finished = set(report.finished)
    else:
        expected = expected_provenance(specs)
        finished = set()
        for s in specs:
            try:
                rec = json.loads((root / s.name / DONE).read_text())
            except (OSError, ValueError):
                continue
            if provenance_matches(rec, expected.get(s.name)):
                finished.add(s.name)
    names = [s.name for s in specs if s.name in finished]
    return StudyRuns(out, list(specs), dict(expected), names,
                     _run_errors(root, specs, expected, finished, report), report)


def run_and_aggregate(cfg: Any, specs: Sequence[Any]) -> tuple[StudyRuns, pd.DataFrame]:
    """:func:`start_study`, then one row per run of the study config into ``aggregated.csv``.

    The table has a row for every spec of the current study config and for
    nothing else: ``run``, its meta, ``status`` (``done``, ``failed``,
    ``not_run``), ``error``, and the headline metrics
    (:func:`experiments.analysis.headline_metrics`) of finished runs whose
    provenance matches — NaN for the others, never zero. Leftover run
    directories of an earlier study in the same folder are not read.

    Returns:
        ``(runs, table)``; call ``runs.finish(study)`` once the tables are written.
    """
    from experiments.analysis import headline_metrics
    from experiments.sweep import collect

    runs = start_study(cfg, specs)
    agg = collect(runs.out / "runs", expected={n: runs.expected[n] for n in runs.finished})
    if agg.empty:
        agg = pd.DataFrame({"run": pd.Series([], dtype=object)})
    metrics = headline_metrics(agg)
    status = runs.status()
    extra = [c for c in metrics.columns if c == "run" or c not in status.columns]
    table = status.merge(metrics[extra], on="run", how="left")
    table.to_csv(runs.out / "aggregated.csv", index=False)
    return runs, table


@contextmanager
def study_exit() -> Iterator[None]:
    """Turn a study's outcome into its exit status, for the study's ``main()``.

    Inside the block, :class:`StudyRunsFailed` (tables written, some runs
    without a result) prints its line to stderr and exits with status 1;
    :class:`experiments.sweep.SweepLocked` (another live sweep on the same
    directory) prints its one-line error and exits with status 2.

    Yields:
        Nothing; wrap the call of the study's ``run_study``.
    """
    from experiments.sweep import SweepLocked

    try:
        yield
    except StudyRunsFailed as exc:
        print(exc.line(), file=sys.stderr)
        raise SystemExit(1) from None
    except SweepLocked as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(2) from None


def _plain(o: Any) -> Any:
    """JSON fallback for NumPy scalars and other leaves (their Python value, else the text)."""
    return o.item() if hasattr(o, "item") else str(o)


class RowCheckpoint:
    """Finished result rows of an in-process study, one JSON line each, for resuming.

    Studies that keep their runs in memory (no run directories) append each
    finished row to ``path`` at once (flushed and synced); a study started
    again with the same ``config`` and the same code takes the rows found
    there instead of re-running them. Rows written under another config or by
    other code (a hash of the config and
    :func:`sim.output.provenance.code_fingerprint` is stored with every line) are
    ignored, and a line cut short by an interruption is
    skipped. Floats round-trip exactly through JSON, so a resumed study writes
    the same tables as an uninterrupted one.

    Args:
        path: The checkpoint file (created on the first row).
        config: Everything the rows depend on (hashed as sorted JSON).
    """

    def __init__(self, path: str | Path, config: Any) -> None:
        self.path = Path(path)
        from sim.output.provenance import code_fingerprint

        text = json.dumps({"config": config, "code": code_fingerprint()}, sort_keys=True,
                          default=_plain)
        self.tag = hashlib.sha256(text.encode()).hexdigest()[:16]
        self.rows: dict[str, Any] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and rec.get("tag") == self.tag:
                    self.rows[rec["key"]] = rec["row"]

    @staticmethod
    def _key(key: Any) -> str:
        return json.dumps(key, sort_keys=True, default=_plain)

    def get(self, key: Any) -> Any:
        """The row stored under ``key``, or None."""
        return self.rows.get(self._key(key))

    def add(self, key: Any, row: Any) -> Any:
        """Store ``row`` under ``key`` (appended and synced to disk); return it as stored."""
        k = self._key(key)
        stored = json.loads(json.dumps(row, default=_plain))
        self.rows[k] = stored
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"tag": self.tag, "key": k, "row": stored}, default=_plain) + "\n"
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a line cut short: start on a fresh one
                    line = "\n" + line
        with self.path.open("a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        return stored
