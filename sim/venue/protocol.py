"""A protocol (venue): its markets, books, special ledger rows and funding clocks.

A protocol lists a spot market and/or a linear perpetual per asset, charges
maker/taker fees into its treasury, settles perpetual P&L through its clearing
row, holds an insurance fund, and applies one margin engine to its accounts
(DESIGN.md, "Protocols and the collateral graph"). It owns no behaviour of its
own beyond bookkeeping; the model drives it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from margin.engine import MarginEngine
from sim.market.book import OrderBook
from sim.market.funding import FundingClock
from sim.market.instruments import Instrument

__all__ = ["Protocol"]


@dataclass
class Protocol:
    """One venue of the world.

    Attributes:
        index: Position in the model's protocol list.
        name: Protocol name from config.
        cfg: Its ``ProtocolConfig``.
        engine: Margin regime applied to its accounts.
        instruments: Instruments it lists (world indices).
        treasury: Ledger row receiving fees.
        insurance: Ledger row of the insurance fund.
        clearing: Ledger row settling its perpetuals' P&L and funding.
        funding: Funding clock per perpetual (by world instrument index).
        accounts: Trader rows registered on this protocol.
        listed_assets: World asset indices of the market assets it lists.
        options: Its option slots (:mod:`sim.market.options`); not in
            ``instruments``, whose books the spot and perpetual agents trade.
        option_clearing: CLEARING row per quote asset of its options.
    """

    index: int
    name: str
    cfg: Any
    engine: MarginEngine
    instruments: list[Instrument] = field(default_factory=list)
    treasury: int = -1
    insurance: int = -1
    clearing: int = -1
    funding: dict[int, FundingClock] = field(default_factory=dict)
    accounts: list[int] = field(default_factory=list)
    listed_assets: list[int] = field(default_factory=list)
    options: list[Instrument] = field(default_factory=list)
    option_clearing: dict[int, int] = field(default_factory=dict)

    def add_instrument(self, inst: Instrument) -> None:
        """List an instrument; perpetuals get a funding clock from the config."""
        self.instruments.append(inst)
        if inst.is_perp:
            c = self.cfg
            self.funding[inst.index] = FundingClock(c.funding_interval, c.interest_rate,
                                                    c.premium_clamp, c.funding_cap)


def make_book(stp: str) -> OrderBook:
    """An order book with the protocol's self-trade-prevention mode (config name)."""
    from sim.market.book import STP_CANCEL_BOTH, STP_CANCEL_RESTING, STP_CANCEL_TAKER, STP_NONE

    modes = {"none": STP_NONE, "cancel_resting": STP_CANCEL_RESTING,
             "cancel_taker": STP_CANCEL_TAKER, "cancel_both": STP_CANCEL_BOTH}
    return OrderBook(stp=modes[stp])
