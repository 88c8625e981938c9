"""sim.contagion.topology_world: worlds from exposures, multi-hop cascades, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from sim.contagion.topology_world import (
    hop_distances,
    open_borrowers,
    run_topology,
    token_name,
    topology_outcome,
    topology_world,
)
from sim.network import collateral_graph_from_config, exposure_matrix

# A[i, j] > 0: p{i}'s traders hold T{j}. Chain: 1 holds T0, 2 holds T1, 3 holds T2.
CHAIN = np.zeros((4, 4))
CHAIN[1, 0] = CHAIN[2, 1] = CHAIN[3, 2] = 1.0
FAST = {"steps": 14, "noise": 3, "leveraged": 4, "borrowers": 3}


def test_config_has_exactly_the_tokens_holdings_and_haircuts_of_A() -> None:
    A = np.array([[0.0, 2.0, 0.0], [0.0, 0.0, 0.0], [1.0, 3.0, 0.0]])
    w = topology_world(A, holding_usd=1000.0, haircut=0.2, regime="cross", **FAST)
    protos = w.cfg.protocols
    assert [p.name for p in protos] == ["p0", "p1", "p2"]
    assert [p.issues.name for p in protos] == ["T0", "T1", "T2"]
    unit = 2.0  # mean positive weight
    assert dict(protos[0].issues.holdings) == {"p2": pytest.approx(1000.0 * 1.0 / unit)}
    assert dict(protos[1].issues.holdings) == {"p0": pytest.approx(1000.0),
                                               "p2": pytest.approx(1500.0)}
    assert dict(protos[2].issues.holdings) == {}
    for i, p in enumerate(protos):
        tokens = {k: v for k, v in p.margin.haircuts.items() if k.startswith("T")}
        assert tokens == {token_name(j): 0.2 for j in range(3) if A[i, j] > 0}
        assert p.margin.name == "cross" and p.liquidation.bad_debt == "write_off"
        assert list(p.assets) == ["BTC"] and not p.spot
    # the collateral graph of the config gives back A's support
    plain = {"market": {"quote": "USD", "assets": []},
             "tokens": {token_name(j): 1.0 for j in range(3)},
             "protocols": [{"name": p.name,
                            "accepts": {k: v for k, v in p.margin.haircuts.items()
                                        if k.startswith("T")},
                            "issues": [p.issues.name]} for p in protos]}
    G = collateral_graph_from_config(plain)
    for (_u, _v, d) in G.edges(data=True):
        if "accepts" in d["relation"]:
            d["exposure"] = 1.0
    _, W = exposure_matrix(G)
    assert np.array_equal(W > 0, A > 0)


def test_minted_units_match_supply() -> None:
    w = topology_world(CHAIN, **{**FAST, "borrowers": 2, "min_supply": 1.0})
    from sim.model import MarketModel

    m = MarketModel(w.cfg)
    open_borrowers(m, w)
    for j, p in enumerate(w.cfg.protocols):
        a = m.asset_names.index(token_name(j))
        held = m.ledger.collateral[:, a].copy()
        held[m.ledger.world_row] = 0.0  # the outside world minted them
        minted = float(held.sum())
        expected = p.issues.supply if CHAIN[:, j].any() else 0.0
        assert minted == pytest.approx(expected)


def test_chain_shock_reaches_downstream_only_with_impairment() -> None:
    w = topology_world(CHAIN, regime="cross", **FAST)
    base = run_topology(w, None, 0.6, 5)
    hit = run_topology(w, 0, 0.6, 5)
    out = topology_outcome(hit, base, 0, CHAIN)
    assert hit.asset_prices[hit.asset_names.index("T0")] == pytest.approx(0.4)
    assert out["reach"] >= 1 and out["reach_bad_debt"] >= 1  # loans at p1 go bankrupt
    assert hit.liquidation.bad_debt[1] > 0 and out["time_to_contagion"] == 1.0
    assert out["equity_loss"] > 0
    off = topology_world(CHAIN, regime="cross", token_impairment=False, **FAST)
    out_off = topology_outcome(run_topology(off, 0, 0.6, 5), run_topology(off, None, 0.6, 5),
                               0, CHAIN)
    assert out_off["reach"] == 0 and out_off["bad_debt_beyond"] == 0.0
    assert abs(out_off["equity_loss"]) < 1e-6 * 1e6


def test_second_hop_needs_enough_first_hop_bad_debt() -> None:
    # heavy loans relative to holdings: p1's bad debt impairs T1 by more than 1 - ltv
    kw = {**FAST, "holding_usd": 1000.0, "borrowers": 4, "borrow_usd": 50_000.0, "ltv": 0.8}
    w = topology_world(CHAIN, regime="cross", **kw)
    out = topology_outcome(run_topology(w, 0, 0.9, 5), run_topology(w, None, 0.9, 5), 0, CHAIN)
    assert out["max_hops"] >= 2 and out["reach_bad_debt"] >= 2
    # a small shock stays inside: the loans at p1 survive a 10 % markdown (ltv 0.8)
    small = topology_outcome(run_topology(w, 0, 0.1, 5), run_topology(w, None, 0.1, 5), 0,
                             CHAIN)
    assert small["reach_bad_debt"] == 0


def test_deterministic() -> None:
    w = topology_world(CHAIN, regime="portfolio", seed=3, **FAST)
    a = topology_outcome(run_topology(w, 0, 0.6, 5), run_topology(w, None, 0.6, 5), 0, CHAIN)
    b = topology_outcome(run_topology(w, 0, 0.6, 5), run_topology(w, None, 0.6, 5), 0, CHAIN)
    assert a == pytest.approx(b, nan_ok=True)


def test_hop_distances() -> None:
    assert hop_distances(CHAIN, 0).tolist() == [0, 1, 2, 3]
    assert hop_distances(CHAIN, 2).tolist() == [-1, -1, 0, 1]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"regime": "sometimes"}, "regime"),
    ({"haircut": 1.0}, "haircut"),
    ({"ltv": 0.95, "haircut": 0.1}, "ltv"),
    ({"borrowers": -1}, "borrowers"),
    ({"leverage": (5.0, 2.0)}, "leverage"),
])
def test_bad_input_one_line(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match) as err:
        topology_world(CHAIN, **{**FAST, **kwargs})
    assert "\n" not in str(err.value)


def test_bad_matrix_and_shock() -> None:
    with pytest.raises(ValueError, match="square"):
        topology_world(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        topology_world(-CHAIN)
    w = topology_world(CHAIN, **FAST)
    with pytest.raises(ValueError, match="shocked"):
        run_topology(w, 7)
    with pytest.raises(ValueError, match="shock_fraction"):
        run_topology(w, 0, 0.0)
