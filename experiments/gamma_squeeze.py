"""Study: dealers' delta hedging of short gamma moving the perpetual book in a sell-off.

Each replicate runs the gamma-squeeze world (:func:`experiments.worlds.gamma_squeeze`)
twice with the same seed — common random numbers (Law & Kelton, *Simulation
Modeling and Analysis*, §11.2) — once with the dealers hedging and once with
their hedge band out of reach; the index path is identical, so every
difference in the perpetual book is the dealers' hedging. Per run, over the
sell-off window (its steps plus ten), on the chosen underlying's perpetual:

* ``basis_bps``: mean of (book mid / index − 1), in basis points;
* ``min_last_bps``: the lowest last trade against the index;
* ``perp_volume``: base units traded;
* ``dealer_hedge_volume``: base units the dealers (option market makers and
  dealers) traded in the perpetual;
* ``bid_depth_1pct``: mean resting bid notional within 1 % of the mid (USD);
* ``dealer_gamma``: the dealers' net gamma just before the sell-off (base
  units per USD; negative: short gamma).

Tables give the means and the paired difference hedged − unhedged with a
95 % paired-*t* interval (:func:`experiments.stats.paired_ci`); the figure
shows the first replicate's index and perpetual mid under both, the basis,
the dealers' perpetual position and gamma, and the bid depth.

Usage::

    python -m experiments.gamma_squeeze [--replicates 5] [--seed 1] [--asset BTC] [overrides ...]

Writes ``outputs/gamma_squeeze/<time>/``: ``runs/<hedged|unhedged>-rNN/`` (the
runs' outputs), ``gamma_squeeze.csv`` (one row per run; NaN for a failed run),
``tables/gamma_squeeze.{csv,md,tex}`` and ``figures/gamma_squeeze.{png,pdf}``. A
failed run is counted; the study then exits with status 1.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["METRICS", "comparison", "main", "run_metrics", "run_study"]

METRICS = ("basis_bps", "min_last_bps", "perp_volume", "dealer_hedge_volume", "bid_depth_1pct",
           "dealer_gamma")
"""Per-run outcomes (module docstring)."""

TAIL_STEPS = 10
"""Steps after the sell-off that the window still covers."""


def _dealer_rows(out_dir: Path) -> np.ndarray:
    acc = pd.read_parquet(out_dir / "accounts.parquet")
    return acc.loc[acc["agent"].str.startswith("OptionMarketMaker"), "account"].unique()


def run_metrics(out_dir: Path, asset: str, start: int, stop: int) -> dict[str, float]:
    """The outcomes of :data:`METRICS` of one finished run (module docstring).

    Args:
        out_dir: The run's output directory.
        asset: Underlying whose perpetual is measured.
        start: First step of the window.
        stop: Step after the window.
    """
    ts = pd.read_parquet(out_dir / "timeseries.parquet").set_index("step")
    perp = next(c[:-4] for c in ts.columns if c.endswith(f":{asset}-PERP.mid"))
    w = ts.loc[start:stop - 1]
    index = w[f"{asset}.index"]
    trades = pd.read_parquet(out_dir / "trades.parquet")
    dealers = _dealer_rows(out_dir)
    sel = ((trades["instrument"] == perp) & (trades["step"] >= start) & (trades["step"] < stop)
           & (trades["taker_account"].isin(dealers) | trades["maker_account"].isin(dealers)))
    gamma_col = f"{perp.split(':')[0]}.{asset}.opt_dealer_gamma"
    return {
        "basis_bps": float(((w[f"{perp}.mid"] / index - 1.0) * 1e4).mean()),
        "min_last_bps": float(((w[f"{perp}.last"] / index - 1.0) * 1e4).min()),
        "perp_volume": float(w[f"{perp}.volume"].sum()),
        "dealer_hedge_volume": float(trades.loc[sel, "qty"].sum()),
        "bid_depth_1pct": float(w[f"{perp}.depth_bid_1pct"].mean()),
        "dealer_gamma": float(ts.loc[start - 1, gamma_col]),
    }


def comparison(runs: pd.DataFrame) -> pd.DataFrame:
    """Means per arm and the paired difference hedged − unhedged with its 95 % interval.

    Args:
        runs: One row per run: ``replicate``, ``arm`` (hedged / unhedged) and :data:`METRICS`.
    """
    from experiments.stats import paired_ci

    wide = runs.pivot(index="replicate", columns="arm")
    rows = []
    for m in METRICS:
        h, u = wide[(m, "hedged")], wide[(m, "unhedged")]
        ci = paired_ci(h.to_numpy(), u.to_numpy())
        rows.append({"metric": m, "hedged": float(h.mean()), "unhedged": float(u.mean()),
                     "diff": ci["diff"], "ci_low": ci["ci_low"], "ci_high": ci["ci_high"],
                     "pairs": ci["n"], "runs_failed": int(h.isna().sum() + u.isna().sum())})
    return pd.DataFrame(rows)


def run_study(replicates: int, seed: int, asset: str, overrides: list[str], out: Path,
              progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Run every replicate under both arms; write the run table, tables and figure.

    Returns:
        ``(runs, comparison, failed)``.
    """
    import sim
    from experiments.analysis import write_table
    from experiments.stats import replicate_seeds
    from experiments.worlds import gamma_squeeze

    cfg = sim.load_config([*gamma_squeeze(), *overrides])
    start = int(cfg.scenario.params.start_step)
    stop = start + int(cfg.scenario.params.duration_steps) + TAIL_STEPS
    rows, failed = [], 0
    for k, s in enumerate(replicate_seeds(seed, replicates)):
        for arm, hedging in (("hedged", True), ("unhedged", False)):
            run_dir = out / "runs" / f"{arm}-r{k:02d}"
            row: dict[str, Any] = {"replicate": k, "seed": s, "arm": arm}
            try:
                sim.run([*gamma_squeeze(hedging, seed=s), *overrides, "output.figures=false",
                         "output.accounts_every=30", "progress=false"], out_dir=run_dir)
                row.update(run_metrics(run_dir, asset, start, stop))
            except Exception as exc:  # noqa: BLE001 - a failed run is counted, never a zero
                failed += 1
                row.update(dict.fromkeys(METRICS, np.nan), error=str(exc).splitlines()[0])
                print(f"gamma_squeeze: run {arm}-r{k:02d} failed: {row['error']}",
                      file=sys.stderr)
            rows.append(row)
            if progress:
                print(f"gamma_squeeze: {arm}-r{k:02d} done", file=sys.stderr)
    runs = pd.DataFrame(rows)
    runs.to_csv(out / "gamma_squeeze.csv", index=False)
    table = comparison(runs)
    write_table(table, out / "tables", "gamma_squeeze",
                caption=f"Dealers' hedging in a sell-off ({asset} perpetual): hedged - unhedged")
    if not np.isnan(runs.loc[runs["replicate"] == 0, "basis_bps"]).any():
        squeeze_figure(out / "runs" / "hedged-r00", out / "runs" / "unhedged-r00", asset,
                       start, stop, out / "figures")
    return runs, table, failed


