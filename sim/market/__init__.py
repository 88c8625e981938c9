"""What agents see and trade on: books, instruments, oracle, funding, the view and the offer.

* :mod:`sim.market.book` — the numba limit-order book (integer ticks and lots);
* :mod:`sim.market.instruments` — spot and perpetual instruments;
* :mod:`sim.market.oracle` — the index price (latency, TWAP, staleness);
* :mod:`sim.market.funding` — mark prices and perpetual funding;
* :mod:`sim.market.volsurface` — implied-volatility surfaces for marking options;
* :mod:`sim.market.view` — the market view agents read and send orders through;
* :mod:`sim.market.offer` — the liquidation offer liquidators receive.

Agents import nothing of ``sim`` but this package.
"""
