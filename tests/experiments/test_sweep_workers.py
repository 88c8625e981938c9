"""A killed sweep leaves no worker behind, and a live sweep's directory is locked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.sweep import RunSpec, SweepLocked, run_sweep

ROOT = Path(__file__).resolve().parents[2]


def sleepy_runner(overrides: list[str], *, out_dir: Path, progress: bool = False) -> None:
    """Writes its pid, then sleeps far longer than the test waits."""
    (Path(out_dir) / "pid").write_text(str(os.getpid()))
    time.sleep(float(os.environ.get("SLEEPY_SECONDS", "60")))
    (Path(out_dir) / "summary.json").write_text("{}")


def quick_runner(overrides: list[str], *, out_dir: Path, progress: bool = False) -> None:
    """Finishes at once."""
    (Path(out_dir) / "summary.json").write_text("{}")


SPECS = [RunSpec(f"run{i}", (f"x={i}",)) for i in range(4)]

SCRIPT = """
import sys
from experiments.sweep import RunSpec, run_sweep
from tests.experiments.test_sweep_workers import SPECS, sleepy_runner
run_sweep(SPECS, sys.argv[1], workers=2, runner=sleepy_runner, progress=False)
"""


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (ProcessLookupError, FileNotFoundError):
        return False
    return stat[stat.rindex(")") + 2] != "Z"  # an unreaped zombie has exited


def _wait(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_sigkilled_parent_takes_its_workers_and_tracker_along(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, env=env)
    try:
        assert _wait(lambda: len(list(tmp_path.glob("*/pid"))) == 2, 120), "workers never started"
        workers = {int(p.read_text()) for p in tmp_path.glob("*/pid")}
        children = set(_children(parent.pid))
        assert workers <= children and len(children) >= 3  # two workers + resource tracker
        # while it lives, nobody else may run a sweep on its directory
        with pytest.raises(SweepLocked, match=rf"\(pid {parent.pid}\)"):
            run_sweep(SPECS, tmp_path, runner=quick_runner, progress=False)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        start = time.monotonic()
        assert _wait(lambda: not any(_alive(p) for p in children), 5.0), \
            f"still running: {[p for p in children if _alive(p)]}"
        gone_after = time.monotonic() - start
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    print(f"workers and tracker gone {gone_after:.2f} s after SIGKILL")
    assert not list(tmp_path.glob("*/done.json"))
    # the dead owner's lock is stale: a resume takes it over and redoes the unfinished runs
    rep = run_sweep(SPECS, tmp_path, runner=quick_runner, progress=False)
    assert sorted(rep.done) == [s.name for s in SPECS] and not rep.failed
    assert not (tmp_path / ".lock").exists()
    assert json.loads((tmp_path / "run0" / "done.json").read_text())["provenance"]
