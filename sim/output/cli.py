"""Command-line entry: ``python -m sim [overrides]`` (also the ``marginsim`` script).

A Hydra app whose primary config is ``conf/config.yaml`` shipped as the ``conf``
package (``pkg://conf``), layered on the structured schema ``base_run``. Before
Hydra starts, single-run overrides are composed and validated with the Compose
API, so a bad value exits with status 2 and a one-line message instead of a
traceback. Outputs go to Hydra's run directory
(``outputs/<date>/<time>/`` by default).

Per-protocol margin (``protocols.<i>.margin=<preset>`` or
``protocols.<i>.margin.<key>=<value>``, see
:func:`sim.config.apply_protocol_margin_overrides`) is taken out of the
arguments before Hydra parses them and applied to the composed config of every
job (a protocol's ``margin`` starts as ``None``, below which Hydra cannot set
keys); such overrides cannot be swept.

Sweeps (``-m``/``--multirun``, any Hydra launcher: basic, joblib, submitit,
ray) write ``done.json`` last into each job's directory, with the fingerprints
of the job's resolved config and of the code (:mod:`sim.output.provenance`); a sweep
rerun into the same ``hydra.sweep.dir`` skips a job only when both match, and
re-runs it otherwise (a job directory named by job number may hold another
job's run). A job that fails records ``failed.json`` with a one-line error and
the sweep goes on; :class:`SweepStatus` counts the jobs at the end, prints
``sweep: N done, M skipped, K failed`` and the command exits with status 1
when any failed.

Refused at the door (one line, exit status 2): a bad config value,
``--experimental-rerun`` (Hydra would unpickle the given file, which can run
arbitrary code) and an empty ``hydra.run.dir`` / ``hydra.sweep.dir`` (outputs
would land in the working directory). A run stopped by the world itself (its
prices left what the books can quote, :class:`sim.config.capacity.SimulationError`)
ends with one line and exit status 1.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from sim.config import (
    ConfigError,
    apply_protocol_margin_overrides,
    load_config,
    register_configs,
    split_protocol_margin_overrides,
    validate,
)
from sim.config.capacity import SimulationError
from sim.output.provenance import provenance_matches, provenance_record
from sim.output.runner import write_json_atomic

__all__ = ["SweepStatus", "main"]

register_configs()

_PROTOCOL_MARGIN_OVERRIDES: list[str] = []
"""``protocols.<i>.margin`` overrides taken from the command line by :func:`main`."""


def _fail(message: str, what: str = "config error", status: int = 2) -> None:
    print(f"marginsim: {what}: {message}", file=sys.stderr)
    raise SystemExit(status)


def _summary_table(result) -> str:
    s = result.summary
    lines = [f"{'instrument':<22}{'trades':>8}{'notional':>16}{'spread bps':>12}{'track bps':>11}"]
    for name, e in s["instruments"].items():
        spread = e["mean_spread_bps"] if e["mean_spread_bps"] is not None else float("nan")
        track = e["tracking_error_bps"] if e["tracking_error_bps"] is not None else float("nan")
        lines.append(f"{name:<22}{e['trades']:>8}{e['notional']:>16,.0f}{spread:>12.2f}{track:>11.2f}")
    for name, p in s["protocols"].items():
        lines.append(f"{name}: fees {p['fees_collected']:,.0f}, insurance fund: equity at mark "
                     f"{p['insurance_equity']:,.0f} (cash {p['insurance_cash']:,.0f}, positions "
                     f"{p['insurance_position_notional']:,.0f} notional), loss "
                     f"{p['insurance_loss']:,.0f}, total margin peak/trough "
                     f"{p['margin_peak_to_trough'] or float('nan'):.1f}")
        liq = s.get("liquidation", {}).get(name)
        if liq:
            lines.append(f"{name}: {liq['events']:.0f} liquidation events "
                         f"({liq['liquidations'] - liq['backstops']:.0f} closed by liquidators "
                         f"or in the book, {liq['backstops']:.0f} backstops), notional "
                         f"{liq['notional']:,.0f}, insolvency "
                         f"{liq['insolvency']:,.0f}, bad debt {liq['bad_debt_total']:,.0f} "
                         f"(at mark {liq['bad_debt_total_at_mark']:,.0f}), deepest cascade "
                         f"{liq['max_depth']:.0f} rounds")
            paths = liq.get("paths")
            if paths:
                lines.append(f"{name}: liquidated notional traded in the book "
                             f"{paths['traded']['notional']:,.0f}, backstopped "
                             f"{paths['backstopped']['notional']:,.0f}, ADL'd "
                             f"{paths['adl']['notional']:,.0f} (loss "
                             f"{paths['adl']['amount']:,.0f}), socialised "
                             f"{paths['socialised']['amount']:,.0f}, bad debt "
                             f"{paths['bad_debt']['amount']:,.0f}")
    cons = s.get("conservation")
    if cons:
        worst = max((e["worst_ratio"] or 0.0 for g in ("assets", "perps")
                     for e in cons[g].values()), default=0.0)
        lines.append(f"ledger conserved: {cons['ok']} over {cons['steps_checked']} checks, worst "
                     f"imbalance {worst:.2g} of the round-off tolerance")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path="pkg://conf", config_name="config")
def _app(cfg: DictConfig) -> None:
    from sim.output.runner import execute

    # Hydra sets the root logger to INFO; Mesa logs every step at INFO
    logging.getLogger("MESA").setLevel(logging.WARNING)
    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    status = SweepStatus.job_file(hc) if multirun else None
    try:
        apply_protocol_margin_overrides(cfg, _PROTOCOL_MARGIN_OVERRIDES)
        validate(cfg)
        provenance = provenance_record(cfg)
    except ConfigError as exc:
        if not multirun:
            _fail(str(exc))
        _record_failure(out_dir, f"config error: {exc}", status)
        return
    except Exception as exc:  # noqa: BLE001 - a config OmegaConf cannot even read
        if not multirun:
            _fail(f"{type(exc).__name__}: {_first_line(exc)}")
        _record_failure(out_dir, f"config error: {type(exc).__name__}: {_first_line(exc)}", status)
        return
    if multirun and _finished_as_asked(out_dir, provenance):
        # resuming a sweep: this job finished before with this config and code
        print(f"skipped (already done): {out_dir}")
        _write_status(status, "skipped", out_dir)
        return
    if multirun:
        (out_dir / "done.json").unlink(missing_ok=True)  # stale or absent: run it (again)
    try:
        result = execute(cfg, out_dir)
    except SimulationError as exc:
        if not multirun:
            _fail(str(exc), "run stopped", 1)
        _record_failure(out_dir, f"run stopped: {exc}", status)
        return
    except Exception as exc:
        if not multirun:
            raise
        _record_failure(out_dir, f"{type(exc).__name__}: {_first_line(exc)}", status)
        return
    if multirun:
        (out_dir / "failed.json").unlink(missing_ok=True)
        write_json_atomic(out_dir / "done.json", {"summary": str(result.files["summary"]),
                                                  **provenance})
        _write_status(status, "done", out_dir)
    print(_summary_table(result))
    print(f"ran {cfg.steps} steps in {result.wall_seconds:.1f} s; outputs in {result.out_dir}")
    for key, path in result.files.items():
        print(f"  {key:<18} {path}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""


def _finished_as_asked(out_dir: Path, provenance: dict[str, str]) -> bool:
    """``done.json`` exists and records this job's config and code fingerprints."""
    try:
        done = json.loads((out_dir / "done.json").read_text())
    except (OSError, ValueError):
        return False
    return provenance_matches(done, provenance)


