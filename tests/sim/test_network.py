"""The collateral graph: construction, config, exposures, generators, GraphML."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from sim.network import (
    build_collateral_graph,
    collateral_graph_from_config,
    core_periphery_exposures,
    core_share,
    erdos_renyi_exposures,
    exposure_density,
    exposure_matrix,
    exposures_to_graph,
    has_relation,
    herfindahl,
    read_graphml,
    relation_edges,
    scale_free_exposures,
    update_exposures,
    update_prices,
    write_graphml,
)


def _defi() -> nx.DiGraph:
    """Three protocols: a stablecoin issuer, a lender accepting it, a venue with its own token."""
    return build_collateral_graph(
        protocols={"maker": {"insurance_fund": 50.0},
                   "aave": {"insurance_fund": 20.0, "equity": 30.0},
                   "ftx": {"insurance_fund": 5.0}},
        assets={"USD": 1.0, "ETH": 3000.0, "DAI": 1.0, "FTT": {"price": 25.0, "chain": "eth"}},
        accepts={"maker": {"ETH": 0.2}, "aave": {"ETH": {"haircut": 0.15, "exposure": 400.0},
                                                 "DAI": {"haircut": 0.05, "exposure": 100.0}},
                 "ftx": {"FTT": {"haircut": 0.5, "exposure": 70.0}, "DAI": 0.1, "USD": 0.0}},
        issues={"maker": "DAI", "ftx": ["FTT"]},
        markets={"ftx": {"ETH": {"perp": True}, "FTT": {"perp": False}}, "aave": ["ETH"]},
    )


# --------------------------------------------------------------------------- building

def test_nodes_edges_and_attributes():
    G = _defi()
    assert G.nodes["maker"]["kind"] == "protocol" and G.nodes["ETH"]["kind"] == "asset"
    assert G.nodes["aave"]["equity"] == 30.0
    assert G.nodes["maker"]["equity"] == 50.0  # defaults to the insurance fund
    assert G.nodes["DAI"]["issuer"] == "maker" and G.nodes["ETH"]["issuer"] == ""
    assert G.nodes["FTT"]["chain"] == "eth" and G.nodes["FTT"]["price"] == 25.0
    assert G.edges["aave", "DAI"] == {"relation": "accepts", "haircut": 0.05, "exposure": 100.0}
    assert G.edges["maker", "DAI"]["relation"] == "issues"
    # One DiGraph edge per pair: several relations are joined in canonical order.
    assert G.edges["aave", "ETH"]["relation"] == "accepts+lists"
    assert G.edges["ftx", "FTT"]["relation"] == "accepts+issues+lists"
    assert G.edges["ftx", "FTT"]["perp"] is False and G.edges["ftx", "ETH"]["perp"] is True
    assert has_relation(G, "ftx", "FTT", "issues") and not has_relation(G, "maker", "ETH", "lists")
    assert {(u, v) for u, v, _ in relation_edges(G, "lists")} == {("ftx", "ETH"), ("ftx", "FTT"),
                                                                  ("aave", "ETH")}
    assert {(u, v) for u, v, _ in relation_edges(G, "issues")} == {("maker", "DAI"), ("ftx", "FTT")}
    assert G.nodes["aave"]["value_locked"] == 500.0 and G.nodes["ftx"]["value_locked"] == 70.0


def test_update_exposures_and_prices():
    G = _defi()
    update_exposures(G, {("maker", "ETH"): 900.0, "ftx": {"DAI": 30.0}})
    assert G.edges["maker", "ETH"]["exposure"] == 900.0
    assert G.nodes["maker"]["value_locked"] == 900.0
    assert G.nodes["ftx"]["value_locked"] == 100.0
    update_prices(G, {"ETH": 2000.0})
    assert G.nodes["ETH"]["price"] == 2000.0
    with pytest.raises(ValueError, match="no edge 'maker' -> 'FTT'"):
        update_exposures(G, {("maker", "FTT"): 1.0})
    with pytest.raises(ValueError, match="not accepts/exposure"):
        update_exposures(G, {("maker", "DAI"): 1.0})
    with pytest.raises(ValueError, match="exposures"):
        update_exposures(G, {("aave", "ETH"): -1.0})
    with pytest.raises(ValueError, match="not an asset node"):
        update_prices(G, {"maker": 1.0})


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"accepts": {"aave": {"BTC": 0.1}}}, "unknown asset 'BTC'"),
    ({"accepts": {"nope": {"ETH": 0.1}}}, "unknown protocol 'nope'"),
    ({"accepts": {"aave": {"ETH": 1.5}}}, r"haircut must be finite and \[0.0, 1.0\]"),
    ({"issues": {"aave": "ETH", "maker": "ETH"}}, "issued by both 'aave' and 'maker'"),
    ({"protocols": {"aave": {"value_locked": 3.0}}}, "value_locked is derived"),
    ({"protocols": {"aave": {"insurance_fund": -1.0}}}, "insurance_fund"),
    ({"protocols": ["ETH"]}, "must not share names"),
    ({"assets": {"ETH": -3.0}}, "price"),
])
def test_bad_arguments_are_one_line_errors(kwargs, match):
    args = {"protocols": ["aave", "maker"], "assets": {"ETH": 3000.0}} | kwargs
    with pytest.raises(ValueError, match=match) as info:
        build_collateral_graph(**args)
    assert "\n" not in str(info.value)


def test_from_run_config(small_cfg):
    G = collateral_graph_from_config(small_cfg, exposures={("alpha", "BTC"): 1.5e6})
    assert sorted(n for n, d in G.nodes(data=True) if d["kind"] == "asset") == ["BTC", "ETH", "USD"]
    assert G.nodes["USD"]["price"] == 1.0 and G.nodes["BTC"]["price"] == 60000.0
    assert G.nodes["alpha"]["insurance_fund"] == 1_000_000.0
    acc = {v: d["haircut"] for _, v, d in relation_edges(G, "accepts")}
    assert acc == {"USD": 0.0, "BTC": 0.05, "ETH": 0.10}  # conf/margin/cross.yaml
    assert {v for _, v, _ in relation_edges(G, "lists")} == {"BTC", "ETH"}
    assert G.edges["alpha", "BTC"]["spot"] is True and G.edges["alpha", "BTC"]["perp"] is True
    assert G.nodes["alpha"]["value_locked"] == 1.5e6


def test_from_structured_dataclass():
    from sim.config import ProtocolConfig, RunConfig

    cfg = RunConfig(protocols=[ProtocolConfig(name="a"), ProtocolConfig(name="b", spot=False,
                                                                         perp=False)])
    G = collateral_graph_from_config(cfg)
    assert [n for n, d in G.nodes(data=True) if d["kind"] == "protocol"] == ["a", "b"]
    assert has_relation(G, "a", "USD", "accepts") and has_relation(G, "a", "BTC", "lists")
    assert not G.has_edge("b", "BTC") and has_relation(G, "b", "USD", "accepts")


def test_from_plain_dict_with_issued_tokens():
    cfg = {"market": {"quote": "USD", "assets": [{"name": "ETH", "price": 3000.0}]},
           "margin": {"haircuts": {"USD": 0.0, "ETH": 0.1, "BTC": 0.05}},
           "tokens": {"DAI": 1.0},
           "protocols": [{"name": "maker", "spot": False, "perp": False, "insurance_fund": 10.0,
                          "issues": ["DAI"]},
                         {"name": "aave", "spot": True, "accepts": {"DAI": 0.05, "ETH": 0.2}}]}
    G = collateral_graph_from_config(cfg, exposures={("aave", "DAI"): 40.0})
    assert not G.has_edge("maker", "BTC") and G.edges["maker", "ETH"]["haircut"] == 0.1
    assert set(G.successors("aave")) == {"DAI", "ETH"} and G.edges["aave", "ETH"]["haircut"] == 0.2
    assert not has_relation(G, "maker", "ETH", "lists") and has_relation(G, "aave", "ETH", "lists")
    assert not G.has_edge("aave", "USD")
    nodes, W = exposure_matrix(G)
    assert nodes == ["maker", "aave"]
    np.testing.assert_array_equal(W, [[0.0, 0.0], [40.0, 0.0]])


def test_exposure_matrix_direct_and_through_tokens():
    G = _defi()
    G.add_edge("maker", "aave", relation="exposure", exposure=7.0)
    nodes, W = exposure_matrix(G)
    assert nodes == ["maker", "aave", "ftx"]
    # aave holds 100 of maker's DAI; ftx holds DAI (exposure 0) and its own FTT (diagonal dropped).
    np.testing.assert_array_equal(W, [[0, 7, 0], [100, 0, 0], [0, 0, 0]])
    _, W0 = exposure_matrix(G, through_tokens=False)
    np.testing.assert_array_equal(W0, [[0, 7, 0], [0, 0, 0], [0, 0, 0]])


def test_concentration_measures():
    W = np.zeros((4, 4))
    W[1:, 0] = 1.0  # everyone exposed to node 0 only
    assert herfindahl(W) == 1.0 and core_share(W, [0]) == 1.0
    W = np.ones((4, 4)) - np.eye(4)
    assert herfindahl(W) == pytest.approx(0.25) and exposure_density(W) == 1.0
    assert math.isnan(herfindahl(np.zeros((3, 3))))


# --------------------------------------------------------------------------- generators

def _edges(G):
    return sorted((u, v, d["exposure"]) for u, v, d in G.edges(data=True))


@pytest.mark.parametrize("gen", [
    lambda rng: erdos_renyi_exposures(300, 0.05, rng),
    lambda rng: scale_free_exposures(300, 0.05, rng),
    lambda rng: core_periphery_exposures(300, 20, rng),
])
def test_generators_are_deterministic(gen):
    a, b = gen(np.random.default_rng(7)), gen(np.random.default_rng(7))
    assert _edges(a) == _edges(b) and a.graph == b.graph
    assert _edges(gen(np.random.default_rng(8))) != _edges(a)
    assert not any(u == v for u, v in a.edges)


@pytest.mark.parametrize("density", [0.02, 0.1, 0.3])
def test_erdos_renyi_density(density):
    G = erdos_renyi_exposures(400, density, np.random.default_rng(1), weight_dist="lognormal")
    # 400*399 pairs: the binomial sd of the density is < 2 % of the target at 0.02.
    assert exposure_density(G) == pytest.approx(density, rel=0.06)
    assert G.graph["density"] == exposure_density(G) and G.graph["generator"] == "erdos_renyi"
    assert all(d["relation"] == "exposure" and d["exposure"] > 0 for _, _, d in G.edges(data=True))


@pytest.mark.parametrize("density", [0.02, 0.1])
def test_scale_free_density_and_heavy_tail(density):
    n = 400
    sf = scale_free_exposures(n, density, np.random.default_rng(2), gamma=2.2,
                              weight_dist="constant")
    er = erdos_renyi_exposures(n, density, np.random.default_rng(2), weight_dist="constant")
    assert exposure_density(sf) == pytest.approx(density, rel=0.06)
    # Hubs on both sides: out- and in-degree dispersion and the largest degrees far above
    # the Poisson-like ER graph of the same density.
    for view in ("out_degree", "in_degree"):
        deg_sf = np.array([d for _, d in getattr(sf, view)()])
        deg_er = np.array([d for _, d in getattr(er, view)()])
        assert deg_sf.std() / deg_sf.mean() > 3 * deg_er.std() / deg_er.mean()
        assert deg_sf.max() > 3 * deg_er.max()
    assert herfindahl(sf) > 2 * herfindahl(er)


def test_core_periphery_structure():
    n, k = 300, 30
    G = core_periphery_exposures(n, k, np.random.default_rng(3), density_core=0.7,
                                 density_cross=0.15, density_periphery=0.01)
    W = exposure_matrix(G)[1] > 0
    core = np.arange(n) < k
    assert [G.nodes[i]["core"] for i in range(n)] == core.tolist()
    blocks = {
        "core": W[np.ix_(core, core)].sum() / (k * (k - 1)),
        "cross": (W[np.ix_(core, ~core)].sum() + W[np.ix_(~core, core)].sum()) / (2 * k * (n - k)),
        "periphery": W[np.ix_(~core, ~core)].sum() / ((n - k) * (n - k - 1)),
    }
    assert blocks["core"] == pytest.approx(0.7, rel=0.06)
    assert blocks["cross"] == pytest.approx(0.15, rel=0.06)
    assert blocks["periphery"] == pytest.approx(0.01, rel=0.1)
    # Expected core share: exposure to core = k(k-1)pc + (n-k)k px over the total.
    e_core = k * (k - 1) * 0.7 + (n - k) * k * 0.15
    e_all = e_core + k * (n - k) * 0.15 + (n - k) * (n - k - 1) * 0.01
    assert G.graph["core_share"] == pytest.approx(e_core / e_all, rel=0.1)
    assert G.graph["core_share"] > 4 * k / n  # 10 % of the nodes carry ~half the exposure


def test_generator_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="density"):
        erdos_renyi_exposures(10, 1.2, rng)
    with pytest.raises(ValueError, match=r"rng must be a numpy\.random\.Generator"):
        erdos_renyi_exposures(10, 0.1, 42)
    with pytest.raises(ValueError, match="gamma must be > 2"):
        scale_free_exposures(10, 0.1, rng, gamma=2.0)
    with pytest.raises(ValueError, match="core_size"):
        core_periphery_exposures(10, 11, rng)
    with pytest.raises(ValueError, match="weight_dist must be a callable or one of"):
        erdos_renyi_exposures(10, 0.5, rng, weight_dist="cauchy")
    G = erdos_renyi_exposures(10, 0.5, rng, weight_dist=lambda r, size: np.full(size, 2.0))
    assert {d["exposure"] for _, _, d in G.edges(data=True)} == {2.0}
    assert exposure_density(erdos_renyi_exposures(5, 1.0, rng)) == 1.0
    assert scale_free_exposures(5, 0.0, rng).number_of_edges() == 0
    assert exposure_density(scale_free_exposures(6, 1.0, rng)) == 1.0


# --------------------------------------------------------------------------- GraphML

def _same_graph(a: nx.DiGraph, b: nx.DiGraph) -> None:
    assert list(a.nodes) == list(b.nodes)
    assert dict(a.nodes(data=True)) == dict(b.nodes(data=True))
    assert dict(a.edges.items()) == dict(b.edges.items())
    assert a.graph == b.graph


def test_graphml_round_trip_collateral_graph(tmp_path):
    G = _defi()
    G.nodes["aave"]["score"] = np.float64(0.5)  # numpy scalars are coerced
    path = tmp_path / "g.graphml"
    write_graphml(G, path)
    H = read_graphml(path)
    G.nodes["aave"]["score"] = 0.5
    _same_graph(G, H)
    plain = nx.DiGraph(nx.read_graphml(path))  # plain networkx reads it too
    plain.graph.clear()
    _same_graph(G, plain)
    assert H.edges["ftx", "FTT"]["perp"] is False


def test_graphml_round_trip_generated(tmp_path):
    G = core_periphery_exposures(40, 5, np.random.default_rng(4), weight_dist="pareto")
    path = tmp_path / "cp.graphml"
    write_graphml(G, path)
    H = read_graphml(path)
    _same_graph(G, H)
    np.testing.assert_array_equal(exposure_matrix(G)[1], exposure_matrix(H)[1])
    assert nx.read_graphml(path, node_type=int).number_of_edges() == G.number_of_edges()


def test_graphml_rejects_unserialisable(tmp_path):
    G = exposures_to_graph(np.array([[0.0, 1.0], [0.0, 0.0]]))
    G.nodes[0]["tags"] = ["a", "b"]
    with pytest.raises(ValueError, match="attribute 'tags' of node 0"):
        write_graphml(G, tmp_path / "x.graphml")
