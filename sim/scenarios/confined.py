"""Confined shocks: a sell-off or a default at one protocol, applied to a running model.

* :func:`sell_shock` — a whale account on one protocol sells a given notional
  at market on each of that protocol's perpetual books. The makers quote
  around the oracle index and marks are index-anchored, so the book recovers
  within the step: it moves prices, not solvency.
* :func:`exploit_shock` — an account on one protocol borrows a given amount
  and leaves the world with it, so the protocol is left with the deficit (the
  shape of an oracle-manipulation exploit or a large borrower's default).

:data:`SHOCKS` names them for configs (the contagion matrix study).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["EXPLOIT_OWNER", "SHOCKS", "SHOCK_OWNER", "exploit_shock", "sell_shock"]


SHOCK_OWNER = 999_999_999
"""Ledger owner id of :func:`sell_shock`'s whale account."""


EXPLOIT_OWNER = 999_999_998
"""Ledger owner id of :func:`exploit_shock`'s account."""


def sell_shock(model: Any, protocol: int, notional: float, kinds: str = "perp") -> int:
    """A whale on ``protocol`` sells ``notional`` (quote) at market on each of its books.

    Opens a dedicated, amply funded account on that protocol (so the pre-trade
    check passes) and sends one market sell per perpetual (``kinds="perp"``) or
    per book (``"all"``). Touches only that protocol's books and ledger rows.

    Returns:
        The shock account's ledger row.
    """
    from sim.market.book import MARKET

    proto = model.protocols[protocol]
    row = model.open_trader(protocol, SHOCK_OWNER, 1e4 * notional, 0.0)
    for inst in proto.instruments:
        if kinds == "perp" and not inst.is_perp:
            continue
        ev = model.view.new_events(1)
        ev["kind"] = MARKET
        ev["side"] = -1
        ev["qty"] = max(1, int(notional / model.marks[inst.index] / inst.lot_size))
        ev["owner"] = row
        model.submit(inst.index, ev)
    return row


def exploit_shock(model: Any, protocol: int, amount: float) -> int:
    """An account on ``protocol`` borrows ``amount`` of the quote asset and leaves with it.

    The account holds nothing else, so its equity is ``-amount``: the next
    margin evaluation finds it below maintenance and the liquidation engine
    resolves it through that protocol's own waterfall (insurance fund, then
    ADL, socialisation or a recorded write-off, as configured). The money
    goes to the ledger's outside world, so value stays conserved. It is the
    end state of an oracle-manipulation exploit such as Mango Markets'
    (October 2022: an account borrowed about 114 M USD against manipulated
    collateral; recalled, not in the reference notes) or of a large borrower's
    default, and touches only that protocol's rows.

    Returns:
        The exploit account's ledger row.

    Raises:
        ValueError: An unknown protocol or a non-positive amount (one line).
    """
    from sim.ledger import HolderKind

    if not 0 <= int(protocol) < len(model.protocols):
        raise ValueError(f"protocol must be in [0, {len(model.protocols) - 1}], got {protocol!r}")
    if not (np.isfinite(amount) and amount > 0):
        raise ValueError(f"amount must be a finite number > 0, got {amount!r}")
    lg = model.ledger
    row = lg.open_account(HolderKind.TRADER, owner=EXPLOIT_OWNER, protocol=int(protocol))
    lg.transfer(row, lg.world_row, 0, float(amount), allow_negative=True)
    model.protocols[int(protocol)].accounts.append(row)
    return row


SHOCKS: dict[str, Callable[[Any, int, float], int]] = {"sell": sell_shock,
                                                       "exploit": exploit_shock}
"""Confined shocks by name: ``sell`` (a market sell of a notional on each perp book of
the protocol) and ``exploit`` (a borrowed amount taken out of the protocol)."""
