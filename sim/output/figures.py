"""Per-run figures drawn from a run's time series (never by re-running).

One consistent style: colour-blind-safe Okabe–Ito palette, units on axes,
PNG for quick looks and PDF for papers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["OKABE_ITO", "collateral_graph_figure", "contagion_matrix_figure", "depth_figure",
           "liquidation_figure", "margin_figure", "market_figure", "save"]

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
        insts = [i for i in model.instruments
                 if model.asset_names[i.base] == asset and not i.is_option]
        ax = axes[0, c]
        ax.plot(step, ts[f"{asset}.fundamental"], color=OKABE_ITO[0], lw=1.2, label="fundamental")
        for k, inst in enumerate(insts):
            ax.plot(step, ts[f"{inst.name}.mid"], color=OKABE_ITO[(k + 1) % 8], lw=0.8,
                    label=f"{inst.name} mid")
        ax.set_title(asset)
        ax.set_ylabel(f"price ({model.asset_names[0]})")
        ax.legend(fontsize=7, loc="upper left")
        ax = axes[1, c]
        for k, inst in enumerate(insts):
            ax.plot(step, ts[f"{inst.name}.spread_bps"].rolling(30, min_periods=1).mean(),
                    color=OKABE_ITO[(k + 1) % 8], lw=0.9, label=inst.name)
        ax.set_ylabel("quoted spread, 30-step mean (bps)")
        ax.legend(fontsize=7, loc="upper left")
        ax = axes[2, c]
        for k, inst in enumerate(insts):
            ax.plot(step, ts[f"{inst.name}.notional"].rolling(10, min_periods=1).sum(),
                    color=OKABE_ITO[(k + 1) % 8], lw=0.8, label=inst.name)
        ax.set_ylabel(f"volume, 10-step sum ({model.asset_names[0]})")
        ax.set_xlabel("step")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    files = {
        "figure_market_png": out_dir / "market.png",
        "figure_market_pdf": out_dir / "market.pdf",
    }
    fig.savefig(files["figure_market_png"], dpi=120)
    fig.savefig(files["figure_market_pdf"], metadata={"CreationDate": None, "Producer": None})
    plt.close(fig)
    return files


def save(fig: Any, out_dir: Path, name: str) -> dict[str, Path]:
    """Write ``name.png`` and ``name.pdf`` (no timestamps in the PDF) and close the figure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        f"figure_{name}_png": out_dir / f"{name}.png",
        f"figure_{name}_pdf": out_dir / f"{name}.pdf",
    }
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
        for k, (col, label) in enumerate(
            (
                ("equity", "equity"),
                ("initial_margin", "initial margin"),
                ("maintenance_margin", "maintenance margin"),
            )
        ):
            ax.plot(
                ts["step"], ts[f"{name}.{col}"] / 1e6, color=OKABE_ITO[k + 1], lw=1.0, label=label
            )
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

    insts = [i for i in model.instruments if not i.is_option]  # options: options_figure
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
    kinds = ["liquidator", "backstop", "insurance", "adl", "socialised", "bad_debt",
             "universal_cover", "option_close", "option_takeover"]
    colours = {k: OKABE_ITO[1 + i % 7] for i, k in enumerate(kinds)}
    priced = kinds[:7]  # option events carry option prices: only in the bars below
    quote = model.asset_names[0]
    if len(events):
        base = np.array([i.base for i in model.instruments])
        inst = events["instrument"].to_numpy()
        events = events.assign(underlying=np.where(inst >= 0, base[np.maximum(inst, 0)],
                                                   events["asset"].to_numpy()))
    for c, asset in enumerate(assets):
        a_idx = c + 1  # asset index in the world (the quote asset is 0)
        ax = axes[0, c]
        ax.plot(
            ts["step"], ts[f"{asset}.fundamental"], color=OKABE_ITO[0], lw=1.0, label="fundamental"
        )
        perps = [i for i in model.instruments if model.asset_names[i.base] == asset and i.is_perp]
        for inst in perps:
            ax.plot(ts["step"], ts[f"{inst.name}.mid"], color=OKABE_ITO[5], lw=0.8,
                    label=f"{inst.name} mid")
        sel = events[events["underlying"] == a_idx] if len(events) else events
        for kind in priced:
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


