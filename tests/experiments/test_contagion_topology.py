"""contagion_topology: Wilson interval, exact contagion probabilities, tiny end-to-end study."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments import contagion_agent_topology, stats
from experiments import contagion_networks as networks
from experiments import contagion_topology as ct
from experiments.common import load_study_config


def test_wilson_interval_known_values() -> None:
    lo, hi = stats.wilson_interval(5, 10, 0.95)
    assert lo == pytest.approx(0.2366, abs=5e-5) and hi == pytest.approx(0.7634, abs=5e-5)
    assert stats.wilson_interval(0, 10)[0] == 0.0 and stats.wilson_interval(10, 10)[1] == 1.0
    assert 0.0 < stats.wilson_interval(0, 10)[1] < 0.35
    with pytest.raises(ValueError):
        stats.wilson_interval(11, 10)


def test_t_interval() -> None:
    ci = stats.t_interval([1.0, 2.0, 3.0, np.nan])
    assert ci["n"] == 3 and ci["mean"] == 2.0
    assert ci["ci_high"] - 2.0 == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)


def test_probability_zero_when_capital_covers_all_exposure() -> None:
    rng = np.random.default_rng(3)
    A = rng.integers(0, 5, size=(6, 6))
    np.fill_diagonal(A, 0)
    # capital equal to total exposure: a total loss is exactly survived (exact arithmetic)
    assert ct.contagion_probability(A, A.sum(axis=1)) == 0.0
    assert ct.contagion_probability(A, A.sum(axis=1) + 1) == 0.0


def test_probability_one_on_a_chain() -> None:
    n = 5
    A = np.zeros((n, n), dtype=np.int64)
    for i in range(1, n):
        A[i, i - 1] = 2  # i is exposed to its predecessor, more than its capital
    K = np.ones(n, dtype=np.int64)
    assert ct.contagion_probability(A, K, shocks=[0]) == 1.0
    assert ct.contagion_probability(A, 2 * K, shocks=[0]) == 0.0  # loss == capital survives
    ring = A.copy()
    ring[0, n - 1] = 2
    assert ct.contagion_probability(ring, K) == 1.0
    out = ct.shock_outcome(A, K, 0)
    assert out["gk_defaults"] == n - 1 and out["multi"]
    # DebtRank: everyone fully distressed; value = liabilities share (0.25 each of 0..3)
    assert out["debtrank"] == pytest.approx(0.75)
    # Eisenberg–Noe recovers: node 1 defaults (external assets 3 < obligations 4) and pays
    # 3 pro rata, 1.5 to node 2, which survives with equity 0.5; lost 1 + 0.5 of capital 4
    assert out["en_defaults"] == 1 and out["en_loss_share"] == pytest.approx(0.375)


def test_core_periphery_densities_hit_target() -> None:
    n, k = 25, 3
    pc, px, pp = networks._core_periphery_densities(n, k, 0.1, (1.0, 0.25, 0.02))
    expected = k * (k - 1) * pc + 2 * k * (n - k) * px + (n - k) * (n - k - 1) * pp
    assert expected == pytest.approx(0.1 * n * (n - 1))
    G = ct.draw_network("core_periphery", n, 0.1, np.random.default_rng(0), 0.12)
    assert sum(G.nodes[i]["core"] for i in G) == k


def test_tiny_study_writes_table_and_figure(tmp_path) -> None:
    cfg = load_study_config("contagion_topology", [
        "n=8", "densities=[0.1,0.3]", "replicates=6", "progress=false",
        "topologies={erdos_renyi: {}, scale_free: {gamma: [2.5]}, "
        "core_periphery: {core_fraction: [0.25]}}", f"output_dir={tmp_path}",
        "agent_model.enabled=false", "agent_topology.enabled=false"])
    out = ct.run_study(cfg)
    for ext in ("csv", "md", "tex"):
        assert (out / "tables" / f"contagion_topology.{ext}").stat().st_size > 0
    for name in ("contagion_probability", "example_erdos_renyi", "example_scale_free",
                 "example_core_periphery"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 0
        assert (out / "figures" / f"{name}.pdf").stat().st_size > 0
    table = pd.read_csv(out / "tables" / "contagion_topology.csv")
    assert len(table) == 6 and (table["replicates"] == 6).all()
    assert ((table["p_multi_low"] <= table["p_multi"])
            & (table["p_multi"] <= table["p_multi_high"])).all()
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 36
    # common random numbers: replicate k has one seed in every cell
    assert trials.groupby("replicate")["seed"].nunique().eq(1).all()


AGENT = ["n=6", "densities=[0.2]", "replicates=2", "progress=false",
         "topologies={erdos_renyi: {}}", "agent_model.regimes=[portfolio,static]",
         "agent_model.crashes=[0.3]", "agent_model.replicates=2", "agent_model.horizon=6",
         "agent_model.noise=10", "agent_topology.enabled=false"]


def test_tiny_agent_model_part(tmp_path) -> None:
    cfg = load_study_config("contagion_topology", [*AGENT, f"output_dir={tmp_path}"])
    out = ct.run_study(cfg)
    runs = pd.read_csv(out / "agent_runs.csv")
    assert len(runs) == 4
    assert runs.groupby("replicate")["seed"].nunique().eq(1).all()  # common random numbers
    assert (runs["alpha_bad_debt"] > 1e5).all()  # the shock at alpha always hits
    assert (runs["token_price_end"] < 0.7).all()
    table = pd.read_csv(out / "tables" / "contagion_agent_model.csv").set_index("regime")
    # portfolio margin keeps beta's traders at its IM cap: the impaired token liquidates them;
    # isolated (static) margin does not count the token against positions: no contagion
    assert table.loc["portfolio", "p_contagion"] == 1.0
    assert table.loc["static", "p_contagion"] == 0.0
    assert table.loc["portfolio", "p_contagion_low"] == pytest.approx(
        stats.wilson_interval(2, 2)[0])
    port = runs[runs["regime"] == "portfolio"]
    assert (port["reach"] == 2).all() and (port["beta_liquidations"] > 0).all()
    assert (port["time_to_contagion"] >= 1).all()
    assert table.loc["portfolio", "beta_liquidations_mean"] == pytest.approx(
        port["beta_liquidations"].mean())
    assert runs.loc[runs["regime"] == "static", "time_to_contagion"].isna().all()
    for ext in ("csv", "md", "tex"):
        assert (out / "tables" / f"contagion_agent_model.{ext}").stat().st_size > 0
    # resumable: a second call re-uses the finished runs and gives the same table
    again = ct.run_agent_model(cfg, out)
    assert again.set_index("regime")["p_contagion"].equals(table["p_contagion"])


def test_agent_model_rejects_bad_regime(tmp_path) -> None:
    cfg = load_study_config("contagion_topology", [*AGENT, "agent_model.regimes=[sometimes]",
                                                   f"output_dir={tmp_path}"])
    with pytest.raises(ValueError, match=r"agent_model\.regimes"):
        ct.agent_specs(cfg)


TOPO = ["n=6", "densities=[0.2]", "replicates=2", "progress=false",
        "topologies={erdos_renyi: {}}", "agent_model.enabled=false",
        "agent_topology.n=4", "agent_topology.densities=[0.3,0.6]", "agent_topology.replicates=3",
        "agent_topology.topologies={erdos_renyi: {}, core_periphery: {core_fraction: [0.5]}}",
        "agent_topology.regimes=[cross,portfolio]", "agent_topology.steps=12",
        "agent_topology.shock_step=4", "agent_topology.world.noise=2",
        "agent_topology.world.leveraged=3"]


def test_tiny_agent_topology_part(tmp_path) -> None:
    cfg = load_study_config("contagion_topology", [*TOPO, f"output_dir={tmp_path}"])
    out = ct.run_study(cfg)
    runs = pd.read_csv(out / "agent_topology_runs.csv")
    assert len(runs) == 2 * 2 * 2 * 3
    # common random numbers: one seed, network and shocked protocol per replicate and cell
    cell = ["topology", "density", "replicate"]
    assert runs.groupby(cell)[["seed", "shocked", "exposed"]].nunique().eq(1).all().all()
    assert runs.groupby("replicate")["seed"].nunique().eq(1).all()
    # a protocol nobody is exposed to cannot pass the shock on; reach is bounded by reachability
    assert (runs.loc[runs["exposed"] == 0, "reach"] == 0).all()
    assert (runs["reach"] <= runs["reachable"]).all()
    assert (runs["multi"] == (runs["reach"] >= 2)).all()
    assert (runs["shocked_bad_debt"] > 0).all()
    table = pd.read_csv(out / "tables" / "contagion_agent_topology.csv")
    assert len(table) == 2 * 2 * 2 and (table["replicates"] == 3).all()
    for f in ("multi", "any_contagion", "second_hop"):
        assert ((table[f"p_{f}_low"] <= table[f"p_{f}"])
                & (table[f"p_{f}"] <= table[f"p_{f}_high"])).all()
    row = table.iloc[0]
    g = runs[(runs["topology"] == row["topology"]) & (runs["density"] == row["density"])
              & (runs["regime"] == row["regime"])]
    assert row["p_multi_low"] == pytest.approx(stats.wilson_interval(int(g["multi"].sum()), 3)[0])
    assert row["reach_mean"] == pytest.approx(g["reach"].mean())
    for ext in ("png", "pdf"):
        assert (out / "figures" / f"contagion_agent_topology.{ext}").stat().st_size > 0
    # the channel shut: nothing beyond the shocked protocol
    off = load_study_config("contagion_topology", [*TOPO, "agent_topology.token_impairment=false",
                                                   "agent_topology.regimes=[cross]",
                                                   f"output_dir={tmp_path / 'off'}"])
    (tmp_path / "off").mkdir()
    t_off = ct.run_agent_topology(off, tmp_path / "off")
    assert (t_off["reach_mean"] == 0).all() and (t_off["p_any_contagion"] == 0).all()


def test_agent_topology_rejects_bad_regime(tmp_path) -> None:
    cfg = load_study_config("contagion_topology", [*TOPO, "agent_topology.regimes=[sometimes]",
                                                   f"output_dir={tmp_path}"])
    with pytest.raises(ValueError, match=r"agent_topology\.regimes"):
        ct.run_agent_topology(cfg, tmp_path)


def test_agent_topology_resumes_from_its_checkpoint(tmp_path, monkeypatch) -> None:
    """Interrupted after one row (plus half a line): the rerun computes only the missing rows.

    It writes the same bytes; a finished study re-runs nothing; another config
    reuses nothing.
    """
    small = [*TOPO, "agent_topology.densities=[0.6]", "agent_topology.regimes=[cross]",
             "agent_topology.topologies={erdos_renyi: {}}", "agent_topology.replicates=3",
             f"output_dir={tmp_path}"]
    cfg = load_study_config("contagion_topology", small)
    ct.run_agent_topology(cfg, tmp_path)
    first = (tmp_path / "agent_topology_runs.csv").read_bytes()
    ckpt = tmp_path / "agent_topology_runs.jsonl"
    lines = ckpt.read_text().splitlines()
    assert len(lines) == 3
    ckpt.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])  # killed mid-write
    calls = []
    trial = ct.topology_trial
    monkeypatch.setattr(contagion_agent_topology, "topology_trial",
                        lambda *a, **k: calls.append(1) or trial(*a, **k))
    ct.run_agent_topology(cfg, tmp_path)
    assert len(calls) == 2
    assert (tmp_path / "agent_topology_runs.csv").read_bytes() == first
    ct.run_agent_topology(cfg, tmp_path)
    assert len(calls) == 2
    other = load_study_config("contagion_topology", [*small, "agent_topology.shock_fraction=0.5"])
    ct.run_agent_topology(other, tmp_path)
    assert len(calls) == 5
