"""Smoke test of the end-to-end benchmark on a tiny world (keeps it runnable)."""

import pytest

from experiments.bench.world import _world, noise_for, time_world, trading_accounts


def test_noise_tops_up_to_the_requested_accounts():
    n = noise_for(300)
    model, _ = _world(1, n, 0.05)
    assert trading_accounts(model) == 300
    with pytest.raises(ValueError, match="--agents 5 is too few"):
        noise_for(5)


def test_time_world_counts_events():
    base = trading_accounts(_world(1, 0, 0.0)[0])
    r = time_world(5, 20, 0.2)
    assert r["steps"] == 5 and r["agents"] == base + 20
    assert r["events"] >= r["orders"] > 0 and r["wall"] > 0


def test_time_options_times_both_worlds_alternately():
    from experiments.bench.world import time_options

    r = time_options(steps=15, repeats=1)
    assert len(r["plain"]) == len(r["options"]) == 1
    assert r["option_books"] > 0 and r["books"] > r["option_books"]
    assert r["events_options"] > r["events_plain"] > 0  # the option makers' quotes
