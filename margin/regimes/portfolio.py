"""Portfolio margin: full-revaluation scan per underlying, optional correlated offsets.

Methodology (margin_methods.md §1 CME SPAN, §2.2 OCC STANS, §3.1 Deribit PM,
§5.4 liquidity add-ons):

* **Equity** (as in ``margin.regimes.cross``): Σ adjusted collateral (a positive balance
  counts ``balance × price × (1 − haircut)``, a negative one at full value) +
  Σ perp unrealised P&L ``q × size × (mark − entry)`` + Σ option mark value
  ``q × size × mark`` (long options add value, short options subtract; the
  premium itself went through the quote balance).
* **Exposures**: one column per instrument (signed positions of perps and
  options; spot instruments are carried by the balances) and one per asset
  (the *adjusted* balance, so the scan measures the change of equity: a long
  balance moves equity by ``(1 − h) × b × ΔP``, a borrow by ``b × ΔP``).
  Collateral is inside the scenarios, as in OCC STANS since 2010 (§2.2), so a
  long spot balance hedges a short perp.
* **Scan** (per underlying with a :class:`UnderlyingParams`): every scenario of
  its :class:`~margin.methods.scenarios.ScanGrid` moves the underlying's index price
  ``F`` by ``(1 + m_s)``; perps and balances are linear; options are fully
  revalued with **Black-76 on the underlying's index price** (the index is
  taken as the forward of the option's expiry — exact for options on the perp
  or future, and for crypto with zero carry) at the shocked vol and
  ``T − lookahead``, discounted at ``inputs.rate``. Scenario P&L is multiplied
  by the scenario weight; scan risk is ``max(0, max_s loss_s)``. Scan risks
  add across underlyings with no offsets (SPAN margins each combined commodity
  on its own first, §1.1).
* **Cross-underlying offsets** (optional, ``correlated=JointScenarios``): the
  same exposures are revalued under a correlated joint set (Monte Carlo or
  historical, OCC STANS §2.2) and the account's ``ES_α`` (or ``VaR_α``) is
  computed. The market-risk requirement is::

      risk = max((1 − max_credit) × Σ_u scan_u,  ES_α(joint))

  i.e. diversification across underlyings may cut the summed scan risk by at
  most ``max_credit`` — the role of the cap on SPAN inter-commodity spread
  credits (§1.5: credit rates below 100 %, calibrated from correlation) — and
  never below the joint expected shortfall (STANS' measure). Without a joint
  set, ``risk = Σ_u scan_u``. The risk is allocated back to underlyings pro
  rata to their scan risk (``credited_u = scan_u × risk / Σ scan``) for the
  short-option floor.
* **Short option minimum** ``SOM_u = rate × Σ short option size × F`` (rate per
  unit of underlying notional per short contract; CME: rate × short options,
  NSE: 3 % of notional, older Deribit: 0.01 BTC per short option, §1.6, §3.1).
  ``som_mode="floor"`` (SPAN): ``max(credited_u, SOM_u)``; ``"add"`` (Deribit
  contingency): ``credited_u + SOM_u``.
* **Roll shock** (Deribit, §3.1): ``roll_shock × Σ |perp size| × mark`` per
  underlying — the ``min_annualised_move`` floor that applies to perps
  (reproduces the live ETH example: 0.005 × 0.999487 ETH). Gross per
  instrument, so offsetting perps on two venues pay the basis contingency
  (older Deribit docs: "1 % of underlying for offsetting futures").
* **Delta shock** (Deribit ``max_delta_shock`` /
  ``delta_total_liq_shock_threshold``, semantics inferred, §3.1/§5.4):
  ``max_delta_shock × max(0, |Δ_u| − threshold)`` with ``Δ_u`` the account's
  net USD delta on the underlying (perps, option Black-76 deltas, adjusted
  balances).
* **Liquidity / concentration** (§5.4 square-root impact, with the instrument's
  book depth in place of ADV; zero when ``inputs.depth`` is None)::

      cost(Q)  = Y × σ_daily × P × Q × √(Q / depth)
      add-on   = Σ_instruments max(0, cost(Q) − cost(threshold × depth))

  with ``Q`` the position size in base units (balances: the spot instrument
  with the largest depth on that asset), ``P`` the mark (options: ``F × |Δ|``,
  the delta-equivalent notional) and ``σ_daily = impact_vol`` of the
  underlying. Instruments with non-positive depth carry no add-on.
* ``IM = Σ_u requirement_u + roll + delta shock + liquidity`` and ``MM =
  mm_factor × IM`` (Deribit: 0.8).

Scan and joint losses of the whole population are computed by the tiled
kernels of ``margin.methods.kernels`` (one BLAS product per tile of accounts, never the
full accounts × scenarios matrix); options are revalued once per scenario for
all accounts. Neighbours: ``margin.methods.scenarios``, ``margin.methods.kernels``,
``margin.methods.pricing``, ``margin.regimes.cross``.
"""


