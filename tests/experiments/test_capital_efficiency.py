"""capital_efficiency: per-book measures, paired tables, verdicts, failures and arguments."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from experiments import capital_efficiency as ce
from experiments.book_metrics import BOOKS, book_metrics, liquidation_notional
from experiments.common import StudyRunsFailed, load_study_config

ROOT = Path(__file__).resolve().parents[2]

TINY = ["regimes=[cross,portfolio]", "baselines=[cross]", "candidate=portfolio",
        "scenarios={jump_crash: [scenario.params.start_step=100]}", "replicates=2", "steps=150",
        "per_book=2", "accounts_every=10", "settle_steps=10",
        "overrides=[agents.noise.n=20,agents.fundamentalist.n=5,agents.momentum.n=5,"
        "agents.leveraged.n=10,agents.option_books.enter_steps=30]",
        "workers=1", "progress=false"]
"""2 regimes x 1 scenario x 2 replicates x 150 steps, small populations (about 20 s)."""

PAIRED = ["diff_vs_cross", "ci_low_95%_vs_cross", "ci_high_95%_vs_cross", "n_pairs_vs_cross"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    """The tiny study, run once for this module: ``(args, cfg, out)``."""
    out = tmp_path_factory.mktemp("capital_efficiency")
    args = [*TINY, f"output_dir={out}"]
    cfg = load_study_config("capital_efficiency", args)
    return args, cfg, ce.run_study(cfg)


def _copy(out: Path, dest: Path) -> list[str]:
    """A copy of the tiny study's folder and the arguments that point at it."""
    shutil.copytree(out, dest)
    return [*TINY, f"output_dir={dest}"]


def test_tiny_study_writes_every_table_and_figure(tiny) -> None:
    _, cfg, out = tiny
    specs = ce.build_specs(cfg)
    seeds = {(s.meta["regime"], s.meta["replicate"]): s.meta["seed"] for s in specs}
    assert seeds[("cross", 0)] == seeds[("portfolio", 0)] != seeds[("cross", 1)]
    agg = pd.read_csv(out / "aggregated.csv")
    assert len(agg) == 4 and (agg["status"] == "done").all()
    for book in BOOKS:
        for metric in ce.METRIC_LABELS:
            assert f"book.{book}.{metric}" in agg.columns
    assert agg["book.covered_call.req_per_risk"].notna().all()
    assert (agg["book.covered_call.accounts"] == 4).all()  # 2 per underlying
    assert (agg["book.dealer.accounts"] == 2).all()
    for stem in [f"books_{m}" for m in ce.METRIC_LABELS] + ["bad_debt", "verdict"]:
        for ext in ("csv", "md", "tex"):
            assert (out / "tables" / f"{stem}.{ext}").stat().st_size > 0
    for fig in ("req_per_risk", "req_per_notional"):
        for ext in ("png", "pdf"):
            assert (out / "figures" / f"{fig}.{ext}").stat().st_size > 0
    table = pd.read_csv(out / "tables" / "books_req_per_risk.csv")
    assert list(table.columns) == ["scenario", "book", "regime", "mean", *PAIRED, "runs",
                                   "runs_failed"]
    assert list(table["book"].drop_duplicates()) == list(BOOKS)
    assert len(table) == len(BOOKS) * 2 and (table["runs"] == 2).all()
    assert (table["runs_failed"] == 0).all()
    verdict = pd.read_csv(out / "tables" / "verdict.csv")
    assert list(verdict.columns) == ["scenario", "book", "portfolio_mean", "diff_vs_cross",
                                     "ci_low_vs_cross", "ci_high_vs_cross", "n_pairs_vs_cross",
                                     "lower_than_cross", "lower_than_all"]
    assert set(verdict["lower_than_cross"]) <= {"yes", "no", "inconclusive"}
    debt = pd.read_csv(out / "tables" / "bad_debt.csv")
    assert set(debt["measure"]) == {"recorded", "at_mark"} and set(debt["protocol"]) == {"alpha"}
    # post-processing alone reproduces the tables without re-running
    before = (out / "tables" / "books_req_per_risk.csv").read_text()
    ce.report(out, cfg)
    assert (out / "tables" / "books_req_per_risk.csv").read_text() == before


