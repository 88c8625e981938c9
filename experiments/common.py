"""Helpers shared by the study scripts: config loading and figure styling.

A study's parameters live in ``conf/experiment/<study>.yaml`` and are loaded
with OmegaConf (not composed into the run config); ``key=value`` arguments on
the command line override them (values parsed as YAML, so
``regimes=[cross,portfolio]`` and ``scenarios={calm: []}`` replace the
configured values). Figures reuse ``sim.figures``
(Okabe–Ito palette, ``save`` → PNG + vector PDF).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

__all__ = ["CONF_DIR", "RowCheckpoint", "load_study_config", "run_and_aggregate", "start_study"]

CONF_DIR = Path(__file__).resolve().parents[1] / "conf" / "experiment"


def _study_yaml(path: Path) -> dict[str, Any]:
    """A study's YAML as plain containers (parsed once per file version; a fresh copy)."""
    stat = path.stat()
    return copy.deepcopy(_parse_yaml(str(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=32)
def _parse_yaml(path: str, _mtime_ns: int, _size: int) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(path))  # type: ignore[return-value]


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
        experiments.study_args.StudyArgError: One line (a ``ValueError``): an
            argument without ``=``, a key the study does not have, a value that
            is not YAML, or an interpolation (``${...}``).
    """
    from experiments.study_args import StudyArgError

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
        except Exception as exc:  # the YAML parser raises several types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StudyArgError(f"{key} = {text!r} is invalid: not a YAML value ({first})"
                                ) from None
        if "${" in json.dumps(value, default=str):
            raise StudyArgError(f"{key} = {text!r} is invalid: interpolations (${{...}}) are "
                                f"not supported in study arguments; give the value")
        try:
            # replace, not merge: scenarios={calm: []} drops the configured scenarios
            OmegaConf.update(base, key, value, merge=False)
        except Exception as exc:  # OmegaConf raises several types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StudyArgError(f"{key} = {text!r} is invalid: {first}") from None
    return base


def start_study(cfg: Any, specs: Sequence[Any]) -> Path:
    """Create the study's output directory, record its config and run (or resume) its sweep.

    Args:
        cfg: Study config (``output_dir``, ``report_only``, ``workers``, ``progress``).
        specs: The runs (:class:`experiments.sweep.RunSpec`).

    Returns:
        The output directory; runs live in ``<output_dir>/runs``.
    """
    from experiments.sweep import run_sweep

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.yaml").write_text(OmegaConf.to_yaml(cfg))
    if not cfg.report_only:
        run_sweep(specs, out / "runs", workers=int(cfg.workers), progress=bool(cfg.progress))
    return out


def run_and_aggregate(cfg: Any, specs: Sequence[Any]) -> tuple[Path, pd.DataFrame]:
    """:func:`start_study`, then the finished runs' headline metrics into ``aggregated.csv``.

    Raises:
        RuntimeError: No run finished (see the runs' ``failed.json``).
    """
    from experiments.analysis import headline_metrics
    from experiments.sweep import collect

    out = start_study(cfg, specs)
    agg = collect(out / "runs", names=[s.name for s in specs])
    if agg.empty:
        raise RuntimeError(f"no finished runs in {out / 'runs'}; see the failed.json files")
    table = headline_metrics(agg)
    table.to_csv(out / "aggregated.csv", index=False)
    return out, table


def _plain(o: Any) -> Any:
    """JSON fallback for NumPy scalars and other leaves (their Python value, else the text)."""
    return o.item() if hasattr(o, "item") else str(o)


class RowCheckpoint:
    """Finished result rows of an in-process study, one JSON line each, for resuming.

    Studies that keep their runs in memory (no run directories) append each
    finished row to ``path`` at once (flushed and synced); a study started
    again with the same ``config`` takes the rows found there instead of
    re-running them. Rows written under another config (its hash is stored
    with every line) are ignored, and a line cut short by an interruption is
    skipped. Floats round-trip exactly through JSON, so a resumed study writes
    the same tables as an uninterrupted one.

    Args:
        path: The checkpoint file (created on the first row).
        config: Everything the rows depend on (hashed as sorted JSON).
    """

    def __init__(self, path: str | Path, config: Any) -> None:
        self.path = Path(path)
        text = json.dumps(config, sort_keys=True, default=_plain)
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