from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from margin.engine import (
    OPTION,
    PERP,
    SPOT,
    MarginEngine,
    MarginInputs,
    MarginResult,
    register_engine,
)
from margin.methods.kernels import (
    DEFAULT_TILE_ROWS,
    scan_tail_tiled,
    scan_tail_tiled_parallel,
    tail_count,
)
from margin.methods.pricing import black76_greeks_vec, black76_price_vec
from margin.methods.scenarios import (
    JointScenarios,
    ScanGrid,
    deribit_grid,
    shocked_vols,
    span_from_volatility,
)

__all__ = [
    "DERIBIT_BTC",
    "DERIBIT_ETH",
    "PRESETS",
    "SPAN_BTC",
    "SPAN_ETH",
    "PortfolioMarginEngine",
    "UnderlyingParams",
]

_DAYS_PER_YEAR = 365.0
PARALLEL_MIN_ACCOUNTS = 20_000
"""Accounts from which evaluation uses the parallel scan kernel (thread start-up
dominates below)."""


@dataclass(frozen=True, eq=False)
class UnderlyingParams:
    """Scan grid and add-on parameters of one underlying.

    Attributes:
        grid: The scan scenarios (:func:`~margin.methods.scenarios.span_scenarios` or
            :func:`~margin.methods.scenarios.deribit_grid`).
        short_option_minimum: SOM rate per short option, as a fraction of the
            underlying notional of the contract (0 = none).
        som_mode: ``"floor"`` (SPAN §1.6: max with the scan) or ``"add"``
            (Deribit contingency: added).
        roll_shock: Fraction of gross perp notional (Deribit
            ``min_annualised_move``: BTC 0.01, ETH 0.005).
        max_delta_shock: Extra move applied to net USD delta above the threshold.
        delta_shock_threshold: Net USD delta above which the delta shock applies.
        impact_vol: Daily volatility ``σ_daily`` in the liquidity add-on.

    Raises:
        ValueError: One-line message naming the offending field.
    """

    grid: ScanGrid
    short_option_minimum: float = 0.0
    som_mode: str = "floor"
    roll_shock: float = 0.0
    max_delta_shock: float = 0.0
    delta_shock_threshold: float = 20_000_000.0
    impact_vol: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.grid, ScanGrid):
            raise ValueError(f"UnderlyingParams.grid must be a ScanGrid, "
                             f"got {type(self.grid).__name__}")
        if self.som_mode not in ("floor", "add"):
            raise ValueError(f"UnderlyingParams.som_mode must be 'floor' or 'add', "
                             f"got {self.som_mode!r}")
        for name in ("short_option_minimum", "roll_shock", "max_delta_shock",
                     "delta_shock_threshold", "impact_vol"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"UnderlyingParams.{name} must be finite and >= 0, got {value!r}")


_BTC_DAILY_VOL = 0.60 / math.sqrt(_DAYS_PER_YEAR)  # conf/market/btc_eth.yaml volatilities
_ETH_DAILY_VOL = 0.80 / math.sqrt(_DAYS_PER_YEAR)

#: Deribit BTC_USD (``private/pme/simulate`` example, §3.1): ±16 %, vol +50 %/−25 %, roll
#: shock 1 %, delta shock 10 % above $20M net delta; 0.01 BTC per short option (older docs).
DERIBIT_BTC = UnderlyingParams(deribit_grid(0.16, vol_range_up=0.50), short_option_minimum=0.01,
                               som_mode="add", roll_shock=0.01, max_delta_shock=0.10,
                               impact_vol=_BTC_DAILY_VOL)
#: Deribit ETH_USD (live capture Feb 2026, §3.1): ±18 %, vol +40 %/−25 %, roll shock 0.5 %.
DERIBIT_ETH = UnderlyingParams(deribit_grid(0.18, vol_range_up=0.40), short_option_minimum=0.01,
                               som_mode="add", roll_shock=0.005, max_delta_shock=0.10,
                               impact_vol=_ETH_DAILY_VOL)
#: SPAN on BTC, NSE-style calibration (§1.8): PSR = 3.5 σ_daily (σ = 0.60 → 11.0 %), VSR =
#: 25 % of vol (15 vol points), 2×/35 % extremes, SOM 3 % of notional (NSE index options).
SPAN_BTC = UnderlyingParams(span_from_volatility(0.60), short_option_minimum=0.03,
                            impact_vol=_BTC_DAILY_VOL)