def _record_failure(out_dir: Path, message: str, status: Path | None = None) -> None:
    """Record a failed sweep job in ``failed.json`` and tell stderr; the sweep goes on."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "done.json").unlink(missing_ok=True)
    write_json_atomic(out_dir / "failed.json", {"error": message})
    print(f"marginsim: job failed ({out_dir}): {message}", file=sys.stderr)
    _write_status(status, "failed", out_dir, message)


def _write_status(path: Path | None, status: str, out_dir: Path, error: str = "") -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"status": status, "dir": str(out_dir), "error": error})


class SweepStatus(Callback):
    """Hydra callback counting a sweep's jobs; the command's exit status says if any failed.

    Each job writes its outcome (``done``, ``skipped`` or ``failed``) to
    ``<sweep dir>/.status/<job number>.json``; at the start of a sweep the
    folder is emptied, at its end the outcomes are counted, the closing line
    ``sweep: N done, M skipped, K failed`` is printed and :func:`main` exits
    with status 1 when a job failed or never reported.
    """

    failed: int = 0
    missing: int = 0

    @staticmethod
    def job_file(hc: Any) -> Path:
        """Where a job of the running sweep writes its outcome."""
        return Path(str(hc.sweep.dir)) / ".status" / f"{int(hc.job.num)}.json"

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Forget the outcomes of an earlier sweep into the same directory."""
        import shutil

        shutil.rmtree(Path(str(config.hydra.sweep.dir)) / ".status", ignore_errors=True)
        SweepStatus.failed = SweepStatus.missing = 0

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Count the jobs' outcomes and print the closing line."""
        folder = Path(str(config.hydra.sweep.dir)) / ".status"
        counts = {"done": 0, "skipped": 0, "failed": 0}
        for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                counts[json.loads(f.read_text())["status"]] += 1
            except (OSError, ValueError, KeyError):
                counts["failed"] += 1
        SweepStatus.failed = counts["failed"]
        print(f"sweep: {counts['done']} done, {counts['skipped']} skipped, "
              f"{counts['failed']} failed ({config.hydra.sweep.dir})")


