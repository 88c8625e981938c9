"""The contagion matrix: a confined shock at each protocol ``i``, the loss at every ``j``.

:func:`run_with_shock` builds and steps a model with a shock of
:data:`sim.scenarios.confined.SHOCKS` before a given step;
:func:`contagion_matrix` runs it at each protocol and records bad debt,
liquidations and traders' equity at every protocol against the unshocked run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sim.contagion.tracker import trader_equity
from sim.scenarios.confined import SHOCKS

__all__ = ["contagion_matrix", "run_with_shock"]


def run_with_shock(cfg: Any, protocol: int | None, size: float, shock_step: int,
                   kind: str = "sell") -> Any:
    """Build and step a model, applying shock ``kind`` (:data:`SHOCKS`) before ``shock_step``.

    Raises:
        ValueError: An unknown shock kind (one line).
    """
    from sim.model import MarketModel

    if kind not in SHOCKS:
        raise ValueError(f"shock kind must be one of {', '.join(SHOCKS)}, got {kind!r}")
    model = MarketModel(cfg)
    for t in range(int(model.cfg.steps)):
        if protocol is not None and t == shock_step:
            SHOCKS[kind](model, protocol, size)
        model.step()
    return model


def contagion_matrix(run_fn: Callable[[int | None], Any],
                     protocols: Sequence[str] | int) -> dict[str, Any]:
    """Loss at protocol ``j`` when protocol ``i`` is shocked, for every ``i``.

    Args:
        run_fn: ``run_fn(i)`` returns a stepped model with protocol ``i`` shocked
            (``run_fn(None)``: the unshocked baseline), e.g.
            ``lambda i: run_with_shock(cfg, i, 5e6, 50)``.
        protocols: Protocol names (or their number).

    Returns:
        ``{"protocols": names, "bad_debt": M, "liquidations": L, "equity_loss": E,
        "baseline": {...}}`` with ``M[i][j]`` the bad debt at ``j`` in excess of
        the baseline run when ``i`` is shocked, ``L`` likewise for liquidation
        counts and ``E`` the fall of ``j``'s traders' equity at the end of the
        run (:func:`trader_equity`; positive = a loss).
    """
    names = [f"p{k}" for k in range(protocols)] if isinstance(protocols, int) else list(protocols)
    n = len(names)

    def losses(model: Any) -> np.ndarray:
        liq = model.liquidation
        return np.array([[liq.bad_debt[k] for k in range(n)],
                         [liq.totals[k]["liquidations"] for k in range(n)],
                         trader_equity(model)[:n]])

    base = losses(run_fn(None))
    out = np.zeros((3, n, n))
    for i in range(n):
        out[:, i] = losses(run_fn(i)) - base
    out[2] *= -1.0  # equity lost, not gained
    return {"protocols": names, "bad_debt": out[0].tolist(), "liquidations": out[1].tolist(),
            "equity_loss": out[2].tolist(),
            "baseline": {"bad_debt": base[0].tolist(), "liquidations": base[1].tolist(),
                         "trader_equity": base[2].tolist()}}
