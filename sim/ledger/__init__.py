"""The accounting ledger: every holder of value is a row of arrays.

Accounts (traders, protocol treasuries, insurance funds, perpetual clearing
accounts and the outside WORLD) are rows of numpy arrays owned by
:class:`Ledger`; every change of value is an operation that moves quantity
between rows (or an explicit, recorded mint/burn). Bulk operations (fill
settlement, funding, valuation) run as numba kernels in
:mod:`sim.ledger.kernels`; :func:`check_conservation` in
:mod:`sim.ledger.invariants` verifies the conservation identities at any step
and :class:`ConservationMonitor` records what each check measured.

Neighbours: ``sim.market.book`` produces the fills this ledger settles; margin
engines in ``margin/`` read its arrays (collateral, position, entry price) and
never write them.
"""

from sim.ledger.invariants import (
    ConservationMonitor,
    LedgerInvariantError,
    Residual,
    check_conservation,
    conservation_residuals,
)
from sim.ledger.ledger import HolderKind, InstrumentKind, Ledger

__all__ = [
    "ConservationMonitor",
    "HolderKind",
    "InstrumentKind",
    "Ledger",
    "LedgerInvariantError",
    "Residual",
    "check_conservation",
    "conservation_residuals",
]
