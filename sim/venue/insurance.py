r"""The insurance fund's books: cash, marked equity, taken-over positions and the loss it absorbed.

The liquidation waterfall (:mod:`sim.venue.liquidation`) makes a protocol's insurance
fund (its ``HolderKind.INSURANCE`` row) take over positions and balances: the
backstop takes whole accounts at the mark, the fund takes its share of a
bankrupt account's positions when it pays its deficit, and positions nobody
else could take end with it. The fund keeps what it takes (it does not
unwind), so its quote *cash* says little about what it is worth: in a rally a
fund that took over shorts has cash but owes the losses of those shorts. This
module values the fund the way the ledger values every account
(:meth:`~sim.ledger.Ledger.account_value`, Binance's margin balance = wallet
balance + unrealised P&L):

* ``cash``: the fund's quote balance ``c_q`` (what ``summary.json`` used to
  report as ``insurance_fund``; it may be negative after the fund paid quote
  for spot holdings it took over);
* ``equity``: ``E = sum_a c_a P_a + sum_j q_j (M_j - e_j)`` — every balance at
  its index price ``P_a`` (``P_quote = 1``) plus every perp position ``q_j`` at
  the mark ``M_j`` against its average entry (cost basis) ``e_j``;
* ``positions``: per perp the size ``q_j``, mark, entry, notional ``|q_j| M_j``
  and unrealised P&L; ``position_notional = sum_j |q_j| M_j``;
* ``balances``: per non-quote asset the units held (negative: a borrow the fund
  assumed) and their value at the index;
* ``loss = F_0 - E`` with ``F_0`` the configured initial fund
  (``protocols[i].insurance_fund``): what the fund's capital providers have lost
  at the marks, net of everything that came in; positive means the fund is
  worth less than it started with. Nothing enters or leaves the fund's row but
  the initial deposit, the waterfall's payments and the mark-to-market of what
  it holds (takeovers move positions at the mark and balances at the index,
  value-neutral at that moment), so ``loss = paid_out - fee_income -
  takeover_pnl``, with ``paid_out`` the deficits it covered (``insurance_paid``
  in the liquidation totals), ``fee_income`` the liquidation fees and seized
  backstop margin it received (``fees``) and ``takeover_pnl`` (the remainder)
  the result of the positions and balances it took over since the takeover:
  realised and unrealised P&L, funding, revaluation of spot it holds.
* ``uncovered = max(0, -E)``: the part of the taken-over losses that exceeds the
  fund's resources. Nobody has absorbed it — closing the fund's positions at the
  marks would leave it that much short — so it is bad debt at mark, reported
  beside the waterfall's recorded bad debt (``bad_debt_total_at_mark =
  bad_debt_total + uncovered``). The waterfall itself is unchanged: the
  recorded bad debt (and the token impairment computed from it,
  :mod:`sim.contagion.tokens`) still counts only write-offs of bankrupt trader accounts.

Sources. Exchanges' insurance-fund rules treat the loss a taken-over position
makes after the takeover as the fund's loss, and what the fund cannot cover as
a loss of the system passed to users (ZKE insurance-fund rules: "if the
'Forced liquidation' engine loses money after 'closing position', this loss is
... compensated by the insurance fund and the rest will be shared by the
user", https://insurance.zke.com/; Delta Exchange: "the Liquidation Engine is
prepared to close all the positions it acquires for a loss of 5 % ... This loss
is funded from the Insurance Fund", https://india.delta.exchange/insurance-fund);
Hyperliquid's liquidator vault (HLP), which takes positions and margin in the
backstop (margin_methods.md §3.3), reports its account value including the
unrealised P&L of the positions it holds (recalled from the vault pages, not
in the reference notes). Aave v3.3 records an uncovered loss as an explicit
reserve deficit (margin_methods.md §4.1), the model's convention for bad debt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.ledger import InstrumentKind

__all__ = ["InsuranceState", "insurance_metric_names", "insurance_state"]

_METRICS = ("insurance_cash", "insurance_equity", "insurance_position_notional",
            "insurance_loss", "bad_debt_uncovered_at_mark", "bad_debt_total_at_mark")


@dataclass(frozen=True)
class InsuranceState:
    """One insurance fund valued at the current prices (see the module docstring).

    Attributes:
        cash: Quote balance of the fund's row.
        equity: Marked equity ``E``: balances at the index plus perp positions
            at the mark (wallet balance + unrealised P&L), quote units.
        position_notional: Gross perp notional at the marks, ``sum |q| M``.
        initial: The configured initial fund ``F_0``.
        loss: ``F_0 - E`` (positive: the fund lost capital).
        uncovered: ``max(0, -E)``, the fund's mark-to-market deficit (bad debt at mark).
        positions: Per perp index with a non-zero position: ``size``, ``mark``,
            ``entry``, ``notional`` and ``unrealised_pnl``.
        balances: Per non-quote asset index with a non-zero balance: ``units``
            and ``value`` at the index.
    """

    cash: float
    equity: float
    position_notional: float
    initial: float
    loss: float
    uncovered: float
    positions: dict[int, dict[str, float]] = field(default_factory=dict)
    balances: dict[int, dict[str, float]] = field(default_factory=dict)


def insurance_state(ledger: Any, row: int, asset_prices: Any, marks: Any, initial: float,
                    *, value: float | None = None, quote: int = 0) -> InsuranceState:
    """Value the fund's ledger row at the given prices (module docstring for the formulas).

    Args:
        ledger: The :class:`~sim.ledger.Ledger`.
        row: The fund's row.
        asset_prices: ``float[n_assets]`` index price of each asset (quote = 1).
        marks: ``float[n_instruments]`` mark prices (spot entries ignored).
        initial: The configured initial fund ``F_0`` (quote units).
        value: The row's :meth:`~sim.ledger.Ledger.account_value` if already
            computed (the model computes every row's once per step); computed
            here otherwise.
        quote: Asset index of the quote asset (the model lists it first).

    Returns:
        The :class:`InsuranceState`.
    """
    p = np.asarray(asset_prices, dtype=np.float64)
    m = np.asarray(marks, dtype=np.float64)
    if value is None:
        value = float(ledger.account_value(p, m)[row])
    pos = ledger.position[row]
    entry = ledger.entry_price[row]
    perp = ((ledger.instrument_kind == InstrumentKind.PERP)
            | (ledger.instrument_kind == InstrumentKind.OPTION))  # options it took over
    held = np.flatnonzero(perp & (pos != 0.0))
    positions = {int(j): {"size": float(pos[j]), "mark": float(m[j]), "entry": float(entry[j]),
                          "notional": float(abs(pos[j]) * m[j]),
                          "unrealised_pnl": float(pos[j] * (m[j] - entry[j]))} for j in held}
    coll = ledger.collateral[row]
    balances = {int(a): {"units": float(coll[a]), "value": float(coll[a] * p[a])}
                for a in np.flatnonzero(coll != 0.0) if a != quote}
    notional = float((np.abs(pos[held]) * m[held]).sum())
    equity = float(value)
    return InsuranceState(cash=float(coll[quote]), equity=equity, position_notional=notional,
                          initial=float(initial), loss=float(initial) - equity,
                          uncovered=max(0.0, -equity), positions=positions, balances=balances)


def insurance_metric_names(protocol: str) -> list[str]:
    """Per-step time-series columns of one protocol's fund, ``<protocol>.<metric>``.

    ``insurance_cash``, ``insurance_equity``, ``insurance_position_notional``,
    ``insurance_loss``, ``bad_debt_uncovered_at_mark`` and
    ``bad_debt_total_at_mark`` (module docstring for the definitions).
    """
    return [f"{protocol}.{k}" for k in _METRICS]