#: SPAN on ETH (σ = 0.80 → PSR 14.7 %, VSR 20 vol points).
SPAN_ETH = UnderlyingParams(span_from_volatility(0.80), short_option_minimum=0.03,
                            impact_vol=_ETH_DAILY_VOL)
#: Presets by name, for configs: ``underlyings=[None, "deribit_btc", "deribit_eth"]``.
PRESETS: dict[str, UnderlyingParams] = {"deribit_btc": DERIBIT_BTC, "deribit_eth": DERIBIT_ETH,
                                        "span_btc": SPAN_BTC, "span_eth": SPAN_ETH}


@dataclass
class _Prepared:
    """What depends on prices but not on positions (shared by all accounts).

    Columns are the exposures: instruments first, then assets. ``n_u`` is the
    number of scanned underlyings (``seg_asset``).
    """

    scan_loss: np.ndarray  # [n_cols, S_scan] weighted per-unit losses of all grids
    seg_start: np.ndarray  # int64[n_u + 1] grid offsets in scan_loss
    seg_asset: np.ndarray  # int64[n_u] asset of each grid
    joint_loss: np.ndarray  # [n_cols, S_joint], S_joint = 0 without a joint set
    k: int  # tail size of the joint set
    som: np.ndarray  # [n_cols, n_u] short option minimum per unit short
    som_floor: np.ndarray  # bool[n_u] SPAN floor (True) or Deribit add-on (False)
    roll: np.ndarray  # [n_cols, n_u] roll shock per unit |exposure|
    delta: np.ndarray  # [n_cols, n_u] USD delta per unit exposure
    delta_shock: np.ndarray  # [n_u]
    delta_threshold: np.ndarray  # [n_u]
    liq: dict[str, np.ndarray] = field(default_factory=dict)


def _adjusted(collateral: np.ndarray, haircuts: np.ndarray) -> np.ndarray:
    """Balances as counted in equity: positive × (1 − haircut), negative in full."""
    return np.where(collateral >= 0.0, collateral * (1.0 - haircuts[None, :]), collateral)


