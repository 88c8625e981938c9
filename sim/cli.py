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
ray) write ``done.json`` last into each job's directory and skip jobs that
have one, so a sweep rerun into the same ``hydra.sweep.dir`` resumes; a job
that fails records ``failed.json`` with a one-line error and the sweep goes on.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
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
from sim.runner import write_json_atomic

__all__ = ["main"]

register_configs()

_PROTOCOL_MARGIN_OVERRIDES: list[str] = []
"""``protocols.<i>.margin`` overrides taken from the command line by :func:`main`."""


def _fail(message: str) -> None:
    print(f"marginsim: config error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _summary_table(result) -> str:  # noqa: ANN001 - RunResult
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
                         f"({liq['liquidations']:.0f} by liquidators, {liq['backstops']:.0f} "
                         f"backstops), notional {liq['notional']:,.0f}, insolvency "
                         f"{liq['insolvency']:,.0f}, bad debt {liq['bad_debt_total']:,.0f} "
                         f"(at mark {liq['bad_debt_total_at_mark']:,.0f}), deepest cascade "
                         f"{liq['max_depth']:.0f} rounds")
    cons = s.get("conservation")
    if cons:
        worst = max((e["worst_ratio"] or 0.0 for g in ("assets", "perps")
                     for e in cons[g].values()), default=0.0)
        lines.append(f"ledger conserved: {cons['ok']} over {cons['steps_checked']} checks, worst "
                     f"imbalance {worst:.2g} of the round-off tolerance")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path="pkg://conf", config_name="config")
def _app(cfg: DictConfig) -> None:
    from sim.runner import execute

    # Hydra sets the root logger to INFO; Mesa logs every step at INFO
    logging.getLogger("MESA").setLevel(logging.WARNING)
    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    if multirun and (out_dir / "done.json").is_file():
        # resuming a sweep: this job finished before (its marker is written last)
        print(f"skipped (already done): {out_dir}")
        return
    try:
        apply_protocol_margin_overrides(cfg, _PROTOCOL_MARGIN_OVERRIDES)
        validate(cfg)
    except ConfigError as exc:
        if not multirun:
            _fail(str(exc))
        _record_failure(out_dir, f"config error: {exc}")
        return
    try:
        result = execute(cfg, out_dir)
    except Exception as exc:  # noqa: BLE001 - one failing job must not stop a sweep
        if not multirun:
            raise
        _record_failure(out_dir, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return
    if multirun:
        (out_dir / "failed.json").unlink(missing_ok=True)
        write_json_atomic(out_dir / "done.json", {"summary": str(result.files["summary"])})
    print(_summary_table(result))
    print(f"ran {cfg.steps} steps in {result.wall_seconds:.1f} s; outputs in {result.out_dir}")
    for key, path in result.files.items():
        print(f"  {key:<18} {path}")


def _record_failure(out_dir: Path, message: str) -> None:
    """Record a failed sweep job in ``failed.json`` and tell stderr; the sweep goes on."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "failed.json", {"error": message})
    print(f"marginsim: job failed ({out_dir}): {message}", file=sys.stderr)


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


def main() -> None:
    """Validate the overrides, take out per-protocol margin ones, then hand over to Hydra."""
    _prevalidate(sys.argv[1:])
    rest, margin = split_protocol_margin_overrides(sys.argv[1:])
    _PROTOCOL_MARGIN_OVERRIDES[:] = margin
    sys.argv[1:] = rest
    _app()
