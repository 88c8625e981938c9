"""The simulated world: model loop, order books, ledger, protocols, runs.

Heavy submodules (Mesa, Hydra) are imported lazily so that ``sim.market.book`` and
``sim.ledger`` can be used on their own without paying for the model stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["MarketModel", "RunResult", "load_config", "run"]

if TYPE_CHECKING:  # pragma: no cover
    from sim.config import load_config
    from sim.model import MarketModel
    from sim.output.runner import RunResult, run


def __getattr__(name: str) -> Any:
    if name == "MarketModel":
        from sim.model import MarketModel

        return MarketModel
    if name in ("run", "RunResult"):
        from sim.output import runner

        return getattr(runner, name)
    if name == "load_config":
        from sim.config import load_config

        return load_config
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
