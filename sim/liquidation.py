r"""Liquidation rounds, the insurance backstop and the bad-debt waterfall (step phase 6).

After each protocol's margin engine has evaluated its accounts (phase 5),
:class:`LiquidationEngine` runs *rounds* (DESIGN.md, "One step, one
direction", phase 6) until a round produces no event or ``max_rounds`` is
reached:

1. **Candidates.** Every account of a protocol whose equity is below its
   maintenance requirement and which holds a perpetual position of that
   protocol or a negative balance (a borrow). Accounts are visited in a random
   order drawn from ``model.rng``.
2. **Liquidators (fixed spread).** Each position of a candidate is offered, as
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
      ``bad_debt="socialise"`` it takes all positions).
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
        The issuer's receipt token then loses value (:mod:`sim.tokens`).

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
the waterfall — are in :mod:`sim.insurance`); the resting
orders of a liquidated account are cancelled first (Binance cancels all open
orders before liquidating). Deficits, fees and write-offs are in the quote
asset (asset 0, the model's ``market.quote``).

The per-step counters follow Gauntlet's market-risk metrics
(contagion_and_peers.md §3.3): liquidation volume (the basis of
"liquidations at risk"), insolvent amount (the basis of VaR) and bad debt.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.book import CANCEL
from sim.checks import invalid as _bad
from sim.ledger import HolderKind

if TYPE_CHECKING:  # pragma: no cover
    from sim.model import MarketModel

__all__ = [
    "BAD_DEBT_OWNER",
    "EVENT_COLUMNS",
    "KINDS",
    "STAT_KEYS",
    "Candidate",
    "LiquidationConfig",
    "LiquidationEngine",
    "bankruptcy_prices",
    "build_liquidators",
    "close_fraction",
    "offer_qty",
    "validate_liquidation_config",
]

MODES = ("partial", "full")
BACKSTOPS = ("insurance", "none")
BAD_DEBT_RULES = ("socialise", "adl_queue", "adl_prorata", "write_off")
BAD_DEBT_OWNER = -1
"""Owner id of the per-protocol bad-debt rows (no agent owns them)."""

KINDS = ("liquidator", "backstop", "universal_cover", "insurance", "adl", "socialised",
         "bad_debt")
"""Event kinds, in waterfall order."""

EVENT_COLUMNS = ("step", "round", "protocol", "account", "instrument", "asset", "kind", "size",
                 "price", "notional", "bonus", "fee", "amount", "shortfall", "taker")
"""Columns of an event row (see :class:`LiquidationEngine`)."""

STAT_KEYS = ("liquidations", "backstops", "notional", "rounds", "insolvency", "insurance_paid",
             "adl_loss", "socialised", "bad_debt", "fees", "bonuses")
"""Per-step (and cumulative) counters per protocol.

