"""Tests of ``sim.ledger``."""
