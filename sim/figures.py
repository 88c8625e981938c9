"""Per-run figures drawn from a run's time series (never by re-running).

One consistent style: colour-blind-safe Okabe–Ito palette, units on axes,
PNG for quick looks and PDF for papers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

__all__ = ["OKABE_ITO", "depth_figure", "liquidation_figure", "margin_figure", "market_figure",
           "save"]

OKABE_ITO = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"]


def market_figure(ts: pd.DataFrame, model: Any, out_dir: Path) -> dict[str, Path]:
    """Price (fundamental, index, mids, marks), spread and volume per asset.

    Args:
        ts: The run's time series.
        model: The finished model (for instrument and asset names only).
        out_dir: Directory for ``market.png`` and ``market.pdf``.

    Returns:
        Mapping of figure names to the files written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    assets = model.asset_names[1:]
    fig, axes = plt.subplots(3, len(assets), figsize=(5.5 * len(assets), 8), sharex=True,
                             squeeze=False)
    step = ts["step"]
    for c, asset in enumerate(assets):
        insts = [i for i in model.instruments if model.asset_names[i.base] == asset]
        ax = axes[0, c]
        ax.plot(step, ts[f"{asset}.fundamental"], color=OKABE_ITO[0], lw=1.2, label="fundamental")
        for k, inst in enumerate(insts):
            ax.plot(step, ts[f"{inst.name}.mid"], color=OKABE_ITO[(k + 1) % 8], lw=0.8,
                    label=f"{inst.name} mid")
        ax.set_title(asset)
        ax.set_ylabel(f"price ({model.asset_names[0]})")
        ax.legend(fontsize=7, loc="best")
        ax = axes[1, c]
        for k, inst in enumerate(insts):
            ax.plot(step, ts[f"{inst.name}.spread_bps"].rolling(30, min_periods=1).mean(),
                    color=OKABE_ITO[(k + 1) % 8], lw=0.9, label=inst.name)
        ax.set_ylabel("quoted spread, 30-step mean (bps)")
        ax.legend(fontsize=7, loc="best")
        ax = axes[2, c]
        for k, inst in enumerate(insts):
            ax.plot(step, ts[f"{inst.name}.notional"].rolling(10, min_periods=1).sum(),
                    color=OKABE_ITO[(k + 1) % 8], lw=0.8, label=inst.name)
        ax.set_ylabel(f"volume, 10-step sum ({model.asset_names[0]})")
        ax.set_xlabel("step")
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    files = {"figure_market_png": out_dir / "market.png", "figure_market_pdf": out_dir / "market.pdf"}
    fig.savefig(files["figure_market_png"], dpi=120)
    fig.savefig(files["figure_market_pdf"], metadata={"CreationDate": None, "Producer": None})
    plt.close(fig)
    return files


