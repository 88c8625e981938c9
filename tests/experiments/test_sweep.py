"""Sweep runner: resume after a kill, failure recording, aggregation, parallel workers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import experiments.sweep as sweep_mod
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


# --------------------------------------------------------------------------- provenance on resume

def test_changed_overrides_rerun_the_stale_run(tmp_path: Path) -> None:
    CALLS.clear()
    run_sweep(_specs(2), tmp_path, runner=fake_runner, progress=False)
    new = [RunSpec("run0", ("x=5",), {"i": 5}), RunSpec("run1", ("x=1",), {"i": 1})]
    CALLS.clear()
    rep = run_sweep(new, tmp_path, runner=fake_runner, progress=False)
    assert CALLS == ["run0"] and rep.rerun == ["run0"] and rep.skipped == ["run1"]
    df = collect(tmp_path, expected=rep.expected)
    assert list(df["liquidation.alpha.notional"]) == [50.0, 10.0]
    assert list(df["override.x"]) == ["5", "1"]
    rec = json.loads((tmp_path / "run0" / DONE).read_text())
    assert rec["provenance"] == rep.expected["run0"]
    assert json.loads((tmp_path / "run0" / "spec.json").read_text())["overrides"] == ["x=5"]


def test_changed_code_fingerprint_reruns_everything(tmp_path: Path, monkeypatch) -> None:
    import experiments.sweep as sweep

    CALLS.clear()
    run_sweep(_specs(2), tmp_path, runner=fake_runner, progress=False)
    monkeypatch.setattr(sweep, "code_fingerprint", lambda: "0123456789abcdef")
    CALLS.clear()
    rep = run_sweep(_specs(2), tmp_path, runner=fake_runner, progress=False)
    assert sorted(CALLS) == ["run0", "run1"] and sorted(rep.rerun) == ["run0", "run1"]
    assert {json.loads((tmp_path / n / DONE).read_text())["provenance"]["code_sha256"]
            for n in ("run0", "run1")} == {"0123456789abcdef"}


def test_marker_without_provenance_is_stale(tmp_path: Path) -> None:
    (tmp_path / "run0").mkdir()
    (tmp_path / "run0" / "summary.json").write_text(json.dumps({"liquidation": {}}))
    (tmp_path / "run0" / DONE).write_text(json.dumps({"name": "run0", "overrides": ["x=0"]}))
    CALLS.clear()
    rep = run_sweep(_specs(1), tmp_path, runner=fake_runner, progress=False)
    assert CALLS == ["run0"] and rep.rerun == ["run0"]


def test_stale_marker_removed_before_the_rerun_starts(tmp_path: Path) -> None:
    CALLS.clear()
    run_sweep(_specs(2), tmp_path, runner=fake_runner, progress=False)
    CALLS[:] = ["earlier"]  # killing_runner kills the next run it starts
    with pytest.raises(Killed):  # run0 is reused, the stale run1 is killed mid-run
        run_sweep([RunSpec("run0", ("x=0",), {"i": 0}), RunSpec("run1", ("x=9",))], tmp_path,
                  runner=killing_runner, progress=False)
    assert (tmp_path / "run0" / DONE).exists()
    assert not (tmp_path / "run1" / DONE).exists()


def test_collect_skips_leftover_and_stale_runs(tmp_path: Path) -> None:
    CALLS.clear()
    run_sweep([*_specs(2), RunSpec("old_study_run", ("x=7",))], tmp_path, runner=fake_runner,
              progress=False)
    now = [RunSpec("run0", ("x=0",), {"i": 0}), RunSpec("run1", ("x=3",), {"i": 3})]
    expected = sweep_mod.expected_provenance(now, sweep_mod.overrides_provenance)
    df = collect(tmp_path, expected=expected)  # nothing re-run yet: run1 is stale
    assert list(df["run"]) == ["run0"]
    assert set(df.columns) >= {"config_sha256", "code_sha256"}


def test_resolved_config_decides_reuse(tmp_path: Path) -> None:
    """Default provenance: the full resolved run config, not the override spelling."""
    CALLS.clear()
    a = [RunSpec("r", ("steps=300", "seed=3"))]
    run_sweep(a, tmp_path, runner=plain_runner, provenance=sweep_mod.sim_provenance,
              progress=False)
    rep = run_sweep([RunSpec("r", ("seed=3", "steps=300"))], tmp_path, runner=plain_runner,
                    provenance=sweep_mod.sim_provenance, progress=False)
    assert rep.skipped == ["r"] and CALLS == ["r"]
    rep = run_sweep([RunSpec("r", ("seed=3", "steps=800"))], tmp_path, runner=plain_runner,
                    provenance=sweep_mod.sim_provenance, progress=False)
    assert rep.done == ["r"] and rep.rerun == ["r"] and CALLS == ["r", "r"]
    rec = json.loads((tmp_path / "r" / DONE).read_text())
    import sim
    from sim.output.provenance import config_fingerprint

    assert rec["provenance"]["config_sha256"] == config_fingerprint(
        sim.load_config(["seed=3", "steps=800"]))


def plain_runner(overrides: list[str], *, out_dir: Path, progress: bool = False) -> None:
    """Records the call and writes an empty summary."""
    CALLS.append(Path(out_dir).name)
    (Path(out_dir) / "summary.json").write_text("{}")


def test_report_line_counts_failures(tmp_path: Path) -> None:
    rep = run_sweep([*_specs(2), RunSpec("broken", ("bad=1",))], tmp_path, runner=fake_runner,
                    progress=False)
    assert rep.line().endswith("1 of 3 runs failed") and rep.total == 3
    assert sorted(rep.finished) == ["run0", "run1"]


# --------------------------------------------------------------------------- lock

def test_live_lock_refuses_and_stale_lock_is_taken_over(tmp_path: Path) -> None:
    import socket
    import subprocess

    live = subprocess.Popen(["sleep", "30"])
    try:
        (tmp_path / sweep_mod.LOCK).write_text(json.dumps(
            {"pid": live.pid, "start_ticks": sweep_mod._start_ticks(live.pid),
             "host": socket.gethostname()}))
        with pytest.raises(sweep_mod.SweepLocked,
                           match=rf"is in use by a running sweep \(pid {live.pid}\)"):
            run_sweep(_specs(1), tmp_path, runner=fake_runner, progress=False)
        assert not (tmp_path / "run0").exists()
    finally:
        live.kill()
        live.wait()
    dead = subprocess.Popen(["true"])
    dead.wait()
    for pid, ticks in ((dead.pid, None), (os.getpid(), -1)):  # dead owner; recycled pid
        (tmp_path / sweep_mod.LOCK).write_text(json.dumps({"pid": pid, "start_ticks": ticks}))
        rep = run_sweep(_specs(1), tmp_path, runner=fake_runner, progress=False)
        assert len(rep.finished) == 1
        assert not (tmp_path / sweep_mod.LOCK).exists()  # released on return
