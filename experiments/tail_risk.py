"""Gauntlet-style tail metrics over repeated runs: VaR of insolvent debt, LaR of liquidations.

Gauntlet's market-risk methodology (contagion_and_peers.md §3.3) summarises many
simulated paths by two 95th percentiles: Value at Risk = insolvent debt
(losses beyond the liquidated accounts' collateral) and Liquidations at Risk =
liquidated volume (:func:`experiments.stats.tail_metrics`). Each replicate
runs the default world (:func:`experiments.worlds.default_crash`) plus the
given overrides with its own seed from
:func:`experiments.stats.replicate_seeds` (``SeedSequence.spawn``), so
replicates are independent and the whole study is reproducible from one seed.

Usage::

    python -m experiments.tail_risk --runs 20 [--seed 1] [overrides ...]
    python -m experiments.tail_risk --runs 20 scenario=flash_crash margin=portfolio

Writes ``tail_risk.csv`` (one row per replicate) and ``tail_risk.json`` (the
quantiles) into ``outputs/tail_risk/<time>/`` and prints them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from tqdm import tqdm

__all__ = ["run_replicates"]


def run_replicates(overrides: list[str], runs: int, base_seed: int, out_dir: Path,
                   progress: bool = True) -> pd.DataFrame:
    """Run ``runs`` replicates and return one row of outcomes per replicate.

    Args:
        overrides: Run-config overrides applied to the default world.
        runs: Replicates.
        base_seed: Seed of :func:`experiments.stats.replicate_seeds`.
        out_dir: Run ``k`` writes to ``out_dir/run-<k>``.
        progress: Show a progress bar.

    Returns:
        One row per replicate and protocol: insolvent debt, bad debt,
        liquidation volume, events and cascade depth.
    """
    import sim
    from experiments.stats import replicate_seeds
    from experiments.worlds import default_crash

    rows = []
    for k, seed in enumerate(tqdm(replicate_seeds(base_seed, runs), desc="replicates",
                                  disable=not progress)):
        res = sim.run([*default_crash(), *overrides, f"seed={seed}", "output.figures=false",
                       "progress=false"],
                      out_dir=out_dir / f"run-{k:03d}")
        for proto, liq in res.summary["liquidation"].items():
            rows.append({"replicate": k, "seed": seed, "protocol": proto,
                         "insolvent_debt": liq["insolvency"], "bad_debt": liq["bad_debt_total"],
                         "liquidation_volume": liq["notional"], "events": liq["events"],
                         "max_cascade_depth": liq["max_depth"]})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    """Run the replicates and print VaR and LaR per protocol.

    Arguments are checked first (``SCHEMAS["tail_risk"]`` in
    :mod:`experiments.study_args`, the overrides by composing the run config): a
    bad one stops with one line on stderr and exit status 2 before any run.
    """
    from experiments.stats import tail_metrics
    from experiments.study_args import ArgParser, study_options, yaml_value

    ap = ArgParser("tail_risk", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=yaml_value, default=20)
    ap.add_argument("--seed", type=yaml_value, default=1)
    ap.add_argument("--quantile", type=yaml_value, default=0.95)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args(argv)
    study_options("tail_risk", {"--runs": args.runs, "--seed": args.seed,
                                "--quantile": args.quantile, "overrides": args.overrides})
    out = Path("outputs") / "tail_risk" / datetime.now(UTC).strftime("%Y-%m-%d_%H-%M-%S")
    table = run_replicates(args.overrides, args.runs, args.seed, out)
    table.to_csv(out / "tail_risk.csv", index=False)
    result = {p: tail_metrics(g["insolvent_debt"], g["liquidation_volume"], args.quantile)
              for p, g in table.groupby("protocol")}
    (out / "tail_risk.json").write_text(json.dumps(result, indent=2) + "\n")
    for p, m in result.items():
        print(f"{p}: VaR({m['quantile']:.0%}) of insolvent debt {m['VaR']:,.0f}; "
              f"LaR({m['quantile']:.0%}) of liquidations {m['LaR']:,.0f} over {m['runs']} runs")
    print(f"outputs in {out}")


if __name__ == "__main__":
    main()