def save(fig: Any, out_dir: Path, name: str) -> dict[str, Path]:
    """Write ``name.png`` and ``name.pdf`` (no timestamps in the PDF) and close the figure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {f"figure_{name}_png": out_dir / f"{name}.png", f"figure_{name}_pdf": out_dir / f"{name}.pdf"}
    fig.tight_layout()
    fig.savefig(files[f"figure_{name}_png"], dpi=120)
    fig.savefig(files[f"figure_{name}_pdf"], metadata={"CreationDate": None, "Producer": None})
    plt.close(fig)
    return files


def margin_figure(ts: pd.DataFrame, model: Any, out_dir: Path) -> dict[str, Path]:
    """Equity, initial and maintenance margin and gross notional per protocol over time."""
    protos = [p.name for p in model.protocols]
    fig, axes = plt.subplots(2, len(protos), figsize=(6 * len(protos), 6), sharex=True,
                             squeeze=False)
    quote = model.asset_names[0]
    for c, name in enumerate(protos):
        ax = axes[0, c]
        for k, (col, label) in enumerate((("equity", "equity"), ("initial_margin", "initial margin"),
                                          ("maintenance_margin", "maintenance margin"))):
            ax.plot(ts["step"], ts[f"{name}.{col}"] / 1e6, color=OKABE_ITO[k + 1], lw=1.0, label=label)
        ax.set_title(f"{name}: traders' equity and requirements")
        ax.set_yscale("log")
        ax.set_ylabel(f"million {quote} (log scale)")
        ax.legend(fontsize=7)
        ax = axes[1, c]
        ax.plot(ts["step"], ts[f"{name}.gross_notional"] / 1e6, color=OKABE_ITO[5], lw=1.0,
                label="gross perp notional")
        ax.set_ylabel(f"gross perp notional (million {quote})")
        ax.set_xlabel("step")
        twin = ax.twinx()
        twin.plot(ts["step"], ts[f"{name}.below_maintenance"], color=OKABE_ITO[6], lw=1.0,
                  label="accounts below maintenance")
        twin.set_ylabel("accounts below maintenance")
        lines = ax.get_legend_handles_labels()
        more = twin.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7)
    return save(fig, out_dir, "margin")


def depth_figure(ts: pd.DataFrame, model: Any, out_dir: Path) -> dict[str, Path]:
    """Heat-map of cumulative book depth by distance from the mid, per instrument."""
    from sim.model import DEPTH_BANDS

    insts = model.instruments
    fig, axes = plt.subplots(len(insts), 1, figsize=(10, 2.2 * len(insts)), sharex=True,
                             squeeze=False)
    labels = [f"-{b * 100:g}%" for b in DEPTH_BANDS[::-1]] + [f"+{b * 100:g}%" for b in DEPTH_BANDS]
    for r, inst in enumerate(insts):
        n = inst.name
        bid = [ts[f"{n}.depth_bid_{b * 100:g}pct"] for b in DEPTH_BANDS[::-1]]
        ask = [ts[f"{n}.depth_ask_{b * 100:g}pct"] for b in DEPTH_BANDS]
        grid = pd.concat([*bid, *ask], axis=1).to_numpy().T / 1e6
        ax = axes[r, 0]
        im = ax.imshow(grid, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest",
                       extent=(ts["step"].iloc[0], ts["step"].iloc[-1], -0.5, len(labels) - 0.5))
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
        ax.set_ylabel("from mid")
        ax.set_title(f"{n}: cumulative resting notional", fontsize=9)
        fig.colorbar(im, ax=ax, label=f"million {model.asset_names[0]}")
    axes[-1, 0].set_xlabel("step")
    return save(fig, out_dir, "depth")


def liquidation_figure(ts: pd.DataFrame, events: pd.DataFrame, model: Any,
                       out_dir: Path) -> dict[str, Path]:
    """Prices with liquidation markers, and liquidated notional by cascade round.

    Args:
        ts: The run's time series.
        events: The run's liquidation events (``liquidations.parquet``).
        model: The finished model (names only).
        out_dir: Where to write ``liquidations.png`` / ``.pdf``.
    """
    assets = model.asset_names[1:]
    fig, axes = plt.subplots(2, len(assets), figsize=(5.5 * len(assets), 6.5), squeeze=False)
    kinds = ["liquidator", "backstop", "insurance", "adl", "socialised", "bad_debt"]
    colours = dict(zip(kinds, OKABE_ITO[1:], strict=False))
    quote = model.asset_names[0]
    if len(events):
        base = np.array([i.base for i in model.instruments])
        inst = events["instrument"].to_numpy()
        events = events.assign(underlying=np.where(inst >= 0, base[np.maximum(inst, 0)],
                                                   events["asset"].to_numpy()))
    for c, asset in enumerate(assets):
        a_idx = c + 1  # asset index in the world (the quote asset is 0)
        ax = axes[0, c]
        ax.plot(ts["step"], ts[f"{asset}.fundamental"], color=OKABE_ITO[0], lw=1.0, label="fundamental")
        perps = [i for i in model.instruments if model.asset_names[i.base] == asset and i.is_perp]
        for inst in perps:
            ax.plot(ts["step"], ts[f"{inst.name}.mid"], color=OKABE_ITO[5], lw=0.8,
                    label=f"{inst.name} mid")
        sel = events[events["underlying"] == a_idx] if len(events) else events
        for kind in kinds:
            ev = sel[sel["kind"] == kind] if len(sel) else sel
            ev = ev[ev["instrument"] >= 0] if len(ev) else ev
            if len(ev):
                ax.scatter(ev["step"], ev["price"], s=12, color=colours[kind], marker="v",
                           label=f"{kind} ({len(ev)})", zorder=3)
        ax.set_title(f"{asset}: prices and liquidations")
        ax.set_ylabel(f"price ({quote})")
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    ax = axes[1, 0]
    if len(events):
        by_round = (events.assign(notional=events["notional"].abs())
                    .pivot_table(index="round", columns="kind", values="notional", aggfunc="sum",
                                 fill_value=0.0))
        bottom = None
        for kind in [k for k in kinds if k in by_round.columns]:
            ax.bar(by_round.index, by_round[kind] / 1e6, bottom=bottom, color=colours[kind],
                   label=kind)
            bottom = by_round[kind] / 1e6 if bottom is None else bottom + by_round[kind] / 1e6
        ax.set_xticks(by_round.index)
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no liquidations", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("liquidation round within a step (cascade depth)")
    ax.set_ylabel(f"liquidated notional (million {quote})")
    ax.set_title("liquidation volume by round")
    for extra in axes[1, 1:]:
        extra.axis("off")
    return save(fig, out_dir, "liquidations")
