"""Static (isolated) margin: every perpetual and option position margined alone.

Methodology (``margin_methods.md`` §3.3, "Cross vs isolated margin and tiered
risk limits"; Binance USDⓈ-M isolated mode and Hyperliquid isolated margin):

* each perpetual position ``(account, instrument)`` has its own **posted
  margin** ``WB`` (quote units, ``MarginInputs.position_margin``) and its own
  equity ``E = WB + size × (mark − entry)``; nothing is netted or shared, so a
  profitable position never supports a losing one ("isolated positions cannot
  draw on each other", §3.3);
* its requirements come from its underlying's bracket table,
  ``MM = notional × MMR_tier − cum_tier`` and ``IM = notional × IMR_tier −
  im_cum_tier`` (Binance tiers,
  https://www.binance.com/tr/support/announcement/86cf9aa472574b8cb2e05bb751c2a9a6),
  or from one flat leverage ``L``: ``IM = notional / L`` and ``MM = m × IM``
  with ``m = 1/2`` by default (Hyperliquid: "maintenance margin = half the
  initial margin at max leverage", §3.3), so leverage studies are configuration
  only;
* a position is liquidatable when ``E < MM``; its liquidation price is
  Binance's isolated formula ``LP = (WB + cum − Side × Q × EP) / (Q × MMR −
  Side × Q)`` with the tier re-computed at the liquidation notional
  (:func:`margin.methods.tiers.liquidation_price`);
* spot balances are **not margined**: isolated mode lends nothing, so spot
  holdings are cash (they neither add to a position's equity nor carry a
  requirement), and the pre-trade check refuses spot sales of more than the
  account holds and spot buys beyond its free quote collateral;
* each **option** position is an isolated position too. Its requirements are
  Deribit's standard option margin (``margin.methods.option_margin``: a short
  of ``s`` base units needs ``IM = s × (max(15 % × F − OTM, 10 % × F) + m)``,
  ``MM = s × (7.5 % × F + m)``, a long its whole value: it is paid in full
  and has no loan value, ``margin.methods.option_margin.long_option_requirement``)
  [Deribit standard-margin
  formulas from the venue's documentation; not in margin_methods.md,
  unverified here]. A short's equity is ``WB × P_quote + q × cs × (mark −
  entry)``: posted margin plus the premium received (``|q| × cs × entry``
  at the average premium ``entry``, held by the position, so not free
  collateral) minus the option's value owed. A long's premium was paid in full
  out of the quote balance and is its margin, so its equity is ``WB × P_quote
  + q × cs × mark`` (the same formula with the premium ``q × cs × entry``
  counted as posted), equal to its IM and MM, so it is never liquidatable and
  frees nothing. Option prices are in
  the pricing unit and ``WB`` in the quote asset (worth ``P_quote =
  asset_prices[quote]``; units in ``margin.engine``). No liquidation price is
  computed for options (NaN).

Account-level mapping onto :class:`margin.engine.MarginResult`:

* ``equity`` = Σ_j position equity (posted margins plus unrealised P&L);
  free quote collateral and spot holdings are not part of it;
* ``initial`` = Σ_j IM_j;
* ``maintenance`` is chosen so that ``below_maintenance`` (``equity <
  maintenance``) is exactly "some position is liquidatable": when no position is
  short of its MM it is ``min(Σ_j MM_j, equity)`` (= Σ_j MM_j, since every
  ``E_j ≥ MM_j``); when some are, it is ``equity + Σ_j max(0, MM_j − E_j)``
  (at least one ulp above equity), i.e. the surplus of the safe positions
  does not count because isolated surplus cannot be moved. Either way
  ``equity − maintenance`` is the total surplus when nothing is liquidatable and
  minus the total shortfall otherwise. The plain sum Σ_j MM_j is in
  ``extra["maintenance_sum"]``.

``MarginResult.extra`` (float64/bool ``[n_accounts, n_instruments]`` unless
noted): ``posted_margin`` (effective posted margin, after the fallback below),
``position_equity``, ``position_im``, ``position_mm``, ``liquidation_price``
(NaN where there is no position; 0.0 where the root is not at a positive price,
see :func:`margin.methods.tiers.liquidation_price`), ``position_liquidatable``;
per account: ``liquidatable`` (bool, ANY position liquidatable),
``maintenance_sum``, ``free_quote`` (quote balance minus posted margins and
the premiums held by short options).

Missing posted margin (``MarginInputs.position_margin is None``), rule
``missing_margin="entry_im"`` (default): each position is taken to have been
opened from the account's quote balance by posting its initial margin at the
entry notional, ``WB_j = IM(|size_j| × entry_j)`` — what Binance and
Hyperliquid post when a position is opened at the configured leverage. A short
option posts its standard IM with its mark at the entry premium and the
current index, ``IM(size_j, F, K, entry_j) / P_quote``; a long option posts
nothing beyond its premium. If the quote balance (less the premiums held by
short options) is smaller than the sum of these, every ``WB_j`` of that quote
asset (perpetuals and short options) is scaled down in proportion to its IM so
that the whole (non-negative) balance is split across the positions.
``missing_margin="raise"`` demands the array instead.

Neighbours: ``margin.regimes.cross`` (shared collateral), ``margin.methods.tiers`` (tables and
liquidation price), ``margin.regimes.aave`` (DeFi lending variant of the static family).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numba import njit

from margin.regimes.cross import PackedTiers, pack_tiers
from margin.regimes.cross import packed_requirement as _req
from margin.engine import (
    OPTION,
    PERP,
    SPOT,
    MarginEngine,
    MarginInputs,
    MarginResult,
    register_engine,
)
from margin.methods.option_margin import (
    DERIBIT_IM_FLOOR,
    DERIBIT_IM_RATE,
    DERIBIT_MM_RATE,
    check_option_rates,
    long_option_requirement,
    standard_option_margin,
)
from margin.methods.tiers import (
    BINANCE_BTCUSDT,
    BINANCE_ETHUSDT,
    TierTable,
    flat_table,
    liquidation_price,
)

__all__ = [
    "MISSING_MARGIN_RULES",
    "StaticIsolatedEngine",
    "static_margin_kernel",
    "static_pretrade_kernel",
]

#: Accepted values of ``StaticIsolatedEngine(missing_margin=...)``.
MISSING_MARGIN_RULES = ("entry_im", "raise")


# --------------------------------------------------------------------------- kernels


@njit(cache=True)
def _held_premium(q, contract_size, entry, quote_price):
    """Premium a short option position holds, in quote units (0 for longs)."""
    if q >= 0.0:
        return 0.0
    return -q * contract_size * entry / quote_price


@njit(cache=True)
def _fallback_posted(collateral, positions, entry, kind, underlying, quote, contract_size,
                     start, count, floors, imr, im_cum, asset_prices, strike, is_call,
                     opt_im_rate, opt_im_floor, opt_mm_rate):
    """Posted margin when none is given: IM at the entry notional, pro rata if underfunded.

    Short options post their standard IM with the mark at the entry premium
    (converted to the quote asset); long options post nothing (module docstring).
    """
    n_acc, n_ins = positions.shape
    n_assets = collateral.shape[1]
    posted = np.zeros((n_acc, n_ins))
    for i in range(n_acc):
        need = np.zeros(n_assets)
        held = np.zeros(n_assets)
        for j in range(n_ins):
            q = positions[i, j]
            if q == 0.0:
                continue
            if kind[j] == OPTION:
                qv = asset_prices[quote[j]]
                im = standard_option_margin(q * contract_size[j], asset_prices[underlying[j]],
                                            strike[j], entry[i, j], is_call[j], opt_im_rate,
                                            opt_im_floor, opt_mm_rate)[0] / qv
                held[quote[j]] += _held_premium(q, contract_size[j], entry[i, j], qv)
            elif kind[j] == PERP:
                im = _req(abs(q) * contract_size[j] * entry[i, j], underlying[j], start, count,
                          floors, imr, im_cum, True)
            else:
                continue
            posted[i, j] = im
            need[quote[j]] += im
        for j in range(n_ins):
            if posted[i, j] == 0.0:
                continue
            qa = quote[j]
            have = max(collateral[i, qa] - held[qa], 0.0)
            if need[qa] > have:
                posted[i, j] *= have / need[qa]
    return posted


@njit(cache=True)
def static_margin_kernel(positions, entry, marks, kind, underlying, contract_size, posted,
                         start, count, floors, imr, im_cum, mmr, mm_cum, asset_prices, quote,
                         strike, is_call, opt_im_rate, opt_im_floor, opt_mm_rate):
    """Per-position equity, IM, MM, liquidation price and flag under isolated margin.

    Formulas in the module docstring (``margin_methods.md`` §3.3; options:
    Deribit standard margin, ``margin.methods.option_margin``). Perpetual and
    option positions carry requirements; other cells keep their posted margin
    as equity, zero requirements, a NaN liquidation price and no flag. Options
    get no liquidation price (NaN).

    Args:
        positions: float64[n_acc, n_ins] signed positions.
        entry: float64[n_acc, n_ins] entry prices.
        marks: float64[n_ins] mark prices.
        kind: int64[n_ins] instrument kinds.
        underlying: int64[n_ins] asset of each instrument.
        contract_size: float64[n_ins] base units per unit of position.
        posted: float64[n_acc, n_ins] posted isolated margin.
        start: int64[n_assets] first packed row of each asset's tier table
            (:func:`margin.regimes.cross.pack_tiers`).
        count: int64[n_assets] rows of each asset's table (0: no requirement).
        floors: float64[n_rows] bracket floors (notional).
        imr: float64[n_rows] initial margin rates.
        im_cum: float64[n_rows] initial-margin continuity deductions.
        mmr: float64[n_rows] maintenance margin rates.
        mm_cum: float64[n_rows] maintenance continuity deductions (``cum``).
        asset_prices: float64[n_assets] asset prices (pricing unit).
        quote: int64[n_ins] quote asset of each instrument.
        strike: float64[n_ins] option strikes.
        is_call: bool[n_ins] True for calls.
        opt_im_rate: Short-option IM fraction of the index (Deribit 0.15).
        opt_im_floor: Floor of that fraction (0.10).
        opt_mm_rate: Short-option MM fraction (0.075).

    Returns:
        ``(equity, im, mm, liq_price, liquidatable)``, each ``[n_acc, n_ins]``.
    """
    n_acc, n_ins = positions.shape
    equity = posted.copy()
    im = np.zeros((n_acc, n_ins))
    mm = np.zeros((n_acc, n_ins))
    lp = np.full((n_acc, n_ins), np.nan)
    liq = np.zeros((n_acc, n_ins), np.bool_)
    for i in range(n_acc):
        for j in range(n_ins):
            q = positions[i, j]
            if q == 0.0:
                continue
            if kind[j] == OPTION:
                size = q * contract_size[j]
                wb = posted[i, j] * asset_prices[quote[j]]
                if size > 0.0:
                    equity[i, j] = wb + size * marks[j]
                else:
                    equity[i, j] = wb + size * (marks[j] - entry[i, j])
                im[i, j], mm[i, j] = standard_option_margin(
                    size, asset_prices[underlying[j]], strike[j], marks[j], is_call[j],
                    opt_im_rate, opt_im_floor, opt_mm_rate)
                paid = long_option_requirement(size, marks[j])
                im[i, j] += paid
                mm[i, j] += paid
                liq[i, j] = equity[i, j] < mm[i, j]
                continue
            if kind[j] != PERP:
                continue
            size = q * contract_size[j]
            a = underlying[j]
            notional = abs(size) * marks[j]
            equity[i, j] = posted[i, j] + size * (marks[j] - entry[i, j])
            im[i, j] = _req(notional, a, start, count, floors, imr, im_cum, True)
            mm[i, j] = _req(notional, a, start, count, floors, mmr, mm_cum, False)
            liq[i, j] = equity[i, j] < mm[i, j]
            s = start[a]
            n = count[a]
            side = 1 if size > 0.0 else -1
            lp[i, j] = liquidation_price(side, abs(size), entry[i, j], posted[i, j], 0.0, 0.0,
                                         floors[s:s + n], mmr[s:s + n], mm_cum[s:s + n])
    return equity, im, mm, lp, liq


@njit(cache=True)
def static_pretrade_kernel(collateral, positions, entry, posted, marks, kind, underlying, quote,
                           contract_size, start, count, floors, imr, im_cum,
                           rows, instrument, delta, price, fee_rate, asset_prices, strike,
                           is_call, opt_im_rate, opt_im_floor, opt_mm_rate):
    """Sequential isolated-margin pre-trade check; mutates its (copied) state arrays.

    Each order is assumed to fill in full at ``price``; the fee ``|Δq| × size ×
    price × fee_rate`` is paid from free quote collateral (quote balance minus
    all posted margins, per quote asset).

    * Perpetual, reducing (``|q1| ≤ |q0|``, no flip): always accepted; the
      closed fraction of the posted margin and the realised P&L return to free
      collateral.
    * Perpetual, increasing or flipping: the resulting position must hold
      ``posted + min(0, uPnL at mark) ≥ IM(|q1| × size × mark)``; the top-up
      ``max(0, IM − posted − min(0, uPnL))`` (which is the added IM when the
      position was posted at IM, and includes the loss from a fill worse
      than the mark) is taken from free collateral, which must cover it plus
      the fee. A flip first closes the old position (releasing its margin and
      realising its P&L), then opens the remainder at ``price``.
    * Spot (cash, no lending): a buy needs free quote ≥ cost + fee; a sale
      needs the base balance ≥ the quantity.
    * Option (premium ``Δq × size × price`` and fee in the pricing unit, paid
      in the quote asset at ``asset_prices[quote]``): reducing (``|q1| ≤
      |q0|``, no flip) is always accepted, releasing the closed fraction of
      the posted margin and of the premium held by a short. Otherwise the
      free quote collateral after the order must stay ``≥ 0``: a buy that
      opens or adds a long pays premium + fee from it; a sale that opens or
      adds a short pays the fee and the top-up to the new position's standard
      IM (as for perpetuals, with the average premium as entry), while the
      premium received is held by the position (module docstring), so it
      funds nothing. Flips close first, releasing margin and held premium.
    * Zero quantities are left unaccepted (as in ``margin.regimes.cross``).

    Args:
        collateral: float64[n_rows, n_assets] balances (copied; updated).
        positions: float64[n_rows, n_ins] positions (copied; updated).
        entry: float64[n_rows, n_ins] entry prices (copied; updated).
        posted: float64[n_rows, n_ins] posted margins (copied; updated).
        marks: float64[n_ins] mark prices.
        kind: int64[n_ins] instrument kinds.
        underlying: int64[n_ins] base asset of each instrument.
        quote: int64[n_ins] quote asset of each instrument.
        contract_size: float64[n_ins] base units per unit of position.
        start: int64[n_assets] first packed row of each asset's table.
        count: int64[n_assets] rows of each asset's table (0: no requirement).
        floors: float64[n_rows] bracket floors (notional).
        imr: float64[n_rows] initial margin rates.
        im_cum: float64[n_rows] initial-margin continuity deductions.
        rows: int64[n_orders] local row of each order.
        instrument: int64[n_orders] instrument of each order.
        delta: float64[n_orders] signed quantities (+ buys).
        price: float64[n_orders] expected execution prices.
        fee_rate: Fee rate on the order notional.
        asset_prices: float64[n_assets] asset prices (pricing unit).
        strike: float64[n_ins] option strikes.
        is_call: bool[n_ins] True for calls.
        opt_im_rate: Short-option IM fraction of the index (Deribit 0.15).
        opt_im_floor: Floor of that fraction (0.10).
        opt_mm_rate: Short-option MM fraction (0.075).

    Returns:
        bool[n_orders], True where accepted.
    """
    n_orders = rows.shape[0]
    n_ins = positions.shape[1]
    accept = np.zeros(n_orders, np.bool_)
    free = collateral.copy()
    for r in range(positions.shape[0]):
        for j in range(n_ins):
            if kind[j] == PERP:
                free[r, quote[j]] -= posted[r, j]
            elif kind[j] == OPTION:
                free[r, quote[j]] -= posted[r, j] + _held_premium(
                    positions[r, j], contract_size[j], entry[r, j], asset_prices[quote[j]])
    for e in range(n_orders):
        r = rows[e]
        j = instrument[e]
        dq = delta[e]
        p = price[e]
        if dq == 0.0:
            continue
        if kind[j] == OPTION:
            if _option_order(collateral, positions, entry, posted, free, marks, underlying,
                             quote, contract_size, asset_prices, strike, is_call, opt_im_rate,
                             opt_im_floor, opt_mm_rate, r, j, dq, p, fee_rate):
                accept[e] = True
            continue
        cs = contract_size[j]
        qa = quote[j]
        fee = abs(dq) * cs * p * fee_rate
        if kind[j] == SPOT:
            u = underlying[j]
            if dq > 0.0:
                ok = free[r, qa] >= dq * cs * p + fee
            else:
                ok = collateral[r, u] >= -dq * cs
            if ok:
                accept[e] = True
                collateral[r, u] += dq * cs
                collateral[r, qa] -= dq * cs * p + fee
                free[r, qa] -= dq * cs * p + fee
            continue
        q0 = positions[r, j]
        e0 = entry[r, j]
        p0 = posted[r, j]
        q1 = q0 + dq
        closed, e1 = _fill_entry(q0, e0, dq, p)
        released = 0.0
        realised = 0.0
        if closed > 0.0:
            released = p0 * closed / abs(q0)
            realised = np.sign(q0) * closed * cs * (p - e0)
        p1 = p0 - released
        f1 = free[r, qa] + released + realised - fee
        reducing = abs(q1) <= abs(q0) and q0 * q1 >= 0.0
        if reducing:
            ok = True
        else:
            m = marks[j]
            upnl = q1 * cs * (m - e1)
            im1 = _req(abs(q1) * cs * m, underlying[j], start, count, floors, imr, im_cum, True)
            topup = max(0.0, im1 - (p1 + min(0.0, upnl)))
            ok = f1 >= topup
            p1 += topup
            f1 -= topup
        if ok:
            accept[e] = True
            positions[r, j] = q1
            entry[r, j] = e1
            posted[r, j] = p1
            free[r, qa] = f1
            collateral[r, qa] += realised - fee
    return accept


@njit(cache=True)
def _fill_entry(q0, e0, dq, p):
    """``(closed, new entry)`` of a position ``q0`` at entry ``e0`` after ``dq`` fills at ``p``.

    Average-cost rule (Binance "average entry price"): what reduces closes at
    the entry; what opens from flat, or flips, opens at ``p``; adding averages.
    """
    closed = 0.0
    if q0 != 0.0 and q0 * dq < 0.0:
        closed = min(abs(dq), abs(q0))
    opened = abs(dq) - closed
    if q0 + dq == 0.0:
        return closed, 0.0
    if opened > 0.0 and closed == 0.0 and q0 != 0.0:
        return closed, (abs(q0) * e0 + opened * p) / (abs(q0) + opened)
    if opened > 0.0:
        return closed, p
    return closed, e0


@njit(cache=True)
def _option_order(collateral, positions, entry, posted, free, marks, underlying, quote,
                  contract_size, asset_prices, strike, is_call, opt_im_rate, opt_im_floor,
                  opt_mm_rate, r, j, dq, p, fee_rate):
    """Check one option order of :func:`static_pretrade_kernel`; books it when accepted."""
    cs = contract_size[j]
    qa = quote[j]
    qv = asset_prices[qa]
    fee = abs(dq) * cs * p * fee_rate / qv
    premium = dq * cs * p / qv
    q0 = positions[r, j]
    e0 = entry[r, j]
    p0 = posted[r, j]
    q1 = q0 + dq
    closed, e1 = _fill_entry(q0, e0, dq, p)
    released = p0 * closed / abs(q0) if closed > 0.0 else 0.0
    p1 = p0 - released
    held = _held_premium(q1, cs, e1, qv) - _held_premium(q0, cs, e0, qv)
    topup = 0.0
    if q1 < 0.0 and not (abs(q1) <= abs(q0) and q0 * q1 >= 0.0):  # a short grows: post IM
        m = marks[j]
        upnl = q1 * cs * (m - e1)
        im1 = standard_option_margin(q1 * cs, asset_prices[underlying[j]], strike[j], m,
                                     is_call[j], opt_im_rate, opt_im_floor, opt_mm_rate)[0]
        topup = max(0.0, im1 - (p1 * qv + min(0.0, upnl))) / qv
    f1 = free[r, qa] + released - premium - fee - held - topup
    ok = (abs(q1) <= abs(q0) and q0 * q1 >= 0.0) or f1 >= 0.0
    if ok:
        positions[r, j] = q1
        entry[r, j] = e1
        posted[r, j] = p1 + topup
        free[r, qa] = f1
        collateral[r, qa] -= premium + fee
    return ok


# --------------------------------------------------------------------------- engine


@register_engine
class StaticIsolatedEngine(MarginEngine):
    """Static (isolated) margin: each perpetual or option position stands on its own margin.

    Formulas and the account-level mapping are in the module docstring
    (``margin_methods.md`` §3.3: Binance USDⓈ-M isolated mode, tier table and
    liquidation-price formula at
    https://binance.com/cn/support/faq/how-to-calculate-liquidation-price-of-usd%E2%93%A2-m-futures-contracts-b3c689c1f50a44cabb3a84e663b81d93
    ; Hyperliquid isolated margin,
    https://hyperliquid.gitbook.io/hyperliquid-docs/trading/liquidations).

    Requirements come either from per-asset bracket tables or from one flat
    leverage. Example: ``StaticIsolatedEngine(max_leverage=10)`` charges IM =
    10 % and MM = 5 % of notional on every underlying;
    ``StaticIsolatedEngine()`` uses the Binance BTCUSDT / ETHUSDT brackets for
    assets 1 / 2 (the simulator's ``[USD, BTC, ETH]`` order). Options are
    margined with Deribit's standard option margin whatever the tables
    (module docstring; [Deribit standard-margin formulas from the venue's
    documentation; not in margin_methods.md, unverified here]).

    Args:
        tables: One optional :class:`~margin.methods.tiers.TierTable` per asset (list in
            asset order, or a mapping asset index → table); ``None`` for assets
            that are not the underlying of a perpetual (the quote asset).
            Default ``[None, BINANCE_BTCUSDT, BINANCE_ETHUSDT]``.
        max_leverage: Flat leverage ``L ≥ 1`` for every underlying: IM fraction
            ``1/L``, MM fraction ``mm_to_im / L``. Exclusive with ``tables``.
        mm_to_im: MM as a fraction of IM under ``max_leverage``, in (0, 1];
            default 0.5 (Hyperliquid, §3.3).
        missing_margin: What to do when ``MarginInputs.position_margin`` is
            None: ``"entry_im"`` (default; post IM at the entry notional,
            pro rata when the quote balance is short) or ``"raise"``.
        option_im_rate: Short-option IM fraction of the index before the OTM
            amount (Deribit 0.15).
        option_im_floor: Floor of that fraction (Deribit 0.10).
        option_mm_rate: Short-option MM fraction of the index (Deribit 0.075).

    Raises:
        ValueError: One line naming the bad argument.
    """

    name = "static"

    def __init__(self, tables: Sequence[TierTable | None] | Mapping[int, TierTable] | None = None,
                 max_leverage: float | None = None, mm_to_im: float = 0.5,
                 missing_margin: str = "entry_im", option_im_rate: float = DERIBIT_IM_RATE,
                 option_im_floor: float = DERIBIT_IM_FLOOR,
                 option_mm_rate: float = DERIBIT_MM_RATE) -> None:
        self.option_rates = check_option_rates(option_im_rate, option_im_floor, option_mm_rate)
        if missing_margin not in MISSING_MARGIN_RULES:
            raise ValueError(f"missing_margin must be one of {MISSING_MARGIN_RULES}, "
                             f"got {missing_margin!r}")
        if not (0.0 < mm_to_im <= 1.0):
            raise ValueError(f"mm_to_im must lie in (0, 1], got {mm_to_im}")
        self.missing_margin = missing_margin
        self.mm_to_im = float(mm_to_im)
        self.max_leverage = None if max_leverage is None else float(max_leverage)
        if self.max_leverage is not None:
            if tables is not None:
                raise ValueError("tables and max_leverage are exclusive; pass one of them")
            if not (np.isfinite(self.max_leverage) and self.max_leverage >= 1.0):
                raise ValueError(f"max_leverage must be a finite number >= 1, got {max_leverage}")
            self.flat = flat_table(1.0 / self.max_leverage, self.mm_to_im / self.max_leverage,
                                   name=f"flat {self.max_leverage:g}x")
            self.tables: list[TierTable | None] | None = None
            self._packed: PackedTiers | None = None
            return
        if tables is None:
            tables = [None, BINANCE_BTCUSDT, BINANCE_ETHUSDT]
        if isinstance(tables, Mapping):
            n = max(tables) + 1 if tables else 0
            tables = [tables.get(a) for a in range(n)]
        for a, t in enumerate(tables):
            if t is not None and not isinstance(t, TierTable):
                raise ValueError(f"tables[{a}] must be a TierTable or None, got {type(t).__name__}")
        self.flat = None
        self.tables = list(tables)
        self._packed = pack_tiers(self.tables)

    # ------------------------------------------------------------------ helpers
    def _packed_for(self, inputs: MarginInputs) -> PackedTiers:
        """Packed tables covering every asset of ``inputs``; checks perps have one."""
        n_assets = len(inputs.asset_prices)
        s = inputs.specs
        if self.flat is not None:
            return pack_tiers([self.flat] * n_assets)
        perps = np.flatnonzero(s.kind == PERP)
        for j in perps:
            a = int(s.underlying[j])
            if a >= len(self.tables) or self.tables[a] is None:
                raise ValueError(f"tables has no TierTable for asset {a}, the underlying of "
                                 f"perpetual instrument {j}")
        return self._packed

    def _posted(self, inputs: MarginInputs, packed: PackedTiers) -> np.ndarray:
        """Effective posted margin ``[n_acc, n_ins]`` (given, or the documented fallback)."""
        pm = inputs.position_margin
        s = inputs.specs
        if pm is not None:
            pm = np.asarray(pm, dtype=np.float64)
            if pm.shape != inputs.positions.shape:
                raise ValueError(f"position_margin has shape {pm.shape}, expected "
                                 f"{inputs.positions.shape}")
            if not np.all(np.isfinite(pm) & (pm >= 0.0)):
                raise ValueError("position_margin must be finite and >= 0")
            return pm
        if self.missing_margin == "raise":
            raise ValueError("position_margin is required by the static engine "
                             "(missing_margin='raise')")
        return _fallback_posted(np.asarray(inputs.collateral, np.float64),
                                np.asarray(inputs.positions, np.float64),
                                np.asarray(inputs.entry_prices, np.float64), s.kind, s.underlying,
                                s.quote, s.contract_size, packed.start, packed.count, packed.floors,
                                packed.imr, packed.im_cum,
                                np.asarray(inputs.asset_prices, np.float64), s.strike, s.is_call,
                                *self.option_rates)

    # ------------------------------------------------------------------ contract
    def evaluate(self, inputs: MarginInputs) -> MarginResult:
        """Per-position isolated margins, summed per account (see module docstring).

        Args:
            inputs: Current state; ``position_margin`` is the posted isolated
                margin (or ``None``: see ``missing_margin``).

        Returns:
            Account sums and the per-position arrays in ``extra``.

        Raises:
            ValueError: Bad ``position_margin``, or a perpetual whose
                underlying has no table.
        """
        packed = self._packed_for(inputs)
        posted = self._posted(inputs, packed)
        s = inputs.specs
        eq, im, mm, lp, liq = static_margin_kernel(
            np.asarray(inputs.positions, np.float64), np.asarray(inputs.entry_prices, np.float64),
            np.asarray(inputs.marks, np.float64), s.kind, s.underlying, s.contract_size, posted,
            *packed.arrays(), np.asarray(inputs.asset_prices, np.float64), s.quote, s.strike,
            s.is_call, *self.option_rates)
        equity = eq.sum(axis=1)
        initial = im.sum(axis=1)
        mm_sum = mm.sum(axis=1)
        any_liq = liq.any(axis=1)
        shortfall = np.where(liq, mm - eq, 0.0).sum(axis=1)
        maintenance = np.where(
            any_liq,
            np.maximum(equity + shortfall, np.nextafter(equity, np.inf)),
            np.minimum(mm_sum, equity),
        )
        free = np.asarray(inputs.collateral, np.float64).copy()
        margined = np.flatnonzero((s.kind == PERP) | (s.kind == OPTION))
        quotes = np.unique(s.quote[margined]) if margined.size else np.zeros(0, np.int64)
        for j in margined:
            free[:, s.quote[j]] -= posted[:, j]
            if s.kind[j] == OPTION:  # premium held by shorts (module docstring)
                qv = inputs.asset_prices[s.quote[j]]
                free[:, s.quote[j]] -= (np.maximum(-inputs.positions[:, j], 0.0)
                                        * s.contract_size[j] * inputs.entry_prices[:, j] / qv)
        free_quote = (free[:, quotes] * inputs.asset_prices[quotes]).sum(axis=1)
        extra = {
            "posted_margin": posted,
            "position_equity": eq,
            "position_im": im,
            "position_mm": mm,
            "liquidation_price": lp,
            "position_liquidatable": liq,
            "liquidatable": any_liq,
            "maintenance_sum": mm_sum,
            "free_quote": free_quote,
        }
        return MarginResult(equity, initial, maintenance, extra)

    def pretrade(self, inputs: MarginInputs, rows: np.ndarray, instrument: np.ndarray,
                 delta: np.ndarray, price: np.ndarray, fee_rate: float) -> np.ndarray:
        """Sequential isolated pre-trade check (rules in :func:`static_pretrade_kernel`).

        An order that increases a perpetual position is accepted when the free
        quote collateral (quote balance − Σ posted margins) covers the IM it
        adds (precisely: the top-up bringing the resulting position's posted
        margin to its IM) plus the fee; reducing orders are always accepted.
        With ``max_leverage = L``, a fresh order at the mark is accepted iff
        ``notional / L + fee ≤ free quote``. An option buy needs free quote ≥
        premium + fee, an option sale free quote ≥ the standard IM to post +
        fee (:func:`static_pretrade_kernel`).

        Args:
            inputs: Current state of all accounts.
            rows: int64[n_orders] account of each order.
            instrument: int64[n_orders] instrument of each order.
            delta: float64[n_orders] signed base quantity (+ buys).
            price: float64[n_orders] expected execution price.
            fee_rate: Fee rate charged on the order notional.

        Returns:
            bool[n_orders], True where accepted.
        """
        rows = np.asarray(rows, np.int64)
        if len(rows) == 0:
            return np.zeros(0, np.bool_)
        packed = self._packed_for(inputs)
        uniq, local = np.unique(rows, return_inverse=True)
        sub = inputs.subset(uniq)
        posted = np.array(self._posted(sub, packed), dtype=np.float64)
        s = inputs.specs
        p = packed
        return static_pretrade_kernel(
            np.array(sub.collateral, np.float64), np.array(sub.positions, np.float64),
            np.array(sub.entry_prices, np.float64), posted, np.asarray(inputs.marks, np.float64),
            s.kind, s.underlying, s.quote, s.contract_size, p.start, p.count, p.floors, p.imr,
            p.im_cum, local.astype(np.int64), np.asarray(instrument, np.int64),
            np.asarray(delta, np.float64), np.asarray(price, np.float64), float(fee_rate),
            np.asarray(inputs.asset_prices, np.float64), s.strike, s.is_call,
            *self.option_rates)
