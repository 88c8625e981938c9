"""Contagion figures: a collateral graph and a contagion matrix are drawn from data."""

from __future__ import annotations

import numpy as np
import pytest

from sim.network import build_collateral_graph, erdos_renyi_exposures
from sim.output.figures import collateral_graph_figure, contagion_matrix_figure


def _small_graph():
    return build_collateral_graph(
        {"alpha": {"insurance_fund": 1e6}, "beta": {"insurance_fund": 5e5}},
        {"USD": 1.0, "BTC": 30_000.0, "aLP": 1.0},
        accepts={"alpha": {"BTC": {"haircut": 0.05, "exposure": 2e6}},
                 "beta": {"aLP": {"haircut": 0.1, "exposure": 1e6},
                          "BTC": {"haircut": 0.05, "exposure": 5e5}}},
        issues={"alpha": "aLP"}, markets={"alpha": ["BTC"], "beta": ["BTC"]})


def _written(files: dict) -> None:
    assert len(files) == 2
    for path in files.values():
        assert path.exists() and path.stat().st_size > 0


def test_collateral_graph_figure_written(tmp_path) -> None:
    G = _small_graph()
    _written(collateral_graph_figure(G, {"alpha": 1.0, "beta": 0.3}, tmp_path))
    assert (tmp_path / "collateral_graph.png").exists()
    # a generated exposure network, distress as an array in node order, no distress
    H = erdos_renyi_exposures(8, 0.3, np.random.default_rng(1))
    _written(collateral_graph_figure(H, np.linspace(0, 1, 8), tmp_path, name="er"))
    _written(collateral_graph_figure(H, None, tmp_path, name="plain"))


def test_collateral_graph_figure_rejects_bad_distress(tmp_path) -> None:
    G = _small_graph()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        collateral_graph_figure(G, {"alpha": 1.5}, tmp_path)
    with pytest.raises(ValueError, match="unknown node"):
        collateral_graph_figure(G, {"gamma": 0.5}, tmp_path)
    with pytest.raises(ValueError, match="values"):
        collateral_graph_figure(G, [0.1, 0.2, 0.3], tmp_path)


def test_contagion_matrix_figure_written(tmp_path) -> None:
    M = [[1.2e6, 3.4e5], [0.0, 8.0e5]]
    _written(contagion_matrix_figure(M, ["alpha", "beta"], tmp_path))
    assert (tmp_path / "contagion_matrix.pdf").stat().st_size > 0
    # the dict of sim.contagion.contagion_matrix, liquidation counts
    result = {"protocols": ["alpha", "beta"], "bad_debt": M,
              "liquidations": [[12.0, -1.0], [0.0, 7.0]]}
    _written(contagion_matrix_figure(result, out_dir=tmp_path, name="liq", what="liquidations"))
    with pytest.raises(ValueError, match="labels"):
        contagion_matrix_figure(M, ["alpha"], tmp_path)
