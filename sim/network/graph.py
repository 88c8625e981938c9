"""The collateral graph: protocols, assets and who is exposed to whom.

A world's protocols and assets form a ``networkx.DiGraph`` (DESIGN.md,
"Protocols and the collateral graph"; contagion_and_peers.md §2.7 for the
cross-protocol composability literature, Kitzler et al. 2022 for the
protocol/token graph as a template). Every edge ``u -> v`` reads "``u`` is
exposed to ``v``":

* protocol nodes: ``kind="protocol"``, ``value_locked`` (sum of live collateral
  value on its ``accepts`` edges), ``insurance_fund``, ``equity`` (loss-absorbing
  capital used by :mod:`sim.network.models`; defaults to the insurance fund)
  and any extra numeric or string attribute given;
* asset nodes: ``kind="asset"``, ``price``, ``issuer`` (issuing protocol, ``""``
  if none);
* edge ``relation`` is one of :data:`RELATIONS`: ``"accepts"`` (protocol ->
  asset it accepts as collateral; ``haircut``, ``exposure`` = live collateral
  value), ``"issues"`` (protocol -> token it issues), ``"lists"`` (protocol ->
  asset it lists a market for) and ``"exposure"`` (protocol -> protocol:
  ``exposure`` = what the first loses if the second defaults). A ``DiGraph``
  holds one edge per ordered pair, so a pair carrying several relations (a venue
  that lists BTC and accepts it as collateral; a venue that accepts its own
  token) gets them joined with ``"+"`` in :data:`RELATIONS` order, e.g.
  ``"accepts+lists"``; use :func:`relation_edges` / :func:`has_relation` rather
  than comparing strings.

Random protocol-to-protocol exposure networks (Erdős–Rényi, a heavy-tailed
Chung–Lu configuration model, core–periphery) come from the generators below;
all randomness comes from the ``numpy.random.Generator`` passed in.
:func:`exposure_matrix` turns any of these graphs into the matrix used by the
contagion models (:mod:`sim.network.models`), and :func:`write_graphml` /
:func:`read_graphml` store them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
from scipy.optimize import brentq

__all__ = [
    "RELATIONS",
    "WEIGHT_DISTS",
    "build_collateral_graph",
    "collateral_graph_from_config",
    "core_periphery_exposures",
    "core_share",
    "erdos_renyi_exposures",
    "exposure_density",
    "exposure_matrix",
    "exposures_to_graph",
    "has_relation",
    "herfindahl",
    "read_graphml",
    "relation_edges",
    "scale_free_exposures",
    "update_exposures",
    "update_prices",
    "write_graphml",
]

RELATIONS = ("accepts", "issues", "lists", "exposure")
"""Edge relations, in the order used when one edge carries several."""

WEIGHT_DISTS = ("constant", "exponential", "lognormal", "pareto")
"""Named exposure-size distributions of the generators (see :func:`_draw_weights`)."""

WeightDist = str | Callable[[np.random.Generator, int], np.ndarray]


# --------------------------------------------------------------------------- relations

def _relations(data: Mapping[str, Any]) -> list[str]:
    rel = data.get("relation", "")
    return [r for r in str(rel).split("+") if r]


def has_relation(G: nx.DiGraph, u: Any, v: Any, relation: str) -> bool:
    """Whether edge ``u -> v`` exists and carries ``relation``."""
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")
    return G.has_edge(u, v) and relation in _relations(G.edges[u, v])


def relation_edges(G: nx.DiGraph, relation: str) -> list[tuple[Any, Any, dict]]:
    """Edges ``(u, v, data)`` carrying ``relation`` (alone or joined with others)."""
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {RELATIONS}, got {relation!r}")
    return [(u, v, d) for u, v, d in G.edges(data=True) if relation in _relations(d)]


def _add_relation(G: nx.DiGraph, u: Any, v: Any, relation: str, **attrs: Any) -> None:
    if G.has_edge(u, v):
        d = G.edges[u, v]
        rels = set(_relations(d)) | {relation}
        d["relation"] = "+".join(r for r in RELATIONS if r in rels)
        d.update(attrs)
    else:
        G.add_edge(u, v, relation=relation, **attrs)


# --------------------------------------------------------------------------- building

def _get(obj: Any, key: str, default: Any = None) -> Any:
    """Read ``key`` from a mapping (dict, DictConfig) or an attribute (dataclass)."""
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _number(name: str, value: Any, lo: float | None = 0.0, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x) or (lo is not None and x < lo) or (hi is not None and x > hi):
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be finite and {rng}, got {value!r}")
    return x


def _plain_attr(name: str, value: Any) -> Any:
    """A GraphML-serialisable copy of an attribute value (bool, int, float, str)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise ValueError(f"{name} must be a bool, number or string, got {type(value).__name__}")


