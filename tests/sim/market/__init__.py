"""Tests of ``sim.market``."""
