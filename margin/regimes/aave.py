"""Aave v3 lending: the DeFi variant of the static margin family.

Methodology (``margin_methods.md`` §4.1; repo ``aave/aave-v3-core`` commit
782f5191, ``contracts/protocol/libraries/logic/GenericLogic.sol`` and
``LiquidationLogic.sol``; v3.3 close-factor rule from ``aave-dao/aave-v3-origin``,
``src/contracts/protocol/libraries/logic/LiquidationLogic.sol``):

* every account holds per-asset balances; a positive balance is supplied
  collateral, a negative balance is debt (a borrow) valued at the asset price;
* with ``C_i = balance_i × price_i`` (positive balances) and ``D = Σ debt_i ×
  price_i``::

      HF               = Σ_i C_i × LT_i / D           (∞ when D = 0)
      borrow capacity  = Σ_i C_i × LTV_i               (availableBorrows = max(0, capacity − D))

  an account is liquidatable when ``HF < 1``, and a new borrow is allowed only
  while ``D ≤ capacity`` (``ValidationLogic.validateBorrow``);
* a liquidation repays at most ``closeFactor × reserve debt``, with close factor
  50 %, or 100 % when ``HF ≤ 0.95`` (v3.0); the liquidator receives
  ``repaid × debt price × (1 + bonus) / collateral price`` of the collateral,
  capped by the balance (then the repaid debt is recomputed), and the protocol
  takes ``protocol_fee`` (10 %) of the bonus part (:func:`liquidation_call`).

Mapping onto :class:`margin.engine.MarginResult` (quote/base currency units):

* ``equity = Σ_i C_i − D`` — the account's net worth (negative = bad debt);
* ``maintenance = Σ_i C_i × (1 − LT_i)`` and ``initial = Σ_i C_i × (1 −
  LTV_i)``: the parts of the collateral the protocol does not lend against.

Hence ``equity − maintenance = Σ C_i LT_i − D`` and ``equity − initial = Σ C_i
LTV_i − D`` (= availableBorrows when positive), so ``equity < maintenance`` ⇔
``HF < 1`` and ``equity < initial`` ⇔ the borrow limit is exceeded, and
``maintenance ≤ initial`` because ``LTV ≤ LT``. Both equivalences are made exact
in floating point: where rounding of the two subtractions would disagree with
the reported ``extra["health_factor"] < 1`` (or with ``D > capacity``) the
requirement is moved by at most one ulp past the equity.

``MarginResult.extra`` (float64[n_accounts]): ``health_factor`` (``inf``
without debt), ``borrow_capacity`` (Σ C_i × LTV_i), ``available_borrows``
(max(0, capacity − D)), ``total_collateral`` (Σ C_i over assets with LT > 0,
Aave's totalCollateralBase), ``total_debt`` (D), ``close_factor`` (0 when not
liquidatable, else 0.5 or 1.0 by the configured rule; under ``"v3.3"`` the
$2,000 rule is applied to the account totals here — :func:`liquidation_call`
applies it per reserve, as Aave does).

Not modelled: wad/ray integer rounding (float64 throughout), e-mode categories
(pass the category's LTV/LT/bonus as the reserves' values), isolation mode,
supply/borrow caps, interest accrual, v3.3's ``MIN_LEFTOVER_BASE`` dust revert
and deficit (bad-debt) accounting. ``MarginInputs.haircuts`` are ignored (LTV
and LT play their role). Perpetual and option positions are not part of a
lending market and are rejected.

Neighbours: ``margin.regimes.static`` (isolated perpetual margin), ``margin.regimes.cross``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from margin.engine import SPOT, MarginEngine, MarginInputs, MarginResult, register_engine

__all__ = [
    "AAVE_V3_RESERVES",
    "CLOSE_FACTOR_HF_THRESHOLD",
    "CLOSE_FACTOR_RULES",
    "DEFAULT_LIQUIDATION_CLOSE_FACTOR",
    "MAX_LIQUIDATION_CLOSE_FACTOR",
    "MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD",
    "AaveLendingEngine",
    "AaveReserve",
    "aave_account_kernel",
    "aave_pretrade_kernel",
    "liquidation_call",
    "liquidation_call_kernel",
]

#: ``LiquidationLogic.DEFAULT_LIQUIDATION_CLOSE_FACTOR = 0.5e4`` (50 %), §4.1.
DEFAULT_LIQUIDATION_CLOSE_FACTOR = 0.5
#: ``LiquidationLogic.MAX_LIQUIDATION_CLOSE_FACTOR = 1e4`` (100 %, v3.0), §4.1.
MAX_LIQUIDATION_CLOSE_FACTOR = 1.0
#: ``LiquidationLogic.CLOSE_FACTOR_HF_THRESHOLD = 0.95e18``, §4.1.
CLOSE_FACTOR_HF_THRESHOLD = 0.95
#: v3.3 ``MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD = 2000e8`` ($2,000 in the USD base
#: currency with 8 decimals), §4.1. Assumes the base currency is USD.
MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD = 2000.0
#: Accepted close-factor rules: ``"v3.0"`` (aave-v3-core) and ``"v3.3"`` (aave-v3-origin).
CLOSE_FACTOR_RULES = ("v3.0", "v3.3")


@dataclass(frozen=True)
class AaveReserve:
    """Risk parameters of one Aave v3 reserve (``ReserveConfiguration``), §4.1.

    Fractions, not basis points: Aave's ``ltv = 8000``, ``liquidationThreshold =
    8250``, ``liquidationBonus = 10500`` become ``ltv=0.80``, ``lt=0.825``,
    ``bonus=0.05``. Constraints from ``PoolConfigurator.sol`` (§4.1): ``LTV ≤
    LT``; if ``LT > 0`` then the bonus is positive and ``LT × (1 + bonus) ≤ 1``.
    ``lt = 0`` disables the asset as collateral.

    Attributes:
        ltv: Loan-to-value, in [0, lt].
        lt: Liquidation threshold, in [0, 1).
        bonus: Liquidation bonus as a fraction (0.05 = 105 %).
        protocol_fee: Share of the bonus taken by the protocol
            (``liquidationProtocolFee``; 10 % for every reserve of the reference
            deploy config).
        name: Free-text label.

    Raises:
        ValueError: One line naming the bad field.
    """

    ltv: float
    lt: float
    bonus: float
    protocol_fee: float = 0.10
    name: str = ""

    def __post_init__(self) -> None:
        for f in ("ltv", "lt", "bonus", "protocol_fee"):
            if not math.isfinite(getattr(self, f)):
                raise ValueError(f"AaveReserve.{f} must be finite, got {getattr(self, f)}")
        if not 0.0 <= self.lt < 1.0:
            raise ValueError(f"AaveReserve.lt must lie in [0, 1), got {self.lt}")
        if not 0.0 <= self.ltv <= self.lt:
            raise ValueError(f"AaveReserve.ltv must lie in [0, lt={self.lt}], got {self.ltv}")
        if self.bonus < 0.0 or (self.lt > 0.0 and self.bonus <= 0.0):
            raise ValueError(f"AaveReserve.bonus must be > 0 for collateral (>= 0 otherwise), "
                             f"got {self.bonus}")
        if self.lt * (1.0 + self.bonus) > 1.0 + 1e-12:
            raise ValueError(f"AaveReserve.bonus makes lt x (1 + bonus) = "
                             f"{self.lt * (1.0 + self.bonus):.6g} > 1")
        if not 0.0 <= self.protocol_fee <= 1.0:
            raise ValueError(f"AaveReserve.protocol_fee must lie in [0, 1], "
                             f"got {self.protocol_fee}")


#: Reference deploy config, repo ``aave/aave-v3-deploy``, file
#: ``markets/aave/reservesConfigs.ts`` (``margin_methods.md`` §4.1 table;
#: liquidationProtocolFee 10 % for all). Live mainnet values differ.
AAVE_V3_RESERVES: dict[str, AaveReserve] = {
    "WETH": AaveReserve(0.80, 0.825, 0.05, name="WETH"),
    "WBTC": AaveReserve(0.70, 0.75, 0.10, name="WBTC"),
    "LINK": AaveReserve(0.70, 0.75, 0.10, name="LINK"),
    "USDC": AaveReserve(0.80, 0.85, 0.05, name="USDC"),
    "DAI": AaveReserve(0.75, 0.80, 0.05, name="DAI"),
    "USDT": AaveReserve(0.75, 0.80, 0.05, name="USDT"),
    "AAVE": AaveReserve(0.50, 0.65, 0.10, name="AAVE"),
    "EURS": AaveReserve(0.65, 0.70, 0.075, name="EURS"),
}


# --------------------------------------------------------------------------- kernels


@njit(cache=True)
def _account_values(balances, prices, ltv, lt):
    """(Σ C, D, Σ C×LT, Σ C×LTV, Σ C over LT > 0) of one account's balances."""
    c_all = 0.0
    debt = 0.0
    w_lt = 0.0
    w_ltv = 0.0
    c_enabled = 0.0
    for a in range(balances.shape[0]):
        b = balances[a]
        if b > 0.0:
            v = b * prices[a]
            c_all += v
            w_lt += v * lt[a]
            w_ltv += v * ltv[a]
            if lt[a] > 0.0:
                c_enabled += v
        elif b < 0.0:
            debt -= b * prices[a]
    return c_all, debt, w_lt, w_ltv, c_enabled


