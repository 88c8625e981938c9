"""Issued tokens: receipt/LP tokens and stablecoins whose value follows their issuer.

A protocol may issue one token (``protocols[i].issues``, an
:class:`~sim.config.IssuedTokenConfig`). The token is a world asset (listed in
``model.asset_names`` after the market assets, no perpetual), held by traders
of the protocols named in ``holdings`` and accepted elsewhere as collateral with
that protocol's ``margin.haircuts``. Its *fundamental* value is recomputed each
step (phase 7) from the issuer's recorded bad debt ``D`` (quote units) when
``contagion.token_impairment`` is on; off, it stays at ``par``.

Receipt / LP token (a claim on the issuer's pool; Aave aTokens, Binance wBETH)::

    price = par * max(floor, 1 - D / (supply * par))

i.e. the pool's net assets per unit, ``(assets - liabilities) / supply``, with
assets ``supply * par`` at issue and the bad debt the only loss that reaches the
pool (the insurance fund and ADL absorb the rest first).

Stablecoin (pegged at ``par``, backed by a reserve of ``backing_ratio * supply * par``)::

    CR    = (backing_ratio * supply * par - D) / (supply * par)      # collateral ratio
    price = par * max(floor, min(1, CR) * (1 - run_discount * [CR < run_threshold]))

The peg holds while the reserve covers the supply; below ``run_threshold`` the
redemption run (holders racing to redeem, Terra/UST May 2022 and USDe on
Binance, contagion_and_peers.md §2.5-2.6) is a fixed extra discount
``run_discount`` on top of the pro-rata recovery ``min(1, CR)``.

With ``contagion.venue_oracle`` the *collateral* price of a token that has a
``venue`` book is that book's mid (phase 2), not its fundamental — Binance valuing
USDe/wBETH margin collateral off its own thin spot book on 10 Oct 2025 (§2.6);
without a two-sided book the fundamental is used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Token", "TokenBook", "receipt_price", "stablecoin_price"]


def receipt_price(par: float, supply: float, bad_debt: float, floor: float = 0.0) -> float:
    """Net assets per unit of a receipt token: ``par * max(floor, 1 - D / (supply * par))``."""
    return par * max(floor, 1.0 - bad_debt / (supply * par))


def stablecoin_price(par: float, supply: float, bad_debt: float, backing_ratio: float = 1.0,
                     run_threshold: float = 1.0, run_discount: float = 0.0,
                     floor: float = 0.0) -> float:
    """Stablecoin price from its issuer's collateral ratio (module docstring)."""
    cr = (backing_ratio * supply * par - bad_debt) / (supply * par)
    p = min(1.0, cr)
    if cr < run_threshold:
        p *= 1.0 - run_discount
    return par * max(floor, p)


@dataclass
class Token:
    """One issued token: its config, issuer (protocol index) and asset index."""

    name: str
    cfg: Any
    issuer: int
    asset: int
    tick_size: float
    lot_size: float

    def fundamental(self, bad_debt: float) -> float:
        """Value per token given the issuer's recorded bad debt (receipt or stablecoin rule)."""
        c = self.cfg
        if c.kind == "stablecoin":
            return stablecoin_price(c.par, c.supply, bad_debt, c.backing_ratio, c.run_threshold,
                                    c.run_discount, c.floor)
        return receipt_price(c.par, c.supply, bad_debt, c.floor)


class TokenBook:
    """The world's issued tokens and their per-step pricing."""

    def __init__(self, cfg: Any, first_asset: int) -> None:
        self.cfg = cfg
        self.tokens: list[Token] = []
        for p, pc in enumerate(cfg.protocols):
            t = pc.issues
            if t is not None:
                self.tokens.append(Token(t.name, t, p, first_asset + len(self.tokens),
                                         tick_size=t.par * 1e-4, lot_size=1.0))
        self.books: dict[int, int] = {}
        """Asset index -> world instrument index of the token's venue book."""

    def __bool__(self) -> bool:
        return bool(self.tokens)

    def prices(self) -> np.ndarray:
        """Prices at issue (``par``), in asset order."""
        return np.array([t.cfg.par for t in self.tokens], dtype=np.float64)

    def on_venue(self, protocol: str) -> list[tuple[int, Token]]:
        """Tokens with a spot book on ``protocol``: ``(asset index, token)``."""
        return [(t.asset, t) for t in self.tokens if t.cfg.venue == protocol]

    def holdings(self, protocol: str) -> list[tuple[int, float]]:
        """``(asset index, quote value)`` every new trader account on ``protocol`` receives."""
        return [(t.asset, float(t.cfg.holdings[protocol])) for t in self.tokens
                if protocol in t.cfg.holdings and t.cfg.holdings[protocol] > 0]

    def publish(self, fundamental: np.ndarray, books: Sequence[Any],
                instruments: Sequence[Any]) -> dict[int, float]:
        """Phase 2: collateral price of each token (venue mid with ``venue_oracle``).

        Args:
            fundamental: Fundamental value per asset (tokens: from their issuer).
            books: One order book per instrument (a token's venue book gives its mid).
            instruments: The instruments (tick sizes).

        Returns:
            ``{asset index: collateral price}``; the model writes them.
        """
        venue = self.cfg.contagion.venue_oracle
        out = {}
        for t in self.tokens:
            price = fundamental[t.asset]
            j = self.books.get(t.asset)
            if venue and j is not None:
                mid = books[j].mid()
                if mid is not None:
                    price = mid * instruments[j].tick_size
            out[t.asset] = price
        return out

    def revalue(self, bad_debt: Mapping[int, float]) -> tuple[dict[int, float], dict[int, float]]:
        """Phase 7: fundamental value from the issuer's bad debt (``token_impairment``).

        Args:
            bad_debt: Recorded bad debt per protocol index.

        Returns:
            ``({asset: fundamental value}, {asset: collateral price})`` to write
            (empty without ``token_impairment``; the collateral price follows the
            value unless the token is priced off its venue's book).
        """
        if not self.cfg.contagion.token_impairment:
            return {}, {}
        venue = self.cfg.contagion.venue_oracle
        values, prices = {}, {}
        for t in self.tokens:
            value = t.fundamental(float(bad_debt[t.issuer]))
            values[t.asset] = value
            if not (venue and t.asset in self.books):
                prices[t.asset] = value
        return values, prices
