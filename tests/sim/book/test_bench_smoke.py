"""Smoke test of the book benchmark on a small stream (keeps it runnable)."""

from experiments.bench.book import generate_events, main


def test_generated_stream_is_seeded():
    a, b = generate_events(3000, seed=1), generate_events(3000, seed=1)
    assert (a == b).all()
    assert not (a == generate_events(3000, seed=2)).all()


def test_benchmark_runs_and_paths_agree(capsys):
    rate = main(["--events", "4000", "--repeat", "1"])
    assert set(rate) == {"batched", "per-call", "reference"}
    out = capsys.readouterr().out
    assert "identical in all three books" in out and "ratio batched/reference" in out
