"""Benchmark of per-account VaR/ES: parallel and serial numba kernels vs plain numpy vs Python.

One seeded random book (default 100,000 accounts × 20 linear instruments, each
on its own underlying; each account holds about a quarter of the instruments,
so about 5 of 20) is revalued under one correlated Monte-Carlo set (default
1,000 joint scenarios from a one-factor correlation, one-day horizon,
:func:`margin.methods.scenarios.correlated_scenarios`). Four ways compute every
account's 99 % VaR and ES (k = ceil(0.01 × S) worst losses):

1. the parallel kernel :func:`margin.methods.kernels.tail_risk_tiled_parallel`: a
   ``prange`` over tiles of accounts on all numba threads; per account a
   hand-written product over its non-zero exposures into a row buffer, then
   the screened exact top-k selection. It never calls BLAS;
2. the serial kernel :func:`margin.methods.kernels.tail_risk_tiled`: per tile of
   accounts one BLAS product into a small buffer, then the same selection in
   serial numba code;
3. plain numpy: the full product ``P = X @ U`` (accounts × scenarios) and
   ``np.partition`` along the scenarios, with numpy's default BLAS threads (the
   baseline of the targets), and again with BLAS pinned to one thread (a
   reference: on a busy shared machine two BLAS threads can be much slower);
4. a pure-Python loop over accounts (lists, ``sorted``), timed on a subset
   and scaled to the population.

Neither kernel materialises the accounts × scenarios matrix. All run in this
process, after a warm-up call that compiles (or cache-loads) the kernels.
Kernels and numpy are timed round-robin (one call of each per round,
``--repeats`` rounds, a short pause before every call so that idle BLAS/OpenMP
worker threads of the previous call have stopped spinning), and medians are
compared: the machine is shared, so single timings are noisy. The first numpy
call in a fresh process is much slower (it faults in the 800 MB loss matrix);
it is included in numpy's median only as one of the rounds.

Thread settings are printed for every timed region. The rule: never run numba
threads and BLAS threads at the same time on the same cores (measured 12–24×
slower on 2 cores). The parallel kernel runs ``--numba-threads`` numba threads
(default: all) and calls no BLAS; the serial kernel is serial numba code whose
``np.dot`` calls SciPy's OpenBLAS with ``--blas-threads`` threads (default: the
library default), restored afterwards; numpy uses its own OpenBLAS at its
default thread count.

The four must agree (rtol = atol = 1e-9) on the Python subset, and the
kernels with numpy on every account. A dense variant (the same instruments and
scenarios, every account holding all of them; the parallel kernel gains
nothing from sparsity there) is timed and checked the same way unless
``--no-dense``.

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

from margin.methods.kernels import (
    DEFAULT_PARALLEL_TILE_ROWS,
    DEFAULT_TILE_ROWS,
    tail_count,
    tail_risk_tiled,
    tail_risk_tiled_parallel,
)
from margin.methods.scenarios import correlated_scenarios

__all__ = ["blas_threads", "main", "make_book", "make_dense", "run_kernel", "run_numpy",
           "run_parallel", "run_python"]


def _openblas_libs() -> list[tuple[str, ctypes.CDLL, str]]:
    """OpenBLAS libraries loaded in this process with their symbol prefix."""
    import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS, the one numba calls)

    try:
        maps = open("/proc/self/maps").read()
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


def blas_threads(n: int | dict[str, int] | None = None) -> dict[str, int]:
    """Read (and optionally set) the thread count of every loaded OpenBLAS.

    Args:
        n: Threads to set in every library, a library file name → threads map
            (as returned, to restore), or None to only read.

    Returns:
        Library file name → thread count after the call.
    """
    counts = {}
    for name, lib, pattern in _openblas_libs():
        want = n.get(name) if isinstance(n, dict) else n
        if want is not None:
            getattr(lib, pattern.format("set_num_threads"))(int(want))
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


def make_dense(x: np.ndarray, seed: int) -> np.ndarray:
    """The dense variant of a book: every account holds every instrument.

    Held positions are kept; each missing one gets the notional of a held
    position of the same instrument in another account (drawn at random), with
    a random sign, so positions keep the book's per-instrument scale.

    Args:
        x: float64[n_accounts, n_instruments] positions (some zero).
        seed: Seed of the draws.

    Returns:
        float64[n_accounts, n_instruments] positions, none zero.
    """
    rng = np.random.default_rng(seed + 1)
    out = x.copy()
    for c in range(x.shape[1]):
        held = np.abs(x[x[:, c] != 0.0, c])
        if held.size == 0:
            held = np.ones(1)
        missing = out[:, c] == 0.0
        sign = np.where(rng.random(missing.sum()) < 0.5, -1.0, 1.0)
        out[missing, c] = sign * rng.choice(held, missing.sum())
    return np.ascontiguousarray(out)


def run_kernel(x: np.ndarray, u: np.ndarray, k: int, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """VaR/ES by the serial tiled kernel (BLAS tiles + serial numba selection)."""
    return tail_risk_tiled(x, u, k, tile)


def run_parallel(x: np.ndarray, u: np.ndarray, k: int, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """VaR/ES by the parallel kernel (numba ``prange`` over tiles, no BLAS)."""
    return tail_risk_tiled_parallel(x, u, k, tile)


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


def _round_robin(fns: dict, repeats: int, pause: float) -> tuple[dict, dict]:
    """Time each ``(setup, fn)`` once per round; ``setup`` sets the region's threads."""
    times = {name: [] for name in fns}
    outs = {}
    for _ in range(repeats):
        for name, (setup, fn) in fns.items():
            setup()
            time.sleep(pause)
            t0 = time.perf_counter()
            outs[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return times, outs


def _fmt(ts: list[float]) -> str:
    return f"median {np.median(ts):7.3f} s  (min {min(ts):.3f}, first {ts[0]:.3f}, n={len(ts)})"


def _agree(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], n: int | None,
           what: str) -> None:
    sl = slice(None) if n is None else slice(0, n)
    for i, measure in enumerate(("VaR", "ES")):
        np.testing.assert_allclose(a[i][sl], b[i][sl], rtol=1e-9, atol=1e-9,
                                   err_msg=f"{measure}: {what}")