def _names(arg: Any, what: str) -> dict[str, Any]:
    """A mapping name -> spec from a mapping or an iterable of names."""
    if arg is None:
        return {}
    if isinstance(arg, Mapping):
        out = dict(arg)
    elif isinstance(arg, str):
        raise ValueError(f"{what} must be a mapping or an iterable of names, got a string")
    else:
        out = {}
        for name in arg:
            if name in out:
                raise ValueError(f"{what}: duplicate name {name!r}")
            out[name] = None
    for name in out:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{what}: names must be non-empty strings, got {name!r}")
    return out


def build_collateral_graph(
    protocols: Mapping[str, Mapping[str, Any] | None] | Iterable[str],
    assets: Mapping[str, float | Mapping[str, Any]] | Iterable[str],
    accepts: Mapping[str, Mapping[str, float | Mapping[str, float]]] | None = None,
    issues: Mapping[str, str | Iterable[str]] | None = None,
    markets: Mapping[str, Iterable[str] | Mapping[str, Mapping[str, Any]]] | None = None,
) -> nx.DiGraph:
    """Build the protocol/asset collateral graph.

    Args:
        protocols: Protocol names, or name -> attributes. Recognised attributes:
            ``insurance_fund`` (>= 0, default 0), ``equity`` (>= 0, default the
            insurance fund), ``external_assets`` (>= 0); other bool, number or
            string attributes are stored as given. ``value_locked`` is derived
            (sum of ``accepts`` exposures) and may not be given.
        assets: Asset names, or name -> price, or name -> attributes with
            ``price`` (default NaN = unknown).
        accepts: protocol -> {asset: haircut} or {asset: {"haircut": h,
            "exposure": x}}; haircut in [0, 1], exposure >= 0 (default 0).
        issues: protocol -> token name (or names) it issues; a token is an asset
            and has at most one issuer.
        markets: protocol -> assets it lists a market for (an iterable, or
            asset -> edge attributes such as ``{"spot": True, "perp": False}``).

    Returns:
        The DiGraph described in the module docstring.

    Raises:
        ValueError: On unknown names, a protocol and an asset sharing a name,
            two issuers of one token, or an out-of-range number.
    """
    prot = _names(protocols, "protocols")
    ast = _names(assets, "assets")
    clash = sorted(set(prot) & set(ast))
    if clash:
        raise ValueError(f"protocols and assets must not share names: {clash}")
    G = nx.DiGraph()
    for name, spec in prot.items():
        attrs = dict(spec or {})
        if "value_locked" in attrs:
            raise ValueError(f"protocols[{name!r}].value_locked is derived from accepts exposures")
        if "kind" in attrs:
            raise ValueError(f"protocols[{name!r}].kind is reserved")
        fund = _number(f"protocols[{name!r}].insurance_fund", attrs.pop("insurance_fund", 0.0))
        equity = _number(f"protocols[{name!r}].equity", attrs.pop("equity", fund))
        node = {"kind": "protocol", "value_locked": 0.0, "insurance_fund": fund, "equity": equity}
        if "external_assets" in attrs:
            node["external_assets"] = _number(f"protocols[{name!r}].external_assets",
                                              attrs.pop("external_assets"))
        for k, v in attrs.items():
            node[k] = _plain_attr(f"protocols[{name!r}].{k}", v)
        G.add_node(name, **node)
    for name, spec in ast.items():
        if isinstance(spec, Mapping):
            attrs = dict(spec)
        else:
            attrs = {"price": spec} if spec is not None else {}
        if "kind" in attrs or "issuer" in attrs:
            raise ValueError(f"assets[{name!r}]: 'kind' and 'issuer' are reserved")
        price = attrs.pop("price", math.nan)
        price = math.nan if price is None else price
        if not (isinstance(price, numbers.Real) and math.isnan(float(price))):
            price = _number(f"assets[{name!r}].price", price)
        node = {"kind": "asset", "price": float(price), "issuer": ""}
        for k, v in attrs.items():
            node[k] = _plain_attr(f"assets[{name!r}].{k}", v)
        G.add_node(name, **node)

    def _check(p: str, a: str, what: str) -> None:
        if p not in prot:
            raise ValueError(f"{what}: unknown protocol {p!r}")
        if a not in ast:
            raise ValueError(f"{what}[{p!r}]: unknown asset {a!r}")

    for p, table in (accepts or {}).items():
        for a, spec in (table or {}).items():
            _check(p, a, "accepts")
            if isinstance(spec, Mapping):
                unknown = set(spec) - {"haircut", "exposure"}
                if unknown:
                    raise ValueError(f"accepts[{p!r}][{a!r}]: unknown keys {sorted(unknown)}")
                h, x = spec.get("haircut", 0.0), spec.get("exposure", 0.0)
            else:
                h, x = spec, 0.0
            _add_relation(G, p, a, "accepts",
                          haircut=_number(f"accepts[{p!r}][{a!r}].haircut", h, 0.0, 1.0),
                          exposure=_number(f"accepts[{p!r}][{a!r}].exposure", x))
    for p, tokens in (issues or {}).items():
        for t in [tokens] if isinstance(tokens, str) else list(tokens):
            _check(p, t, "issues")
            if G.nodes[t]["issuer"]:
                first = G.nodes[t]["issuer"]
                raise ValueError(f"issues: token {t!r} issued by both {first!r} and {p!r}")
            G.nodes[t]["issuer"] = p
            _add_relation(G, p, t, "issues")
    for p, listed in (markets or {}).items():
        items = listed.items() if isinstance(listed, Mapping) else ((a, None) for a in listed)
        for a, spec in items:
            _check(p, a, "markets")
            extra = {k: _plain_attr(f"markets[{p!r}][{a!r}].{k}", v)
                     for k, v in (spec or {}).items()}
            _add_relation(G, p, a, "lists", **extra)
    _refresh_value_locked(G)
    return G