@register_engine
class PortfolioMarginEngine(MarginEngine):
    """Portfolio margin with full revaluation (SPAN / Deribit PM / STANS-style offsets).

    ``IM = Σ_u floor_or_add(φ × scan_u, SOM_u) + roll + delta shock + liquidity``
    and ``MM = mm_factor × IM``, where ``φ = 1`` without a correlated set and
    ``φ = max((1 − max_credit) Σ scan, ES_α) / Σ scan`` with one (module
    docstring; margin_methods.md §1.3, §1.5, §1.6, §2.2, §3.1, §5.4).

    Args:
        underlyings: One optional :class:`UnderlyingParams` (or preset name, see
            :data:`PRESETS`) per asset in asset order, ``None`` for assets whose
            price is not scanned (the quote currency); or a mapping asset →
            params. Default: USD, Deribit BTC, Deribit ETH.
        correlated: Optional joint scenario set enabling cross-underlying offsets.
        max_credit: Largest fraction of the summed scan risk that correlation
            may offset (SPAN inter-commodity credit cap), in [0, 1].
        mm_factor: MM / IM ratio (Deribit: 0.8).
        liquidity_coeff: ``Y`` of the square-root impact add-on (0.5–1, §5.4).
        liquidity_threshold: Position size, as a multiple of book depth, below
            which no liquidity add-on applies.
        tile_rows: Accounts per kernel tile.

    Raises:
        ValueError: On an unknown preset or out-of-range parameter.
    """

    name = "portfolio"

    def __init__(self, underlyings: Sequence[UnderlyingParams | str | None]
                 | Mapping[int, UnderlyingParams | str] = (None, "deribit_btc", "deribit_eth"),
                 correlated: JointScenarios | None = None, max_credit: float = 0.5,
                 mm_factor: float = 0.8, liquidity_coeff: float = 0.5,
                 liquidity_threshold: float = 0.5, tile_rows: int = DEFAULT_TILE_ROWS) -> None:
        if isinstance(underlyings, Mapping):
            n = max(underlyings) + 1 if underlyings else 0
            underlyings = [underlyings.get(a) for a in range(n)]
        params: list[UnderlyingParams | None] = []
        for p in underlyings:
            if isinstance(p, str):
                if p not in PRESETS:
                    raise ValueError(f"unknown portfolio preset {p!r}; "
                                     f"valid: {', '.join(sorted(PRESETS))}")
                p = PRESETS[p]
            if p is not None and not isinstance(p, UnderlyingParams):
                raise ValueError(f"underlyings entries must be UnderlyingParams, preset names "
                                 f"or None, got {p!r}")
            params.append(p)
        self.underlyings = params
        if correlated is not None and not isinstance(correlated, JointScenarios):
            raise ValueError("correlated must be a JointScenarios or None")
        self.correlated = correlated
        for name, value, hi in (("max_credit", max_credit, 1.0), ("mm_factor", mm_factor, 1.0),
                                ("liquidity_coeff", liquidity_coeff, math.inf),
                                ("liquidity_threshold", liquidity_threshold, math.inf)):
            if math.isnan(value) or not 0.0 <= value <= hi:
                raise ValueError(f"{name} must be in [0, {hi}], got {value!r}")
        if int(tile_rows) != tile_rows or tile_rows < 1:
            raise ValueError(f"tile_rows must be a positive integer, got {tile_rows!r}")
        self.max_credit = float(max_credit)
        self.mm_factor = float(mm_factor)
        self.liquidity_coeff = float(liquidity_coeff)
        self.liquidity_threshold = float(liquidity_threshold)
        self.tile_rows = int(tile_rows)
        self._prep_memo: tuple[Any, _Prepared] | None = None

    def with_params(self, **changes: object) -> PortfolioMarginEngine:
        """A copy with some constructor arguments changed (e.g. ``correlated=None``).

        Args:
            **changes: Constructor arguments to replace.

        Returns:
            The new engine.
        """
        kw: dict[str, object] = {
            "underlyings": self.underlyings, "correlated": self.correlated,
            "max_credit": self.max_credit, "mm_factor": self.mm_factor,
            "liquidity_coeff": self.liquidity_coeff,
            "liquidity_threshold": self.liquidity_threshold, "tile_rows": self.tile_rows}
        kw.update(changes)
        return PortfolioMarginEngine(**kw)

    # ------------------------------------------------------------------ revaluation

    def _check(self, inputs: MarginInputs) -> None:
        n_assets = len(inputs.asset_prices)
        if len(self.underlyings) != n_assets:
            raise ValueError(f"portfolio engine has parameters for {len(self.underlyings)} "
                             f"assets, inputs have {n_assets}")
        s = inputs.specs
        risky = (s.kind == PERP) | (s.kind == OPTION)
        missing = sorted({int(u) for u in s.underlying[risky] if self.underlyings[u] is None})
        if missing:
            raise ValueError(f"portfolio engine has no scan parameters for underlying "
                             f"asset(s) {missing}")
        _check_vols(inputs)
        if self.correlated is not None and self.correlated.moves.shape[1] != n_assets:
            raise ValueError(f"correlated.moves has {self.correlated.moves.shape[1]} columns, "
                             f"expected {n_assets} (one per asset)")

    def _prepare(self, inputs: MarginInputs) -> _Prepared:
        """Per-unit scenario losses and add-on coefficients for these prices.

        Memoised on the exact bytes of everything it reads (prices, marks,
        depth, time, rate, vols, instrument specs): a world calls the engine
        many times per step at unchanged prices, and the same inputs give the
        same arrays. The engine's own parameters are fixed at construction.
        """
        key = _prepare_key(inputs)
        memo = self._prep_memo
        if memo is not None and memo[0] == key:
            return memo[1]
        prep = self._prepare_uncached(inputs)
        self._prep_memo = (key, prep)
        return prep

    def _prepare_uncached(self, inputs: MarginInputs) -> _Prepared:
        self._check(inputs)
        s = inputs.specs
        n_ins, n_assets = len(s.kind), len(inputs.asset_prices)
        n_cols = n_ins + n_assets
        col_asset = np.concatenate([np.where(s.kind == SPOT, -1, s.underlying),
                                    np.arange(n_assets)])
        seg_asset = np.array([a for a, p in enumerate(self.underlyings) if p is not None],
                             np.int64)
        blocks, starts = [np.zeros((n_cols, 0))], [0]
        for a in seg_asset:
            grid = self.underlyings[a].grid
            moves = np.zeros((grid.n_scenarios, n_assets))
            moves[:, a] = grid.price_moves
            block = _move_losses(inputs, moves, grid.lookahead, grid, only_asset=int(a))
            blocks.append(block * grid.weights[None, :])
            starts.append(starts[-1] + grid.n_scenarios)
        if self.correlated is not None:
            j = self.correlated
            joint = _move_losses(inputs, j.moves, j.horizon)
            k = int(tail_count(j.confidence, j.moves.shape[0]))
        else:
            joint, k = np.zeros((n_cols, 0)), 1

        prices = inputs.asset_prices
        col_f = np.where(col_asset >= 0, prices[np.maximum(col_asset, 0)], 0.0)
        opt_delta = _option_deltas(inputs)
        size = np.concatenate([s.contract_size, np.ones(n_assets)])
        marks = np.concatenate([inputs.marks, prices])
        kind = np.concatenate([s.kind, np.full(n_assets, -1)])
        opt_delta_cols = np.append(opt_delta, np.zeros(n_assets))
        unit_delta = np.where(kind == OPTION, size * opt_delta_cols * col_f,
                              np.where(kind == SPOT, 0.0, size * marks))
        n_u = len(seg_asset)
        som, roll, delta = (np.zeros((n_cols, n_u)) for _ in range(3))
        for g, a in enumerate(seg_asset):
            p = self.underlyings[a]
            on = col_asset == a
            opt, perp = on & (kind == OPTION), on & (kind == PERP)
            som[opt, g] = p.short_option_minimum * size[opt] * prices[a]
            roll[perp, g] = p.roll_shock * size[perp] * marks[perp]
            delta[on, g] = unit_delta[on]
        params = [self.underlyings[a] for a in seg_asset]
        prep = _Prepared(
            scan_loss=np.ascontiguousarray(np.hstack(blocks)),
            seg_start=np.array(starts, np.int64), seg_asset=seg_asset,
            joint_loss=np.ascontiguousarray(joint), k=k, som=som,
            som_floor=np.array([p.som_mode == "floor" for p in params], bool), roll=roll,
            delta=delta, delta_shock=np.array([p.max_delta_shock for p in params]),
            delta_threshold=np.array([p.delta_shock_threshold for p in params]))
        if inputs.depth is not None and self.liquidity_coeff > 0.0:
            prep.liq = self._liquidity(inputs, col_asset, opt_delta, col_f)
        return prep

    def _liquidity(self, inputs: MarginInputs, col_asset: np.ndarray, opt_delta: np.ndarray,
                   col_f: np.ndarray) -> dict[str, np.ndarray]:
        """Per-column ``coef = Y σ_daily P / √depth``, size unit and threshold (§5.4)."""
        s = inputs.specs
        n_ins, n_assets = len(s.kind), len(inputs.asset_prices)
        depth_in = np.asarray(inputs.depth, dtype=np.float64)
        if depth_in.shape != (n_ins,):
            raise ValueError(f"MarginInputs.depth has shape {depth_in.shape}, "
                             f"expected ({n_ins},)")
        depth = np.zeros(n_ins + n_assets)
        depth[:n_ins] = np.where((s.kind == PERP) | (s.kind == OPTION), depth_in, 0.0)
        for j in np.flatnonzero(s.kind == SPOT):  # a balance uses its asset's deepest spot book
            a = n_ins + int(s.underlying[j])
            depth[a] = max(depth[a], depth_in[j])
        price = np.concatenate([np.where(s.kind == OPTION, col_f[:n_ins] * np.abs(opt_delta),
                                         inputs.marks), inputs.asset_prices])
        vol = np.array([0.0 if a < 0 or self.underlyings[a] is None
                        else self.underlyings[a].impact_vol for a in col_asset])
        ok = np.isfinite(depth) & (depth > 0.0)
        safe = np.where(ok, depth, 1.0)
        coef = np.where(ok, self.liquidity_coeff * vol * price / np.sqrt(safe), 0.0)
        return {"coef": coef, "size": np.concatenate([s.contract_size, np.ones(n_assets)]),
                "threshold": np.where(ok, self.liquidity_threshold * depth, 0.0)}

    # ------------------------------------------------------------------ requirements

    def _requirements(self, prep: _Prepared, inputs: MarginInputs, collateral: np.ndarray,
                      positions: np.ndarray) -> dict[str, np.ndarray]:
        """IM and its components for the given balances and positions."""
        positions = np.where((inputs.specs.kind == SPOT)[None, :], 0.0, positions)
        x = np.ascontiguousarray(
            np.hstack([positions, _adjusted(collateral, inputs.haircuts)]), dtype=np.float64)
        # large books: the numba-parallel kernel (no BLAS inside, results identical per account)
        kernel = scan_tail_tiled_parallel if len(x) >= PARALLEL_MIN_ACCOUNTS else scan_tail_tiled
        worst, var, es = kernel(x, prep.scan_loss, prep.seg_start, prep.joint_loss, prep.k,
                                self.tile_rows)
        scan_u = np.maximum(worst, 0.0)
        total = scan_u.sum(axis=1)
        n = len(x)
        joint, phi, lump = np.zeros(n), np.ones(n), np.zeros(n)
        if self.correlated is not None:
            joint = np.maximum(es if self.correlated.measure == "es" else var, 0.0)
            risk = np.maximum((1.0 - self.max_credit) * total, joint)
            has_scan = total > 0.0
            phi = np.where(has_scan, risk / np.where(has_scan, total, 1.0), 0.0)
            lump = np.where(has_scan, 0.0, risk)
        credited = scan_u * phi[:, None]
        som = np.maximum(-x, 0.0) @ prep.som
        core = np.where(prep.som_floor[None, :], np.maximum(credited, som), credited + som)
        roll = np.abs(x) @ prep.roll
        excess = np.maximum(np.abs(x @ prep.delta) - prep.delta_threshold[None, :], 0.0)
        dshock = (prep.delta_shock[None, :] * excess).sum(axis=1)
        liq = np.zeros(n)
        if prep.liq:
            q = np.abs(np.hstack([positions, collateral])) * prep.liq["size"][None, :]
            over = np.maximum(q**1.5 - prep.liq["threshold"][None, :] ** 1.5, 0.0)
            liq = (prep.liq["coef"][None, :] * over).sum(axis=1)
        parts = {"initial": core.sum(axis=1) + lump + roll.sum(axis=1) + dshock + liq,
                 "scan": total, "joint": joint, "credit": total - credited.sum(axis=1) - lump,
                 "short_option_minimum": som.sum(axis=1), "roll_shock": roll.sum(axis=1),
                 "delta_shock": dshock, "liquidity": liq}
        for g, a in enumerate(prep.seg_asset):
            parts[f"scan_{a}"] = scan_u[:, g]
        return parts

    # ------------------------------------------------------------------ contract

    def evaluate(self, inputs: MarginInputs) -> MarginResult:
        """Equity, IM and MM of every account (see the class and module docstrings).

        Args:
            inputs: Current state of all accounts.

        Returns:
            The result; ``extra`` holds float64[n_accounts] components: ``scan``
            (Σ scan risk), ``scan_<asset>`` (per scanned asset), ``joint`` (ES or
            VaR of the correlated set, 0 without one), ``credit`` (scan risk
            removed by offsets; negative when the joint risk exceeds the scan),
            ``short_option_minimum``, ``roll_shock``, ``delta_shock``, ``liquidity``.
        """
        prep = self._prepare(inputs)
        parts = self._requirements(prep, inputs, inputs.collateral, inputs.positions)
        im = parts.pop("initial")
        return MarginResult(_equity(inputs), im, self.mm_factor * im, parts)

    def pretrade(self, inputs: MarginInputs, rows: np.ndarray, instrument: np.ndarray,
                 delta: np.ndarray, price: np.ndarray, fee_rate: float) -> np.ndarray:
        """Sequential pre-trade check by re-evaluating each order's account.

        Each order fills in full at ``price``; its account's hypothetical
        positions and balances are updated and the portfolio IM recomputed
        (exact, one small evaluation per order: meant for small batches). An
        order is accepted when post-trade equity covers post-trade IM, or when
        it strictly lowers the account's IM (risk-reducing orders are always
        allowed, as on Deribit PM and in ``margin.regimes.cross``). Equity effects: perp
        — ``min(0, q × size × (mark − price)) − fee`` (as ``margin.regimes.cross``); spot
        — exact change of the adjusted base and quote balances; option — the
        premium ``q × size × price / asset_prices[quote]`` plus fee paid from
        the quote balance (units: ``margin.engine``) against the mark value
        ``q × size × mark`` gained.

        Args:
            inputs: Current state of all accounts.
            rows: int64[n_orders] account of each order.
            instrument: int64[n_orders] instrument of each order.
            delta: float64[n_orders] signed quantity (+ buys).
            price: float64[n_orders] expected execution price.
            fee_rate: Fee rate charged on the order notional.

        Returns:
            bool[n_orders] acceptance, orders applied in sequence.
        """
        rows = np.asarray(rows, np.int64)
        accept = np.zeros(len(rows), np.bool_)
        if len(rows) == 0:
            return accept
        uniq, local = np.unique(rows, return_inverse=True)
        sub = inputs.subset(uniq)
        prep = self._prepare(inputs)
        coll, pos = sub.collateral.copy(), sub.positions.copy()
        equity = _equity(sub)
        initial = None  # IM of the accounts as they are: evaluated with the first pass
        orders = [(e, r, j, dq, p) for e, (r, j, dq, p) in enumerate(zip(
            local.tolist(), np.asarray(instrument).tolist(), np.asarray(delta, float).tolist(),
            np.asarray(price, float).tolist(), strict=True)) if dq != 0.0]
        # Speculative batches, same decisions as one order at a time: each pass takes
        # every pending order assuming its account's earlier pending orders are
        # accepted, evaluates all those post-trade states in one call, and commits
        # each account's orders up to its first rejection; the rest wait for the next
        # pass (at least one order per account is decided per pass).
        while orders:
            spec: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}
            cand = []
            for e, r, j, dq, p in orders:
                c0, p0, eq0 = spec.get(r, (coll[r:r + 1], pos[r:r + 1], equity[r]))
                c_row, p_row, d_eq = self._order_effect(inputs, c0, p0, j, dq, p, fee_rate)
                spec[r] = (c_row, p_row, eq0 + d_eq)
                cand.append((e, r, c_row, p_row, d_eq))
            c_all, p_all = [c[2] for c in cand], [c[3] for c in cand]
            if initial is None:
                c_all.insert(0, coll)
                p_all.insert(0, pos)
            im = self._requirements(prep, inputs, np.vstack(c_all), np.vstack(p_all))["initial"]
            if initial is None:
                initial, im = im[:len(coll)].copy(), im[len(coll):]
            blocked: set[int] = set()
            pending = []
            for (e, r, c_row, p_row, d_eq), order, im1 in zip(cand, orders, im.tolist(),
                                                              strict=True):
                if r in blocked:
                    pending.append(order)
                elif equity[r] + d_eq >= im1 or im1 < initial[r]:
                    accept[e] = True
                    equity[r] += d_eq
                    initial[r] = im1
                    coll[r], pos[r] = c_row[0], p_row[0]
                else:
                    blocked.add(r)
            orders = pending
        return accept

    @staticmethod
    def _order_effect(inputs: MarginInputs, coll: np.ndarray, pos: np.ndarray, j: int,
                      dq: float, p: float, fee_rate: float
                      ) -> tuple[np.ndarray, np.ndarray, float]:
        """One account's balances and positions (1-row arrays) after an order fills.

        The order fills in full at ``p``; also returns its equity change (effects
        per kind: :meth:`pretrade`).
        """
        s = inputs.specs
        c_row, p_row = coll.copy(), pos.copy()
        size = dq * s.contract_size[j]
        fee = abs(size) * p * fee_rate
        quote = int(s.quote[j])
        if s.kind[j] == PERP:
            p_row[0, j] += dq
            c_row[0, quote] -= fee
            return c_row, p_row, min(0.0, size * (inputs.marks[j] - p)) - fee
        if s.kind[j] == SPOT:
            c_row[0, int(s.underlying[j])] += size
            c_row[0, quote] -= size * p + fee
        else:  # option: premium and fee in the pricing unit, paid in the quote asset
            qv = float(inputs.asset_prices[quote])
            p_row[0, j] += dq
            c_row[0, quote] -= size * p / qv + fee / qv
        d_eq = float(((_adjusted(c_row, inputs.haircuts) - _adjusted(coll, inputs.haircuts))
                      @ inputs.asset_prices)[0])
        if s.kind[j] == OPTION:
            d_eq += size * inputs.marks[j]
        return c_row, p_row, d_eq

    def stress(self, inputs: MarginInputs, shocks: np.ndarray) -> np.ndarray:
        """Loss of every account under relative price shocks, repricing options.

        Perps and balances move linearly with their asset (as the base class);
        options are revalued with Black-76 at the shocked index price, unchanged
        implied vol and time. Assets without scan parameters move too.

        Args:
            inputs: Current state of all accounts.
            shocks: float64[n_scenarios, n_assets] relative moves.

        Returns:
            float64[n_accounts, n_scenarios] equity now minus equity after.
        """
        shocks = np.atleast_2d(np.asarray(shocks, dtype=np.float64))
        if shocks.shape[1] != len(inputs.asset_prices):
            raise ValueError(f"stress shocks have {shocks.shape[1]} columns, expected "
                             f"{len(inputs.asset_prices)} (one per asset)")
        _check_vols(inputs)
        positions = np.where((inputs.specs.kind == SPOT)[None, :], 0.0, inputs.positions)
        x = np.hstack([positions, _adjusted(inputs.collateral, inputs.haircuts)])
        return x @ _move_losses(inputs, shocks, 0.0)


