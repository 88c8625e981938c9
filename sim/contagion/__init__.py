"""Cross-protocol contagion: issued tokens, universal margin, random streams, tracking.

* :mod:`sim.contagion.tokens` — tokens a protocol issues, revalued from its solvency;
* :mod:`sim.contagion.universal` — cross-protocol (universal) margin accounts;
* :mod:`sim.contagion.streams` — per-protocol random streams in liquidation;
* :mod:`sim.contagion.tracker` — first distress, liquidation and bad debt per protocol;
* :mod:`sim.contagion.matrix` — the contagion matrix (a confined shock at each protocol;
  the shocks themselves are :mod:`sim.scenarios.confined`);
* :mod:`sim.contagion.worlds` — the isolated-crash reference world;
* :mod:`sim.contagion.topology_world` — agent worlds built from an exposure network.

Contagion channels (``contagion.*`` switches, DESIGN.md "collateral graph"):
``fire_sales``/``arbitrage`` gate the arbitrageur's cross-venue trades (the only
agent trading on several venues' books); ``token_impairment`` lets the issuer's
bad debt lower its token's price and so collateral values elsewhere;
``venue_oracle`` prices tokens off one venue's book; ``universal_margin``
margins owners with sub-accounts on several venues as one;
``shared_liquidator_capital`` pools each liquidator's capital across venues
(:mod:`agents.liquidator`).
"""

from sim.contagion.matrix import contagion_matrix, run_with_shock
from sim.contagion.streams import StreamedLiquidationEngine
from sim.contagion.tracker import ContagionTracker, contagion_summary, trader_equity
from sim.contagion.worlds import isolated_crash_overrides
from sim.scenarios.confined import SHOCKS, exploit_shock, sell_shock

__all__ = ["SHOCKS", "ContagionTracker", "StreamedLiquidationEngine", "contagion_matrix",
           "contagion_summary", "exploit_shock", "isolated_crash_overrides", "run_with_shock",
           "sell_shock", "trader_equity"]