@njit(cache=True)
def aave_account_kernel(collateral, prices, ltv, lt):
    """Aave account data of every account (``GenericLogic.calculateUserAccountData``, §4.1).

    Args:
        collateral: float64[n_acc, n_assets] balances (negative = debt).
        prices: float64[n_assets] prices in the base currency.
        ltv: float64[n_assets] loan-to-value per asset.
        lt: float64[n_assets] liquidation threshold per asset.

    Returns:
        ``(c_all, debt, w_lt, w_ltv, c_enabled)``, each float64[n_acc]: value
        of all positive balances, debt value, Σ C×LT, Σ C×LTV, and value of
        the positive balances of assets with LT > 0.
    """
    n = collateral.shape[0]
    out = np.zeros((5, n))
    for i in range(n):
        c_all, debt, w_lt, w_ltv, c_en = _account_values(collateral[i], prices, ltv, lt)
        out[0, i] = c_all
        out[1, i] = debt
        out[2, i] = w_lt
        out[3, i] = w_ltv
        out[4, i] = c_en
    return out[0], out[1], out[2], out[3], out[4]


@njit(cache=True)
def aave_pretrade_kernel(collateral, prices, ltv, lt, kind, underlying, quote, contract_size,
                         rows, instrument, delta, price, fee_rate):
    """Sequential Aave pre-trade check of spot orders; mutates its (copied) balances.

    A spot order moves ``Δq × size`` of the base asset against ``Δq × size ×
    price + fee`` of the quote asset; a balance pushed below zero is a borrow.
    It is accepted when, afterwards, debt ≤ borrow capacity (Σ C × LTV;
    ``ValidationLogic.validateBorrow``), or when it creates no new borrow (no
    balance ends more negative than ``min(0, before)``) and leaves ``Σ C × LT −
    D`` no lower than ``min(0, before)`` — repaying and supplying are always
    allowed, withdrawing collateral only while HF stays ≥ 1
    (``validateHFAndLtv``). Non-spot orders and zero quantities are not
    accepted (a lending market has no perpetuals).

    Args:
        collateral: float64[n_rows, n_assets] balances (copied; updated).
        prices: float64[n_assets] asset prices.
        ltv: float64[n_assets] loan-to-value per asset.
        lt: float64[n_assets] liquidation threshold per asset.
        kind: int64[n_ins] instrument kinds.
        underlying: int64[n_ins] base asset of each instrument.
        quote: int64[n_ins] quote asset of each instrument.
        contract_size: float64[n_ins] base units per unit of position.
        rows: int64[n_orders] local row of each order.
        instrument: int64[n_orders] instrument of each order.
        delta: float64[n_orders] signed quantities (+ buys).
        price: float64[n_orders] expected execution prices.
        fee_rate: Fee rate on the order notional (paid in the quote asset).

    Returns:
        bool[n_orders], True where accepted.
    """
    n_orders = rows.shape[0]
    accept = np.zeros(n_orders, np.bool_)
    for e in range(n_orders):
        j = instrument[e]
        dq = delta[e]
        if dq == 0.0 or kind[j] != SPOT:
            continue
        r = rows[e]
        u = underlying[j]
        qa = quote[j]
        cs = contract_size[j]
        fee = abs(dq) * cs * price[e] * fee_rate
        row = collateral[r].copy()
        _, d0, wlt0, _, _ = _account_values(row, prices, ltv, lt)
        b0u = row[u]
        b0q = row[qa]
        row[u] += dq * cs
        row[qa] -= dq * cs * price[e] + fee
        _, d1, wlt1, wltv1, _ = _account_values(row, prices, ltv, lt)
        new_borrow = row[u] < min(0.0, b0u) or row[qa] < min(0.0, b0q)
        ok = d1 <= wltv1 or (not new_borrow and wlt1 - d1 >= min(0.0, wlt0 - d0))
        if ok:
            accept[e] = True
            collateral[r, u] = row[u]
            collateral[r, qa] = row[qa]
    return accept