# ---------------------------------------------------------------------- helpers


def _prepare_key(inputs: MarginInputs) -> tuple[Any, ...]:
    """Everything :meth:`PortfolioMarginEngine._prepare` reads, as comparable values."""
    s = inputs.specs

    def b(a: np.ndarray | None) -> tuple[Any, ...] | None:
        if a is None:
            return None
        a = np.asarray(a)
        return a.shape, a.dtype.str, a.tobytes()

    return (b(inputs.asset_prices), b(inputs.marks), b(inputs.depth), b(inputs.implied_vols),
            float(inputs.time), float(inputs.rate), b(s.kind), b(s.underlying),
            b(s.contract_size), b(s.strike), b(s.expiry), b(s.is_call))


def _check_vols(inputs: MarginInputs) -> None:
    opts = inputs.specs.kind == OPTION
    if np.any(opts) and inputs.implied_vols is None:
        raise ValueError("MarginInputs.implied_vols is required when options are listed")


def _equity(inputs: MarginInputs) -> np.ndarray:
    """Adjusted collateral + perp unrealised P&L + option mark value (module docstring)."""
    s = inputs.specs
    eq = _adjusted(inputs.collateral, inputs.haircuts) @ inputs.asset_prices
    size = inputs.positions * s.contract_size[None, :]
    upnl = size * (inputs.marks[None, :] - inputs.entry_prices)
    eq += np.where((s.kind == PERP)[None, :], upnl, 0.0).sum(axis=1)
    eq += np.where((s.kind == OPTION)[None, :], size * inputs.marks[None, :], 0.0).sum(axis=1)
    return eq


