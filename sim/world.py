"""Building a world from config: the pieces the model holds, created in one place.

:func:`build_liquidators` creates the liquidator agents with a funded account
on every protocol (DESIGN.md, step phase 6: liquidations are offered to them).
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_liquidators"]


def build_liquidators(model: Any, cfg: Any) -> list[Any]:
    """Create ``cfg.n`` liquidator agents, each with a funded account on every protocol.

    Args:
        model: The model (its ``open_trader`` opens the accounts).
        cfg: A :class:`agents.liquidator.LiquidatorConfig`.

    Returns:
        The agents (also registered with Mesa, so their ``step`` runs in phase 3).
    """
    from agents.liquidator import Liquidator

    out = []
    contagion = getattr(getattr(model, "cfg", None), "contagion", None)
    shared = bool(getattr(contagion, "shared_liquidator_capital", False))
    for _ in range(int(cfg.n)):
        agent = Liquidator(model, cfg, shared_capital=shared)
        for proto in model.protocols:
            agent.accounts[proto.index] = model.open_trader(proto.index, agent.unique_id,
                                                            float(cfg.capital), 0.0)
        out.append(agent)
    return out
