"""README's "Your own margin engine" example: the code block passes check_engine and runs.

The engine is taken from README.md itself (its first Python block in that
section), so the README text and the tested code cannot drift apart.
"""

from __future__ import annotations

import importlib
import re
import shlex
import sys
from pathlib import Path

import pytest

from margin import MarginEngine
from margin.testing import check_engine

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Your own margin engine"


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    return text.split(SECTION, 1)[1].split("\n## ", 1)[0]


def _code() -> str:
    return re.findall(r"```python\n(.+?)\n```", _section(), flags=re.S)[0]


def _commands() -> list[str]:
    (block,) = re.findall(r"```bash\n(.+?)\n```", _section(), flags=re.S)
    return block.splitlines()


@pytest.fixture
def flat_engine(tmp_path, monkeypatch):
    """The README's module, saved as the file name the README gives."""
    name = re.search(r"Save this as\s+`(\w+)\.py`", _section()).group(1)
    (tmp_path / f"{name}.py").write_text(_code() + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return importlib.import_module(name)


def test_readme_engine_is_short_and_needs_only_evaluate(flat_engine):
    assert len(_code().splitlines()) <= 30
    cls = flat_engine.FlatMarginEngine
    assert issubclass(cls, MarginEngine)
    assert "pretrade" not in vars(cls) and "stress" not in vars(cls)


def test_readme_engine_passes_check_engine(flat_engine):
    check_engine(flat_engine.FlatMarginEngine())
    check_engine(flat_engine.FlatMarginEngine(imr=0.2, mmr=0.1))


def test_readme_check_command_is_the_tested_one():
    check, _run = _commands()
    assert "check_engine(FlatMarginEngine())" in check and "from flat_engine import" in check


def test_readme_engine_runs_in_the_simulator(flat_engine, tmp_path):
    import sim  # the integration step: margin itself never imports sim

    _check, run = _commands()
    overrides = shlex.split(run.split("-m sim", 1)[1])
    assert any(o.startswith("margin._target_=") for o in overrides)
    res = sim.run([*overrides, "steps=30", "agents.noise.n=10", "output.figures=false"],
                  out_dir=tmp_path / "run")
    assert res.summary["steps"] == 30 and res.summary["n_trades"] > 0
    assert res.summary["orders_rejected_margin"] > 0  # the default pretrade is at work