_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-path", "-cp",
                "--config-dir", "-cd", "--experimental-rerun"}


def _prevalidate(argv: list[str]) -> None:
    if any(a in ("-m", "--multirun", "-h", "--help", "--hydra-help", "-i", "--info",
                 "--shell-completion", "-sc") for a in argv):
        return
    overrides: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a in _VALUE_FLAGS:
            skip = True
        elif not a.startswith("-") and not a.lstrip("+~").startswith("hydra"):
            overrides.append(a)
    try:
        load_config(overrides)
    except ConfigError as exc:
        _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - never a traceback for bad input
        _fail(f"{type(exc).__name__}: {_first_line(exc)}")


def _refuse_unsafe(argv: list[str]) -> None:
    """Refuse arguments that would run code from a file or write into the working directory."""
    for a in argv:
        if a == "--experimental-rerun" or a.startswith("--experimental-rerun="):
            _fail("--experimental-rerun is not supported: it unpickles the given file, which "
                  "can run any code; rerun a job from its .hydra/overrides.yaml instead",
                  "argument error")
        key, _, value = a.lstrip("+").partition("=")
        if key in ("hydra.run.dir", "hydra.sweep.dir") and "=" in a \
                and value.strip().strip("'\"") in ("", ".", "./"):
            _fail(f"{key} = {value!r} is invalid: must name an output directory (empty would "
                  f"write the run's files into the working directory)", "argument error")


def main() -> None:
    """Validate the overrides, take out per-protocol margin ones, then hand over to Hydra.

    Exits with status 2 on bad input (before any work), 1 when a run stopped or
    a sweep had failed jobs.
    """
    _refuse_unsafe(sys.argv[1:])
    _prevalidate(sys.argv[1:])
    rest, margin = split_protocol_margin_overrides(sys.argv[1:])
    _PROTOCOL_MARGIN_OVERRIDES[:] = margin
    sys.argv[1:] = rest
    SweepStatus.failed = 0
    _app()
    if SweepStatus.failed:
        raise SystemExit(1)
