"""Tests of ``agents``."""
