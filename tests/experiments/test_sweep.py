"""Sweep runner: resume after a kill, failure recording, aggregation, parallel workers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.sweep import DONE, FAILED, RunSpec, collect, run_sweep

CALLS: list[str] = []


def fake_runner(overrides: list[str], *, out_dir: Path, progress: bool = False) -> None:
    """Writes a summary.json like sim.run's; raises on a 'bad' override."""
    CALLS.append(Path(out_dir).name)
    if "bad=1" in overrides:
        raise ValueError("bad override 'bad=1'\nsecond line")
    x = float(next(o.split("=")[1] for o in overrides if o.startswith("x=")))
    (Path(out_dir) / "summary.json").write_text(json.dumps(
        {"seed": 1, "liquidation": {"alpha": {"notional": 10 * x, "liquidations": x}}}))


class Killed(BaseException):
    """Stands in for a kill (not an Exception, so the sweep does not catch it)."""


def killing_runner(overrides: list[str], *, out_dir: Path, progress: bool = False) -> None:
    if len(CALLS) >= 1:
        CALLS.append("killed")
        raise Killed
    fake_runner(overrides, out_dir=out_dir)


def _specs(n: int = 3) -> list[RunSpec]:
    return [RunSpec(f"run{i}", (f"x={i}",), {"i": i}) for i in range(n)]


def test_resume_after_kill_runs_only_missing(tmp_path: Path) -> None:
    CALLS.clear()
    with pytest.raises(Killed):
        run_sweep(_specs(), tmp_path, runner=killing_runner, progress=False)
    assert (tmp_path / "run0" / DONE).exists()
    assert not (tmp_path / "run1" / DONE).exists()
    CALLS.clear()
    rep = run_sweep(_specs(), tmp_path, runner=fake_runner, progress=False)
    assert CALLS == ["run1", "run2"]
    assert rep.skipped == ["run0"] and sorted(rep.done) == ["run1", "run2"]
    # a deleted marker re-runs just that run
    (tmp_path / "run2" / DONE).unlink()
    mtime0 = (tmp_path / "run0" / "summary.json").stat().st_mtime_ns
    CALLS.clear()
    rep = run_sweep(_specs(), tmp_path, runner=fake_runner, progress=False)
    assert CALLS == ["run2"] and rep.done == ["run2"]
    assert (tmp_path / "run0" / "summary.json").stat().st_mtime_ns == mtime0
    assert not list(tmp_path.glob("*/.*.tmp"))


def test_failure_recorded_and_sweep_continues(tmp_path: Path) -> None:
    CALLS.clear()
    specs = [*_specs(2), RunSpec("broken", ("bad=1",))]
    rep = run_sweep(specs, tmp_path, runner=fake_runner, progress=False)
    assert sorted(rep.done) == ["run0", "run1"]
    assert rep.failed == {"broken": "ValueError: bad override 'bad=1'"}
    rec = json.loads((tmp_path / "broken" / FAILED).read_text())
    assert rec["error"] == "ValueError: bad override 'bad=1'" and "Traceback" in rec["traceback"]
    assert not (tmp_path / "broken" / DONE).exists()
    assert "2 done, 0 skipped, 1 failed" in rep.line()


def test_real_sim_bad_override_is_recorded(tmp_path: Path) -> None:
    rep = run_sweep([RunSpec("bad", ("agents.noise.n=notanumber", "steps=5"))], tmp_path,
                    progress=False)
    assert list(rep.failed) == ["bad"]
    assert "\n" not in json.loads((tmp_path / "bad" / FAILED).read_text())["error"]


def test_collect_flattens_summaries_and_overrides(tmp_path: Path) -> None:
    CALLS.clear()
    run_sweep([*_specs(3), RunSpec("broken", ("bad=1",))], tmp_path, runner=fake_runner,
              progress=False)
    df = collect(tmp_path)
    assert list(df["run"]) == ["run0", "run1", "run2"]
    assert list(df["i"]) == [0, 1, 2]
    assert list(df["liquidation.alpha.notional"]) == [0.0, 10.0, 20.0]
    assert list(df["override.x"]) == ["0", "1", "2"]


def test_parallel_workers_spawn(tmp_path: Path) -> None:
    rep = run_sweep(_specs(3), tmp_path, workers=2, runner=fake_runner, progress=False)
    assert sorted(rep.done) == ["run0", "run1", "run2"] and not rep.failed
    assert len(collect(tmp_path)) == 3


def test_rejects_duplicate_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicate"):
        run_sweep([RunSpec("a", ()), RunSpec("a", ())], tmp_path, runner=fake_runner,
                  progress=False)
    with pytest.raises(ValueError):
        RunSpec("../x", ())
