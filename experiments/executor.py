"""The one seam through which a study's runs are executed: serial, a local pool, or Dask.

A study never starts processes itself. It builds its tasks (for a sweep, one
per :class:`experiments.sweep.RunSpec`), and an :class:`Executor` calls a
module-level function on each and hands the outcomes back as they finish::

    for out in executor.map(fn, tasks):
        out.item, out.value, out.error   # error: the exception, if fn or the transport failed

What a run writes (``done.json``, ``failed.json``, the run's files) is written
by the task function itself (:func:`experiments.sweep.run_sweep`'s), so resume
and failure records are the same whatever executes it; the executor only
decides *where* the function runs. An exception never escapes :meth:`map`: a
task that raises, or a worker that dies under it, comes back as an
:class:`Outcome` with ``error`` set and the caller records it.

Implementations (the study config key ``executor``):

* ``serial`` — :class:`Serial`: in this process, in order.
* ``local`` (default) — :class:`LocalPool`: a ``ProcessPoolExecutor`` with the
  *spawn* start method (no forked RNG or Mesa state) of ``workers`` processes,
  each watching its parent and exiting at once when it is gone, so a killed
  study leaves no worker behind to race a resume. ``workers = 1`` (or a
  single task) runs in this process, as ``serial``.
* ``dask`` — :class:`DaskExecutor`: ``dask.distributed``. Without an address a
  ``LocalCluster`` of ``workers`` single-threaded worker processes is started
  for the call and closed after it; with ``dask_address=tcp://host:8786`` the
  tasks go to a running scheduler (a cluster started by ``dask-jobqueue``,
  ``dask-mpi``, Kubernetes...). Workers must see the study's output directory
  (a shared file system) and run the same code: a run whose code fingerprint
  differs from the parent's fails with a one-line error. Optional extra
  ``pip install 'marginsim[dask]'``.

Neighbours: :mod:`experiments.sweep` (the task function and its records),
:mod:`experiments.common` (:func:`executor_for` a study config).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["EXECUTORS", "DaskExecutor", "Executor", "LocalPool", "Outcome", "Serial",
           "executor_for", "make_executor"]

EXECUTORS = ("local", "serial", "dask")
"""Names of the study config key ``executor``."""

PARENT_POLL_SECONDS = 0.5
"""How often a local-pool worker checks that its parent is still alive."""


@dataclass(frozen=True)
class Outcome:
    """One finished task.

    Attributes:
        item: The task as given to :meth:`Executor.map`.
        value: ``fn(item)`` (None if it failed).
        error: The exception ``fn`` raised, or the transport's (a worker that
            died, a lost connection); None on success.
    """

    item: Any
    value: Any = None
    error: BaseException | None = None


@runtime_checkable
class Executor(Protocol):
    """Runs a module-level function on tasks; outcomes in completion order.

    Contract: every task comes back exactly once as an :class:`Outcome`;
    ``map`` raises only for ``KeyboardInterrupt``-like exits or when the
    executor itself cannot start. ``fn`` must be picklable (a module-level
    function) for executors that run it in other processes.
    """

    name: str

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Outcome]:
        """Call ``fn(item)`` for every item; yield each outcome as it finishes."""
        ...


class Serial:
    """In this process, one task after another, in order."""

    name = "serial"

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Outcome]:
        """``fn(item)`` for each item in order (an exception becomes the outcome's error)."""
        for item in items:
            try:
                value = fn(item)
            except Exception as exc:  # noqa: BLE001 - one task's failure is its outcome, not the caller's
                yield Outcome(item, error=exc)
            else:
                yield Outcome(item, value)


def _watch_parent(parent: int, interval: float) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)  # the parent is gone: stop at once, leave no orphan run going
        time.sleep(interval)


def worker_init(parent: int, interval: float = PARENT_POLL_SECONDS) -> None:
    """Pool initializer: a daemon thread ends this worker when ``parent`` dies.

    ``prctl(PR_SET_PDEATHSIG)`` is not used: it fires on the death of the
    spawning *thread*, which in a ``ProcessPoolExecutor`` is not the main one.

    Args:
        parent: The parent's pid.
        interval: Seconds between checks.
    """
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent, interval), daemon=True,
                     name="parent-watch").start()