def _refresh_value_locked(G: nx.DiGraph) -> None:
    for _node, d in G.nodes(data=True):
        if d.get("kind") == "protocol":
            d["value_locked"] = 0.0
    for u, _, d in relation_edges(G, "accepts"):
        G.nodes[u]["value_locked"] += d["exposure"]


def collateral_graph_from_config(cfg: Any, exposures: Mapping | None = None) -> nx.DiGraph:
    """Build the collateral graph of a run config (``RunConfig``, DictConfig or plain dict).

    Reads ``market.quote`` (an asset of price 1), ``market.assets`` (name,
    price), and per protocol ``name``, ``insurance_fund``, ``spot``/``perp``.
    Every protocol applies the run's margin regime, so by default it accepts
    each asset of ``margin.haircuts`` that the market knows, with that haircut;
    assets in ``margin.haircuts`` that the market does not trade are skipped.
    A protocol lists every risky asset of the market when ``spot`` or ``perp``
    is true (edge attributes ``spot``, ``perp``). Plain dicts may add, per
    protocol, ``accepts`` (asset -> haircut, replacing the margin haircuts),
    ``issues`` (token names), ``equity``, ``external_assets``, and at top level
    ``tokens`` (token name -> price) for issued tokens the market does not trade.

    Args:
        cfg: The run configuration.
        exposures: Optional live exposures for :func:`update_exposures`.

    Returns:
        The collateral graph.
    """
    market = _get(cfg, "market")
    if market is None:
        raise ValueError("cfg.market is missing")
    quote = str(_get(market, "quote", "USD"))
    assets: dict[str, float] = {quote: 1.0}
    for a in _get(market, "assets", []) or []:
        assets[str(_get(a, "name"))] = float(_get(a, "price", math.nan))
    traded = [a for a in assets if a != quote]
    for t, price in (_get(cfg, "tokens", {}) or {}).items():
        if t in assets:
            raise ValueError(f"cfg.tokens: {t!r} is already a market asset")
        assets[str(t)] = float(price)
    haircuts = _get(_get(cfg, "margin"), "haircuts", {}) or {}
    protocols: dict[str, dict[str, Any]] = {}
    accepts: dict[str, dict[str, float]] = {}
    issues: dict[str, list[str]] = {}
    markets: dict[str, dict[str, dict[str, bool]]] = {}
    for p in _get(cfg, "protocols", []) or []:
        name = str(_get(p, "name"))
        if name in protocols:
            raise ValueError(f"cfg.protocols: duplicate protocol name {name!r}")
        attrs: dict[str, Any] = {"insurance_fund": _get(p, "insurance_fund", 0.0)}
        for key in ("equity", "external_assets"):
            if _get(p, key) is not None:
                attrs[key] = _get(p, key)
        protocols[name] = attrs
        own = _get(p, "accepts")
        table = own if own is not None else {a: h for a, h in haircuts.items() if a in assets}
        accepts[name] = {str(a): float(h) for a, h in table.items()}
        issues[name] = [str(t) for t in (_get(p, "issues", []) or [])]
        spot, perp = bool(_get(p, "spot", False)), bool(_get(p, "perp", False))
        if spot or perp:
            markets[name] = {a: {"spot": spot, "perp": perp} for a in traded}
    G = build_collateral_graph(protocols, assets, accepts=accepts, issues=issues, markets=markets)
    if exposures:
        update_exposures(G, exposures)
    return G


