"""Benchmark of per-account VaR/ES: tiled numba kernel vs plain numpy vs a Python loop.

One seeded random book (default 100,000 accounts × 20 linear instruments, each
on its own underlying) is revalued under one correlated Monte-Carlo set
(default 1,000 joint scenarios from a one-factor correlation, one-day horizon,
:func:`margin.scenarios.correlated_scenarios`). Three ways compute every
account's 99 % VaR and ES (k = ceil(0.01 × S) worst losses):

1. the tiled kernel :func:`margin.kernels.tail_risk_tiled`: per tile of
   accounts one BLAS product into a small buffer, then a size-k heap
   selection, never the full accounts × scenarios matrix;
2. plain numpy: the full product ``P = X @ U`` (accounts × scenarios) and
   ``np.partition`` along the scenarios;
3. a pure-Python loop over accounts (lists, ``sorted``), timed on a subset
   and scaled to the population.

All in this process, after a warm-up call that compiles (or cache-loads) the
kernel. The three must agree on the subset (kernel and numpy on every
account). Kernel and numpy run ``--repeats`` times; medians are compared (the
first numpy call in a fresh process is much slower: it faults in the
800 MB loss matrix). It prints seconds, the speed-ups numpy/kernel and
loop/kernel, and the thread
settings: the kernels are serial numba code; BLAS (OpenBLAS bundled with numpy
and with SciPy — numba's ``np.dot`` calls SciPy's) runs with the thread count
shown, settable with ``--blas-threads``. Running numba threads and BLAS threads
together on few cores oversubscribes them (measured 12–24× slower on 2 cores).

Run from the repository root::

    python -m experiments.bench.margin --accounts 100000 --instruments 20 --scenarios 1000
"""

from __future__ import annotations

import argparse
import ctypes
import math
import os
import re
import time

import numba
import numpy as np

from margin.kernels import DEFAULT_TILE_ROWS, tail_count, tail_risk_tiled
from margin.scenarios import correlated_scenarios

__all__ = ["blas_threads", "make_book", "main", "run_kernel", "run_numpy", "run_python"]


def _openblas_libs() -> list[tuple[str, ctypes.CDLL, str]]:
    """OpenBLAS libraries loaded in this process with their symbol prefix."""
    import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS, the one numba calls)

    try:
        maps = open("/proc/self/maps").read()  # noqa: SIM115
    except OSError:
        return []
    out = []
    for path in sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", maps))):
        lib = ctypes.CDLL(path)
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("", "64_"):
                if hasattr(lib, f"{prefix}get_num_threads{suffix}"):
                    out.append((os.path.basename(path), lib, f"{prefix}{{}}{suffix}"))
                    break
            else:
                continue
            break
    return out


def blas_threads(n: int | None = None) -> dict[str, int]:
    """Read (and optionally set) the thread count of every loaded OpenBLAS.

    Args:
        n: Threads to set, or None to only read.

    Returns:
        Library file name → thread count after the call.
    """
    counts = {}
    for name, lib, pattern in _openblas_libs():
        if n is not None:
            getattr(lib, pattern.format("set_num_threads"))(int(n))
        counts[name] = int(getattr(lib, pattern.format("get_num_threads"))())
    return counts