def _black76(inputs: MarginInputs, opts: np.ndarray, f: np.ndarray, t: np.ndarray,
             sigma: np.ndarray) -> np.ndarray:
    """Black-76 values of options ``opts``, broadcasting a leading scenario axis."""
    s = inputs.specs
    shape = np.broadcast_shapes(f.shape, t.shape, sigma.shape)
    f, t, sigma, k = (np.ascontiguousarray(np.broadcast_to(a, shape), dtype=np.float64).ravel()
                      for a in (f, t, sigma, s.strike[opts]))
    call = np.ascontiguousarray(np.broadcast_to(s.is_call[opts], shape), dtype=np.bool_).ravel()
    return black76_price_vec(f, k, t, float(inputs.rate), sigma, call).reshape(shape)


def _option_deltas(inputs: MarginInputs) -> np.ndarray:
    """Black-76 delta of every instrument (0 for non-options)."""
    s = inputs.specs
    out = np.zeros(len(s.kind))
    opts = np.flatnonzero(s.kind == OPTION)
    if len(opts):
        f = np.ascontiguousarray(inputs.asset_prices[s.underlying[opts]], dtype=np.float64)
        tte = np.maximum(s.expiry[opts] - inputs.time, 0.0)
        out[opts] = black76_greeks_vec(f, s.strike[opts].astype(np.float64), tte,
                                       float(inputs.rate),
                                       inputs.implied_vols[opts].astype(np.float64),
                                       s.is_call[opts].astype(np.bool_))[1]
    return out