def update_exposures(G: nx.DiGraph, exposures: Mapping) -> None:
    """Refresh live exposures in place and recompute protocols' ``value_locked``.

    Args:
        G: A collateral or exposure graph.
        exposures: ``{(u, v): value}`` or ``{u: {v: value}}`` for existing
            ``accepts`` (protocol -> asset, live collateral value) or
            ``exposure`` (protocol -> protocol) edges; values >= 0.

    Raises:
        ValueError: If an edge is missing or carries neither relation.
    """
    items: list[tuple[Any, Any, Any]] = []
    for key, val in exposures.items():
        if isinstance(val, Mapping):
            items.extend((key, v, x) for v, x in val.items())
        elif isinstance(key, tuple) and len(key) == 2:
            items.append((key[0], key[1], val))
        else:
            raise ValueError(f"exposures keys must be (u, v) pairs or nested mappings, got {key!r}")
    for u, v, x in items:
        if not G.has_edge(u, v):
            raise ValueError(f"exposures: no edge {u!r} -> {v!r}")
        rels = _relations(G.edges[u, v])
        if "accepts" not in rels and "exposure" not in rels:
            rel = "+".join(rels)
            raise ValueError(f"exposures: edge {u!r} -> {v!r} is {rel!r}, not accepts/exposure")
        G.edges[u, v]["exposure"] = _number(f"exposures[{u!r}, {v!r}]", x)
    _refresh_value_locked(G)


