"""Phase boundaries: only ``model.py`` writes model state; liquidation reads a narrow host.

Read with ``ast``: an assignment to an attribute of the model (``model.x = ...``,
``model.x[i] = ...``, through ``self.model`` or a local bound to it) anywhere
in ``sim`` but ``sim/model.py`` fails; so does the liquidation engine reading
anything of the world that :class:`sim.venue.liquidation.rounds.LiquidationHost`
does not list. Liquidation returns the final margins.
"""

from __future__ import annotations

import ast
from pathlib import Path

from sim.venue.liquidation.rounds import LiquidationHost

ROOT = Path(__file__).resolve().parents[2]


def _model_names(fn: ast.FunctionDef) -> set[str]:
    """Local names bound to the model in ``fn``: a ``model`` argument, ``m = self.model``."""
    names = {a.arg for a in fn.args.args if a.arg == "model"}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name) and _is_self_model(node.value):
            names.add(node.targets[0].id)
    return names


def _is_self_model(e: ast.AST) -> bool:
    return (isinstance(e, ast.Attribute) and e.attr == "model"
            and isinstance(e.value, ast.Name) and e.value.id == "self")


def _is_model(e: ast.AST, names: set[str]) -> bool:
    return (isinstance(e, ast.Name) and e.id in names) or _is_self_model(e)


def model_writes(source: str) -> list[str]:
    """Assignments to model attributes in ``source`` (as text)."""
    out = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.FunctionDef):
            continue
        names = _model_names(fn)
        for node in ast.walk(fn):
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign)
                       else [])
            for t in targets:
                base = t
                while isinstance(base, ast.Subscript):
                    base = base.value
                if isinstance(base, ast.Attribute) and _is_model(base.value, names):
                    out.append(ast.unparse(t))
    return out


def model_reads(source: str) -> set[str]:
    """Attributes of the model that ``source`` reads or calls."""
    out = set()
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.FunctionDef):
            continue
        names = _model_names(fn)
        for node in ast.walk(fn):
            if isinstance(node, ast.Attribute) and _is_model(node.value, names):
                out.add(node.attr)
    return out


def test_only_the_model_writes_model_state():
    bad = {}
    for path in sorted((ROOT / "sim").rglob("*.py")):
        if path == ROOT / "sim" / "model.py":
            continue
        writes = model_writes(path.read_text())
        if writes:
            bad[str(path.relative_to(ROOT))] = writes
    assert not bad, f"model state written outside sim/model.py: {bad}"


def test_liquidation_reads_only_its_host():
    allowed = {n for n in dir(LiquidationHost) if not n.startswith("_")}
    allowed |= set(LiquidationHost.__annotations__)
    folder = ROOT / "sim" / "venue" / "liquidation"
    read = set().union(*(model_reads(p.read_text()) for p in folder.glob("*.py")))
    read |= model_reads((ROOT / "sim" / "contagion" / "streams.py").read_text())
    assert read, "the scan found no reads at all"
    assert read <= allowed, f"liquidation reaches past its host: {sorted(read - allowed)}"


def test_the_scans_catch_a_breach():
    src = "def f(self):\n    m = self.model\n    m.asset_prices[0] = 1.0\n    return m.secret\n"
    assert model_writes(src) == ["m.asset_prices[0]"]
    assert model_reads(src) == {"asset_prices", "secret"}
    assert model_writes("def g(model):\n    model.liquidity = 0.5\n") == ["model.liquidity"]


def test_liquidation_returns_the_final_margins(small_overrides):
    from sim.config import load_config
    from sim.model import MarketModel

    model = MarketModel(load_config(small_overrides))
    model.step()
    margins = model.evaluate_margins()
    calls = []

    def reprice():
        calls.append(1)
        return model.evaluate_margins()

    out = model.liquidation.run(model.steps, margins, reprice)
    assert out is margins and not calls  # a quiet step: nothing re-evaluated
    assert model.liquidation.step_events == []


def test_phases_take_their_pieces_not_the_model():
    import inspect

    from sim.contagion.tokens import TokenBook
    from sim.contagion.tracker import ContagionTracker
    from sim.market.oracle import Oracle
    from sim.scenarios.base import Scenario

    for fn in (Scenario.advance, Oracle.publish, TokenBook.publish, TokenBook.revalue,
               ContagionTracker.update):
        params = inspect.signature(fn).parameters
        assert "model" not in params, f"{fn.__qualname__} takes the whole model"


def test_universal_margin_reads_only_its_host():
    from sim.contagion.universal import UniversalHost

    allowed = {n for n in dir(UniversalHost) if not n.startswith("_")}
    allowed |= set(UniversalHost.__annotations__)
    read = model_reads((ROOT / "sim" / "contagion" / "universal.py").read_text())
    assert read, "the scan found no reads at all"
    assert read <= allowed, f"universal margin reaches past its host: {sorted(read - allowed)}"