def test_regimes_see_the_same_price_path(tiny) -> None:
    _, _, out = tiny
    read = lambda name: pd.read_parquet(out / "runs" / name / "timeseries.parquet")  # noqa: E731
    a, b = read("jump_crash__cross__r00"), read("jump_crash__portfolio__r00")
    np.testing.assert_array_equal(a["BTC.fundamental"], b["BTC.fundamental"])
    assert not np.array_equal(a["BTC.fundamental"],
                              read("jump_crash__cross__r01")["BTC.fundamental"])


@pytest.mark.parametrize("metric", ["req_per_risk", "im_per_risk", "req_per_notional",
                                    "equity_lost"])
def test_paired_differences_are_the_replicate_wise_differences(tiny, metric) -> None:
    _, _, out = tiny
    agg = pd.read_csv(out / "aggregated.csv")
    table = pd.read_csv(out / "tables" / f"books_{metric}.csv")
    verdict = pd.read_csv(out / "tables" / "verdict.csv").set_index("book")
    t = stats.t.ppf(0.975, 1)
    for book in BOOKS:
        col = f"book.{book}.{metric}"
        wide = agg.pivot(index="replicate", columns="regime", values=col)
        d = (wide["portfolio"] - wide["cross"]).to_numpy()
        row = table.set_index(["book", "regime"]).loc[(book, "portfolio")]
        assert row["mean"] == pytest.approx(wide["portfolio"].mean(), rel=1e-12)
        assert row["diff_vs_cross"] == pytest.approx(d.mean(), rel=1e-12, abs=1e-12)
        half = t * d.std(ddof=1) / math.sqrt(2)
        assert row["ci_low_95%_vs_cross"] == pytest.approx(d.mean() - half, rel=1e-9, abs=1e-9)
        assert row["ci_high_95%_vs_cross"] == pytest.approx(d.mean() + half, rel=1e-9, abs=1e-9)
        assert row["n_pairs_vs_cross"] == 2
        base = table.set_index(["book", "regime"]).loc[(book, "cross")]
        assert base["diff_vs_cross"] == 0.0
        if metric == "req_per_risk":
            expect = ("yes" if d.mean() + half < 0 else "no" if d.mean() - half > 0
                      else "inconclusive")
            assert verdict.loc[book, "lower_than_cross"] == expect


def test_a_failed_run_is_nan_and_counted(tiny, tmp_path, monkeypatch, capsys) -> None:
    import experiments.sweep

    _, _, out = tiny
    args = _copy(out, tmp_path / "study")
    (tmp_path / "study" / "runs" / "jump_crash__portfolio__r01" / "done.json").unlink()

    def failing_run(overrides, *, out_dir, progress=False):
        raise RuntimeError("the world broke")

    monkeypatch.setattr(experiments.sweep, "_sim_run", failing_run)
    with pytest.raises(StudyRunsFailed) as exc:
        ce.run_study(load_study_config("capital_efficiency", args))
    assert (exc.value.failed, exc.value.total) == (1, 4)
    agg = pd.read_csv(tmp_path / "study" / "aggregated.csv").set_index("run")
    failed = agg.loc["jump_crash__portfolio__r01"]
    assert failed["status"] == "failed" and "the world broke" in failed["error"]
    assert failed[[f"book.{b}.req_per_risk" for b in BOOKS]].isna().all()
    table = pd.read_csv(tmp_path / "study" / "tables" / "books_req_per_risk.csv")
    port = table.loc[table["regime"] == "portfolio"]
    assert (port["runs_failed"] == 1).all() and (port["runs"] == 1).all()
    assert (port["n_pairs_vs_cross"] == 1).all() and port["ci_low_95%_vs_cross"].isna().all()
    kept = agg.loc["jump_crash__portfolio__r00"]
    for row in port.itertuples():
        assert row.mean == pytest.approx(kept[f"book.{row.book}.req_per_risk"], rel=1e-12)
    cross = table.loc[table["regime"] == "cross"]
    assert (cross["runs_failed"] == 0).all() and (cross["runs"] == 2).all()
    verdict = pd.read_csv(tmp_path / "study" / "tables" / "verdict.csv")
    assert (verdict["lower_than_cross"] == "inconclusive").all()
    with pytest.raises(SystemExit) as ex:
        ce.main(args)
    assert ex.value.code == 1
    assert "capital_efficiency: 1 of 4 runs failed" in capsys.readouterr().err


