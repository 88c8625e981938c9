r"""Liquidation rounds, the insurance backstop and the bad-debt waterfall (step phase 6).

After each protocol's margin engine has evaluated its accounts (phase 5),
:class:`LiquidationEngine` runs *rounds* (DESIGN.md, "One step, one
direction", phase 6) until a round produces no event or ``max_rounds`` is
reached:

1. **Candidates.** Every account of a protocol whose equity is below its
   maintenance requirement and which holds a perpetual position of that
   protocol or a negative balance (a borrow). Accounts are visited in a random
   order drawn from ``model.rng``.
2. **The venue's own close-out** (``close_in_book``, off by default). The
   offered quantity of each position (the size rule below) first goes to the
   book as one reduce-only IOC order limited at ``book_slippage`` from the
   mark (Binance's liquidation engine and Hyperliquid's liquidator send
   liquidations to the book, margin_methods.md §3.3); the fill pays the
   liquidation fee on its notional at the mark to the insurance fund (event
   ``book_close``). Only the rest is offered to liquidators.
   **Liquidators (fixed spread).** Each position of a candidate is offered, as
   a :class:`Candidate`, to the liquidator agents in a random order; the first
   to accept takes (part of) the position over at the mark price with
   :meth:`~sim.ledger.Ledger.transfer_position` (first come, first served).
   The liquidated account pays a liquidation fee ``liquidation_fee x closed
   notional``, capped at its remaining margin so that a fee never creates bad
   debt (Binance USDⓈ-M: the liquidation clearance fee is taken from the
   remaining margin); a share ``liquidator_share`` of it is the liquidator's
   bonus (Aave v3: ``liquidationBonus``, of which the protocol keeps
   ``liquidationProtocolFee``, margin_methods.md §4.1), the rest goes to the
   insurance fund. The liquidator then closes what it took with reduce-only
   market orders in the book, and those trades move prices.
   *Size*: ``mode="full"`` takes the whole position; ``mode="partial"`` takes
   ``close_factor`` of it (Aave v3 default close factor 50 %; Hyperliquid
   sends 20 % of positions over $100k at a time) or, when
   ``target_margin_ratio`` is set, the smallest fraction ``phi`` of every
   position that restores ``equity >= target x MM`` assuming requirements scale
   with notional: ``phi = (t MM - E) / (t MM - f N)`` (capped at 1). With
   tiered brackets MM falls at least proportionally, so this is conservative.
   An account whose equity is not positive is always offered in full (Aave:
   close factor 100 % below HF 0.95).
3. **Backstop.** If no liquidator acted on an account this round and its
   equity is below ``backstop_threshold x MM`` (Hyperliquid: 2/3 of
   maintenance), the insurance fund takes the whole account: all perp
   positions at the mark, its spot balances (holdings and borrows) at the
   index against quote, and then its remaining quote margin ("the liquidator
   vault takes the positions and margin ... MM is not returned to the user",
   margin_methods.md §3.3). Accounts under maintenance because of spot
   borrows only are candidates for the backstop but not for liquidators.
4. **Bankruptcy waterfall.** An account whose net value (wallet balances at
   index prices plus unrealised P&L at the marks,
   :meth:`~sim.ledger.Ledger.account_value`, no haircuts) is negative has a
   deficit ``D``. Liquidators are not offered bankrupt accounts (there is no
   margin left to pay a bonus); instead:

   a. *Insurance fund first*: it takes the account's spot balances at the
      index against quote (value-neutral, so no spot exposure is left to make
      the account insolvent again), then pays ``c = min(D, balance)`` into the
      account and takes the fraction ``c / D`` of every position at the mark —
      equivalent to taking it at the bankruptcy price (with
      ``bad_debt="socialise"`` it takes all positions). With
      ``insurance_cover=false`` it pays nothing here and the whole deficit goes
      to the next step: Hyperliquid auto-deleverages as soon as an account's
      value is negative, its liquidator vault taking backstopped accounts only
      (margin_methods.md §3.3).
   b. The remainder ``D' = D - c`` per ``bad_debt``:

      * ``"socialise"``: charged to the protocol's other solvent accounts in
        proportion to their unrealised profit (each capped at
        ``min(profit, value)``, so nobody is made insolvent) — the
        "socialised loss" clawback early crypto futures venues used before
        ADL (recalled, not in the reference notes);
      * ``"adl_queue"``: auto-deleveraging (Binance, Hyperliquid): the
        remaining positions are closed against opposite-side *profitable*
        positions at the bankrupt account's bankruptcy price
        ``p_b = m - V w / a`` (value ``V = -D'``, notional weight ``w`` of the
        position, size ``a``) in order of the rank ``(uPnL / V_i) x
        (notional_i / V_i)`` = profit % x effective leverage (Binance ADL FAQ
        "PnL x leverage"; for one position ``notional / V`` is JEX's
        ``mark / (mark - bankruptcy)``, margin_methods.md §3.3), each closed
        in full before the next;
      * ``"adl_prorata"``: the same closes spread over all opposite-side
        profitable positions in proportion to their size (Chitra 2025's
        pro-rata family, contagion_and_peers.md §2.6);
      * ``"write_off"``: nobody else absorbs it — a lending pool without ADL,
        whose loss falls on its depositors (Aave v3.3 records it as a reserve
        *deficit*, margin_methods.md §4.1; MakerDAO's 5.67M DAI of
        uncollateralised debt on Black Thursday, contagion_and_peers.md §2.3).
        The issuer's receipt token then loses value (:mod:`sim.contagion.tokens`).

      Closing ``x`` at ``p_b`` costs the counterparty ``x |p_b - m|`` against
      the mark, and in total exactly ``D'``. Positions nobody could take go
      to the insurance fund at the mark.
   c. **Bad debt**: what is still negative is written off explicitly: a
      per-protocol bad-debt row (``HolderKind.INSURANCE``, owner
      ``BAD_DEBT_OWNER``) pays the account back to zero and goes negative by
      exactly the amount recorded in ``LiquidationEngine.bad_debt`` (Aave
      v3.3: bad debt is recorded as a reserve *deficit*).

5. **Re-mark and re-evaluate** (``model.update_marks()``,
   ``model.evaluate_margins()``) before the next round, so a cascade sees the
   prices its own liquidations made.

Conservation: every movement is a ledger transfer or position transfer, so
:func:`~sim.ledger.check_conservation` holds throughout. What it sees of bad
debt is the bad-debt row's negative quote balance, equal to
``-LiquidationEngine.bad_debt[p]``; :meth:`LiquidationEngine.check_bad_debt`
verifies that identity.

Simplifications: spot borrows (negative risky-asset balances) are not bought
back in the book by liquidators — the fund takes them over at the index in the
backstop or the waterfall (no price impact); ADL needs perp positions, so a
deficit from spot exposure alone goes insurance → socialisation → bad debt;
the insurance fund holds what it takes rather than unwinding it (its marked
equity, the positions it holds, its loss, and what it cannot cover at mark —
reported as bad debt at mark beside the recorded write-offs, not fed back into
the waterfall — are in :mod:`sim.venue.insurance`); the resting
orders of a liquidated account are cancelled first (Binance cancels all open
orders before liquidating). Deficits, fees and write-offs are in the quote
asset (asset 0, the model's ``market.quote``).

The per-step counters follow Gauntlet's market-risk metrics
(contagion_and_peers.md §3.3): liquidation volume (the basis of
"liquidations at risk"), insolvent amount (the basis of VaR) and bad debt.
"""

from sim.venue.liquidation.config import (
    BAD_DEBT_OWNER,
    EVENT_COLUMNS,
    KINDS,
    STAT_KEYS,
    LiquidationConfig,
    close_fraction,
    offer_qty,
    validate_liquidation_config,
)
from sim.venue.liquidation.rounds import LiquidationEngine
from sim.venue.liquidation.waterfall import bankruptcy_prices

__all__ = [
    "BAD_DEBT_OWNER",
    "EVENT_COLUMNS",
    "KINDS",
    "STAT_KEYS",
    "LiquidationConfig",
    "LiquidationEngine",
    "bankruptcy_prices",
    "close_fraction",
    "offer_qty",
    "validate_liquidation_config",
]