def options_figure(ts: pd.DataFrame, model: Any, out_dir: Path) -> dict[str, Path]:
    """Options per protocol and underlying: index with expiries, implied vol, dealer Greeks, OI.

    Rows: the index with the steps at which contracts settled; the surface's
    30-day ATM implied vol and skew; the dealers' net delta (options plus
    perpetual hedges) and gamma; option open interest and traded volume. A
    short-gamma dealer book (negative gamma) that sells the perpetual as the
    index falls is the gamma-squeeze channel.

    Args:
        ts: The run's time series.
        model: The finished model (its option market and names).
        out_dir: Where to write ``options.png`` / ``.pdf``.
    """
    keys = list(dict.fromkeys(model.options.chain.group_key))
    fig, axes = plt.subplots(4, len(keys), figsize=(5.5 * len(keys), 10), sharex=True,
                             squeeze=False)
    step = ts["step"]
    events = pd.DataFrame(model.option_events_table())
    for c, (p, a) in enumerate(keys):
        asset = model.asset_names[a]
        col = f"{model.protocols[p].name}.{asset}.opt_"
        ax = axes[0, c]
        ax.plot(step, ts[f"{asset}.index"], color=OKABE_ITO[0], lw=1.0, label="index")
        if len(events):
            done = events[(events["kind"] == "settle") & (events["protocol"] == p)]
            for s in sorted(set(done["step"][done["contract"].str.contains(f":{asset}-")])):
                ax.axvline(s, color=OKABE_ITO[6], lw=0.6, ls=":")
        ax.set_title(f"{model.protocols[p].name} {asset} options (dotted: expiries)")
        ax.set_ylabel(f"index ({model.asset_names[0]})")
        ax = axes[1, c]
        ax.plot(step, ts[col + "atm_iv_30d"], color=OKABE_ITO[5], lw=1.0, label="30-day ATM IV")
        ax.set_ylabel("implied vol")
        ax2 = ax.twinx()
        ax2.plot(step, ts[col + "skew"], color=OKABE_ITO[1], lw=0.9, label="skew")
        ax2.set_ylabel("skew (per std. moneyness)")
        ax.legend(fontsize=7, loc="upper left")
        ax2.legend(fontsize=7, loc="upper right")
        ax = axes[2, c]
        ax.plot(step, ts[col + "dealer_delta"], color=OKABE_ITO[3], lw=0.9,
                label=f"dealer delta ({asset})")
        ax.set_ylabel(f"dealer delta ({asset})")
        ax2 = ax.twinx()
        ax2.plot(step, ts[col + "dealer_gamma"], color=OKABE_ITO[6], lw=0.9,
                 label="dealer gamma")
        ax2.set_ylabel(f"dealer gamma ({asset} per {model.asset_names[0]})")
        ax.legend(fontsize=7, loc="upper left")
        ax2.legend(fontsize=7, loc="upper right")
        ax = axes[3, c]
        ax.plot(step, ts[col + "open_interest"], color=OKABE_ITO[2], lw=1.0, label="open interest")
        ax.fill_between(step, ts[col + "volume"].rolling(10, min_periods=1).sum(), step="mid",
                        color=OKABE_ITO[7], alpha=0.6, lw=0, label="volume, 10-step sum")
        ax.set_ylabel(f"contracts ({asset})")
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    return save(fig, out_dir, "options")


# --------------------------------------------------------------------------- contagion figures

def _distress_cmap() -> Any:
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("distress", ["#FFFFFF", OKABE_ITO[1], OKABE_ITO[6]])


def _node_distress(G: Any, distress: Any) -> dict[Any, float]:
    """Per-node distress in [0, 1] from a mapping, or a sequence in node / protocol order."""
    if distress is None:
        return {}
    if isinstance(distress, dict) or hasattr(distress, "items"):
        vals = {n: float(v) for n, v in distress.items()}
        unknown = [n for n in vals if n not in G]
        if unknown:
            raise ValueError(f"distress: unknown node {unknown[0]!r}")
    else:
        arr = np.asarray(distress, dtype=np.float64).ravel()
        nodes = list(G.nodes)
        protos = [n for n in nodes if G.nodes[n].get("kind", "protocol") == "protocol"]
        if len(arr) == len(nodes):
            vals = dict(zip(nodes, arr.tolist(), strict=True))
        elif len(arr) == len(protos):
            vals = dict(zip(protos, arr.tolist(), strict=True))
        else:
            raise ValueError(f"distress has {len(arr)} values for {len(nodes)} nodes "
                             f"({len(protos)} protocols)")
    for n, v in vals.items():
        if not np.isfinite(v) or not 0.0 <= v <= 1.0:
            raise ValueError(f"distress of {n!r} must be in [0, 1], got {v!r}")
    return vals