@njit(cache=True)
def liquidation_call_kernel(collateral_amounts, debt, prices, lt, bonus, protocol_fee, v33,
                            debt_asset, collateral_asset, debt_to_cover, dust_threshold):
    """Aave v3 ``executeLiquidationCall`` amounts in float64 (kernel of :func:`liquidation_call`).

    Args:
        collateral_amounts: float64[n_assets] supplied amounts (≥ 0).
        debt: float64[n_assets] borrowed amounts (≥ 0).
        prices: float64[n_assets] prices (> 0).
        lt: float64[n_assets] liquidation thresholds.
        bonus: float64[n_assets] liquidation bonuses (fractions).
        protocol_fee: float64[n_assets] protocol shares of the bonus.
        v33: Use the v3.3 close-factor rule instead of v3.0.
        debt_asset: Index of the debt reserve repaid.
        collateral_asset: Index of the collateral reserve seized.
        debt_to_cover: Debt the liquidator offers to repay (``inf`` = maximum).
        dust_threshold: v3.3 ``MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD`` in base units.

    Returns:
        ``(debt_repaid, collateral_seized, protocol_fee)``; all zero when the
        call would revert (HF ≥ 1, no such debt or collateral, LT = 0).
    """
    w_lt = 0.0
    total_debt = 0.0
    for a in range(prices.shape[0]):
        w_lt += collateral_amounts[a] * prices[a] * lt[a]
        total_debt += debt[a] * prices[a]
    d = debt_asset
    c = collateral_asset
    if total_debt <= 0.0 or debt[d] <= 0.0 or collateral_amounts[c] <= 0.0 or lt[c] <= 0.0:
        return 0.0, 0.0, 0.0
    hf = w_lt / total_debt
    if hf >= 1.0:
        return 0.0, 0.0, 0.0
    if v33:
        max_debt = debt[d]
        reserve_debt_base = debt[d] * prices[d]
        reserve_coll_base = collateral_amounts[c] * prices[c]
        if (reserve_coll_base >= dust_threshold and reserve_debt_base >= dust_threshold
                and hf > CLOSE_FACTOR_HF_THRESHOLD):
            half_total = total_debt * DEFAULT_LIQUIDATION_CLOSE_FACTOR
            if reserve_debt_base > half_total:
                max_debt = half_total / prices[d]
    else:
        cf = (DEFAULT_LIQUIDATION_CLOSE_FACTOR if hf > CLOSE_FACTOR_HF_THRESHOLD
              else MAX_LIQUIDATION_CLOSE_FACTOR)
        max_debt = debt[d] * cf
    repaid = min(debt_to_cover, max_debt)
    lb = 1.0 + bonus[c]
    seized = repaid * prices[d] * lb / prices[c]
    if seized > collateral_amounts[c]:
        seized = collateral_amounts[c]
        repaid = prices[c] * seized / (prices[d] * lb)
    fee = (seized - seized / lb) * protocol_fee[c]
    return repaid, seized, fee


