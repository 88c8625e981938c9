"""Numba kernels for the ledger's bulk operations.

Every kernel here is a plain ``@njit(cache=True)`` function over numpy arrays
that the :class:`sim.ledger.Ledger` owns; none validates its inputs (the
``Ledger`` methods do) and none allocates per fill. They mutate the arrays they
are given in place.

Conventions shared by all kernels:

* ``collateral[row, asset]`` is a balance in units of ``asset``.
* ``position[row, j]`` is a signed perpetual position in base units (long > 0);
  ``entry[row, j]`` its average entry price (quote per base), ``0`` when flat.
* Realised P&L, fees and funding of instrument ``j`` are paid in its quote asset
  and recorded in the ``[row, j]`` cell of the reporting arrays
  ``realised`` (received), ``fees`` (paid; negative for the receiver) and
  ``funding`` (paid; negative for the receiver).
* ``budget_asset``, ``budget_base`` and ``budget_quote`` accumulate the
  magnitudes of every floating-point update (per asset, per instrument in base
  units, per instrument in quote units). The conservation checks multiply them
  by machine epsilon to bound accumulated round-off, so a check can be tight
  without ever failing on honest rounding.

European options (``OPTION``) are premium-style, as on Deribit: a fill moves
the premium ``qty * price`` in the quote asset from buyer to seller at once, and
the position and its average premium (``entry``) follow the average-cost rule
without realising anything; at expiry every holder receives ``q * payoff`` from
the option's CLEARING row (:func:`settle_option`), whose net is zero because
longs equal shorts.

Average-cost perpetual accounting follows the exchange convention (Binance
USDS-M "average entry price"; BitMEX, dYdX and Hyperliquid use the same rule):
adding to a position moves the entry to the quantity-weighted average, reducing
realises ``closed_qty * (price - entry) * sign(position)`` and leaves the entry
unchanged, and a flip closes the old position and opens the rest at the trade
price. Realised P&L is paid by the instrument's CLEARING row, so it is a
transfer like any other.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from margin.engine import OPTION, SPOT  # the one definition of instrument kinds


@njit(cache=True)
def _credit(collateral, budget_asset, row, asset, amount):
    """Add ``amount`` (may be negative) to one balance and grow the budget."""
    value = collateral[row, asset] + amount
    collateral[row, asset] = value
    budget_asset[asset] += abs(value) + abs(amount)


@njit(cache=True)
def _record(report, budget_quote, row, instrument, amount):
    """Add ``amount`` to one reporting cell and grow the quote budget."""
    value = report[row, instrument] + amount
    report[row, instrument] = value
    budget_quote[instrument] += abs(value) + abs(amount)


@njit(cache=True)
def _sign(x):
    return 1.0 if x > 0.0 else -1.0


@njit(cache=True)
def perp_trade(position, entry, row, instrument, dq, price, budget_base, budget_quote):
    """Apply a signed trade of ``dq`` base units at ``price`` to one position.

    Average-cost rule: an increase (same sign, or from flat) moves the entry to
    ``(q * e + dq * price) / (q + dq)``; a reduction realises
    ``closed * (price - e) * sign(q)`` with ``closed = min(|dq|, |q|)`` and keeps
    ``e``; a flip opens the remainder at ``price``; a full close sets ``e = 0``.
    In every case the signed cost basis ``K = q * e`` moves by
    ``dq * price + realised``; the clearing identity rests on this.

    Args:
        position: ``float64[n, n_instruments]``, updated in place.
        entry: ``float64[n, n_instruments]``, updated in place.
        row: Account row.
        instrument: Perpetual column.
        dq: Signed quantity bought (> 0) or sold (< 0), base units.
        price: Trade price, quote per base.
        budget_base: Per-instrument round-off budget in base units.
        budget_quote: Per-instrument round-off budget in quote units.

    Returns:
        The realised P&L in quote units (0 unless the trade reduces).
    """
    q = position[row, instrument]
    e = entry[row, instrument]
    new_q = q + dq
    realised = 0.0
    if q == 0.0:
        new_e = price
    elif (q > 0.0) == (dq > 0.0):
        new_e = (q * e + dq * price) / new_q
    else:
        closed = min(abs(dq), abs(q))
        realised = closed * (price - e) * _sign(q)
        if abs(dq) < abs(q):
            new_e = e
        elif abs(dq) == abs(q):
            new_q = 0.0
            new_e = 0.0
        else:
            new_e = price
    position[row, instrument] = new_q
    entry[row, instrument] = new_e
    budget_base[instrument] += abs(dq) + abs(q) + abs(new_q)
    budget_quote[instrument] += (
        abs(new_q * new_e) + abs(q * e) + abs(dq * price) + abs(realised)
    )
    return realised


@njit(cache=True)
def _settle_perp_side(
    collateral, position, entry, realised, budget_asset, budget_base, budget_quote,
    row, instrument, quote, clearing, dq, price,
):
    """Trade one side of a perp fill and pay its realised P&L via clearing."""
    pnl = perp_trade(position, entry, row, instrument, dq, price, budget_base, budget_quote)
    if pnl != 0.0:
        _credit(collateral, budget_asset, row, quote, pnl)
        _credit(collateral, budget_asset, clearing, quote, -pnl)
        _record(realised, budget_quote, row, instrument, pnl)
        _record(realised, budget_quote, clearing, instrument, -pnl)
    return pnl


@njit(cache=True)
def _charge_fee(
    collateral, fees, budget_asset, budget_quote, payer, fee_row, instrument, quote, fee
):
    """Move ``fee`` quote from ``payer`` to ``fee_row`` (a negative fee is a rebate)."""
    if fee != 0.0:
        _credit(collateral, budget_asset, payer, quote, -fee)
        _credit(collateral, budget_asset, fee_row, quote, fee)
        _record(fees, budget_quote, payer, instrument, fee)
        _record(fees, budget_quote, fee_row, instrument, -fee)


@njit(cache=True)
def _settle_spot(collateral, budget_asset, buyer, seller, base, quote, qty, notional):
    """Swap ``qty`` base for ``notional`` quote between buyer and seller."""
    _credit(collateral, budget_asset, buyer, base, qty)
    _credit(collateral, budget_asset, seller, base, -qty)
    _credit(collateral, budget_asset, buyer, quote, -notional)
    _credit(collateral, budget_asset, seller, quote, notional)


@njit(cache=True)
def _settle_option_fill(collateral, position, entry, budget_asset, budget_base, budget_quote,
                        instrument, quote, buyer, seller, qty, price, notional):
    """One option fill: the buyer pays the premium to the seller, positions move by ``qty``.

    The average premium follows the average-cost rule of :func:`perp_trade`;
    what it would realise is not paid (the premium has already changed hands).
    """
    _credit(collateral, budget_asset, buyer, quote, -notional)
    _credit(collateral, budget_asset, seller, quote, notional)
    perp_trade(position, entry, buyer, instrument, qty, price, budget_base, budget_quote)
    perp_trade(position, entry, seller, instrument, -qty, price, budget_base, budget_quote)


@njit(cache=True)
def transfer_option(collateral, position, entry, budget_asset, budget_base, budget_quote,
                    instrument, quote, src, dst, qty, price):
    """Move ``qty`` (signed) of an option from ``src`` to ``dst`` against ``qty * price`` quote.

    A fee-free trade at ``price``: ``dst`` pays the premium ``qty * price`` to
    ``src`` (negative when a short is moved: then ``src`` pays ``dst`` to take
    the liability).
    """
    _credit(collateral, budget_asset, dst, quote, -qty * price)
    _credit(collateral, budget_asset, src, quote, qty * price)
    perp_trade(position, entry, src, instrument, -qty, price, budget_base, budget_quote)
    perp_trade(position, entry, dst, instrument, qty, price, budget_base, budget_quote)


@njit(cache=True)
def settle_option(collateral, position, entry, realised, budget_asset, budget_base, budget_quote,
                  instrument, quote, clearing, payoff):
    """Cash-settle an option at expiry: every holder receives ``q * payoff`` from ``clearing``.

    Positions and average premiums are set to zero; the payment is recorded as
    realised P&L. The clearing row's net is ``-sum(q) * payoff``, zero up to
    rounding because longs equal shorts.

    Returns:
        The total received by the longs (quote units).
    """
    total = 0.0
    to_longs = 0.0
    for row in range(position.shape[0]):
        q = position[row, instrument]
        if q == 0.0:
            continue
        pay = q * payoff
        _credit(collateral, budget_asset, row, quote, pay)
        _record(realised, budget_quote, row, instrument, pay)
        total += pay
        budget_quote[instrument] += abs(total) + abs(pay) + abs(q * entry[row, instrument])
        budget_base[instrument] += abs(q)
        if q > 0.0:
            to_longs += pay
        position[row, instrument] = 0.0
        entry[row, instrument] = 0.0
    _credit(collateral, budget_asset, clearing, quote, -total)
    _record(realised, budget_quote, clearing, instrument, -total)
    budget_quote[instrument] += abs(payoff) * budget_base[instrument]
    return to_longs


@njit(cache=True)
def settle_fills(
    collateral, position, entry, realised, fees,
    budget_asset, budget_base, budget_quote,
    instrument, kind, base, quote, clearing,
    maker_rows, taker_rows, taker_side, price, qty,
    maker_fee_rate, taker_fee_rate, fee_row,
):
    """Settle a batch of fills of one instrument, in order.

    SPOT: the buyer receives ``qty`` base and pays ``qty * price`` quote; the
    seller the opposite. Balances may go negative (a unified-account borrow that
    the margin engine prices). OPTION: the buyer pays the premium ``qty *
    price`` to the seller (:func:`_settle_option_fill`). PERP: both sides go through
    :func:`perp_trade`,
    realised P&L is paid by/to ``clearing``. Then each side pays
    ``qty * price * rate`` quote to ``fee_row``.

    Args:
        collateral: ``float64[n, n_assets]``, updated in place.
        position: ``float64[n, n_instruments]``, updated in place.
        entry: ``float64[n, n_instruments]``, updated in place.
        realised: ``float64[n, n_instruments]`` realised P&L received.
        fees: ``float64[n, n_instruments]`` fees paid.
        budget_asset: Round-off budget per asset.
        budget_base: Round-off budget per instrument, base units.
        budget_quote: Round-off budget per instrument, quote units.
        instrument: Instrument column.
        kind: ``SPOT`` (0), ``PERP`` (1) or ``OPTION`` (2).
        base: Base asset index.
        quote: Quote asset index.
        clearing: CLEARING row of the perp (ignored for spot).
        maker_rows: ``int64[k]`` maker account rows.
        taker_rows: ``int64[k]`` taker account rows.
        taker_side: ``int64[k]``, +1 taker buys, -1 taker sells.
        price: ``float64[k]`` prices, quote per base.
        qty: ``float64[k]`` quantities, base units, > 0.
        maker_fee_rate: ``float64[k]`` maker fee rates (negative = rebate).
        taker_fee_rate: ``float64[k]`` taker fee rates.
        fee_row: Row receiving fees (paying rebates).
    """
    for k in range(maker_rows.shape[0]):
        maker = maker_rows[k]
        taker = taker_rows[k]
        if taker_side[k] > 0:
            buyer, seller = taker, maker
        else:
            buyer, seller = maker, taker
        p = price[k]
        x = qty[k]
        notional = p * x
        if kind == SPOT:
            _settle_spot(collateral, budget_asset, buyer, seller, base, quote, x, notional)
        elif kind == OPTION:
            _settle_option_fill(collateral, position, entry, budget_asset, budget_base,
                                budget_quote, instrument, quote, buyer, seller, x, p, notional)
        else:
            _settle_perp_side(
                collateral, position, entry, realised, budget_asset, budget_base,
                budget_quote, buyer, instrument, quote, clearing, x, p,
            )
            _settle_perp_side(
                collateral, position, entry, realised, budget_asset, budget_base,
                budget_quote, seller, instrument, quote, clearing, -x, p,
            )
        _charge_fee(
            collateral, fees, budget_asset, budget_quote, maker, fee_row,
            instrument, quote, notional * maker_fee_rate[k],
        )
        _charge_fee(
            collateral, fees, budget_asset, budget_quote, taker, fee_row,
            instrument, quote, notional * taker_fee_rate[k],
        )


@njit(cache=True)
def transfer_position(
    collateral, position, entry, realised, budget_asset, budget_base, budget_quote,
    instrument, quote, clearing, src, dst, qty, price,
):
    """Move ``qty`` (signed) of a perp from ``src`` to ``dst`` at ``price``.

    Equivalent to ``src`` trading ``-qty`` and ``dst`` trading ``+qty`` at
    ``price`` without fees; both realise P&L through ``clearing``.

    Returns:
        ``(realised_src, realised_dst)`` in quote units.
    """
    r_src = _settle_perp_side(
        collateral, position, entry, realised, budget_asset, budget_base,
        budget_quote, src, instrument, quote, clearing, -qty, price,
    )
    r_dst = _settle_perp_side(
        collateral, position, entry, realised, budget_asset, budget_base,
        budget_quote, dst, instrument, quote, clearing, qty, price,
    )
    return r_src, r_dst


@njit(cache=True)
def apply_funding(
    collateral, position, funding, budget_asset, budget_base, budget_quote,
    instrument, quote, clearing, rate, mark,
):
    """Every holder of the perp pays ``q * mark * rate`` quote to ``clearing``.

    Binance USDS-M convention: funding amount = position notional at mark x
    funding rate; with a positive rate longs pay and shorts receive. The
    clearing row receives the sum, which is zero up to rounding because
    longs equal shorts.

    Returns:
        The total paid by longs (negative when longs receive).
    """
    total = 0.0
    by_longs = 0.0
    for row in range(position.shape[0]):
        q = position[row, instrument]
        if q == 0.0:
            continue
        pay = q * mark * rate
        _credit(collateral, budget_asset, row, quote, -pay)
        _record(funding, budget_quote, row, instrument, pay)
        total += pay
        budget_quote[instrument] += abs(total) + abs(pay)
        if q > 0.0:
            by_longs += pay
    _credit(collateral, budget_asset, clearing, quote, total)
    _record(funding, budget_quote, clearing, instrument, -total)
    # Sum(q) is zero only up to rounding; its error times mark*rate lands in
    # the clearing balance, so the quote budget must cover it.
    budget_quote[instrument] += abs(mark * rate) * budget_base[instrument]
    return by_longs


@njit(cache=True)
def unrealised_matrix(position, entry, marks, is_perp):
    """Per-row, per-instrument unrealised P&L ``q * (mark - entry)``, quote units."""
    n, m = position.shape
    out = np.zeros((n, m))
    for j in range(m):
        if not is_perp[j]:
            continue
        for i in range(n):
            q = position[i, j]
            if q != 0.0:
                out[i, j] = q * (marks[j] - entry[i, j])
    return out


@njit(cache=True)
def unrealised_matrix_rows(position, entry, marks, is_perp, rows):
    """:func:`unrealised_matrix` of the given rows only (row ``k`` of the result is ``rows[k]``)."""
    m = position.shape[1]
    out = np.zeros((rows.shape[0], m))
    for j in range(m):
        if not is_perp[j]:
            continue
        for k in range(rows.shape[0]):
            q = position[rows[k], j]
            if q != 0.0:
                out[k, j] = q * (marks[j] - entry[rows[k], j])
    return out


@njit(cache=True, inline="always")
def _row_notional(position, marks, is_perp, i):
    acc = 0.0
    for j in range(position.shape[1]):
        if is_perp[j] and position[i, j] != 0.0:
            acc += abs(position[i, j]) * marks[j]
    return acc


@njit(cache=True)
def notional(position, marks, is_perp):
    """Per-row gross perp notional ``sum_j |q_ij| * mark_j``, quote units."""
    n = position.shape[0]
    out = np.zeros(n)
    for i in range(n):
        out[i] = _row_notional(position, marks, is_perp, i)
    return out


@njit(cache=True)
def notional_rows(position, marks, is_perp, rows):
    """:func:`notional` of the given rows only (same arithmetic, so the same bits)."""
    out = np.zeros(rows.shape[0])
    for k in range(rows.shape[0]):
        out[k] = _row_notional(position, marks, is_perp, rows[k])
    return out


@njit(cache=True, inline="always")
def _row_value(collateral, position, entry, asset_prices, marks, is_perp, quote, is_option, i):
    acc = 0.0
    for a in range(collateral.shape[1]):
        if collateral[i, a] != 0.0:
            acc += collateral[i, a] * asset_prices[a]
    for j in range(position.shape[1]):
        q = position[i, j]
        if q == 0.0:
            continue
        if is_perp[j]:
            acc += q * (marks[j] - entry[i, j]) * asset_prices[quote[j]]
        elif is_option[j]:
            acc += q * marks[j] * asset_prices[quote[j]]
    return acc


@njit(cache=True)
def account_value(collateral, position, entry, asset_prices, marks, is_perp, quote, is_option):
    """Per-row ``sum_a collateral * price_a + sum_j unrealised_j * price_quote(j)``.

    Options count at their value ``q * mark_j * price_quote(j)`` (the premium
    went through the balances).
    """
    n = collateral.shape[0]
    out = np.zeros(n)
    for i in range(n):
        out[i] = _row_value(collateral, position, entry, asset_prices, marks, is_perp, quote,
                            is_option, i)
    return out


@njit(cache=True)
def account_value_rows(collateral, position, entry, asset_prices, marks, is_perp, quote,
                       is_option, rows):
    """:func:`account_value` of the given rows only (same arithmetic, so the same bits).

    The liquidation waterfall reads one account's value after every transfer;
    this costs that account, not the whole ledger.
    """
    out = np.zeros(rows.shape[0])
    for k in range(rows.shape[0]):
        out[k] = _row_value(collateral, position, entry, asset_prices, marks, is_perp, quote,
                            is_option, rows[k])
    return out