def collateral_graph_figure(G: Any, distress: Any = None, out_dir: str | Path | None = None,
                            name: str = "collateral_graph", seed: int = 7,
                            unit: str = "USD") -> dict[str, Path]:
    """Draw a collateral graph (:mod:`sim.network`) or a protocol exposure network.

    Deterministic layout: a shell layout (protocols inside, assets on the outer
    ring) when the graph has asset nodes, else ``networkx.spring_layout`` with
    a fixed seed. Protocol
    nodes are circles sized by ``value_locked`` (or, for generated exposure
    networks without it, by total exposure in and out); asset nodes are small
    squares. Colour is the per-node distress in [0, 1] (0 white, 1 vermillion;
    grey where none is given), e.g. a DebtRank ``h`` vector or 1 for protocols
    with bad debt in a run's ``contagion`` summary. Edges carrying an
    ``exposure`` (``accepts`` / ``exposure`` relations) have width proportional
    to it; other relations (``issues``, ``lists``) are thin dashed grey lines.
    Reads data only; never runs a simulation.

    Args:
        G: The graph (nodes without ``kind`` count as protocols).
        distress: None, a mapping node -> value, or a sequence in node order
            (or protocol-node order).
        out_dir: Directory for ``name.png`` / ``name.pdf`` (required).
        name: File stem.
        seed: Layout seed.
        unit: Unit of value locked / exposure for the caption.

    Returns:
        Mapping of figure names to the files written (see :func:`save`).
    """
    import networkx as nx

    if out_dir is None:
        raise ValueError("out_dir must be given")
    vals = _node_distress(G, distress)
    nodes = list(G.nodes)
    kind = {n: G.nodes[n].get("kind", "protocol") for n in nodes}
    protos = [n for n in nodes if kind[n] == "protocol"]
    assets = [n for n in nodes if kind[n] != "protocol"]

    def size_value(n: Any) -> float:
        d = G.nodes[n]
        if "value_locked" in d and float(d["value_locked"]) > 0:
            return float(d["value_locked"])
        tot = 0.0
        for _, _, e in G.out_edges(n, data=True):
            tot += float(e.get("exposure", 0.0))
        for _, _, e in G.in_edges(n, data=True):
            tot += float(e.get("exposure", 0.0))
        return tot

    sv = np.array([size_value(n) for n in protos], dtype=np.float64)
    smax = sv.max(initial=0.0)
    psize = 200 + 1300 * (sv / smax) if smax > 0 else np.full(len(protos), 500.0)
    if protos and assets:  # collateral graph: protocols inside, assets on an outer ring
        pos = nx.shell_layout(G, nlist=[protos, assets], rotate=0.0)
    elif len(G):
        pos = nx.spring_layout(G, seed=seed, weight=None, k=1.5 / np.sqrt(len(G)))
    else:
        pos = {}
    cmap = _distress_cmap()
    fig, ax = plt.subplots(figsize=(7.5, 6.0))
    weighted = [(u, v) for u, v, d in G.edges(data=True) if float(d.get("exposure", 0.0)) > 0]
    other = [(u, v) for u, v, d in G.edges(data=True) if float(d.get("exposure", 0.0)) <= 0]
    x = np.array([float(G.edges[e]["exposure"]) for e in weighted])
    if weighted:
        widths = 0.5 + 5.0 * x / x.max()
        nx.draw_networkx_edges(G, pos, edgelist=weighted, width=widths.tolist(), ax=ax,
                               edge_color=OKABE_ITO[5], alpha=0.7, arrows=True, arrowsize=10,
                               node_size=psize.mean() if len(psize) else 300,
                               connectionstyle="arc3,rad=0.08")
    if other:
        nx.draw_networkx_edges(G, pos, edgelist=other, width=0.6, style="dashed", ax=ax,
                               edge_color="#999999", arrows=True, arrowsize=8,
                               connectionstyle="arc3,rad=0.08")

    def colours(ns: list) -> list:
        return [cmap(vals[n]) if n in vals else "#BBBBBB" for n in ns]

    if protos:
        nx.draw_networkx_nodes(G, pos, nodelist=protos, node_size=psize.tolist(),
                               node_color=colours(protos), edgecolors=OKABE_ITO[0],
                               linewidths=1.0, ax=ax)
    if assets:
        nx.draw_networkx_nodes(G, pos, nodelist=assets, node_size=180, node_shape="s",
                               node_color=colours(assets), edgecolors=OKABE_ITO[0],
                               linewidths=0.8, ax=ax)
    nx.draw_networkx_labels(G, pos, font_size=7, ax=ax)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0.0, 1.0))
    sm.set_array([])
    fig.colorbar(sm, ax=ax, shrink=0.8,
                 label="distress (0 = none, 1 = default)" + ("" if vals else " — not given"))
    lines = [f"node size: value locked ({unit})" if any("value_locked" in G.nodes[n]
                                                        for n in protos)
             else f"node size: total exposure in + out ({unit})",
             f"edge width: exposure ({unit})"
             + (f", max {x.max():,.4g}" if weighted else ", none")]
    if assets:
        lines.append("circles: protocols, squares: assets; dashed: issues / lists")
    ax.set_title("collateral graph\n" + "\n".join(lines), fontsize=8)
    ax.axis("off")
    return save(fig, Path(out_dir), name)


