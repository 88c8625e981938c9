"""Smoke test of the cascade benchmark on tiny worlds (keeps it runnable)."""

import pytest

from experiments.bench.cascade import growth, main, report, scale_series
from experiments.worlds import CASCADE_CAPITAL, WORLDS, cascade_scale
from sim.config import load_config


def test_cascade_world_shares_the_capital_at_every_size():
    for n in (1000, 4000):
        cfg = load_config(cascade_scale(leveraged=n, crash_step=30, window=5))
        lev = cfg.agents.leveraged
        assert lev.n == n and lev.usd * n == pytest.approx(CASCADE_CAPITAL)
        assert lev.max_order_notional == pytest.approx(2.5 * lev.usd)
        assert cfg.scenario.params["start_step"] == 30 and cfg.steps == 34
    assert load_config(cascade_scale(leveraged=1000)).agents.leveraged.usd == 10000.0
    assert WORLDS["cascade_scale"] is cascade_scale


def test_scale_series_times_the_crash_window(capsys):
    results = scale_series((100, 400), window=4, crash_step=20, noise=20)
    assert [r["leveraged"] for r in results] == [100, 400]
    for r in results:
        assert len(r["steps"]) == 4 and r["wall"] == pytest.approx(sum(r["steps"]))
        assert r["per_step"] > 0 and r["accounts"] > r["leveraged"]
    assert results[1]["liquidated"] > 0  # the window is the cascade
    assert growth(results, 100, 400) > 0
    report(results)
    out = capsys.readouterr().out
    assert out.count("[cascade]") == 2 and "x linear" in out and "target" not in out


def test_main_runs_and_reports_the_target_only_with_10k_and_100k(capsys):
    results = main(["--sizes", "60", "30", "--window", "3", "--crash-step", "15",
                    "--noise", "10"])
    assert [r["leveraged"] for r in results] == [30, 60]
    assert "30 leveraged traders" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--sizes", "0"])


def test_reference_times_the_25k_world_from_its_crash(monkeypatch, capsys):
    import experiments.bench.cascade as bench

    calls = []

    def fake(overrides, crash_step, window):
        calls.append((overrides, crash_step, window))
        return {"accounts": 25_308, "liquidated": 1946, "events": 2374, "steps": [0.1] * window,
                "wall": 0.1 * window, "per_step": 0.1}

    monkeypatch.setattr(bench, "warm_up", lambda: None)
    monkeypatch.setattr(bench, "time_window", fake)
    main(["--reference"])
    assert calls == [(["agents.noise.n=20000", "agents.leveraged.n=5000"], 600, 40)]
    assert "steps 600-639" in capsys.readouterr().out