def _time_book(x: np.ndarray, u: np.ndarray, k: int, args: argparse.Namespace,
               blas_default: dict[str, int], n_threads: int) -> tuple[dict, dict]:
    """Round-robin timings of the parallel kernel, the serial kernel and numpy on one book."""
    serial_blas = blas_default if args.blas_threads is None else args.blas_threads

    def par_setup() -> None:
        numba.set_num_threads(n_threads)

    def ser_setup() -> None:
        blas_threads(serial_blas)

    def np_setup() -> None:
        blas_threads(blas_default)

    def np1_setup() -> None:
        blas_threads(1)

    fns = {
        "parallel": (par_setup, lambda: run_parallel(x, u, k, args.parallel_tile)),
        "serial": (ser_setup, lambda: run_kernel(x, u, k, args.tile)),
        "numpy": (np_setup, lambda: run_numpy(x, u, k)),
        "numpy_1blas": (np1_setup, lambda: run_numpy(x, u, k)),
    }
    times, outs = _round_robin(fns, args.repeats, args.pause)
    blas_threads(blas_default)
    _agree(outs["parallel"], outs["numpy"], None, "parallel kernel vs numpy (all accounts)")
    _agree(outs["serial"], outs["numpy"], None, "serial kernel vs numpy (all accounts)")
    _agree(outs["numpy_1blas"], outs["numpy"], None, "numpy 1 vs default BLAS threads")
    assert np.all(outs["parallel"][1] >= outs["parallel"][0] - 1e-9), "ES below VaR"
    return times, outs


