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
import pandas as pd  # noqa: E402

__all__ = ["OKABE_ITO", "market_figure"]

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
