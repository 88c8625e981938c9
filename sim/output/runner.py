"""Running a model and writing its outputs; the Python API beside the CLI.

``run(overrides)`` composes the config exactly like ``python -m sim``, runs the
model and writes into one output directory:

* ``config.yaml`` — the resolved config;
* ``timeseries.parquet`` — model-level series from Mesa's DataCollector;
* ``trades.parquet`` — every fill;
* ``liquidations.parquet`` — every liquidation, backstop, ADL and bad-debt event;
* ``option_events.parquet`` — option listings and expiry settlements (worlds with options);
* ``accounts.parquet`` — per-account snapshots (``output.accounts_every`` > 0);
* ``summary.json`` — headline metrics (deterministic: no wall-clock values);
* ``figures/market.png`` (and ``.pdf``) — price, spread and volume.

Same config and seed give byte-identical Parquet and JSON files.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from sim.config import RunConfig, load_config, to_container, validate
from sim.model import MarketModel
from sim.output.metrics import summarize

__all__ = ["RunResult", "execute", "run", "write_json_atomic"]


@dataclass
class RunResult:
    """What a run produced.

    Attributes:
        summary: Headline metrics (also in ``summary.json``).
        timeseries: One row per step (also in ``timeseries.parquet``).
        trades: One row per fill (also in ``trades.parquet``).
        liquidations: One row per liquidation event (``liquidations.parquet``).
        out_dir: Directory holding the files.
        wall_seconds: Wall time of the simulation loop (not written to summary).
    """

    summary: dict[str, Any]
    timeseries: pd.DataFrame
    trades: pd.DataFrame
    out_dir: Path
    wall_seconds: float = 0.0
    files: dict[str, Path] = field(default_factory=dict)
    liquidations: pd.DataFrame = field(default_factory=pd.DataFrame)


def _default_out_dir(seed: int) -> Path:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d/%H-%M-%S-%f")
    return Path("outputs") / "api" / f"{stamp}-seed{seed}"


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    # no pandas index metadata: the files depend only on the data
    df.to_parquet(path, index=False, engine="pyarrow", compression="zstd")


def execute(cfg: Any, out_dir: str | Path, *, progress: bool | None = None) -> RunResult:
    """Run one validated config and write its outputs into ``out_dir``.

    Args:
        cfg: Run config (DictConfig or ``RunConfig``).
        out_dir: Output directory (created if needed).
        progress: Override ``cfg.progress`` for the progress bar.

    Returns:
        The :class:`RunResult`.
    """
    validate(cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(to_container(cfg))))
    show = cfg.progress if progress is None else progress
    start = time.perf_counter()
    model = MarketModel(cfg)
    for _ in tqdm(range(cfg.steps), desc="steps", unit="step", disable=not show, leave=False,
                  mininterval=0.5):
        model.step()
    wall = time.perf_counter() - start
    # the final conservation check: raises on a broken identity; what it (and, with
    # check_invariants, every step's check) measured goes into summary["conservation"]
    model.conservation.check(model.ledger, model.marks, step=model.steps)
    timeseries = model.datacollector.get_model_vars_dataframe().reset_index(drop=True)
    trades = pd.DataFrame(model.trades_table())
    summary = summarize(model, timeseries, trades)
    liquidations = pd.DataFrame(model.liquidation.events_table())
    summary["liquidation"] = model.liquidation.summary()
    if len(model.protocols) > 1 or model.tokens:
        from sim.contagion.tracker import contagion_summary

        summary["contagion"] = contagion_summary(model)
    files = {"config": out / "config.yaml", "timeseries": out / "timeseries.parquet",
             "trades": out / "trades.parquet", "liquidations": out / "liquidations.parquet",
             "summary": out / "summary.json"}
    _write_parquet(timeseries, files["timeseries"])
    _write_parquet(trades, files["trades"])
    _write_parquet(liquidations, files["liquidations"])
    for name, table in (("option_events", model.option_events_table()),
                        ("accounts", model.accounts_table())):
        if table:
            files[name] = out / f"{name}.parquet"
            _write_parquet(pd.DataFrame(table), files[name])
    files["summary"].write_text(json.dumps(summary, indent=2, sort_keys=True, default=_json_default)
                                + "\n")
    if cfg.output.figures:
        from sim.output.figures import (
            depth_figure,
            liquidation_figure,
            margin_figure,
            market_figure,
        )

        for draw in (market_figure, margin_figure, depth_figure):
            files.update(draw(timeseries, model, out / "figures"))
        files.update(liquidation_figure(timeseries, liquidations, model, out / "figures"))
        if model.options is not None:
            from sim.output.figures import options_figure

            files.update(options_figure(timeseries, model, out / "figures"))
    return RunResult(summary, timeseries, trades, out, wall, files, liquidations)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON via a temporary file and ``os.replace``: a kill leaves the old file or the new.

    Sweeps use it for their completion and failure markers.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _json_default(x: Any) -> Any:
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return None if np.isnan(x) else float(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def run(overrides: list[str] | DictConfig | RunConfig | None = None, *,
        out_dir: str | Path | None = None, progress: bool | None = False) -> RunResult:
    """Run the model from Hydra overrides or a config object.

    Args:
        overrides: ``["steps=200", "seed=7"]``-style overrides of the default
            config, or a complete config (DictConfig / ``RunConfig``).
        out_dir: Where to write; default ``outputs/api/<date>/<time>-seed<seed>``.
        progress: Show a progress bar (default off in the API).

    Returns:
        The :class:`RunResult` with ``.summary``, ``.timeseries``, ``.trades``
        and ``.out_dir``.

    Raises:
        sim.config.ConfigError: A bad override or value (one line).
    """
    if overrides is None or isinstance(overrides, list | tuple):
        cfg = load_config(list(overrides or []))
    elif isinstance(overrides, RunConfig):
        cfg = OmegaConf.structured(overrides)
    else:
        cfg = overrides
    return execute(cfg, out_dir or _default_out_dir(int(cfg.seed)), progress=progress)
