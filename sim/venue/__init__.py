"""A protocol (venue): its markets, margin engine, liquidation and insurance fund.

* :mod:`sim.venue.protocol` — a protocol's books, fee and funding rules, accounts;
* :mod:`sim.venue.engines` — the margin engine a ``margin`` config describes;
* :mod:`sim.venue.liquidation` — liquidation rounds, the backstop and the bad-debt
  waterfall;
* :mod:`sim.venue.insurance` — the insurance fund valued at mark.
"""
