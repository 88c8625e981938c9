"""README's opening commands stay true: CI runs the same test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text, flags=re.S)[:2]


def test_readme_opens_with_run_and_test_commands():
    run_cmd, test_cmd = _commands()
    assert run_cmd.endswith("python -m sim")
    assert "pip install" in run_cmd and "python3.12 -m venv" in run_cmd
    assert test_cmd.endswith("python -m pytest") and ".[test]" in test_cmd


def test_ci_runs_readmes_test_command():
    _, test_cmd = _commands()
    assert test_cmd in (ROOT / ".ci" / "run").read_text().splitlines()


def test_ci_runs_ruff_before_the_tests():
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    _, test_cmd = _commands()
    lint = [i for i, ln in enumerate(lines) if ln.endswith(".venv/bin/ruff check .")]
    assert lint and lint[0] < lines.index(test_cmd)
    assert "ruff" in (ROOT / "pyproject.toml").read_text()


def test_conf_is_shipped_as_package_data():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"conf*"' in pyproject and "**/*.yaml" in pyproject
    assert (ROOT / "conf" / "__init__.py").is_file()
