"""The liquidation offer agents receive: one position of an account under maintenance.

The liquidation engine (:mod:`sim.venue.liquidation`) offers each position of an
undercollateralised account, as a :class:`Candidate`, to the liquidator agents
in a random order; an agent answers with the quantity it takes
(``agents.liquidator.Liquidator.offer``). It belongs to the market package
because it is part of what agents see of the world.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Candidate"]


@dataclass(frozen=True)
class Candidate:
    """One position of an account under maintenance, offered to liquidators.

    Attributes:
        step: Current model step.
        round: Liquidation round within the step (1-based).
        protocol: Protocol index.
        account: Ledger row of the liquidated account.
        instrument: Perpetual index.
        position: The account's signed position (base units).
        qty: Signed quantity offered (same sign as ``position``).
        mark: Transfer price (the mark).
        first_seen: Step at which the account first became liquidatable in
            its current spell (liquidator latency is measured from it).
        equity: Account equity at this round's evaluation.
        initial: Account initial requirement.
        maintenance: Account maintenance requirement.
        notional: Account gross perp notional at the marks.
        margin_left: Equity left to pay fees this round (the fee cap).
        fee_rate: Liquidation fee rate.
        liquidator_share: Share of the fee paid as bonus.
        lot_size: Lot size of the instrument.
    """

    step: int
    round: int
    protocol: int
    account: int
    instrument: int
    position: float
    qty: float
    mark: float
    first_seen: int
    equity: float
    initial: float
    maintenance: float
    notional: float
    margin_left: float
    fee_rate: float
    liquidator_share: float
    lot_size: float

    @property
    def side(self) -> int:
        """+1 for a long position, -1 for a short."""
        return 1 if self.position > 0 else -1

    @property
    def im_rate(self) -> float:
        """Initial requirement per unit of notional of the account (a taker's IM estimate)."""
        return self.initial / self.notional if self.notional > 0 else 0.0

    def fee(self, qty: float) -> float:
        """Fee the account pays for ``|qty|`` taken: rate x notional, capped by its margin left."""
        return min(self.fee_rate * abs(qty) * self.mark, max(self.margin_left, 0.0))

    def bonus(self, qty: float) -> float:
        """Liquidator's bonus for taking ``|qty|``."""
        return self.liquidator_share * self.fee(qty)
