"""Shared fixtures: small configs composed exactly as the CLI composes them."""

from __future__ import annotations

import pytest

from sim.config import load_config

SMALL = [
    "agents=minimal",
    "scenario=calm",
    "steps=150",
    "agents.noise.n=40",
    "output.figures=false",
    "progress=false",
]


@pytest.fixture
def small_overrides() -> list[str]:
    """Overrides giving a run of a second or two."""
    return list(SMALL)


@pytest.fixture
def small_cfg():
    """A small validated config."""
    return load_config(SMALL)
