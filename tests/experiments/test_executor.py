"""The executor seam: serial, local pool and Dask give the same records and results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.executor import (
    EXECUTORS,
    Executor,
    LocalPool,
    Serial,
    executor_for,
    make_executor,
)
from experiments.sweep import DONE, FAILED, RunSpec, collect, run_sweep


def tiny_runner(overrides: list[str], *, out_dir: Path, progress: bool = False) -> None:
    """A summary.json like sim.run's; raises on a 'bad' override (module-level: picklable)."""
    if "bad=1" in overrides:
        raise ValueError("bad override 'bad=1'")
    x = float(next(o.split("=")[1] for o in overrides if o.startswith("x=")))
    (Path(out_dir) / "summary.json").write_text(json.dumps(
        {"seed": 1, "liquidation": {"alpha": {"notional": 10 * x, "liquidations": x}}}))


def _square(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x * x


SPECS = [*(RunSpec(f"run{i}", (f"x={i}",), {"i": i}) for i in range(4)),
         RunSpec("broken", ("x=9", "bad=1"), {"i": 9})]


def _records(root: Path) -> dict[str, tuple[str, dict]]:
    out = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        for marker in (DONE, FAILED):
            if (d / marker).exists():
                rec = json.loads((d / marker).read_text())
                rec.pop("wall_seconds", None)
                rec.pop("traceback", None)
                out[d.name] = (marker, rec)
    return out


def _sweep(root: Path, executor: Executor) -> tuple[object, object]:
    rep = run_sweep(SPECS, root, runner=tiny_runner, progress=False, executor=executor)
    table = collect(root, expected={n: rep.expected[n] for n in rep.finished})
    return rep, table.drop(columns=["code_sha256"])


def test_make_executor_names_and_errors() -> None:
    assert EXECUTORS == ("local", "serial", "dask")
    assert isinstance(make_executor("serial"), Serial)
    pool = make_executor("local", 3)
    assert isinstance(pool, LocalPool) and pool.workers == 3
    assert isinstance(executor_for({"workers": 2}), LocalPool)
    with pytest.raises(ValueError, match="one of local, serial, dask"):
        make_executor("slurm")
    with pytest.raises(ValueError, match="only used with executor=dask"):
        make_executor("local", 1, "tcp://localhost:8786")


def test_serial_map_returns_errors_as_outcomes() -> None:
    out = list(Serial().map(_square, [1, 2, 3]))
    assert [o.value for o in out] == [1, 4, None]
    assert isinstance(out[2].error, ValueError) and out[2].item == 3


def test_serial_and_local_pool_write_the_same_records(tmp_path: Path) -> None:
    rep_s, tab_s = _sweep(tmp_path / "serial", Serial())
    rep_l, tab_l = _sweep(tmp_path / "local", LocalPool(2))
    assert sorted(rep_s.done) == sorted(rep_l.done) == [f"run{i}" for i in range(4)]
    assert set(rep_s.failed) == set(rep_l.failed) == {"broken"}
    assert _records(tmp_path / "serial") == _records(tmp_path / "local")
    assert tab_s.equals(tab_l)


def test_dask_local_cluster_matches_the_local_path(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from experiments.executor import DaskExecutor

    dask = DaskExecutor(workers=1, processes=False)
    rep_d, tab_d = _sweep(tmp_path / "dask", dask)
    _, tab_l = _sweep(tmp_path / "local", LocalPool(1))
    assert sorted(rep_d.done) == [f"run{i}" for i in range(4)]
    assert rep_d.failed == {"broken": "ValueError: bad override 'bad=1'"}
    done = json.loads((tmp_path / "dask" / "run2" / DONE).read_text())
    assert done["meta"] == {"i": 2} and done["provenance"] == rep_d.expected["run2"]
    assert _records(tmp_path / "dask") == _records(tmp_path / "local")
    assert tab_d.equals(tab_l)
    # resume: a second call through Dask reuses every finished run
    again = run_sweep(SPECS, tmp_path / "dask", runner=tiny_runner, progress=False, executor=dask)
    assert sorted(again.skipped) == sorted(rep_d.done) and set(again.failed) == {"broken"}


def test_dask_map_reports_task_errors() -> None:
    pytest.importorskip("distributed")
    from experiments.executor import DaskExecutor

    out = {o.item: o for o in DaskExecutor(workers=1, processes=False).map(_square, [1, 2, 3])}
    assert out[2].value == 4 and isinstance(out[3].error, ValueError)