def squeeze_figure(hedged: Path, unhedged: Path, asset: str, start: int, stop: int,
                   out_dir: Path) -> dict[str, Path]:
    """Index and perpetual mid, basis, dealers' perpetual position and gamma, bid depth.

    Args:
        hedged: Output directory of the hedged run.
        unhedged: Output directory of the unhedged run (same seed).
        asset: The underlying.
        start: First step of the sell-off window.
        stop: Step after the window.
        out_dir: Where ``gamma_squeeze.png`` / ``.pdf`` go.
    """
    import matplotlib.pyplot as plt

    from sim.output.figures import OKABE_ITO, save

    ts = {k: pd.read_parquet(d / "timeseries.parquet") for k, d in
          (("hedged", hedged), ("unhedged", unhedged))}
    perp = next(c[:-4] for c in ts["hedged"].columns if c.endswith(f":{asset}-PERP.mid"))
    proto = perp.split(":")[0]
    lo, hi = max(0, start - 40), stop + 40
    fig, axes = plt.subplots(4, 1, figsize=(9, 11), sharex=True)
    colour = {"hedged": OKABE_ITO[6], "unhedged": OKABE_ITO[5]}
    h = ts["hedged"].set_index("step").loc[lo:hi]
    axes[0].plot(h.index, h[f"{asset}.index"], color=OKABE_ITO[0], lw=1.2, label="index")
    for arm, frame in ts.items():
        f = frame.set_index("step").loc[lo:hi]
        axes[0].plot(f.index, f[f"{perp}.mid"], color=colour[arm], lw=0.9,
                     label=f"perpetual mid, dealers {arm}")
        axes[1].plot(f.index, (f[f"{perp}.mid"] / f[f"{asset}.index"] - 1.0) * 1e4,
                     color=colour[arm], lw=0.9, label=arm)
        axes[3].plot(f.index, f[f"{perp}.depth_bid_1pct"] / 1e3, color=colour[arm], lw=0.9,
                     label=arm)
    trades = pd.read_parquet(hedged / "trades.parquet")
    dealers = _dealer_rows(hedged)
    pt = trades[trades["instrument"] == perp]
    signed = (np.where(pt["taker_account"].isin(dealers), pt["taker_side"], 0)
              - np.where(pt["maker_account"].isin(dealers), pt["taker_side"], 0)) * pt["qty"]
    flow = pd.Series(signed.to_numpy(), index=pt["step"]).groupby(level=0).sum()
    pos = flow.reindex(range(int(h.index.min()), int(h.index.max()) + 1), fill_value=0.0)
    axes[2].plot(pos.index, pos.cumsum(), color=OKABE_ITO[3], lw=1.0,
                 label=f"dealers' perpetual trades since step {lo} ({asset})")
    ax2 = axes[2].twinx()
    ax2.plot(h.index, h[f"{proto}.{asset}.opt_dealer_gamma"], color=OKABE_ITO[1], lw=0.9,
             label="dealers' gamma (hedged run)")
    ax2.set_ylabel(f"gamma ({asset} per USD)")
    for ax in axes:
        ax.axvspan(start, stop, color="0.9", zorder=0)
    axes[0].set_ylabel("price (USD)")
    axes[0].set_title(f"Gamma squeeze: dealers short puts hedge a {asset} sell-off (shaded)")
    axes[1].set_ylabel("perpetual mid − index (bps)")
    axes[2].set_ylabel(f"cumulative ({asset})")
    axes[3].set_ylabel("bid depth within 1 % (k USD)")
    axes[3].set_xlabel("step")
    for ax in (axes[0], axes[1], axes[3]):
        ax.legend(fontsize=7)
    axes[2].legend(fontsize=7, loc="lower left")
    ax2.legend(fontsize=7, loc="lower right")
    return save(fig, out_dir, "gamma_squeeze")


