"""The import rules of the layout (README, "Layout"): arrows point one way, no circles.

Every module of ``sim``, ``agents``, ``margin`` and ``experiments`` is read with
``ast`` (imports inside functions included, since a lazy import is still a
dependency) and each import is resolved to the project module it names. The
rules:

* ``experiments -> sim -> (agents, margin)``: nothing imports ``experiments``
  but ``experiments``; ``sim`` does not import ``experiments``;
* ``agents`` import nothing of ``sim`` but the market package (``sim.market``);
* ``margin`` and the network package (``sim.network``) import nothing of the world;
* nothing imports ``tests``;
* no circle of modules (a package's ``__init__`` counts as the package
  module; imports under ``if TYPE_CHECKING:`` count too: an annotation that
  names a module above is an arrow running back up).
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sim", "agents", "margin", "experiments")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    """Every module of the project packages, by dotted name."""
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            out[_module_name(path)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest project module that ``name`` (a dotted import target) falls in."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        cand = ".".join(parts[:k])
        if cand in modules:
            return cand
    return None


def _type_only(tree: ast.AST) -> set[int]:
    """Ids of the import nodes inside ``if TYPE_CHECKING:`` blocks (never executed)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out |= {id(n) for b in node.body for n in ast.walk(b)
                    if isinstance(n, ast.Import | ast.ImportFrom)}
    return out


def import_graph(*, type_only: bool = True) -> nx.DiGraph:
    """Module -> module edges of every import, function-local ones included.

    ``from pkg import name`` is an edge to ``pkg.name`` when that is a module,
    else to ``pkg``. With ``type_only=False`` imports under ``if
    TYPE_CHECKING:`` (annotations only, never run) are left out.
    """
    modules = project_modules()
    graph = nx.DiGraph()
    for mod, path in modules.items():
        graph.add_node(mod)
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), str(path))
        skip = set() if type_only else _type_only(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - (node.level - 1)]
                    base = ".".join([*pkg, base] if base else pkg)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            for t in targets:
                if t.split(".")[0] == "tests":
                    graph.add_edge(mod, "tests")
                    continue
                r = _resolve(t, modules)
                if r is not None and r != mod:
                    graph.add_edge(mod, r)
    return graph


def _forbidden(src: str, dst: str) -> str | None:
    top_s, top_d = src.split(".")[0], dst.split(".")[0]
    if dst == "tests":
        return "nothing imports tests"
    if top_d == "experiments" and top_s != "experiments":
        return "only experiments import experiments"
    if top_s == "agents" and top_d == "sim" and not (dst == "sim.market"
                                                    or dst.startswith("sim.market.")):
        return "agents import nothing of sim but sim.market"
    if top_s == "agents" and top_d == "margin":
        return "agents see the market view, not margin formulas"
    if top_s == "margin" and top_d != "margin":
        return "margin stands alone"
    if src.startswith("sim.network") and top_d in ("sim", "agents") \
            and not dst.startswith("sim.network"):
        return "the network package stands alone"
    return None


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    return import_graph()


def test_the_graph_sees_the_project(graph):
    assert graph.number_of_nodes() > 90
    assert graph.has_edge("sim.model", "sim.ledger")
    assert graph.has_edge("agents.noise", "sim.market.view")


def test_no_forbidden_arrow(graph):
    bad = [(s, d, why) for s, d in graph.edges if (why := _forbidden(s, d))]
    assert not bad, "\n".join(f"{s} -> {d}: {why}" for s, d, why in bad)


def test_no_circle_of_modules(graph):
    circles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not circles, "import circles:\n" + "\n".join(", ".join(c) for c in circles)


def test_the_rules_catch_a_broken_arrow(tmp_path):
    # the checker itself: a forbidden arrow and a circle are found
    assert _forbidden("agents.noise", "sim.model")
    assert _forbidden("margin.engine", "sim.config")
    assert _forbidden("sim.network.graph", "sim.config.schema")
    assert _forbidden("sim.output.runner", "experiments.common")
    assert _forbidden("experiments.bench.book", "tests") is not None
    assert _forbidden("agents.noise", "sim.market.view") is None
    assert _forbidden("sim.model", "agents.noise") is None
    g = nx.DiGraph([("a", "b"), ("b", "a")])
    assert [c for c in nx.strongly_connected_components(g) if len(c) > 1]