class LocalPool:
    """A spawn-context ``ProcessPoolExecutor`` whose workers exit when this process dies.

    Args:
        workers: Pool size; 1 runs the tasks in this process (as :class:`Serial`).

    Raises:
        ValueError: ``workers < 1``.
    """

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        if int(workers) < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = int(workers)

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Outcome]:
        """Tasks over the pool; outcomes as they complete (a dead worker: its error)."""
        items = list(items)
        if self.workers == 1 or len(items) <= 1:
            yield from Serial().map(fn, items)
            return
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                 initializer=worker_init, initargs=(os.getpid(),)) as pool:
            futures = {pool.submit(fn, item): k for k, item in enumerate(items)}
            for fut in as_completed(futures):
                item = items[futures[fut]]
                try:
                    yield Outcome(item, fut.result())
                except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by the OS
                    yield Outcome(item, error=exc)


class DaskExecutor:
    """Tasks on ``dask.distributed``: a scheduler at ``address``, or a fresh ``LocalCluster``.

    Args:
        workers: Worker processes of the ``LocalCluster`` (no ``address``).
        address: Scheduler address (``tcp://host:8786``); None starts a
            ``LocalCluster`` for each :meth:`map` call.
        processes: ``LocalCluster`` workers as processes (True) or threads of
            this process (False; for tests and debugging).

    Raises:
        ImportError: ``dask.distributed`` is not installed (the ``[dask]`` extra).
    """

    name = "dask"

    def __init__(self, workers: int = 1, address: str | None = None,
                 processes: bool = True) -> None:
        import distributed  # noqa: F401  (fail at construction, not mid-study)

        if int(workers) < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = int(workers)
        self.address = address or None
        self.processes = bool(processes)

    def _client(self) -> Any:
        from distributed import Client, LocalCluster

        if self.address is not None:
            return Client(self.address), None
        cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                               processes=self.processes, dashboard_address=None)
        return Client(cluster), cluster

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Outcome]:
        """Submit every task (``pure=False``: each runs); outcomes as they complete."""
        from distributed import as_completed as dask_completed

        items = list(items)
        if not items:
            return
        client, cluster = self._client()
        try:
            futures = client.map(fn, items, pure=False)
            index = {f.key: k for k, f in enumerate(futures)}
            for fut in dask_completed(futures):
                item = items[index[fut.key]]
                try:
                    yield Outcome(item, fut.result())
                except Exception as exc:  # noqa: BLE001 - the task's or the transport's error
                    yield Outcome(item, error=exc)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def make_executor(name: str = "local", workers: int = 1, address: str | None = None
                  ) -> Executor:
    """The executor called ``name`` (one of :data:`EXECUTORS`).

    Args:
        name: ``local``, ``serial`` or ``dask``.
        workers: Local pool size (``local``) or ``LocalCluster`` workers
            (``dask`` without an address); ignored by ``serial``.
        address: Dask scheduler address (``dask`` only).

    Returns:
        The executor.

    Raises:
        ValueError: An unknown name (listing the valid ones), or ``address``
            given to another executor than ``dask``.
        ImportError: ``dask`` without ``dask.distributed`` installed.
    """
    if name not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {name!r}")
    if address and name != "dask":
        raise ValueError(f"dask_address is only used with executor=dask, got executor={name}")
    if name == "serial":
        return Serial()
    if name == "dask":
        return DaskExecutor(workers, address)
    return LocalPool(workers)


def executor_for(cfg: Any, workers: Any = None) -> Executor:
    """The executor a study config asks for: keys ``executor``, ``workers``, ``dask_address``.

    Missing keys default to ``local``, 1 worker and no address.

    Args:
        cfg: The study config (DictConfig or mapping).
        workers: Pool size overriding ``cfg.workers`` (a study part with its own
            ``workers`` key).

    Returns:
        :func:`make_executor` of those keys.
    """
    get = cfg.get if hasattr(cfg, "get") else (lambda k, d=None: getattr(cfg, k, d))
    n = get("workers", 1) if workers is None else workers
    return make_executor(str(get("executor", "local") or "local"), int(n or 1),
                         get("dask_address", None))