def _report(times: dict, t_python: float | None) -> dict[str, float]:
    t_par, t_ser, t_np, t_np1 = (float(np.median(times[n]))
                                 for n in ("parallel", "serial", "numpy", "numpy_1blas"))
    print(f"  (1) parallel kernel (numba prange, no BLAS):  {_fmt(times['parallel'])}")
    print(f"  (2) serial kernel (BLAS tiles + numba top-k): {_fmt(times['serial'])}")
    print(f"  (3) plain numpy (X @ U + np.partition):       {_fmt(times['numpy'])}")
    print(f"  (3') the same numpy, BLAS pinned to 1 thread:  {_fmt(times['numpy_1blas'])}")
    out = {"parallel": t_par, "serial": t_ser, "numpy": t_np, "numpy_1blas": t_np1,
           "numpy_over_parallel": t_np / t_par, "numpy_over_serial": t_np / t_ser,
           "numpy_1blas_over_parallel": t_np1 / t_par, "serial_over_parallel": t_ser / t_par}
    m_par, m_np, m_np1 = (min(times[n]) for n in ("parallel", "numpy", "numpy_1blas"))
    out["numpy_over_parallel_minima"] = m_np / m_par
    print(f"  speed-ups (medians): parallel {t_np / t_par:5.1f}x numpy (target >= 2.5x), "
          f"{t_np1 / t_par:.1f}x numpy on 1 BLAS thread; serial {t_np / t_ser:.1f}x numpy, "
          f"{t_np1 / t_ser:.1f}x numpy on 1 BLAS thread")
    line = (f"  ratios of minima: parallel {m_np / m_par:.1f}x numpy, {m_np1 / m_par:.1f}x numpy "
            f"on 1 BLAS thread; parallel {t_ser / t_par:.1f}x serial (medians)")
    if t_python is not None:
        out["python"] = t_python
        out["python_over_parallel"] = t_python / t_par
        out["python_over_serial"] = t_python / t_ser
        line += f", {t_python / t_par:.0f}x Python loop (target >= 100x)"
    print(line)
    return out


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark and print the timings.

    Args:
        argv: Command-line arguments (defaults to ``sys.argv``).

    Returns:
        Median seconds per method and the speed-up ratios (dense variant's with
        a ``dense_`` prefix).
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--instruments", type=int, default=20)
    ap.add_argument("--scenarios", type=int, default=1000)
    ap.add_argument("--confidence", type=float, default=0.99)
    ap.add_argument("--tile", type=int, default=DEFAULT_TILE_ROWS, help="serial kernel tile")
    ap.add_argument("--parallel-tile", type=int, default=DEFAULT_PARALLEL_TILE_ROWS,
                    help="parallel kernel tile (accounts per prange item)")
    ap.add_argument("--subset", type=int, default=500, help="accounts in the Python loop")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--pause", type=float, default=0.1,
                    help="seconds of idle before each timed call")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="OpenBLAS threads for the serial kernel (default: library default)")
    ap.add_argument("--numba-threads", type=int, default=None,
                    help="numba threads for the parallel kernel (default: all)")
    ap.add_argument("--no-dense", action="store_true", help="skip the dense variant")
    args = ap.parse_args(argv)

    blas_default = blas_threads()
    n_threads = args.numba_threads or numba.config.NUMBA_NUM_THREADS
    serial_blas = blas_default if args.blas_threads is None else {
        name: args.blas_threads for name in blas_default}
    x, u = make_book(args.accounts, args.instruments, args.scenarios, args.seed)
    k = tail_count(args.confidence, args.scenarios)
    held = (x != 0).sum(axis=1)
    print(f"book: {args.accounts:,} accounts x {args.instruments} instruments x "
          f"{args.scenarios:,} scenarios; VaR/ES at {args.confidence} (k={k}); "
          f"holdings per account mean {held.mean():.2f}, min {held.min()}, max {held.max()} "
          f"of {args.instruments}")

    t0 = time.perf_counter()
    numba.set_num_threads(n_threads)
    run_parallel(x[:1000], u, k, args.parallel_tile)
    run_kernel(x[:1000], u, k, args.tile)
    print(f"warm-up (compile or cache load, both kernels): {time.perf_counter() - t0:.2f} s")
    print(f"threads: cpus={os.cpu_count()}; numba threading layer "
          f"{numba.threading_layer()}, NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}; "
          f"OpenBLAS defaults {blas_default}; "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    print(f"timed regions ({args.repeats} round-robin rounds, {args.pause} s pause before "
          f"each call):")
    print(f"  (1) parallel kernel: numba threads {n_threads} (prange over tiles of "
          f"{args.parallel_tile}); BLAS not called")
    print(f"  (2) serial kernel:   numba threads 1 (serial code, tiles of {args.tile}); "
          f"BLAS threads {serial_blas} (np.dot -> SciPy's OpenBLAS)")
    print(f"  (3) plain numpy:     numba not used; BLAS threads {blas_default} (default; "
          f"X @ U -> numpy's OpenBLAS)")
    print("  (3') plain numpy:    numba not used; BLAS threads 1 (pinned; reference only)")
    print("  (4) Python loop:     1 thread, no BLAS")

    times, outs = _time_book(x, u, k, args, blas_default, n_threads)
    sub = min(args.subset, args.accounts)
    t0 = time.perf_counter()
    py = run_python(x[:sub], u, k)
    t_measured = time.perf_counter() - t0
    t_python = t_measured * args.accounts / sub
    for name in ("serial", "numpy"):
        _agree(outs["parallel"], outs[name], sub, f"parallel kernel vs {name} (subset)")
    _agree(outs["parallel"], py, sub, "parallel kernel vs Python loop (subset)")
    _agree(outs["serial"], py, sub, "serial kernel vs Python loop (subset)")

    print(f"results, this book (all four agree on the first {sub} accounts; both kernels "
          f"agree with numpy on all):")
    result = _report(times, t_python)
    print(f"  (4) Python loop, {sub} accounts scaled:       {t_python:8.3f} s  "
          f"({t_measured:.3f} s measured)")
    result["numpy_first_over_parallel"] = times["numpy"][0] / result["parallel"]

    if not args.no_dense:
        xd = make_dense(x, args.seed)
        times_d, _ = _time_book(xd, u, k, args, blas_default, n_threads)
        print(f"dense variant (same instruments and scenarios, every account holds all "
              f"{args.instruments}; kernels agree with numpy on all accounts):")
        result.update({f"dense_{key}": v for key, v in _report(times_d, None).items()})
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return result


if __name__ == "__main__":
    main()
