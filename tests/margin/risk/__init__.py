"""Tests of margin.risk."""
