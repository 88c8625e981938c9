"""Tests of margin.regimes."""