def update_prices(G: nx.DiGraph, prices: Mapping[str, float]) -> None:
    """Set asset nodes' ``price`` in place (ValueError for unknown or non-asset nodes)."""
    for a, p in prices.items():
        if a not in G or G.nodes[a].get("kind") != "asset":
            raise ValueError(f"prices: {a!r} is not an asset node")
        G.nodes[a]["price"] = _number(f"prices[{a!r}]", p)


# --------------------------------------------------------------------------- matrices

def _protocol_nodes(G: nx.DiGraph) -> list[Any]:
    return [n for n, d in G.nodes(data=True) if d.get("kind", "protocol") == "protocol"]


def exposure_matrix(G: nx.DiGraph, through_tokens: bool = True) -> tuple[list[Any], np.ndarray]:
    """Protocol-to-protocol exposure matrix of a graph.

    ``W[i, j]`` is what protocol ``i`` loses if protocol ``j`` defaults: the
    ``exposure`` of edge ``i -> j`` (relation ``"exposure"``), plus, with
    ``through_tokens``, the live collateral value ``i`` holds in tokens issued by
    ``j`` (an ``accepts`` edge ``i -> t`` and an ``issues`` edge ``j -> t``; a
    token is worthless when its issuer fails). A protocol's own token accepted
    as collateral is wrong-way risk, not a counterparty exposure: the diagonal
    is always zero.

    Args:
        G: A collateral graph or a generated exposure network. Nodes without a
            ``kind`` attribute count as protocols.
        through_tokens: Add exposures through issued tokens.

    Returns:
        ``(nodes, W)``: protocol nodes in graph order, and the float matrix.
    """
    nodes = _protocol_nodes(G)
    idx = {n: k for k, n in enumerate(nodes)}
    W = np.zeros((len(nodes), len(nodes)))
    for u, v, d in relation_edges(G, "exposure"):
        if u in idx and v in idx and u != v:
            W[idx[u], idx[v]] += float(d.get("exposure", 0.0))
    if through_tokens:
        issuer = {t: p for p, t, _ in relation_edges(G, "issues")}
        for u, t, d in relation_edges(G, "accepts"):
            k = issuer.get(t)
            if k is not None and u in idx and k != u:
                W[idx[u], idx[k]] += float(d.get("exposure", 0.0))
    return nodes, W


