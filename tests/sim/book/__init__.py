"""Tests of ``sim.book``."""
