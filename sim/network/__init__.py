"""The collateral network, usable alone (like ``margin``): graphs and network contagion models.

* :mod:`sim.network.graph` — the collateral graph (protocols and assets as nodes;
  "accepts as collateral" / "issues" / "shares a market" edges) built from
  config or from random exposure networks (Erdős–Rényi, scale-free,
  core–periphery);
* :mod:`sim.network.models` — DebtRank (Battiston et al. 2012), Eisenberg–Noe
  clearing (2001) and the Gai–Kapadia cascade (2010) on exposure matrices.

Imports numpy, scipy and networkx only, never the world.
"""

from sim.network.graph import (
    RELATIONS,
    WEIGHT_DISTS,
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
from sim.network.models import (
    CascadeResult,
    ClearingResult,
    DebtRankResult,
    LinearDebtRankResult,
    debtrank,
    debtrank_per_node,
    eisenberg_noe,
    gai_kapadia_cascade,
    impact_matrix,
    leverage_matrix,
    linear_debtrank,
)

__all__ = [
    "RELATIONS",
    "WEIGHT_DISTS",
    "CascadeResult",
    "ClearingResult",
    "DebtRankResult",
    "LinearDebtRankResult",
    "build_collateral_graph",
    "collateral_graph_from_config",
    "core_periphery_exposures",
    "core_share",
    "debtrank",
    "debtrank_per_node",
    "eisenberg_noe",
    "erdos_renyi_exposures",
    "exposure_density",
    "exposure_matrix",
    "exposures_to_graph",
    "gai_kapadia_cascade",
    "has_relation",
    "herfindahl",
    "impact_matrix",
    "leverage_matrix",
    "linear_debtrank",
    "read_graphml",
    "relation_edges",
    "scale_free_exposures",
    "update_exposures",
    "update_prices",
    "write_graphml",
]
