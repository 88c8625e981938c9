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
    return sorted(p for p in tmp_path.iterdir() if p.is_dir())


def test_failures_are_recorded_and_a_rerun_resumes(tmp_path):
    first = _sweep(tmp_path, "seed=1,2", "steps=20,-1")
    assert first.returncode == 0, first.stderr
    jobs = _jobs(tmp_path)
    done = [j for j in jobs if (j / "done.json").is_file()]
    failed = [j for j in jobs if (j / "failed.json").is_file()]
    assert len(done) == 2 and len(failed) == 2
    assert "steps" in json.loads((failed[0] / "failed.json").read_text())["error"]
    # a job killed before its marker: remove one marker, rerun -> only that one runs again
    stamps = {j: (j / "summary.json").stat().st_mtime_ns for j in done}
    (done[0] / "done.json").unlink()
    second = _sweep(tmp_path, "seed=1,2", "steps=20,-1")
    assert second.returncode == 0, second.stderr
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