def test_a_finished_run_without_snapshots_counts_as_failed(tiny, tmp_path) -> None:
    _, _, out = tiny
    args = _copy(out, tmp_path / "study")
    (tmp_path / "study" / "runs" / "jump_crash__cross__r00" / "accounts.parquet").unlink()
    with pytest.raises(StudyRunsFailed) as exc:
        ce.run_study(load_study_config("capital_efficiency", [*args, "report_only=true"]))
    assert exc.value.failed == 1
    agg = pd.read_csv(tmp_path / "study" / "aggregated.csv").set_index("run")
    assert agg.loc["jump_crash__cross__r00", "status"] == "failed"
    assert "accounts.parquet" in agg.loc["jump_crash__cross__r00", "error"]
    assert np.isnan(agg.loc["jump_crash__cross__r00", "book.basis.req_per_notional"])
    table = pd.read_csv(tmp_path / "study" / "tables" / "books_req_per_notional.csv")
    assert (table.loc[table["regime"] == "cross", "runs_failed"] == 1).all()


def test_bad_argument_exits_2_with_one_line(tmp_path) -> None:
    # report_only: were the argument let through, nothing would run (the folder would appear)
    proc = subprocess.run([sys.executable, "-m", "experiments.capital_efficiency", "steps=150",
                           "report_only=true", f"output_dir={tmp_path / 'out'}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("capital_efficiency: argument error: steps")
    assert "warm-up" in lines[0] and not (tmp_path / "out").exists()


@pytest.mark.parametrize(("argv", "key"), [
    (["candidate=cross"], "candidate"),
    (["baselines=[cross,spread]"], "baselines"),
    (["regimes=[cross,portfolio]"], "baselines"),
    (["overrides=[output.accounts_every=0]"], "overrides[0]"),
    (["scenarios={calm: [agents.option_books.counts.basis=0]}"], "scenarios.calm[0]"),
    (["books=[basis,maker]"], "books[1]"),
])
def test_bad_arguments_stop_before_any_work(argv, key, tmp_path, capsys, monkeypatch) -> None:
    def tripwire(cfg):
        raise AssertionError("the study started")

    monkeypatch.setattr(ce, "run_study", tripwire)
    with pytest.raises(SystemExit) as ex:
        ce.main([*argv, f"output_dir={tmp_path / 'out'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert ex.value.code == 2 and len(err) == 1 and err[0].startswith(
        f"capital_efficiency: argument error: {key}")
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------- measures by hand

def _accounts() -> pd.DataFrame:
    """Two covered-call accounts and a hedged basis account over three snapshots."""
    rows = []
    for step, (eq1, eq2) in zip((10, 20, 30), ((100.0, 200.0), (90.0, 210.0), (70.0, 230.0)),
                                strict=True):
        rows += [
            {"step": step, "account": 1, "agent": "OptionBookPopulation:covered_call",
             "equity": -1.0, "value": eq1, "initial": 10.0 * step, "haircut_held": 5.0,
             "risk": 20.0, "perp_notional": 100.0, "option_notional": 100.0},
            {"step": step, "account": 2, "agent": "OptionBookPopulation:covered_call",
             "equity": eq2 - 50.0, "value": eq2, "initial": 30.0, "haircut_held": 0.0,
             "risk": 10.0 * step, "perp_notional": 300.0, "option_notional": 0.0},
            {"step": step, "account": 3, "agent": "OptionBookPopulation:basis",
             "equity": 500.0, "value": 500.0, "initial": 7.0, "haircut_held": 3.0, "risk": 1e-13,
             "perp_notional": 1000.0, "option_notional": 0.0}]
    return pd.DataFrame(rows)


def test_book_measures_by_hand() -> None:
    liq = pd.DataFrame({"step": [25, 26, 27], "account": [2, 2, 9], "kind": ["liquidator"] * 3,
                        "notional": [50.0, 25.0, 1e6]})
    m = book_metrics(_accounts(), liq, "OptionBookPopulation:covered_call", warmup=10)
    # snapshots 20 and 30 count; sum (IM + haircuts) / sum risk per snapshot, then the mean
    req = [(205.0 + 30.0) / (20.0 + 200.0), (305.0 + 30.0) / (20.0 + 300.0)]
    im = [(200.0 + 30.0) / 220.0, (300.0 + 30.0) / 320.0]
    assert m["req_per_risk"] == pytest.approx(np.mean(req), rel=1e-15)
    assert m["im_per_risk"] == pytest.approx(np.mean(im), rel=1e-15)
    assert m["req_per_notional"] == pytest.approx(np.mean([235.0 / 500.0, 335.0 / 500.0]))
    # mark-to-market value (not the regime's margin equity) from the first post-warm-up
    # snapshot (20) to the last (30): account 1 loses 20, account 2 gains 20, and a gain
    # does not offset a loss
    assert m["equity_lost"] == pytest.approx(20.0)
    assert m["equity_lost_frac"] == pytest.approx(20.0 / 300.0)
    assert (m["liquidations"], m["accounts_liquidated"], m["liquidation_notional"]) == (
        2.0, 1.0, 75.0)
    assert m["accounts"] == 2.0
    # a hedged book: round-off risk is no risk, so no ratio (NaN, never a huge number or 0)
    basis = book_metrics(_accounts(), liq, "OptionBookPopulation:basis", warmup=10)
    assert np.isnan(basis["req_per_risk"]) and np.isnan(basis["req_per_notional"])
    assert basis["equity_lost"] == 0.0 and basis["liquidations"] == 0.0
    none = book_metrics(_accounts(), liq, "OptionMarketMaker:dealer", warmup=10)
    assert np.isnan(none["req_per_risk"]) and np.isnan(none["equity_lost"])


def test_liquidation_notional_values_options_at_the_index() -> None:
    events = pd.DataFrame({
        "step": [5, 5, 6, 7, 7, 8], "account": [1, 1, 2, 3, 3, 3],
        "kind": ["liquidator", "backstop", "backstop", "option_close", "option_takeover",
                 "bad_debt"],
        "instrument": [0, 1, -1, 4, 5, -1], "size": [2.0, -1.0, 100.0, -3.0, 0.5, 0.0],
        "notional": [200.0, 50.0, 100.0, 9.0, 1.0, 0.0]})
    listings = pd.DataFrame({"kind": ["list", "list", "settle"], "instrument": [4, 5, 4],
                             "contract": ["alpha:BTC-T480-57000-C", "alpha:ETH-T480-3000-P",
                                          "alpha:BTC-T480-57000-C"]})
    ts = pd.DataFrame({"step": [6, 7], "BTC.index": [60_000.0, 58_000.0],
                       "ETH.index": [3_000.0, 2_900.0]})
    out = liquidation_notional(events, listings, ts)
    assert list(out["kind"]) == ["liquidator", "backstop", "option_close", "option_takeover"]
    np.testing.assert_allclose(out["notional"], [200.0, 50.0, 3.0 * 58_000.0, 0.5 * 2_900.0])
    with pytest.raises(ValueError, match="instrument 5"):
        liquidation_notional(events, listings.iloc[[0]], ts)


def test_two_baselines_and_the_verdict() -> None:
    rows = []
    values = {"cross": [2.0, 3.0, 4.0], "static": [0.5, 0.9, 1.8], "portfolio": [1.0, 1.5, 2.5]}
    for regime, xs in values.items():
        for k, x in enumerate(xs):
            rows.append({"scenario": "calm", "regime": regime, "replicate": k,
                         "status": "done", "book.basis.req_per_risk": x})
    table = ce.book_table(pd.DataFrame(rows), "req_per_risk", ["basis"], ["cross", "static"])
    port = table.set_index("regime").loc["portfolio"]
    d = np.array(values["portfolio"]) - np.array(values["cross"])   # -1, -1.5, -1.5
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    assert port["diff_vs_cross"] == pytest.approx(d.mean())
    assert port["ci_high_95%_vs_cross"] == pytest.approx(d.mean() + half)
    assert port["diff_vs_static"] == pytest.approx(0.6)               # 0.5, 0.6, 0.7
    v = ce.verdict_table(table, "portfolio", ["cross", "static"]).iloc[0]
    assert v["lower_than_cross"] == "yes" and v["lower_than_static"] == "no"
    assert v["lower_than_all"] == "no"
    assert ce.verdict(-1.0, 1.0) == "inconclusive" and ce.verdict(np.nan, np.nan) == "inconclusive"
