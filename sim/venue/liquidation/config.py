"""Liquidation parameters of a protocol, their checks, and the close-out sizing rules.

:class:`LiquidationConfig` is the ``protocols[i].liquidation`` section of the
run config; :func:`validate_liquidation_config` checks it in the one
validation dialect (:mod:`sim.config.checks`); :func:`close_fraction` and
:func:`offer_qty` size a partial close-out (the rules are described in
:mod:`sim.venue.liquidation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sim.config.checks import invalid as _bad

__all__ = ["BACKSTOPS", "BAD_DEBT_OWNER", "BAD_DEBT_RULES", "EVENT_COLUMNS", "KINDS", "MODES",
           "PATHS", "QUOTE", "STAT_KEYS", "LiquidationConfig", "close_fraction", "offer_qty",
           "validate_liquidation_config"]


MODES = ("partial", "full")


BACKSTOPS = ("insurance", "none")


BAD_DEBT_RULES = ("socialise", "adl_queue", "adl_prorata", "write_off")


BAD_DEBT_OWNER = -1
"""Owner id of the per-protocol bad-debt rows (no agent owns them)."""


KINDS = ("option_close", "option_takeover", "book_close", "liquidator", "backstop",
         "universal_cover", "insurance", "adl", "socialised", "bad_debt")
"""Event kinds, in waterfall order."""

PATHS = {
    "traded": ("book_close", "option_close", "liquidator"),
    "backstopped": ("backstop", "option_takeover", "insurance", "universal_cover"),
    "adl": ("adl",),
    "socialised": ("socialised",),
    "bad_debt": ("bad_debt",),
}
"""Where liquidated positions and deficits went, by event kind (``summary()["paths"]``).

``traded``: closed in the book, by the venue's own reduce-only IOC orders or
by liquidators who take the position at the mark and unwind it there;
``backstopped``: taken over by the insurance fund (backstop, option takeover,
insurance cover of a bankrupt account) or a universal backstop; ``adl``:
closed against profitable opposite positions; ``socialised`` and
``bad_debt``: deficits charged to other accounts or written off."""


EVENT_COLUMNS = ("step", "round", "protocol", "account", "instrument", "asset", "kind", "size",
                 "price", "notional", "bonus", "fee", "amount", "shortfall", "taker", "entry",
                 "taker_entry")
"""Columns of an event row (see :class:`LiquidationEngine`)."""


STAT_KEYS = ("liquidations", "backstops", "notional", "rounds", "insolvency", "insurance_paid",
             "adl_loss", "socialised", "bad_debt", "fees", "bonuses", "book_notional")
"""Per-step (and cumulative) counters per protocol.

``liquidations``: positions closed in the book by the venue, taken by
liquidators or by the backstop;
``backstops``: those taken by the backstop; ``notional``: their notional at
the mark (Gauntlet's liquidation volume, the basis of "liquidations at risk");
``rounds``: last round with an event (cascade depth within the step);
``insolvency``: deficits of bankrupt accounts at the mark (Gauntlet's
insolvent amount, the basis of its VaR); ``insurance_paid``, ``adl_loss``,
``socialised``, ``bad_debt``: how those deficits were absorbed (they sum to
``insolvency`` up to round-off); ``fees``: fees and seized margin paid to the
fund; ``bonuses``: liquidator bonuses; ``book_notional``: the part of
``notional`` the venue closed itself with IOC orders in the book
(``close_in_book``).
"""


_REL_TOL = 1e-9


QUOTE = 0
"""Asset index of the quote asset (the model lists it first); deficits are paid in it."""


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
        close_in_book: The venue first closes the offered quantity itself with
            a reduce-only IOC order in the position's book, as Binance's
            liquidation engine and Hyperliquid's liquidator do (orders to the
            book; margin_methods.md §3.3); only what the book cannot take
            within ``book_slippage`` goes to liquidators, then the backstop.
        book_slippage: Worst fill of that order as a fraction of the mark
            (the IOC's limit is ``mark × (1 ∓ book_slippage)``).
        insurance_cover: The insurance fund pays a bankrupt account's deficit
            before the ``bad_debt`` rule (true; Binance's insurance fund before
            ADL). False: the deficit goes straight to the ``bad_debt`` rule, as
            Hyperliquid auto-deleverages once an account's value is negative
            while its liquidator vault (HLP) only takes backstopped accounts
            (margin_methods.md §3.3); the fund still takes what ADL leaves.
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
    close_in_book: bool = False
    book_slippage: float = 0.01
    insurance_cover: bool = True

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
    close_in_book = getattr(cfg, "close_in_book", False)
    if not isinstance(close_in_book, bool):
        _bad(f"{prefix}.close_in_book", close_in_book, "must be true or false")
    _number(f"{prefix}.book_slippage", getattr(cfg, "book_slippage", 0.01), 0.0, 0.5,
            lo_open=True)
    insurance_cover = getattr(cfg, "insurance_cover", True)
    if not isinstance(insurance_cover, bool):
        _bad(f"{prefix}.insurance_cover", insurance_cover, "must be true or false")
    return cfg


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
