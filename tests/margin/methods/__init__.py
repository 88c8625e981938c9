"""Tests of margin.methods."""