def main(argv: list[str] | None = None) -> None:
    """Run the study and print the comparison table.

    Arguments are checked first (``SCHEMAS["gamma_squeeze"]`` in
    :mod:`experiments.study_args`, the overrides by composing the run config): a
    bad one stops with one line on stderr and exit status 2 before any run.
    """
    from experiments.study_args import ArgParser, study_options, yaml_value

    ap = ArgParser("gamma_squeeze", description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=yaml_value, default=5)
    ap.add_argument("--seed", type=yaml_value, default=1)
    ap.add_argument("--asset", type=yaml_value, default="BTC")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args(argv)
    study_options("gamma_squeeze", {"--replicates": args.replicates, "--seed": args.seed,
                                    "--asset": args.asset, "overrides": args.overrides})
    out = Path("outputs") / "gamma_squeeze" / datetime.now(UTC).strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)
    runs, table, failed = run_study(int(args.replicates), int(args.seed), str(args.asset),
                                    list(args.overrides), out)
    with pd.option_context("display.width", 200, "display.max_columns", None,
                           "display.float_format", "{:,.4g}".format):
        print(table)
    print(f"outputs in {out}")
    if failed:
        print(f"gamma_squeeze: {failed} of {len(runs)} runs failed; tables from "
              f"{len(runs) - failed}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
