"""Stylised facts of a run's returns, printed as a table.

Statistics after Cont (2001), "Empirical properties of asset returns: stylized
facts and statistical issues", Quantitative Finance 1:223–236, and the
Franke–Westerhoff (2012) moment set (contagion_and_peers.md §4): lag-1
autocorrelation of returns, excess kurtosis, autocorrelation of absolute
returns at several lags (volatility clustering), and the Hill estimator of the
tail index of |r| over the top 5 % of observations.

Usage::

    python -m experiments.stylised_facts outputs/<date>/<time>      # a run directory
    python -m experiments.stylised_facts --run steps=5000 seed=3    # run first, then report

It reads ``timeseries.parquet`` (never re-runs a finished simulation) and
reports every ``<instrument>.mid`` series and the fundamentals.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from experiments.stats import autocorrelation, hill_tail_index

__all__ = ["StylisedFacts", "autocorrelation", "hill_tail_index", "log_returns", "stylised_facts"]


@dataclass(frozen=True)
class StylisedFacts:
    """The statistics of one return series."""

    n: int
    acf1: float
    excess_kurtosis: float
    acf_abs_1: float
    acf_abs_5: float
    acf_abs_10: float
    acf_abs_25: float
    hill_alpha: float


def log_returns(prices: np.ndarray, aggregate: int = 1) -> np.ndarray:
    """Log returns over ``aggregate`` steps of a positive price series (NaNs dropped)."""
    p = np.asarray(prices, dtype=np.float64)
    p = p[np.isfinite(p) & (p > 0)][::aggregate]
    return np.diff(np.log(p))


def stylised_facts(prices: np.ndarray, aggregate: int = 1) -> StylisedFacts:
    """All statistics of :class:`StylisedFacts` for one price series."""
    r = log_returns(prices, aggregate)
    ar = np.abs(r)
    return StylisedFacts(
        n=len(r), acf1=autocorrelation(r, 1),
        excess_kurtosis=float(stats.kurtosis(r, fisher=True)) if len(r) > 3 else float("nan"),
        acf_abs_1=autocorrelation(ar, 1), acf_abs_5=autocorrelation(ar, 5),
        acf_abs_10=autocorrelation(ar, 10), acf_abs_25=autocorrelation(ar, 25),
        hill_alpha=hill_tail_index(r))


def facts_table(timeseries: pd.DataFrame, aggregate: int = 1) -> pd.DataFrame:
    """Stylised facts of every mid and fundamental series of a run's time series."""
    cols = [c for c in timeseries.columns if c.endswith(".mid") or c.endswith(".fundamental")]
    rows = {c: asdict(stylised_facts(timeseries[c].to_numpy(), aggregate)) for c in cols}
    return pd.DataFrame(rows).T


def main(argv: list[str] | None = None) -> None:
    """Print the table for a run directory, or run first with ``--run overrides...``.

    Arguments are checked first (``SCHEMAS["stylised_facts"]`` in
    :mod:`experiments.study_args`): a bad one stops with one line on stderr and
    exit status 2 before any run.
    """
    from experiments.study_args import ArgParser, study_options, yaml_value

    ap = ArgParser("stylised_facts", description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", nargs="?", help="a run's output directory")
    ap.add_argument("--run", nargs="*", metavar="OVERRIDE", help="run the model first")
    ap.add_argument("--aggregate", type=yaml_value, default=1, help="steps per return")
    args = ap.parse_args(argv)
    study_options("stylised_facts", {"run_dir": args.run_dir, "--run": args.run,
                                     "--aggregate": args.aggregate})
    if args.run is not None:
        import sim

        run_dir = sim.run(args.run, progress=True).out_dir
    else:
        run_dir = Path(args.run_dir)
    path = Path(run_dir) / "timeseries.parquet"
    if not path.is_file():
        print(f"stylised_facts: no timeseries.parquet in {run_dir}", file=sys.stderr)
        raise SystemExit(2)
    table = facts_table(pd.read_parquet(path), args.aggregate)
    with pd.option_context("display.width", 200, "display.max_columns", None,
                           "display.float_format", "{:.3f}".format):
        print(table)


if __name__ == "__main__":
    main()