``liquidations``: perp positions taken by liquidators or the backstop;
``backstops``: those taken by the backstop; ``notional``: their notional at
the mark (Gauntlet's liquidation volume, the basis of "liquidations at risk");
``rounds``: last round with an event (cascade depth within the step);
``insolvency``: deficits of bankrupt accounts at the mark (Gauntlet's
insolvent amount, the basis of its VaR); ``insurance_paid``, ``adl_loss``,
``socialised``, ``bad_debt``: how those deficits were absorbed (they sum to
``insolvency`` up to round-off); ``fees``: fees and seized margin paid to the
fund; ``bonuses``: liquidator bonuses.
"""

_REL_TOL = 1e-9
QUOTE = 0
"""Asset index of the quote asset (the model lists it first); deficits are paid in it."""


# ------------------------------------------------------------------- config
@dataclass
class LiquidationConfig:
    """Liquidation rules of one protocol (nested in ``ProtocolConfig.liquidation``).

    Attributes:
        enabled: Run liquidation rounds for this protocol.
        max_rounds: Cap on liquidation rounds per step (cascade depth within a
            step); 5 is a modelling choice, not a venue parameter.
        mode: ``"partial"`` (close part of each position per round) or
            ``"full"`` (close all of it, Binance USDⓈ-M small positions).
        close_factor: Partial mode: fraction of the position taken per
            liquidation; 0.5 = Aave v3 ``DEFAULT_LIQUIDATION_CLOSE_FACTOR``
            (Hyperliquid uses 0.2 above $100k).
        target_margin_ratio: Partial mode: if set, liquidate just enough to
            bring equity back to ``target x MM`` (overrides ``close_factor``).
        liquidation_fee: Fee on the closed notional paid by the liquidated
            account; 1 % is in the range of Binance's clearance fee and dYdX
            ``max_liquidation_fee_ppm`` test value 0.5 % (margin_methods.md §3.3).
        liquidator_share: Share of the fee paid to the liquidator as its bonus,
            the rest to the insurance fund (Aave keeps 10 % of the bonus).
        backstop: ``"insurance"``: the fund takes unliquidated positions
            below ``backstop_threshold x MM`` (Hyperliquid HLP backstop);
            ``"none"``: it does not.
        backstop_threshold: Equity/MM ratio under which the backstop acts;
            2/3 after Hyperliquid.
        bad_debt: Rule for a deficit the insurance fund cannot cover:
            ``"socialise"``, ``"adl_queue"``, ``"adl_prorata"`` or
            ``"write_off"`` (straight to recorded bad debt).
    """

    enabled: bool = True
    max_rounds: int = 5
    mode: str = "partial"
    close_factor: float = 0.5
    target_margin_ratio: float | None = None
    liquidation_fee: float = 0.01
    liquidator_share: float = 0.5
    backstop: str = "insurance"
    backstop_threshold: float = 2.0 / 3.0
    bad_debt: str = "adl_queue"

    def __post_init__(self) -> None:
        validate_liquidation_config(self)


def _number(key: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        _bad(key, value, "must be a number")
    if value < lo or (lo_open and value == lo) or value > hi:
        _bad(key, value, f"must be in {'(' if lo_open else '['}{lo}, {hi}]")


def validate_liquidation_config(cfg: Any, prefix: str = "liquidation") -> Any:
    """Check a :class:`LiquidationConfig` (dataclass or OmegaConf node); return it.

    Raises:
        ValueError: One line naming the first bad field, its value and the
            allowed range.
    """
    if not isinstance(cfg.enabled, bool):
        _bad(f"{prefix}.enabled", cfg.enabled, "must be true or false")
    if isinstance(cfg.max_rounds, bool) or not isinstance(cfg.max_rounds, int) or not (
            1 <= cfg.max_rounds <= 1000):
        _bad(f"{prefix}.max_rounds", cfg.max_rounds, "must be an integer in [1, 1000]")
    if cfg.mode not in MODES:
        _bad(f"{prefix}.mode", cfg.mode, f"must be one of {', '.join(MODES)}")
    _number(f"{prefix}.close_factor", cfg.close_factor, 0.0, 1.0, lo_open=True)
    if cfg.target_margin_ratio is not None:
        _number(f"{prefix}.target_margin_ratio", cfg.target_margin_ratio, 1.0, 100.0)
    _number(f"{prefix}.liquidation_fee", cfg.liquidation_fee, 0.0, 0.5)
    _number(f"{prefix}.liquidator_share", cfg.liquidator_share, 0.0, 1.0)
    if cfg.backstop not in BACKSTOPS:
        _bad(f"{prefix}.backstop", cfg.backstop, f"must be one of {', '.join(BACKSTOPS)}")
    _number(f"{prefix}.backstop_threshold", cfg.backstop_threshold, 0.0, 1.0)
    if cfg.bad_debt not in BAD_DEBT_RULES:
        _bad(f"{prefix}.bad_debt", cfg.bad_debt, f"must be one of {', '.join(BAD_DEBT_RULES)}")
    return cfg


# -------------------------------------------------------------- candidates
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


def close_fraction(cfg: Any, equity: float, maintenance: float, notional: float) -> float:
    """Fraction of every position offered this round (see the module docstring).

    Args:
        cfg: The protocol's :class:`LiquidationConfig`.
        equity: Account equity ``E``.
        maintenance: Account maintenance requirement ``MM``.
        notional: Account gross perp notional ``N``.

    Returns:
        ``phi`` in (0, 1]: 1 in full mode or when ``E <= 0``; ``close_factor``
        in partial mode; ``(t MM - E) / (t MM - f N)`` with a target ratio.
    """
    if cfg.mode == "full" or equity <= 0.0 or notional <= 0.0:
        return 1.0
    if cfg.target_margin_ratio is None:
        return float(cfg.close_factor)
    t, f = float(cfg.target_margin_ratio), float(cfg.liquidation_fee)
    need = t * maintenance - equity
    denom = t * maintenance - f * notional
    if need <= 0.0:
        return float(cfg.close_factor)
    if denom <= need:
        return 1.0
    return need / denom


def offer_qty(position: float, phi: float, lot: float) -> float:
    """Signed quantity offered: ``phi |position|`` rounded up to whole lots.

    The whole position is offered when less than a lot would remain, so no
    dust is left behind.
    """
    size = abs(position)
    offer = min(math.ceil(phi * size / lot - 1e-9) * lot, size)
    if size - offer < lot:
        offer = size
    return math.copysign(offer, position)


ADL_MAX_MOVE = 0.5
"""Largest distance of an ADL price from the mark, as a fraction of the mark.

An account's deficit is spread over its positions; when the deficit is large
against a position's notional (it came from borrows or other losses) the
formula below would put the "bankruptcy price" near zero or far above the mark,
and ADL would transfer losses unrelated to that position. The price is bounded
to ``mark x (1 +- ADL_MAX_MOVE)``; the part of the deficit this leaves uncovered
stays with the account and ends as socialised loss or recorded bad debt.
"""


def bankruptcy_prices(value: float, positions: np.ndarray, marks: np.ndarray,
                      max_move: float = ADL_MAX_MOVE) -> np.ndarray:
    """Per-position prices at which closing everything leaves the account at zero value.

    The deficit ``-value`` is split over positions by notional weight
    ``w_j = |q_j| m_j / sum |q| m``: ``p_j = m_j - value w_j / q_j``. For a
    bankrupt long (``value < 0``) the price is above the mark. Each price is
    bounded to ``m_j (1 +- max_move)`` (see :data:`ADL_MAX_MOVE`).

    Args:
        value: Account net value (negative when bankrupt).
        positions: Signed positions (non-zero).
        marks: Their marks.
        max_move: Largest distance from the mark, as a fraction of it.
    """
    notional = np.abs(positions) * marks
    w = notional / notional.sum()
    raw = marks - value * w / positions
    return np.clip(raw, marks * (1.0 - max_move), marks * (1.0 + max_move))


# ------------------------------------------------------------------ engine
class LiquidationEngine:
    """Runs phase 6 of every step: liquidation rounds and the bad-debt waterfall.

    Args:
        model: The :class:`~sim.model.MarketModel`.
        cfgs_by_protocol: A :class:`LiquidationConfig` per protocol index
            (mapping or sequence aligned with ``model.protocols``); missing
            protocols are not liquidated.

    Attributes:
        events: Event log of the run, one dict per event with
            :data:`EVENT_COLUMNS`: ``step``, ``round``, ``protocol``,
            ``account`` (liquidated row), ``instrument`` (perp moved, -1 if
            none), ``asset`` (asset of a balance moved, -1 if none), ``kind``
            (:data:`KINDS`), ``size`` (signed base units or balance moved out
            of the account), ``price`` (mark, bankruptcy price or index),
            ``notional`` (``|size| x price``),
            ``bonus`` (to the liquidator), ``fee`` (to the insurance fund; on
            backstop rows the margin the fund seized), ``amount`` (quote
            absorbed by the taker: insurance payment, ADL loss against the
            mark, socialised charge, bad debt written off), ``shortfall`` (bad
            debt created; non-zero on ``bad_debt`` rows only) and ``taker``
            (liquidator row, insurance row, ADL counterparty, charged account
            or bad-debt row).
        bad_debt: Cumulative bad debt written off, per protocol (quote units).
        bad_debt_rows: The bad-debt ledger row of each protocol.
        step_stats: Counters of the last :meth:`run` per protocol (:data:`STAT_KEYS`).
        totals: The same counters summed over the run.
        max_depth: Deepest cascade (rounds with events in one step) per protocol.
    """

    def __init__(self, model: MarketModel,
                 cfgs_by_protocol: Mapping[int, Any] | Sequence[Any]) -> None:
        self.model = model
        items = (cfgs_by_protocol.items() if isinstance(cfgs_by_protocol, Mapping)
                 else enumerate(cfgs_by_protocol))
        self.cfgs: dict[int, Any] = {}
        for p, cfg in items:
            validate_liquidation_config(cfg, f"protocols[{p}].liquidation")
            self.cfgs[int(p)] = cfg
        self.events: list[dict[str, Any]] = []
        self.bad_debt: dict[int, float] = {}
        self.bad_debt_rows: dict[int, int] = {}
        for proto in model.protocols:
            self.bad_debt[proto.index] = 0.0
            self.bad_debt_rows[proto.index] = model.ledger.open_account(
                HolderKind.INSURANCE, owner=BAD_DEBT_OWNER, protocol=proto.index)
        self.step_stats = {p.index: dict.fromkeys(STAT_KEYS, 0.0) for p in model.protocols}
        self.totals = {p.index: dict.fromkeys(STAT_KEYS, 0.0) for p in model.protocols}
        self.max_depth = {p.index: 0 for p in model.protocols}
        self._first_seen: dict[int, int] = {}
        self._cancelled: set[int] = set()
        self._step = 0
        self._round = 0

    # ------------------------------------------------------------- driver
    def _active(self, rnd: int) -> list[Any]:
        return [p for p in self.model.protocols
                if p.index in self.cfgs and self.cfgs[p.index].enabled
                and rnd <= self.cfgs[p.index].max_rounds]

    def run(self, step: int) -> list[dict[str, Any]]:
        """Liquidation rounds of one step, on the latest margin evaluation.

        Args:
            step: Current model step (recorded in events; latency is measured
                in steps).

        Returns:
            The events of this step (also appended to :attr:`events`).
        """
        m = self.model
        self._step = int(step)
        self._cancelled = set()
        for stats in self.step_stats.values():
            stats.update(dict.fromkeys(STAT_KEYS, 0.0))
        margins = m.margin_state or m.evaluate_margins()
        start = len(self.events)
        rnd = 1
        while self._active(rnd):
            self._round = rnd
            self._track_first_seen(margins)
            before = len(self.events)
            for proto in self._active(rnd):
                if self._round_protocol(proto, margins):
                    self.step_stats[proto.index]["rounds"] = float(rnd)
            if len(self.events) == before:
                break
            m.update_marks()
            margins = m.evaluate_margins()
            rnd += 1
        self._track_first_seen(margins)
        for p, stats in self.step_stats.items():
            for k, v in stats.items():
                self.totals[p][k] += v
            self.max_depth[p] = max(self.max_depth[p], int(stats["rounds"]))
        return self.events[start:]

    def _track_first_seen(self, margins: Mapping[int, tuple[np.ndarray, Any]]) -> None:
        """Remember when each account first fell below maintenance (reset on recovery)."""
        below: set[int] = set()
        for rows, res in margins.values():
            below.update(int(r) for r in rows[res.below_maintenance])
        for r in list(self._first_seen):
            if r not in below:
                del self._first_seen[r]
        for r in below:
            self._first_seen.setdefault(r, self._step)

    def _round_protocol(self, proto: Any, margins: Mapping[int, tuple[np.ndarray, Any]]) -> bool:
        """One round on one protocol; True if anything happened."""
        m = self.model
        rows, res = margins[proto.index]
        if not res.below_maintenance.any():  # bankrupt implies below maintenance
            return False
        n_before = len(self.events)
        perps = self._perps(proto)
        values = m.ledger.account_value(m.asset_prices, m.marks)
        tol = self._tolerances(rows)
        bankrupt = values[rows] < -tol
        has_pos = (m.ledger.position[rows][:, perps] != 0.0).any(axis=1)
        has_debt = (m.ledger.collateral[rows] < 0.0).any(axis=1)
        liquidatable = res.below_maintenance & (has_pos | has_debt) & ~bankrupt
        for k in self._shuffled(np.flatnonzero(liquidatable)):
            self._liquidate(proto, int(rows[k]), float(res.equity[k]), float(res.initial[k]),
                            float(res.maintenance[k]))
        bankrupt_rows = set(int(r) for r in rows[bankrupt])
        for k in self._shuffled(np.flatnonzero(bankrupt)):
            self._resolve_bankrupt(proto, int(rows[k]), bankrupt_rows)
        return len(self.events) > n_before

    # ------------------------------------------------------------ helpers
    def _shuffled(self, idx: np.ndarray) -> np.ndarray:
        return self.model.rng.permutation(idx) if len(idx) > 1 else idx

    @staticmethod
    def _perps(proto: Any) -> np.ndarray:
        return np.array([i.index for i in proto.instruments if i.is_perp], np.int64)

    def _tolerances(self, rows: np.ndarray) -> np.ndarray:
        """Round-off slack of each row's value: relative to its gross balances and notional."""
        m = self.model
        lg = m.ledger
        gross = np.abs(lg.collateral[rows]) @ np.abs(m.asset_prices)
        gross += lg.notional(m.marks)[rows]
        return _REL_TOL * (gross + 1.0)

    def _value(self, row: int) -> float:
        m = self.model
        return float(m.ledger.account_value(m.asset_prices, m.marks)[row])

    def _sync_book(self, j: int, *rows: int) -> None:
        """Tell the book the ledger's position after an off-book transfer (reduce-only clipping)."""
        inst = self.model.instruments[j]
        book = self.model.books[j]
        for r in rows:
            book.set_position(int(r), int(round(self.model.ledger.position[r, j] / inst.lot_size)))

    def _transfer(self, j: int, src: int, dst: int, qty: float, price: float) -> None:
        self.model.ledger.transfer_position(j, src, dst, qty, price)
        self._sync_book(j, src, dst)

    def _cancel_orders(self, proto: Any, row: int) -> None:
        """Cancel the account's resting orders on the protocol's books, once per step."""
        if row in self._cancelled:
            return
        self._cancelled.add(row)
        m = self.model
        for inst in proto.instruments:
            live = m.books[inst.index].live_orders()
            ids = live["order_id"][live["owner"] == row]
            if len(ids):
                ev = m.view.new_events(len(ids))
                ev["kind"] = CANCEL
                ev["order_id"] = ids
                ev["owner"] = row
                m.submit(inst.index, ev)

    def _event(self, proto: Any, row: int, kind: str, instrument: int = -1, size: float = 0.0,
               price: float = 0.0, bonus: float = 0.0, fee: float = 0.0, amount: float = 0.0,
               shortfall: float = 0.0, taker: int = -1, asset: int = -1) -> None:
        self.events.append({
            "step": self._step, "round": self._round, "protocol": proto.index, "account": row,
            "instrument": instrument, "asset": asset, "kind": kind, "size": float(size),
            "price": float(price),
            "notional": abs(float(size)) * float(price), "bonus": float(bonus), "fee": float(fee),
            "amount": float(amount), "shortfall": float(shortfall), "taker": int(taker)})

    def _positions(self, proto: Any, row: int) -> list[tuple[int, float]]:
        pos = self.model.ledger.position
        return [(int(j), float(pos[row, j])) for j in self._perps(proto) if pos[row, j] != 0.0]

    # ------------------------------------------------- solvent liquidation
    def _liquidate(self, proto: Any, row: int, equity: float, initial: float,
                   maintenance: float) -> None:
        """Offer each perp position of a solvent account to liquidators; backstop if nobody acts.

        Spot exposure (borrows) is not offered to liquidators; the backstop
        takes it with the rest of the account.
        """
        m = self.model
        cfg = self.cfgs[proto.index]
        self._cancel_orders(proto, row)
        positions = self._positions(proto, row)
        notional = sum(abs(q) * float(m.marks[j]) for j, q in positions)
        phi = close_fraction(cfg, equity, maintenance, notional)
        margin_left = equity
        acted = False
        for j, q in positions:
            inst = m.instruments[j]
            cand = Candidate(self._step, self._round, proto.index, row, j, q,
                             offer_qty(q, phi, inst.lot_size), float(m.marks[j]),
                             self._first_seen.get(row, self._step), equity, initial, maintenance,
                             notional, margin_left, float(cfg.liquidation_fee),
                             float(cfg.liquidator_share), inst.lot_size)
            taken = self._offer(proto, cand)
            if taken is not None:
                acted = True
                margin_left -= taken
        below_backstop = equity < cfg.backstop_threshold * maintenance
        if not acted and cfg.backstop == "insurance" and below_backstop:
            self._backstop(proto, row)

    def _offer(self, proto: Any, cand: Candidate) -> float | None:
        """Offer to liquidators in a random order; first taker wins. Returns the fee charged."""
        liqs = [a for a in getattr(self.model, "liquidators", ()) if proto.index in a.accounts]
        order = self._shuffled(np.arange(len(liqs)))
        for i in order:
            liq = liqs[int(i)]
            accepted = abs(float(liq.offer(cand)))
            if accepted <= 0.0:
                continue
            qty = min(accepted, abs(cand.qty))
            if abs(cand.position) - qty < cand.lot_size:  # no sub-lot dust left behind
                qty = abs(cand.position)
            return self._take(proto, cand, liq, math.copysign(qty, cand.position))
        return None

    def _take(self, proto: Any, cand: Candidate, liq: Any, qty: float) -> float:
        """Move ``qty`` to the liquidator at the mark, pay fee and bonus, let it unwind."""
        lg = self.model.ledger
        taker = int(liq.accounts[proto.index])
        quote = self.model.instruments[cand.instrument].quote
        self._transfer(cand.instrument, cand.account, taker, qty, cand.mark)
        fee = cand.fee(qty)
        bonus = cand.liquidator_share * fee
        if bonus > 0.0:
            lg.transfer(cand.account, taker, quote, bonus, allow_negative=True)
        if fee - bonus > 0.0:
            lg.transfer(cand.account, proto.insurance, quote, fee - bonus, allow_negative=True)
        self._event(proto, cand.account, "liquidator", cand.instrument, qty, cand.mark,
                    bonus=bonus, fee=fee - bonus, taker=taker)
        stats = self.step_stats[proto.index]
        stats["liquidations"] += 1
        stats["notional"] += abs(qty) * cand.mark
        stats["fees"] += fee - bonus
        stats["bonuses"] += bonus
        liq.unwind(cand.instrument)
        return fee

    def _backstop(self, proto: Any, row: int) -> None:
        """The fund takes the whole account: perps at the mark, balances, the quote margin.

        One ``backstop`` event per perp moved (counted as a liquidation), per
        non-quote balance moved, and one for the quote margin seized (``fee``).
        """
        m = self.model
        stats = self.step_stats[proto.index]
        for j, q in self._positions(proto, row):
            mark = float(m.marks[j])
            self._transfer(j, row, proto.insurance, q, mark)
            self._event(proto, row, "backstop", j, q, mark, taker=proto.insurance)
            stats["liquidations"] += 1
            stats["backstops"] += 1
            stats["notional"] += abs(q) * mark
        self._take_balances(proto, row, "backstop")
        margin = max(float(m.ledger.collateral[row, QUOTE]), 0.0)
        if margin > 0.0:
            m.ledger.transfer(row, proto.insurance, QUOTE, margin)
            self._event(proto, row, "backstop", size=margin, price=1.0, fee=margin,
                        taker=proto.insurance, asset=QUOTE)
            stats["fees"] += margin

    def _take_balances(self, proto: Any, row: int, kind: str) -> None:
        """The fund takes over every non-quote balance at the index price (value-neutral).

        Holdings are bought and borrows (negative balances) assumed by the
        fund against quote at the oracle index, so the account is left with
        quote only and unchanged value. The fund may end with a negative
        balance in an asset (it now owes what the account had borrowed) or in
        quote (it paid for holdings with money it did not have): both are
        matched by what it received, not losses.
        """
        m = self.model
        lg = m.ledger
        ins = proto.insurance
        for a in range(lg.n_assets):
            b = float(lg.collateral[row, a])
            if a == QUOTE or b == 0.0:
                continue
            price = float(m.asset_prices[a])
            if b > 0.0:
                lg.transfer(row, ins, a, b)
                lg.transfer(ins, row, QUOTE, b * price, allow_negative=True)
            else:
                lg.transfer(ins, row, a, -b, allow_negative=True)
                lg.transfer(row, ins, QUOTE, -b * price, allow_negative=True)
            self._event(proto, row, kind, size=b, price=price, taker=ins, asset=a)

    # -------------------------------------------------------- bankruptcy
    def _resolve_bankrupt(self, proto: Any, row: int, bankrupt: set[int]) -> None:
        """Insurance fund, then socialisation or ADL, then explicit bad debt."""
        cfg = self.cfgs[proto.index]
        self._cancel_orders(proto, row)
        tol = float(self._tolerances(np.array([row]))[0])
        deficit = -self._value(row)
        if deficit <= tol:
            return
        if self._universal_cover(proto, row, deficit):
            deficit = -self._value(row)
            if deficit <= tol:
                return
        stats = self.step_stats[proto.index]
        stats["insolvency"] += deficit
        self._take_balances(proto, row, "insurance")  # spot book first: no exposure left
        self._insurance_cover(proto, row, deficit, take_all=cfg.bad_debt == "socialise")
        remaining = -self._value(row)
        if remaining > tol:
            if cfg.bad_debt == "socialise":
                self._socialise(proto, row, remaining, bankrupt)
            elif cfg.bad_debt != "write_off":
                self._adl(proto, row, remaining, bankrupt, queue=cfg.bad_debt == "adl_queue")
        for j, q in self._positions(proto, row):  # nobody else could take these
            self._transfer(j, row, proto.insurance, q, float(self.model.marks[j]))
            self._event(proto, row, "insurance", j, q, float(self.model.marks[j]),
                        taker=proto.insurance)
        self._write_off(proto, row)

    def _universal_cover(self, proto: Any, row: int, deficit: float) -> bool:
        """Universal margin: the owner's sub-accounts on other protocols pay the deficit first.

        With ``contagion.universal_margin`` and ``contagion.universal_cover``, a
        bankrupt sub-account of a universal owner (:mod:`sim.universal`) draws
        on its siblings before its protocol's insurance fund: from each sibling
        (protocol order) its positive quote balance, then its other positive
        balances in kind at the index, never more than the sibling's whole
        value (balances and positions at the mark), until the deficit is met.
        One ``universal_cover`` event per balance moved (``taker``: the sibling,
        ``amount``: value moved). A sibling left short of its own requirement
        is liquidated in the next round, as the owner's margin ratio says.

        Returns:
            Whether anything was moved.
        """
        m = self.model
        uni = getattr(m, "universal", None)
        if uni is None or not m.cfg.contagion.universal_cover:
            return False
        lg = m.ledger
        moved = False
        for sib in uni.siblings(row).tolist():
            avail = self._value(sib)
            for a in range(lg.n_assets):
                if deficit <= 0.0 or avail <= 0.0:
                    break
                b = float(lg.collateral[sib, a])
                if b <= 0.0:
                    continue
                price = 1.0 if a == QUOTE else float(m.asset_prices[a])
                units = min(b, deficit / price, avail / price)
                lg.transfer(sib, row, a, units)
                value = units * price
                self._event(proto, row, "universal_cover", size=units, price=price, amount=value,
                            taker=sib, asset=a)
                deficit -= value
                avail -= value
                moved = True
        return moved

    def _insurance_cover(self, proto: Any, row: int, deficit: float, take_all: bool) -> None:
        """The fund pays what it can and takes the same fraction of the positions at the mark."""
        m = self.model
        positions = self._positions(proto, row)
        quote = QUOTE
        cover = min(deficit, max(float(m.ledger.collateral[proto.insurance, quote]), 0.0))
        frac = 1.0 if take_all or cover >= deficit else cover / deficit
        if frac <= 0.0:
            return
        if cover > 0.0:
            m.ledger.transfer(proto.insurance, row, quote, cover)
        self.step_stats[proto.index]["insurance_paid"] += cover
        if not positions:
            self._event(proto, row, "insurance", amount=cover, taker=proto.insurance, asset=quote)
            return
        notional = np.array([abs(q) * float(m.marks[j]) for j, q in positions])
        for (j, q), w in zip(positions, notional / notional.sum(), strict=True):
            size = q if frac >= 1.0 else q * frac
            self._transfer(j, row, proto.insurance, size, float(m.marks[j]))
            self._event(proto, row, "insurance", j, size, float(m.marks[j]), amount=cover * w,
                        taker=proto.insurance)

    def _eligible(self, proto: Any, row: int, bankrupt: set[int]) -> np.ndarray:
        """Other trader rows of the protocol that are not bankrupt themselves."""
        rows = np.array([r for r in proto.accounts if r != row and r not in bankrupt], np.int64)
        if len(rows) == 0:
            return rows
        m = self.model
        values = m.ledger.account_value(m.asset_prices, m.marks)[rows]
        return rows[values > 0.0]

    def _socialise(self, proto: Any, row: int, deficit: float, bankrupt: set[int]) -> None:
        """Charge the deficit to solvent accounts pro rata to their unrealised profit."""
        m = self.model
        lg = m.ledger
        rows = self._eligible(proto, row, bankrupt)
        if len(rows) == 0:
            return
        perps = self._perps(proto)
        upnl = lg.unrealised_pnl_by_instrument(m.marks)[rows][:, perps].sum(axis=1)
        values = lg.account_value(m.asset_prices, m.marks)[rows]
        base = np.minimum(np.maximum(upnl, 0.0), values)
        total = float(base.sum())
        if total <= 0.0:
            return
        scale = min(1.0, deficit / total)
        for r, b in zip(rows, base, strict=True):
            charge = float(b) * scale
            if charge <= 0.0:
                continue
            lg.transfer(int(r), row, QUOTE, charge, allow_negative=True)
            self._event(proto, row, "socialised", amount=charge, taker=int(r))
            self.step_stats[proto.index]["socialised"] += charge

    def _adl(self, proto: Any, row: int, deficit: float, bankrupt: set[int], queue: bool) -> None:
        """Close bankrupt positions against profitable opposite ones at bankruptcy prices."""
        m = self.model
        positions = self._positions(proto, row)
        if not positions:
            return
        js = np.array([j for j, _ in positions], np.int64)
        qs = np.array([q for _, q in positions])
        marks = m.marks[js].astype(np.float64)
        prices = bankruptcy_prices(-deficit, qs, marks)
        rows = self._eligible(proto, row, bankrupt)
        for j, q, mark, p_b in zip(js, qs, marks, prices, strict=True):
            tick = m.instruments[int(j)].tick_size
            self._adl_one(proto, row, int(j), float(q), float(mark), max(float(p_b), tick), rows,
                          queue)

    def _adl_one(self, proto: Any, row: int, j: int, q: float, mark: float, price: float,
                 rows: np.ndarray, queue: bool) -> None:
        """ADL of one position ``q`` at ``price`` against the eligible ``rows``."""
        lg = self.model.ledger
        if len(rows) == 0:
            return
        c = lg.position[rows, j]
        upnl = c * (mark - lg.entry_price[rows, j])
        ok = (np.sign(c) == -np.sign(q)) & (upnl > 0.0)
        if not ok.any():
            return
        rows, c, upnl = rows[ok], np.abs(c[ok]), upnl[ok]
        need = abs(q)
        if queue:  # highest rank first, each closed in full until the position is placed
            values = lg.account_value(self.model.asset_prices, self.model.marks)[rows]
            gross = lg.notional(self.model.marks)[rows]
            order = np.argsort(-(upnl / values) * (gross / values), kind="stable")
            take = c[order]
        else:  # everyone the same fraction of its size
            order = np.arange(len(rows))
            take = c * min(1.0, need / float(c.sum()))
        left = abs(float(lg.position[row, j]))
        for r, x in zip(rows[order], take, strict=True):
            x = min(float(x), left)
            if x <= 0.0:
                continue
            if left - x < 1e-12 * need:
                x = left
            self._transfer(j, row, int(r), math.copysign(x, q), price)
            loss = x * abs(price - mark)
            self._event(proto, row, "adl", j, math.copysign(x, q), price, amount=loss, taker=int(r))
            self.step_stats[proto.index]["adl_loss"] += loss
            left = abs(float(lg.position[row, j]))
            if left == 0.0:
                break

    def _write_off(self, proto: Any, row: int) -> None:
        """Record what is still negative as bad debt, paid by the protocol's bad-debt row."""
        remaining = -self._value(row)
        if remaining <= self._tolerances(np.array([row]))[0]:
            return
        bad_row = self.bad_debt_rows[proto.index]
        self.model.ledger.transfer(bad_row, row, QUOTE, remaining, allow_negative=True)
        self.bad_debt[proto.index] += remaining
        self.step_stats[proto.index]["bad_debt"] += remaining
        self._event(proto, row, "bad_debt", amount=remaining, shortfall=remaining, taker=bad_row)

    # ------------------------------------------------------------ outputs
    def check_bad_debt(self, rtol: float = 1e-9) -> None:
        """Raise if a bad-debt row's balance differs from ``-bad_debt`` (the recorded write-offs).

        Raises:
            AssertionError: With the protocol, the balance and the record.
        """
        coll = self.model.ledger.collateral
        for p, row in self.bad_debt_rows.items():
            held = float(coll[row, QUOTE])
            if abs(held + self.bad_debt[p]) > rtol * max(1.0, self.bad_debt[p]):
                raise AssertionError(f"bad-debt row of protocol {p} holds {held!r}, "
                                     f"recorded bad debt is {self.bad_debt[p]!r}")

    def events_table(self) -> dict[str, np.ndarray]:
        """The event log as columns (for Parquet), in :data:`EVENT_COLUMNS` order."""
        out: dict[str, np.ndarray] = {}
        for col in EVENT_COLUMNS:
            vals = [e[col] for e in self.events]
            if col == "kind":
                out[col] = np.array(vals, dtype=object)
            elif col in ("step", "round", "protocol", "account", "instrument", "asset", "taker"):
                out[col] = np.array(vals, dtype=np.int64)
            else:
                out[col] = np.array(vals, dtype=np.float64)
        return out

    def summary(self) -> dict[str, dict[str, float]]:
        """Run totals per protocol name, for ``summary.json``.

        Keys: the :data:`STAT_KEYS` totals (``rounds`` summed over steps),
        ``max_depth``, ``bad_debt_total`` (recorded write-offs), ``events``,
        and bad debt at mark (:mod:`sim.insurance`): ``bad_debt_uncovered_at_mark``
        (the insurance fund's negative marked equity, 0 when it is solvent) and
        ``bad_debt_total_at_mark`` (the sum of both).
        """
        out = {}
        value = getattr(self.model, "insurance_state", None)
        for p in self.model.protocols:
            entry = {k: float(v) for k, v in self.totals[p.index].items()}
            entry["max_depth"] = float(self.max_depth[p.index])
            entry["bad_debt_total"] = float(self.bad_debt[p.index])
            uncovered = float(value(p).uncovered) if value is not None else 0.0
            entry["bad_debt_uncovered_at_mark"] = uncovered
            entry["bad_debt_total_at_mark"] = entry["bad_debt_total"] + uncovered
            entry["events"] = float(sum(e["protocol"] == p.index for e in self.events))
            out[p.name] = entry
        return out

    def metric_names(self) -> list[str]:
        """Time-series metric names, ``<protocol>.liq_<counter>`` plus cumulative bad debt."""
        names = []
        for p in self.model.protocols:
            names += [f"{p.name}.liq_{k}" for k in STAT_KEYS]
            names.append(f"{p.name}.bad_debt_total")
        return names

    def write_metrics(self, metrics: dict[str, float]) -> None:
        """Write the last step's counters (see :meth:`metric_names`) into ``metrics``."""
        for p in self.model.protocols:
            for k, v in self.step_stats[p.index].items():
                metrics[f"{p.name}.liq_{k}"] = float(v)
            metrics[f"{p.name}.bad_debt_total"] = float(self.bad_debt[p.index])


def build_liquidators(model: MarketModel, cfg: Any) -> list[Any]:
    """Create ``cfg.n`` liquidator agents, each with a funded account on every protocol.

    Args:
        model: The model (its ``open_trader`` opens the accounts).
        cfg: A :class:`agents.liquidator.LiquidatorConfig`.

    Returns:
        The agents (also registered with Mesa, so their ``step`` runs in phase 3).
    """
    from agents.liquidator import Liquidator

    out = []
    contagion = getattr(getattr(model, "cfg", None), "contagion", None)
    shared = bool(getattr(contagion, "shared_liquidator_capital", False))
    for _ in range(int(cfg.n)):
        agent = Liquidator(model, cfg, shared_capital=shared)
        for proto in model.protocols:
            agent.accounts[proto.index] = model.open_trader(proto.index, agent.unique_id,
                                                            float(cfg.capital), 0.0)
        out.append(agent)
    return out