def exposures_to_graph(W: np.ndarray, nodes: Iterable[Any] | None = None,
                       **graph_attrs: Any) -> nx.DiGraph:
    """A protocol exposure DiGraph from a matrix (edge ``i -> j`` where ``W[i, j] > 0``).

    Args:
        W: Square non-negative matrix, ``W[i, j]`` = exposure of ``i`` to ``j``.
        nodes: Node labels (default ``0 .. n-1``).
        **graph_attrs: Stored in ``G.graph``.

    Returns:
        DiGraph with ``kind="protocol"`` nodes and ``relation="exposure"`` edges.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be a square matrix, got shape {W.shape}")
    if not np.all(np.isfinite(W)) or np.any(W < 0):
        raise ValueError("W must be finite and non-negative")
    labels = list(range(W.shape[0])) if nodes is None else list(nodes)
    if len(labels) != W.shape[0]:
        raise ValueError(f"nodes has {len(labels)} labels for a {W.shape[0]}x{W.shape[0]} matrix")
    G = nx.DiGraph(**graph_attrs)
    G.add_nodes_from(labels, kind="protocol")
    ii, jj = np.nonzero(W)
    G.add_edges_from((labels[i], labels[j], {"relation": "exposure", "exposure": float(W[i, j])})
                     for i, j in zip(ii, jj, strict=True) if i != j)
    return G


def _matrix(G_or_W: nx.DiGraph | np.ndarray) -> np.ndarray:
    if isinstance(G_or_W, nx.Graph):
        return exposure_matrix(G_or_W)[1]
    return np.asarray(G_or_W, dtype=np.float64)


def exposure_density(G_or_W: nx.DiGraph | np.ndarray) -> float:
    """Share of ordered protocol pairs ``i != j`` with positive exposure: edges / (n (n - 1))."""
    W = _matrix(G_or_W)
    n = W.shape[0]
    if n < 2:
        return 0.0
    off = W > 0
    np.fill_diagonal(off, False)
    return float(off.sum() / (n * (n - 1)))


def herfindahl(G_or_W: nx.DiGraph | np.ndarray) -> float:
    """Herfindahl index of exposures by counterparty: ``sum_j (s_j / S)^2``.

    ``s_j = sum_i W[i, j]`` is the system's total exposure to ``j`` (its
    interbank liabilities) and ``S = sum_j s_j``. Ranges from ``1/n`` (exposures
    spread evenly over all counterparties) to 1 (everyone exposed to one node);
    ``1/H`` is the effective number of counterparties. NaN for an empty network.
    """
    W = _matrix(G_or_W)
    s = W.sum(axis=0)
    total = s.sum()
    return float(np.sum((s / total) ** 2)) if total > 0 else math.nan


def core_share(G_or_W: nx.DiGraph | np.ndarray, core: Iterable[Any] | None = None) -> float:
    """Share of total exposure that is exposure *to* core nodes: ``sum_{j in core} s_j / S``.

    Args:
        G_or_W: Exposure graph or matrix.
        core: Core nodes (labels for a graph, indices for a matrix); default the
            graph's nodes with attribute ``core=True``.

    Returns:
        The share in [0, 1] (NaN for an empty network).
    """
    if isinstance(G_or_W, nx.Graph):
        nodes, W = exposure_matrix(G_or_W)
        if core is None:
            core = [n for n in nodes if G_or_W.nodes[n].get("core", False)]
        pos = {n: k for k, n in enumerate(nodes)}
        idx = [pos[c] for c in core]
    else:
        W = np.asarray(G_or_W, dtype=np.float64)
        if core is None:
            raise ValueError("core must be given for a matrix")
        idx = list(core)
    s = W.sum(axis=0)
    total = s.sum()
    return float(s[idx].sum() / total) if total > 0 else math.nan


# --------------------------------------------------------------------------- generators

def _check_rng(rng: Any) -> None:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    return int(n)


def _draw_weights(weight_dist: WeightDist, rng: np.random.Generator, size: int) -> np.ndarray:
    """Exposure sizes of ``size`` edges.

    Named distributions: ``constant`` (1), ``exponential`` (mean 1),
    ``lognormal`` (mu 0, sigma 1), ``pareto`` (classical Pareto, scale 1, tail
    index 1.5: finite mean, infinite variance). A callable ``f(rng, size)`` must
    return ``size`` positive finite numbers.
    """
    if callable(weight_dist):
        w = np.asarray(weight_dist(rng, size), dtype=np.float64)
        if w.shape != (size,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError(f"weight_dist must return {size} positive finite numbers")
        return w
    if weight_dist == "constant":
        return np.ones(size)
    if weight_dist == "exponential":
        return rng.exponential(1.0, size)
    if weight_dist == "lognormal":
        return rng.lognormal(0.0, 1.0, size)
    if weight_dist == "pareto":
        return 1.0 + rng.pareto(1.5, size)
    raise ValueError(f"weight_dist must be a callable or one of {WEIGHT_DISTS}, "
                     f"got {weight_dist!r}")


def _from_mask(mask: np.ndarray, rng: np.random.Generator, weight_dist: WeightDist,
               **graph_attrs: Any) -> nx.DiGraph:
    np.fill_diagonal(mask, False)
    ii, jj = np.nonzero(mask)
    W = np.zeros(mask.shape)
    W[ii, jj] = _draw_weights(weight_dist, rng, len(ii))
    G = exposures_to_graph(W, **graph_attrs)
    G.graph["density"] = exposure_density(W)
    G.graph["herfindahl"] = herfindahl(W) if len(ii) else 0.0
    return G


def erdos_renyi_exposures(n: int, density: float, rng: np.random.Generator,
                          weight_dist: WeightDist = "exponential") -> nx.DiGraph:
    """Directed Erdős–Rényi exposure network G(n, p) without self-loops.

    Each ordered pair ``i != j`` carries an exposure ``i -> j`` independently
    with probability ``density`` (the Gai–Kapadia 2010 topology,
    contagion_and_peers.md §1.1), so the expected density is exactly
    ``density``. Concentration comes only from the weights: see
    :func:`herfindahl` (stored with the realised density in ``G.graph``).

    Args:
        n: Number of protocols (nodes ``0 .. n-1``).
        density: Link probability in [0, 1].
        rng: Source of all randomness.
        weight_dist: Exposure sizes, see :data:`WEIGHT_DISTS` or a callable
            ``f(rng, size)``.

    Returns:
        Exposure DiGraph (``relation="exposure"``, attribute ``exposure``).
    """
    n = _check_n(n)
    density = _number("density", density, 0.0, 1.0)
    _check_rng(rng)
    mask = rng.random((n, n)) < density
    return _from_mask(mask, rng, weight_dist, generator="erdos_renyi", target_density=density)


def scale_free_exposures(n: int, density: float, rng: np.random.Generator, gamma: float = 2.5,
                         weight_dist: WeightDist = "exponential") -> nx.DiGraph:
    """Directed Chung–Lu configuration model with power-law expected degrees.

    Out- and in-propensities ``a_i``, ``b_j`` are independent classical Pareto
    draws with density ``~ x^-gamma``; edge ``i -> j`` (``i != j``) exists
    with probability ``min(1, c a_i b_j)``, with ``c`` solved (Brent) so that the
    expected number of edges is exactly ``density * n (n - 1)``. Expected
    degrees are proportional to the propensities, so degrees are heavy-tailed
    with exponent ``gamma`` until the cap at 1 flattens the very top (at high
    density). Smaller ``gamma`` = more concentrated on hubs; the realised
    :func:`herfindahl` is stored in ``G.graph``.

    Args:
        n: Number of protocols.
        density: Target expected density in [0, 1].
        rng: Source of all randomness.
        gamma: Degree exponent, > 2 (finite mean degree).
        weight_dist: Exposure sizes (see :func:`erdos_renyi_exposures`).

    Returns:
        Exposure DiGraph.
    """
    n = _check_n(n)
    density = _number("density", density, 0.0, 1.0)
    gamma = _number("gamma", gamma, None)
    if gamma <= 2.0:
        raise ValueError(f"gamma must be > 2, got {gamma!r}")
    _check_rng(rng)
    a = 1.0 + rng.pareto(gamma - 1.0, n)
    b = 1.0 + rng.pareto(gamma - 1.0, n)
    ab = np.outer(a, b)
    np.fill_diagonal(ab, 0.0)
    target = density * n * (n - 1)
    if target == 0.0:
        c = 0.0
    else:
        c_hi = 1.0 / (a.min() * b.min())
        c = c_hi if density == 1.0 else brentq(
            lambda c: float(np.minimum(1.0, c * ab).sum()) - target, 0.0, c_hi, xtol=1e-15 * c_hi,
            rtol=1e-12)
    mask = rng.random((n, n)) < np.minimum(1.0, c * ab)
    return _from_mask(mask, rng, weight_dist, generator="scale_free", target_density=density,
                      gamma=gamma)


def core_periphery_exposures(n: int, core_size: int, rng: np.random.Generator,
                             density_core: float = 0.8, density_cross: float = 0.2,
                             density_periphery: float = 0.01,
                             weight_dist: WeightDist = "exponential") -> nx.DiGraph:
    """Core–periphery block model of exposures (Craig & von Peter 2014 style).

    Nodes ``0 .. core_size-1`` form the core (attribute ``core=True``). A link
    ``i -> j`` exists independently with probability ``density_core`` inside the
    core, ``density_cross`` between core and periphery (either direction) and
    ``density_periphery`` inside the periphery. Concentration is the core share
    (:func:`core_share`: fraction of all exposure that is exposure to the core),
    stored with the realised density and Herfindahl in ``G.graph``.

    Args:
        n: Number of protocols.
        core_size: Core nodes, 0 <= core_size <= n.
        rng: Source of all randomness.
        density_core: Core-core link probability in [0, 1].
        density_cross: Core-periphery link probability in [0, 1].
        density_periphery: Periphery-periphery link probability in [0, 1].
        weight_dist: Exposure sizes (see :func:`erdos_renyi_exposures`).

    Returns:
        Exposure DiGraph.
    """
    n = _check_n(n)
    if (isinstance(core_size, bool) or not isinstance(core_size, numbers.Integral)
            or not 0 <= core_size <= n):
        raise ValueError(f"core_size must be an integer in [0, n={n}], got {core_size!r}")
    pc = _number("density_core", density_core, 0.0, 1.0)
    px = _number("density_cross", density_cross, 0.0, 1.0)
    pp = _number("density_periphery", density_periphery, 0.0, 1.0)
    _check_rng(rng)
    k = int(core_size)
    P = np.full((n, n), pp)
    P[:k, :] = px
    P[:, :k] = px
    P[:k, :k] = pc
    mask = rng.random((n, n)) < P
    G = _from_mask(mask, rng, weight_dist, generator="core_periphery", core_size=k,
                   density_core=pc, density_cross=px, density_periphery=pp)
    nx.set_node_attributes(G, {i: i < k for i in range(n)}, "core")
    G.graph["core_share"] = core_share(G) if G.number_of_edges() else 0.0
    return G


# --------------------------------------------------------------------------- GraphML

def _sanitised(G: nx.DiGraph) -> nx.DiGraph:
    H = nx.DiGraph()
    for k, v in G.graph.items():
        if v is not None:
            H.graph[k] = _plain_attr(f"graph attribute {k!r}", v)
    int_nodes = all(isinstance(n, numbers.Integral) and not isinstance(n, bool) for n in G)
    if int_nodes and len(G):
        H.graph["node_type"] = "int"
    for n, d in G.nodes(data=True):
        H.add_node(n, **{k: _plain_attr(f"attribute {k!r} of node {n!r}", v)
                         for k, v in d.items() if v is not None})
    for u, v, d in G.edges(data=True):
        H.add_edge(u, v, **{k: _plain_attr(f"attribute {k!r} of edge {u!r}->{v!r}", x)
                            for k, x in d.items() if x is not None})
    return H


def write_graphml(G: nx.DiGraph, path: str | Path) -> None:
    """Write a graph as GraphML (networkx), coercing numpy scalars to Python types.

    Attributes must be bool, number or string (``None`` values are dropped);
    integer node labels are restored by :func:`read_graphml`.

    Raises:
        ValueError: Naming the first attribute of another type.
    """
    nx.write_graphml(_sanitised(G), str(path), infer_numeric_types=True)


def read_graphml(path: str | Path) -> nx.DiGraph:
    """Read a graph written by :func:`write_graphml` (integer node labels restored)."""
    G = nx.read_graphml(str(path))
    for key in ("node_default", "edge_default"):  # added by the networkx reader
        if G.graph.get(key) == {}:
            del G.graph[key]
    if G.graph.pop("node_type", None) == "int":
        G = nx.relabel_nodes(G, {n: int(n) for n in G})
    return nx.DiGraph(G)