def _move_losses(inputs: MarginInputs, moves: np.ndarray, lookahead: float,
                 grid: ScanGrid | None = None, only_asset: int | None = None) -> np.ndarray:
    """Per-unit losses float64[n_cols, S] under relative asset moves float64[S, n_assets].

    Columns: instruments (perps linear ``−size × mark × m``; options
    ``−size × (V_s − V_0)`` by Black-76 at ``F(1 + m)``, ``T − lookahead`` and
    the grid's shocked vols, or unchanged vols without a grid; spot instruments
    0), then assets (``−price × m`` per unit of adjusted balance).
    ``only_asset`` keeps just the columns on that asset (one scan grid).
    """
    s = inputs.specs
    n_ins, n_assets = len(s.kind), len(inputs.asset_prices)
    out = np.zeros((n_ins + n_assets, len(moves)))
    keep = np.ones(n_ins, bool) if only_asset is None else s.underlying == only_asset
    perps = np.flatnonzero((s.kind == PERP) & keep)
    notional = s.contract_size[perps] * inputs.marks[perps]
    out[perps] = -notional[:, None] * moves[:, s.underlying[perps]].T
    assets = np.arange(n_assets) if only_asset is None else np.array([only_asset])
    out[n_ins + assets] = -inputs.asset_prices[assets, None] * moves[:, assets].T
    opts = np.flatnonzero((s.kind == OPTION) & keep)
    if len(opts):
        f0 = inputs.asset_prices[s.underlying[opts]]
        tte = np.maximum(s.expiry[opts] - inputs.time, 0.0)
        iv = inputs.implied_vols[opts].astype(np.float64)
        v0 = _black76(inputs, opts, f0, tte, iv)
        vol = iv[None, :] if grid is None else shocked_vols(grid, iv, tte)
        f = f0[None, :] * (1.0 + moves[:, s.underlying[opts]])
        vs = _black76(inputs, opts, f, np.maximum(tte - lookahead, 0.0)[None, :], vol)
        out[opts] = -(s.contract_size[opts][None, :] * (vs - v0[None, :])).T
    return out
