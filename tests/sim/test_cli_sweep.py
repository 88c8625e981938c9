"""Hydra sweeps through ``python -m sim -m``: resume, failure recording, joblib launcher."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

BASE = ["agents=minimal", "scenario=calm", "agents.noise.n=10", "output.figures=false",
        "hydra.sweep.subdir=${hydra.job.override_dirname}"]


def _sweep(tmp_path, *overrides):
    cmd = [sys.executable, "-m", "sim", "-m", *BASE, f"hydra.sweep.dir={tmp_path}", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def _jobs(tmp_path):
    return sorted(p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_failures_are_recorded_and_a_rerun_resumes(tmp_path):
    first = _sweep(tmp_path, "seed=1,2", "steps=20,-1")
    assert first.returncode == 1, first.stderr  # failed jobs: the exit status says so
    assert "sweep: 2 done, 0 skipped, 2 failed" in first.stdout
    jobs = _jobs(tmp_path)
    done = [j for j in jobs if (j / "done.json").is_file()]
    failed = [j for j in jobs if (j / "failed.json").is_file()]
    assert len(done) == 2 and len(failed) == 2
    assert "steps" in json.loads((failed[0] / "failed.json").read_text())["error"]
    # a job killed before its marker: remove one marker, rerun -> only that one runs again
    stamps = {j: (j / "summary.json").stat().st_mtime_ns for j in done}
    (done[0] / "done.json").unlink()
    second = _sweep(tmp_path, "seed=1,2", "steps=20,-1")
    assert second.returncode == 1, second.stderr
    assert "sweep: 1 done, 1 skipped, 2 failed" in second.stdout
    assert second.stdout.count("skipped (already done)") == 1
    assert (done[0] / "done.json").is_file()
    assert (done[1] / "summary.json").stat().st_mtime_ns == stamps[done[1]]  # not redone
    assert (done[0] / "summary.json").stat().st_mtime_ns != stamps[done[0]]  # redone


def test_joblib_launcher_runs_jobs_in_parallel_processes(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    res = _sweep(tmp_path, "seed=3,4", "steps=20", "hydra/launcher=joblib",
                 "hydra.launcher.n_jobs=2")
    assert res.returncode == 0, res.stderr
    assert all((j / "done.json").is_file() for j in _jobs(tmp_path))
    assert len(_jobs(tmp_path)) == 2


def test_a_sweep_whose_every_job_fails_exits_non_zero(tmp_path):
    res = _sweep(tmp_path, "seed=1,2", "steps=-1")
    assert res.returncode == 1
    assert "sweep: 0 done, 0 skipped, 2 failed" in res.stdout
    assert len([j for j in _jobs(tmp_path) if (j / "failed.json").is_file()]) == 2


def test_config_errors_inside_a_sweep_are_recorded_not_raised(tmp_path):
    # an unresolvable interpolation and a deleted key fail their own job only
    res = _sweep(tmp_path, "seed=1", "steps=${oops},20")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    failed = [j for j in _jobs(tmp_path) if (j / "failed.json").is_file()]
    assert len(failed) == 1
    assert "steps" in json.loads((failed[0] / "failed.json").read_text())["error"]
    assert "sweep: 1 done, 0 skipped, 1 failed" in res.stdout


def test_resume_with_numbered_job_dirs_reruns_jobs_of_another_config(tmp_path):
    # default subdir: job directories are named by job number, so seed=3,4 land where
    # seed=1,2 finished; their done.json records another config and must not be trusted
    cmd = [sys.executable, "-m", "sim", "-m", *BASE[:-1], "steps=15", f"hydra.sweep.dir={tmp_path}"]
    first = subprocess.run([*cmd, "seed=1,2"], capture_output=True, text=True, timeout=300,
                           check=False)
    assert first.returncode == 0, first.stderr
    again = subprocess.run([*cmd, "seed=1,2"], capture_output=True, text=True, timeout=300,
                           check=False)
    assert again.stdout.count("skipped (already done)") == 2  # same config and code: reused
    other = subprocess.run([*cmd, "seed=3,4"], capture_output=True, text=True, timeout=300,
                           check=False)
    assert other.returncode == 0, other.stderr
    assert "skipped (already done)" not in other.stdout
    assert "sweep: 2 done, 0 skipped, 0 failed" in other.stdout
    seeds = sorted(json.loads((tmp_path / str(i) / "config.yaml").read_text().split("seed:")[1]
                              .splitlines()[0]) for i in (0, 1))
    assert seeds == [3, 4]