# --------------------------------------------------------------------------- pure function


def _vector(name: str, value: object, n: int | None) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0 and n is not None:
        arr = np.full(n, float(arr))
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        raise ValueError(f"{name} must be a 1-D array of length {n}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    return np.ascontiguousarray(arr)


def liquidation_call(collateral_amounts: Sequence[float] | np.ndarray,
                     debt: Sequence[float] | np.ndarray, prices: Sequence[float] | np.ndarray,
                     lt: Sequence[float] | np.ndarray, bonus: float | Sequence[float] | np.ndarray,
                     close_factor_rule: str, debt_asset: int, collateral_asset: int, *,
                     debt_to_cover: float = math.inf,
                     protocol_fee: float | Sequence[float] | np.ndarray = 0.10,
                     dust_threshold: float = MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD,
                     ) -> tuple[float, float, float]:
    """One Aave v3 liquidation of a user: debt repaid, collateral seized, protocol fee.

    ``LiquidationLogic.executeLiquidationCall`` and
    ``_calculateAvailableCollateralToLiquidate`` (``margin_methods.md`` §4.1;
    ``aave/aave-v3-core`` commit 782f5191; v3.3 rule from
    ``aave-dao/aave-v3-origin``) in float64:

    * allowed only when ``HF = Σ coll × price × LT / Σ debt × price < 1``;
    * max repayable debt: ``"v3.0"``: reserve debt × (50 % if HF > 0.95 else
      100 %); ``"v3.3"``: the whole reserve debt, unless the reserve's
      collateral and debt are both ≥ ``dust_threshold`` ($2,000) and HF > 0.95,
      in which case at most 50 % of the user's *total* debt (in base currency);
    * ``repaid = min(debt_to_cover, max)``;
      ``seized = repaid × debt price × (1 + bonus) / collateral price``; if that
      exceeds the collateral balance, ``seized = balance`` and ``repaid =
      balance × collateral price / (debt price × (1 + bonus))``;
    * ``fee = (seized − seized / (1 + bonus)) × protocol_fee``; the liquidator
      receives ``seized − fee``.

    Worked example (reference §4.1): 10 WETH (LT 82.5 %, bonus 5 %) against
    15,000 USDC debt at ETH = 1,800 → HF 0.99, repaid 7,500, seized 4.375 WETH,
    fee 0.020833.

    Args:
        collateral_amounts: Supplied amount per asset (≥ 0), asset units.
        debt: Borrowed amount per asset (≥ 0), asset units.
        prices: Price per asset (> 0) in the base currency.
        lt: Liquidation threshold per asset, in [0, 1).
        bonus: Liquidation bonus per asset (fraction, 0.05 = 105 %), or one
            number for all.
        close_factor_rule: ``"v3.0"`` or ``"v3.3"``.
        debt_asset: Index of the debt reserve being repaid.
        collateral_asset: Index of the collateral reserve being seized.
        debt_to_cover: Debt the liquidator offers to repay (asset units);
            ``inf`` (default) repays the maximum allowed.
        protocol_fee: Protocol share of the bonus, per asset or one number
            (default 10 %).
        dust_threshold: v3.3 threshold in base currency (default $2,000).

    Returns:
        ``(debt_repaid, collateral_seized, protocol_fee)`` in units of the debt
        asset, the collateral asset (including the fee) and the collateral
        asset; ``(0.0, 0.0, 0.0)`` where Aave would revert (HF ≥ 1, no debt in
        ``debt_asset``, no collateral or LT = 0 in ``collateral_asset``).

    Raises:
        ValueError: One line naming the bad argument.
    """
    coll = _vector("collateral_amounts", collateral_amounts, None)
    n = coll.shape[0]
    dbt = _vector("debt", debt, n)
    px = _vector("prices", prices, n)
    lt_v = _vector("lt", lt, n)
    bonus_v = _vector("bonus", bonus, n)
    fee_v = _vector("protocol_fee", protocol_fee, n)
    if np.any(coll < 0.0):
        raise ValueError(f"collateral_amounts must be >= 0, got {coll.tolist()}")
    if np.any(dbt < 0.0):
        raise ValueError(f"debt must be >= 0 (amounts owed), got {dbt.tolist()}")
    if np.any(px <= 0.0):
        raise ValueError(f"prices must be > 0, got {px.tolist()}")
    if np.any((lt_v < 0.0) | (lt_v >= 1.0)):
        raise ValueError(f"lt must lie in [0, 1), got {lt_v.tolist()}")
    if np.any(bonus_v < 0.0):
        raise ValueError(f"bonus must be >= 0, got {bonus_v.tolist()}")
    if np.any((fee_v < 0.0) | (fee_v > 1.0)):
        raise ValueError(f"protocol_fee must lie in [0, 1], got {fee_v.tolist()}")
    if close_factor_rule not in CLOSE_FACTOR_RULES:
        raise ValueError(f"close_factor_rule must be one of {CLOSE_FACTOR_RULES}, "
                         f"got {close_factor_rule!r}")
    for name, idx in (("debt_asset", debt_asset), ("collateral_asset", collateral_asset)):
        if not (isinstance(idx, int | np.integer) and 0 <= idx < n):
            raise ValueError(f"{name} must be an asset index in [0, {n}), got {idx!r}")
    if not (debt_to_cover >= 0.0):
        raise ValueError(f"debt_to_cover must be >= 0, got {debt_to_cover}")
    if not (math.isfinite(dust_threshold) and dust_threshold >= 0.0):
        raise ValueError(f"dust_threshold must be finite and >= 0, got {dust_threshold}")
    out = liquidation_call_kernel(coll, dbt, px, lt_v, bonus_v, fee_v, close_factor_rule == "v3.3",
                                  int(debt_asset), int(collateral_asset), float(debt_to_cover),
                                  float(dust_threshold))
    return float(out[0]), float(out[1]), float(out[2])


# --------------------------------------------------------------------------- engine


@register_engine
class AaveLendingEngine(MarginEngine):
    """Aave v3 lending market as a margin regime (health factor, LTV, close factor).

    Formulas and the mapping onto equity / initial / maintenance are in the
    module docstring (``margin_methods.md`` §4.1; ``aave/aave-v3-core`` commit
    782f5191). Balances in ``MarginInputs.collateral`` are the account's
    supplied (positive) and borrowed (negative) amounts per asset.

    Args:
        reserves: One :class:`AaveReserve` (or a key of
            :data:`AAVE_V3_RESERVES`) per asset, in asset order. Default
            ``("USDC", "WBTC", "WETH")`` — the simulator's ``[USD, BTC, ETH]``
            order with the reference deploy-config values (§4.1): USDC LTV 80 %
            / LT 85 % / bonus 5 %, WBTC 70 / 75 / 10 %, WETH 80 / 82.5 / 5 %,
            protocol fee 10 %.
        close_factor_rule: ``"v3.0"`` (default; 50 %, 100 % when HF ≤ 0.95) or
            ``"v3.3"`` (also 100 % below ``dust_threshold``).
        dust_threshold: v3.3 ``MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD`` in the
            base currency (default $2,000).

    Raises:
        ValueError: One line naming the bad argument.
    """

    name = "aave"

    def __init__(self, reserves: Sequence[AaveReserve | str] | None = None,
                 close_factor_rule: str = "v3.0",
                 dust_threshold: float = MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD) -> None:
        if reserves is None:
            reserves = ("USDC", "WBTC", "WETH")
        resolved = []
        for a, r in enumerate(reserves):
            if isinstance(r, str):
                if r not in AAVE_V3_RESERVES:
                    raise ValueError(f"reserves[{a}] {r!r} is not a known reserve; valid: "
                                     f"{', '.join(AAVE_V3_RESERVES)}")
                r = AAVE_V3_RESERVES[r]
            if not isinstance(r, AaveReserve):
                raise ValueError(f"reserves[{a}] must be an AaveReserve or a reserve name, "
                                 f"got {type(r).__name__}")
            resolved.append(r)
        if close_factor_rule not in CLOSE_FACTOR_RULES:
            raise ValueError(f"close_factor_rule must be one of {CLOSE_FACTOR_RULES}, "
                             f"got {close_factor_rule!r}")
        if not (math.isfinite(dust_threshold) and dust_threshold >= 0.0):
            raise ValueError(f"dust_threshold must be finite and >= 0, got {dust_threshold}")
        self.reserves: tuple[AaveReserve, ...] = tuple(resolved)
        self.close_factor_rule = close_factor_rule
        self.dust_threshold = float(dust_threshold)
        self.ltv = np.array([r.ltv for r in resolved], dtype=np.float64)
        self.lt = np.array([r.lt for r in resolved], dtype=np.float64)
        self.bonus = np.array([r.bonus for r in resolved], dtype=np.float64)
        self.protocol_fee = np.array([r.protocol_fee for r in resolved], dtype=np.float64)

    def _check(self, inputs: MarginInputs) -> None:
        if len(self.reserves) != len(inputs.asset_prices):
            raise ValueError(f"reserves has {len(self.reserves)} entries, inputs have "
                             f"{len(inputs.asset_prices)} assets")
        held = np.any(np.asarray(inputs.positions) != 0.0, axis=0)
        bad = np.flatnonzero(held & (inputs.specs.kind != SPOT))
        if bad.size:
            raise ValueError(f"aave engine margins spot balances only; instrument {int(bad[0])} "
                             f"holds a derivative position")

    def evaluate(self, inputs: MarginInputs) -> MarginResult:
        """Net worth against the (1 − LT) and (1 − LTV) collateral buffers (module docstring).

        Args:
            inputs: Current balances (negative = debt) and asset prices.

        Returns:
            ``equity < maintenance`` ⇔ HF < 1, ``equity < initial`` ⇔ debt
            above the borrowing capacity; per-account Aave data in ``extra``.

        Raises:
            ValueError: Wrong number of reserves, or a derivative position.
        """
        self._check(inputs)
        prices = np.asarray(inputs.asset_prices, np.float64)
        c_all, debt, w_lt, w_ltv, c_en = aave_account_kernel(
            np.asarray(inputs.collateral, np.float64), prices, self.ltv, self.lt)
        equity = c_all - debt
        maintenance = c_all - w_lt
        initial = c_all - w_ltv
        has_debt = debt > 0.0
        hf = np.full(len(debt), np.inf)
        with np.errstate(over="ignore"):  # subnormal debt: HF overflows to inf, as it should
            np.divide(w_lt, debt, out=hf, where=has_debt)
        liq = hf < 1.0
        over = debt > w_ltv
        up = np.nextafter(equity, np.inf)
        maintenance = np.where(liq, np.maximum(maintenance, up), np.minimum(maintenance, equity))
        initial = np.where(over, np.maximum(initial, up), np.minimum(initial, equity))
        initial = np.maximum(initial, maintenance)
        cf = np.where(hf > CLOSE_FACTOR_HF_THRESHOLD, DEFAULT_LIQUIDATION_CLOSE_FACTOR,
                      MAX_LIQUIDATION_CLOSE_FACTOR)
        if self.close_factor_rule == "v3.3":
            small = (c_en < self.dust_threshold) | (debt < self.dust_threshold)
            cf = np.where(small, MAX_LIQUIDATION_CLOSE_FACTOR, cf)
        cf = np.where(liq, cf, 0.0)
        extra = {
            "health_factor": hf,
            "borrow_capacity": w_ltv,
            "available_borrows": np.maximum(w_ltv - debt, 0.0),
            "total_collateral": c_en,
            "total_debt": debt,
            "close_factor": cf,
        }
        return MarginResult(equity, initial, maintenance, extra)

    def pretrade(self, inputs: MarginInputs, rows: np.ndarray, instrument: np.ndarray,
                 delta: np.ndarray, price: np.ndarray, fee_rate: float) -> np.ndarray:
        """Borrow-limit check of spot orders (rules in :func:`aave_pretrade_kernel`).

        Args:
            inputs: Current state of all accounts.
            rows: int64[n_orders] account of each order.
            instrument: int64[n_orders] instrument of each order.
            delta: float64[n_orders] signed base quantity (+ buys).
            price: float64[n_orders] expected execution price.
            fee_rate: Fee rate charged on the order notional (in the quote asset).

        Returns:
            bool[n_orders], True where accepted.
        """
        self._check(inputs)
        rows = np.asarray(rows, np.int64)
        if len(rows) == 0:
            return np.zeros(0, np.bool_)
        uniq, local = np.unique(rows, return_inverse=True)
        s = inputs.specs
        return aave_pretrade_kernel(
            np.array(np.asarray(inputs.collateral)[uniq], np.float64),
            np.asarray(inputs.asset_prices, np.float64), self.ltv, self.lt, s.kind, s.underlying,
            s.quote, s.contract_size, local.astype(np.int64), np.asarray(instrument, np.int64),
            np.asarray(delta, np.float64), np.asarray(price, np.float64), float(fee_rate))

    def liquidate(self, balances: Sequence[float] | np.ndarray,
                  prices: Sequence[float] | np.ndarray,
                  debt_asset: int, collateral_asset: int,
                  debt_to_cover: float = math.inf) -> tuple[float, float, float]:
        """:func:`liquidation_call` with this engine's reserves and close-factor rule.

        Args:
            balances: One account's signed balances per asset (negative = debt).
            prices: Asset prices.
            debt_asset: Index of the debt reserve repaid.
            collateral_asset: Index of the collateral reserve seized.
            debt_to_cover: Debt offered by the liquidator (default: the maximum).

        Returns:
            ``(debt_repaid, collateral_seized, protocol_fee)``.
        """
        b = _vector("balances", balances, len(self.reserves))
        return liquidation_call(np.maximum(b, 0.0), np.maximum(-b, 0.0), prices, self.lt,
                                self.bonus, self.close_factor_rule, debt_asset, collateral_asset,
                                debt_to_cover=debt_to_cover, protocol_fee=self.protocol_fee,
                                dust_threshold=self.dust_threshold)