def make_book(n_accounts: int, n_instruments: int, n_scenarios: int, seed: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random book and the per-unit scenario losses of its instruments.

    Instruments are linear (perp-like), one per underlying, with prices
    log-uniform in [1, 100,000] and volatilities uniform in [0.4, 1.2]; the
    underlyings share one factor (correlations 0.3–0.9). Each account holds
    about a quarter of the instruments, long or short, with notionals
    log-normal around $10,000.

    Args:
        n_accounts: Accounts.
        n_instruments: Instruments (= underlyings).
        n_scenarios: Joint Monte-Carlo scenarios (one-day horizon).
        seed: Seed of the ``numpy.random.default_rng`` generator.

    Returns:
        ``(X, U)``: float64[n_accounts, n_instruments] positions and
        float64[n_instruments, n_scenarios] loss per unit of position.
    """
    rng = np.random.default_rng(seed)
    prices = np.exp(rng.uniform(0.0, math.log(1e5), n_instruments))
    vols = rng.uniform(0.4, 1.2, n_instruments)
    beta = rng.uniform(math.sqrt(0.3), math.sqrt(0.9), n_instruments)
    corr = np.outer(beta, beta)
    np.fill_diagonal(corr, 1.0)
    moves = correlated_scenarios((vols, corr), n_scenarios, horizon=1 / 365, rng=rng)
    held = rng.random((n_accounts, n_instruments)) < 0.25
    notional = np.exp(rng.normal(math.log(1e4), 1.0, (n_accounts, n_instruments)))
    sign = np.where(rng.random((n_accounts, n_instruments)) < 0.5, -1.0, 1.0)
    x = np.ascontiguousarray(np.where(held, sign * notional / prices, 0.0))
    u = np.ascontiguousarray(-(prices[:, None] * moves.T))
    return x, u


def run_kernel(x: np.ndarray, u: np.ndarray, k: int, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """VaR/ES by the tiled kernel."""
    return tail_risk_tiled(x, u, k, tile)


def run_numpy(x: np.ndarray, u: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """VaR/ES by a full matrix product and ``np.partition``."""
    losses = x @ u
    s = losses.shape[1]
    tail = np.partition(losses, s - k, axis=1)[:, s - k:]
    return tail.min(axis=1), tail.mean(axis=1)


def run_python(x: np.ndarray, u: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """VaR/ES by a pure-Python loop over accounts (lists and ``sorted``)."""
    scen = u.T.tolist()
    var, es = [], []
    for row in x.tolist():
        losses = sorted(sum(a * b for a, b in zip(row, col, strict=True)) for col in scen)
        tail = losses[-k:]
        var.append(tail[0])
        es.append(sum(tail) / k)
    return np.array(var), np.array(es)


def _timed(fn, repeats: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark and print the timings.

    Args:
        argv: Command-line arguments (defaults to ``sys.argv``).

    Returns:
        Seconds per method and the speed-up ratios.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--instruments", type=int, default=20)
    ap.add_argument("--scenarios", type=int, default=1000)
    ap.add_argument("--confidence", type=float, default=0.99)
    ap.add_argument("--tile", type=int, default=DEFAULT_TILE_ROWS)
    ap.add_argument("--subset", type=int, default=500, help="accounts in the Python loop")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--blas-threads", type=int, default=None, help="set OpenBLAS threads")
    args = ap.parse_args(argv)

    threads = blas_threads(args.blas_threads)
    print(f"threads: numba kernels serial (no parallel=True; NUMBA_NUM_THREADS="
          f"{numba.config.NUMBA_NUM_THREADS} unused); OpenBLAS {threads}; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; "
          f"cpus={os.cpu_count()}")
    x, u = make_book(args.accounts, args.instruments, args.scenarios, args.seed)
    k = tail_count(args.confidence, args.scenarios)
    print(f"book: {args.accounts:,} accounts x {args.instruments} instruments x "
          f"{args.scenarios:,} scenarios; VaR/ES at {args.confidence} (k={k}); tile {args.tile}")

    t0 = time.perf_counter()
    run_kernel(x[:1000], u, k, args.tile)
    print(f"warm-up (compile or cache load): {time.perf_counter() - t0:.2f} s")

    k_times, (kv, ke) = _timed(lambda: run_kernel(x, u, k, args.tile), args.repeats)
    n_times, (nv, ne) = _timed(lambda: run_numpy(x, u, k), args.repeats)
    sub = min(args.subset, args.accounts)
    p_times, (pv, pe) = _timed(lambda: run_python(x[:sub], u, k), 1)
    t_kernel, t_numpy = float(np.median(k_times)), float(np.median(n_times))
    t_python = p_times[0] * args.accounts / sub

    for name, (v, e) in (("numpy", (nv, ne)), ("python", (pv, pe))):
        np.testing.assert_allclose(kv[:sub], v[:sub], rtol=1e-9, atol=1e-9,
                                   err_msg=f"VaR vs {name}")
        np.testing.assert_allclose(ke[:sub], e[:sub], rtol=1e-9, atol=1e-9,
                                   err_msg=f"ES vs {name}")
    np.testing.assert_allclose(kv, nv, rtol=1e-9, atol=1e-9, err_msg="VaR vs numpy (all accounts)")
    assert np.all(ke >= kv - 1e-9), "ES below VaR"

    def _fmt(ts: list[float]) -> str:
        return f"median {np.median(ts):7.3f} s  (min {min(ts):.3f}, first {ts[0]:.3f}, n={len(ts)})"

    print(f"(1) tiled kernel (BLAS tiles + numba top-k): {_fmt(k_times)}")
    print(f"(2) plain numpy (X @ U + np.partition):      {_fmt(n_times)}")
    print(f"(3) Python loop, {sub} accounts scaled:      {t_python:8.3f} s  "
          f"({p_times[0]:.3f} s measured)")
    print(f"kernel speed-up (medians): {t_numpy / t_kernel:5.1f}x numpy (target >= 2.5x; "
          f"{n_times[0] / t_kernel:.1f}x numpy's first call), "
          f"{t_python / t_kernel:6.0f}x Python loop (target >= 100x); "
          f"all three agree on the subset")
    return {"kernel": t_kernel, "numpy": t_numpy, "python": t_python,
            "numpy_over_kernel": t_numpy / t_kernel, "python_over_kernel": t_python / t_kernel}


if __name__ == "__main__":
    main()