def contagion_matrix_figure(matrix: Any, labels: Any = None, out_dir: str | Path | None = None,
                            name: str = "contagion_matrix", unit: str = "USD",
                            what: str = "bad debt") -> dict[str, Path]:
    """Heat-map of the loss at protocol ``j`` (column) given a shock at ``i`` (row).

    Args:
        matrix: ``M[i][j]`` (n x n), or the dict of
            :func:`sim.contagion.contagion_matrix` (its ``bad_debt`` matrix and
            ``protocols`` labels are used; pass ``what="liquidations"`` for the
            liquidation counts).
        labels: Protocol names (default from the dict, else ``p0 .. p{n-1}``).
        out_dir: Directory for ``name.png`` / ``name.pdf`` (required).
        name: File stem.
        unit: Unit of the cells (colour bar and title).
        what: Loss measure named in the title.

    Returns:
        Mapping of figure names to the files written.
    """
    if out_dir is None:
        raise ValueError("out_dir must be given")
    if isinstance(matrix, dict):
        key = "liquidations" if what == "liquidations" else "bad_debt"
        labels = list(matrix["protocols"]) if labels is None else labels
        if key == "liquidations" and unit == "USD":
            unit = "count"
        matrix = matrix[key]
    M = np.asarray(matrix, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"matrix must be square, got shape {M.shape}")
    n = M.shape[0]
    labels = [f"p{k}" for k in range(n)] if labels is None else [str(v) for v in labels]
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for a {n}x{n} matrix")
    fig, ax = plt.subplots(figsize=(1.2 * n + 3.0, 1.0 * n + 2.2))
    finite = M[np.isfinite(M)]
    vmax = float(np.abs(finite).max(initial=0.0)) or 1.0
    neg = finite.size and finite.min() < 0
    cmap = "RdBu_r" if neg else _distress_cmap()
    im = ax.imshow(M, cmap=cmap, vmin=-vmax if neg else 0.0, vmax=vmax, interpolation="nearest")
    for i in range(n):
        for j in range(n):
            v = M[i, j]
            txt = "–" if not np.isfinite(v) else (f"{v:,.0f}" if abs(v) >= 1e3 else f"{v:.3g}")
            dark = np.isfinite(v) and abs(v) > 0.6 * vmax
            ax.text(j, i, txt, ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    ax.set_xticks(range(n), labels)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("protocol j (where the loss lands)")
    ax.set_ylabel("protocol i (shocked)")
    ax.set_title(f"{what} at j given a shock at i ({unit})", fontsize=9)
    fig.colorbar(im, ax=ax, label=f"{what} ({unit})")
    return save(fig, Path(out_dir), name)
