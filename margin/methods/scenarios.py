"""Scenario sets for portfolio margin: SPAN and Deribit scan grids, correlated joint moves.

A *scan grid* (:class:`ScanGrid`) moves one underlying: a relative price move,
a volatility state (−1 down, 0 unchanged, +1 up) and a weight (the share of the
scenario P&L that counts) per scenario. Two builders follow the reference
(``margin_methods.md``):

* :func:`span_scenarios` — CME SPAN's 16 risk-array scenarios (§1.2): price
  ``{0, ±1/3, ±2/3, ±1} × PSR`` each with vol ``±VSR`` (14 scenarios, weight
  1), plus two extreme moves ``±multiple × PSR`` at unchanged vol, counted at
  ``extreme_fraction`` (classic SPAN/NSE: 2× and 35 %; CME's current spec 3×).
  Volatility shifts are additive (``σ ± VSR``) and one day of time decay is
  built into every option value (§1.2, "Time decay (one day)").
* :func:`deribit_grid` — Deribit portfolio margin (§3.1,
  https://support.deribit.com/hc/en-us/articles/25944756247837-Portfolio-Margin
  and the ``private/pme/simulate`` parameters): ``2·buckets + 1`` evenly spaced
  moves in ``[−range, +range]`` (9 points for 4 buckets) × 3 vol states (up,
  same, down), plus the extended table (−66 %, −33 %, +50 %, …, +500 %) at vol
  up only, weighted ``range / |move|`` (Paradex's published weights, which
  equal that ratio exactly — §3.1 "Extended-table weights"). Vol shocks use the
  vega-power rule (Deribit-style, reproduced by Oreome's "Advanced Risk
  Scenarios")::

      p       = short_term_vega_power if DTE < 30 else long_term_vega_power
      IV_up   = max(IV × (1 + vol_up   × (30/DTE)^p), min_vol_up)
      IV_down =     IV × (1 − vol_down × (30/DTE)^p)

  with DTE floored at ``min_dte_days`` (Paradex floors DTE the same way) and
  ``IV_down`` floored at 0.

:func:`correlated_scenarios` builds joint relative moves of several assets for
the cross-underlying (VaR/ES) part: Monte Carlo from a covariance matrix via
Cholesky (OCC STANS style full-portfolio simulation, §2.2) or historical
overlapping windows of a returns matrix (FHS-style input, §5.3). A
:class:`JointScenarios` wraps such a set with its confidence level and risk
measure for :class:`margin.regimes.portfolio.PortfolioMarginEngine`.

Neighbours: ``margin.methods.kernels`` (tiled worst-loss and VaR/ES kernels),
``margin.regimes.portfolio`` (the engine), ``margin.methods.pricing`` (option revaluation),
``margin.risk.calibration`` (covariance and log returns to feed this module).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ABSOLUTE",
    "DERIBIT_EXTENDED_MOVES",
    "VEGA_POWER",
    "JointScenarios",
    "ScanGrid",
    "correlated_scenarios",
    "deribit_grid",
    "shocked_vols",
    "span_from_volatility",
    "span_scenarios",
]

#: Vol-shift rule of SPAN: ``σ' = σ + state × shift`` (absolute vol points).
ABSOLUTE = "absolute"
#: Vol-shift rule of Deribit: relative shock scaled by ``(30/DTE)^vega_power``.
VEGA_POWER = "vega_power"
#: Deribit's extended-table moves (margin_methods.md §3.1).
DERIBIT_EXTENDED_MOVES: tuple[float, ...] = (-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0)

_DAYS_PER_YEAR = 365.0


def _frozen(name: str, values: object, dtype: type) -> np.ndarray:
    try:
        a = np.array(values, dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric, got {values!r}") from None
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class ScanGrid:
    """Scan scenarios of one underlying (SPAN risk array or Deribit grid).

    Attributes:
        price_moves: float64[S] relative price moves of the underlying
            (``0.16`` = +16 %); every instrument on it moves by the same factor.
        vol_states: int64[S] −1 (vol down), 0 (unchanged) or +1 (vol up).
        weights: float64[S] in (0, 1], share of the scenario P&L counted (SPAN's
            35 % for extreme moves, Deribit's ``range/|move|`` extended weights).
        vol_mode: ``"absolute"`` (SPAN: ``σ ± vol_up/vol_down``) or
            ``"vega_power"`` (Deribit; see the module docstring).
        vol_up: Up-shift (absolute vol points, or relative shock at 30 DTE).
        vol_down: Down-shift, same units as ``vol_up``.
        lookahead: Years of time decay applied to options in every scenario
            (SPAN: one day; Deribit grid: 0).
        min_vol_up: Floor of the shocked-up vol (Deribit
            ``min_volatility_for_shock_up``).
        short_term_vega_power: Exponent on ``30/DTE`` when DTE < 30 days.
        long_term_vega_power: Exponent when DTE ≥ 30 days.
        min_dte_days: Floor on DTE in the vega-power rule (avoids ``30/0``).
        name: Label for reports.

    Raises:
        ValueError: One-line message naming the offending field.
    """

    price_moves: np.ndarray
    vol_states: np.ndarray
    weights: np.ndarray
    vol_mode: str = ABSOLUTE
    vol_up: float = 0.0
    vol_down: float = 0.0
    lookahead: float = 0.0
    min_vol_up: float = 0.0
    short_term_vega_power: float = 0.30
    long_term_vega_power: float = 0.13
    min_dte_days: float = 1.0
    name: str = "grid"

    def __post_init__(self) -> None:
        moves = _frozen("ScanGrid.price_moves", self.price_moves, np.float64)
        states = _frozen("ScanGrid.vol_states", self.vol_states, np.float64)
        weights = _frozen("ScanGrid.weights", self.weights, np.float64)
        if moves.ndim != 1 or moves.shape[0] == 0:
            raise ValueError(f"ScanGrid.price_moves must be a non-empty 1-D array, "
                             f"got shape {moves.shape}")
        n = moves.shape[0]
        if not np.all(np.isfinite(moves)) or np.any(moves <= -1.0):
            raise ValueError("ScanGrid.price_moves must be finite and > -1 "
                             "(a price cannot go below 0)")
        if states.shape != (n,) or not np.all(np.isin(states, (-1.0, 0.0, 1.0))):
            raise ValueError(f"ScanGrid.vol_states must be {n} values in {{-1, 0, 1}}")
        states = _frozen("ScanGrid.vol_states", states, np.int64)
        object.__setattr__(self, "price_moves", moves)
        object.__setattr__(self, "vol_states", states)
        object.__setattr__(self, "weights", weights)
        if weights.shape != (n,) or not np.all((weights > 0.0) & (weights <= 1.0)):
            raise ValueError(f"ScanGrid.weights must be {n} values in (0, 1]")
        if self.vol_mode not in (ABSOLUTE, VEGA_POWER):
            raise ValueError(f"ScanGrid.vol_mode must be {ABSOLUTE!r} or {VEGA_POWER!r}, "
                             f"got {self.vol_mode!r}")
        for name in ("vol_up", "vol_down", "lookahead", "min_vol_up", "short_term_vega_power",
                     "long_term_vega_power"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"ScanGrid.{name} must be finite and >= 0, got {value!r}")
        if not (math.isfinite(self.min_dte_days) and self.min_dte_days > 0.0):
            raise ValueError(f"ScanGrid.min_dte_days must be > 0, got {self.min_dte_days!r}")

    @property
    def n_scenarios(self) -> int:
        """Number of scenarios S."""
        return len(self.price_moves)


def shocked_vols(grid: ScanGrid, iv: np.ndarray, tte: np.ndarray) -> np.ndarray:
    """Implied vol of each option in each scenario of a grid.

    SPAN (``absolute``): ``σ_s = max(σ + state_s × VSR, 0)`` with ``VSR =
    vol_up`` for up and ``vol_down`` for down states (§1.2). Deribit
    (``vega_power``): the vega-power rule of §3.1 (module docstring).

    Args:
        grid: The scan grid.
        iv: float64[n] current implied vols (annualised).
        tte: float64[n] years to expiry (DTE = 365 × tte, floored at
            ``grid.min_dte_days``).

    Returns:
        float64[S, n] shocked vols (never negative).
    """
    iv = np.asarray(iv, dtype=np.float64)
    tte = np.asarray(tte, dtype=np.float64)
    states = grid.vol_states[:, None]
    if grid.vol_mode == ABSOLUTE:
        shift = np.where(states > 0, grid.vol_up, np.where(states < 0, -grid.vol_down, 0.0))
        return np.maximum(iv[None, :] + shift, 0.0)
    dte = np.maximum(tte * _DAYS_PER_YEAR, grid.min_dte_days)
    power = np.where(dte < 30.0, grid.short_term_vega_power, grid.long_term_vega_power)
    scale = (30.0 / dte) ** power
    up = np.maximum(iv * (1.0 + grid.vol_up * scale), grid.min_vol_up)
    down = np.maximum(iv * (1.0 - grid.vol_down * scale), 0.0)
    return np.where(states > 0, up[None, :], np.where(states < 0, down[None, :], iv[None, :]))


def span_scenarios(price_scan_range: float, vol_scan_range: float, extreme_multiple: float = 2.0,
                   extreme_fraction: float = 0.35,
                   lookahead: float = 1.0 / _DAYS_PER_YEAR) -> ScanGrid:
    """The 16 CME SPAN risk-array scenarios (margin_methods.md §1.2).

    Order as in the SPAN risk array (CME PC-SPAN "Risk Arrays – Standard"; LPU
    "Financial Derivatives" Table 12.1)::

        1–2    price 0      vol +1, −1      weight 1
        3–6    price ±1/3   vol +1, −1      weight 1   (+1/3 up, +1/3 down, −1/3 up, −1/3 down)
        7–10   price ±2/3   vol +1, −1      weight 1
        11–14  price ±1     vol +1, −1      weight 1
        15–16  price ±multiple  vol 0       weight extreme_fraction

    Args:
        price_scan_range: PSR as a fraction of the underlying price. CME quotes
            PSR in currency per contract; divide by the contract value (e.g.
            McMillan's $10,000 on a $500 × 413.75 S&P contract → 20/413.75).
        vol_scan_range: VSR in absolute vol points (0.03 = 3 vol points).
        extreme_multiple: Extreme move in PSRs (2 classic SPAN/NSE, 3 CME now).
        extreme_fraction: Share of the extreme-move P&L counted (0.35).
        lookahead: Years of option time decay in every scenario (one day).

    Returns:
        The :class:`ScanGrid` (``vol_mode="absolute"``).

    Raises:
        ValueError: On a non-positive range or fraction outside (0, 1].
    """
    if not (math.isfinite(price_scan_range) and 0.0 < price_scan_range):
        raise ValueError(f"price_scan_range must be > 0, got {price_scan_range!r}")
    if not (math.isfinite(extreme_multiple) and extreme_multiple > 0.0):
        raise ValueError(f"extreme_multiple must be > 0, got {extreme_multiple!r}")
    thirds = np.array([0, 0, 1, 1, -1, -1, 2, 2, -2, -2, 3, 3, -3, -3], dtype=np.float64) / 3.0
    moves = np.concatenate([thirds, [extreme_multiple, -extreme_multiple]]) * price_scan_range
    states = np.array([1, -1] * 7 + [0, 0], dtype=np.int64)
    weights = np.array([1.0] * 14 + [extreme_fraction] * 2)
    return ScanGrid(moves, states, weights, vol_mode=ABSOLUTE, vol_up=vol_scan_range,
                    vol_down=vol_scan_range, lookahead=lookahead, name="span")


def span_from_volatility(annual_vol: float, sigma_multiple: float = 3.5, horizon_days: float = 1.0,
                         days_per_year: float = _DAYS_PER_YEAR, vsr_fraction: float = 0.25,
                         vsr_min: float = 0.04, **kwargs: float) -> ScanGrid:
    """SPAN scenarios with PSR and VSR calibrated from a volatility (NSE rule, §1.8).

    ``PSR = sigma_multiple × σ_annual × √(horizon_days / days_per_year)`` (older
    NSE parameters: 3σ index, 3.5σ stocks) and ``VSR = max(vsr_fraction ×
    σ_annual, vsr_min)`` (NSE: 25 % of annualised EWMA vol, minimum 4 %).

    Args:
        annual_vol: Annualised volatility of the underlying.
        sigma_multiple: Daily standard deviations covered by the PSR.
        horizon_days: Look-ahead in days.
        days_per_year: 365 for crypto (§5.2), 252 for exchange days.
        vsr_fraction: VSR as a fraction of the annualised vol.
        vsr_min: Floor on the VSR.
        **kwargs: Passed to :func:`span_scenarios` (``extreme_multiple``, …).

    Returns:
        The SPAN :class:`ScanGrid`.
    """
    if not (math.isfinite(annual_vol) and annual_vol > 0.0):
        raise ValueError(f"annual_vol must be > 0, got {annual_vol!r}")
    psr = sigma_multiple * annual_vol * math.sqrt(horizon_days / days_per_year)
    vsr = max(vsr_fraction * annual_vol, vsr_min)
    kwargs.setdefault("lookahead", horizon_days / days_per_year)
    return span_scenarios(psr, vsr, **kwargs)


def deribit_grid(price_range: float = 0.16, buckets: int = 4, vol_range_up: float = 0.50,
                 vol_range_down: float = 0.25, min_vol_for_shock_up: float = 0.50,
                 short_term_vega_power: float = 0.30, long_term_vega_power: float = 0.13,
                 extended_moves: tuple[float, ...] | None = DERIBIT_EXTENDED_MOVES,
                 extended_table_factor: float = 1.0, min_dte_days: float = 1.0) -> ScanGrid:
    """Deribit portfolio-margin scan grid (margin_methods.md §3.1).

    Standard table: moves ``k × price_range / buckets`` for ``k = −buckets …
    +buckets`` (9 points for 4 buckets), each with vol states up, same, down
    (27 cells, weight 1). Extended table: each move of ``extended_moves`` ×
    ``extended_table_factor`` at vol up only, weighted ``price_range / |move|``
    (capped at 1). Deribit's extended-table dampener is not modelled (its
    semantics are unverified in the reference). Defaults are BTC_USD from the
    ``private/pme/simulate`` example (ETH_USD: ``price_range=0.18,
    vol_range_up=0.40``).

    Args:
        price_range: Maximum ±spot move (0.16 BTC, 0.18 ETH).
        buckets: Points per side (``buckets_count``).
        vol_range_up: Relative IV up-shock at 30 DTE.
        vol_range_down: Relative IV down-shock at 30 DTE.
        min_vol_for_shock_up: Floor on the shocked-up IV.
        short_term_vega_power: Vega power when DTE < 30.
        long_term_vega_power: Vega power when DTE ≥ 30.
        extended_moves: Extended-table moves; ``None`` or empty for none.
        extended_table_factor: Scale of the extended moves.
        min_dte_days: DTE floor of the vega-power rule.

    Returns:
        The :class:`ScanGrid` (``vol_mode="vega_power"``, no look-ahead).

    Raises:
        ValueError: On a non-positive range or bucket count.
    """
    if not (math.isfinite(price_range) and 0.0 < price_range < 1.0):
        raise ValueError(f"price_range must be in (0, 1), got {price_range!r}")
    if int(buckets) != buckets or buckets < 1:
        raise ValueError(f"buckets must be a positive integer, got {buckets!r}")
    points = np.arange(-buckets, buckets + 1, dtype=np.float64) * (price_range / buckets)
    moves = np.repeat(points, 3)
    states = np.tile(np.array([1, 0, -1], dtype=np.int64), len(points))
    weights = np.ones(len(moves))
    if extended_moves:
        ext = np.asarray(extended_moves, dtype=np.float64) * extended_table_factor
        if np.any(ext == 0.0):
            raise ValueError("extended_moves must not contain 0")
        moves = np.concatenate([moves, ext])
        states = np.concatenate([states, np.ones(len(ext), np.int64)])
        weights = np.concatenate([weights, np.minimum(price_range / np.abs(ext), 1.0)])
    return ScanGrid(moves, states, weights, vol_mode=VEGA_POWER, vol_up=vol_range_up,
                    vol_down=vol_range_down, lookahead=0.0, min_vol_up=min_vol_for_shock_up,
                    short_term_vega_power=short_term_vega_power,
                    long_term_vega_power=long_term_vega_power, min_dte_days=min_dte_days,
                    name="deribit")


def correlated_scenarios(cov: np.ndarray | tuple[np.ndarray, np.ndarray] | None, n: int | None,
                         horizon: float = 1.0 / _DAYS_PER_YEAR,
                         rng: np.random.Generator | int | None = None, method: str = "mc",
                         returns: np.ndarray | None = None) -> np.ndarray:
    """Joint relative moves of several assets for VaR/ES margin.

    ``method="mc"`` (OCC STANS-style Monte Carlo, §2.2): log returns
    ``x = L z`` with ``z ~ N(0, I)``, ``L`` the Cholesky factor of ``cov ×
    horizon`` (``cov`` annualised, as :class:`margin.risk.calibration.Calibration`
    gives it; or a pair ``(vols, corr)`` giving ``cov = diag(vols) corr
    diag(vols)``); the relative move is ``exp(x) − 1`` (log-normal, so prices
    stay positive). Zero-mean log returns: drift is negligible over a margin
    horizon. Assets with zero variance (the quote currency) get zero moves and
    draw no normals.

    ``method="historical"`` (historical simulation, §5.3): ``returns`` is a
    float64[T, n_assets] matrix of per-period *log* returns (e.g.
    ``margin.risk.calibration.log_returns``); ``horizon`` is then an integer number
    of periods and each scenario is an overlapping window sum, ``exp(Σ) − 1``.
    The most recent ``n`` windows are used (all when ``n`` is None).
    Devolatilisation (FHS) is the caller's choice before passing ``returns``.

    Args:
        cov: Annualised covariance float64[n_assets, n_assets], or ``(vols,
            corr)``; ignored (may be None) for ``historical``.
        n: Number of scenarios.
        horizon: Years (``mc``) or periods (``historical``).
        rng: A ``numpy.random.Generator`` or an integer seed (``mc`` only).
        method: ``"mc"`` or ``"historical"``.
        returns: Log-returns matrix for ``historical``.

    Returns:
        float64[n_scenarios, n_assets] relative moves (> −1).

    Raises:
        ValueError: On a bad method, shape, non-positive-definite covariance or
            missing generator.
    """
    if method == "historical":
        if returns is None:
            raise ValueError("returns must be given for method='historical'")
        r = np.asarray(returns, dtype=np.float64)
        h = int(horizon)
        if r.ndim != 2 or h != horizon or h < 1 or h > len(r):
            raise ValueError(f"returns must be 2-D with at least horizon={horizon!r} "
                             f"(an integer) rows")
        csum = np.vstack([np.zeros((1, r.shape[1])), np.cumsum(r, axis=0)])
        windows = csum[h:] - csum[:-h]
        if n is not None:
            if not 0 < n <= len(windows):
                raise ValueError(f"n must be in 1..{len(windows)} for these returns, got {n!r}")
            windows = windows[-n:]
        return np.expm1(windows)
    if method != "mc":
        raise ValueError(f"method must be 'mc' or 'historical', got {method!r}")
    if isinstance(cov, tuple):
        vols, corr = (np.asarray(c, dtype=np.float64) for c in cov)
        cov = vols[:, None] * corr * vols[None, :]
    cov = np.asarray(cov, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"cov must be a square matrix, got shape {cov.shape}")
    if n is None or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not (math.isfinite(horizon) and horizon > 0.0):
        raise ValueError(f"horizon must be > 0, got {horizon!r}")
    if rng is None:
        raise ValueError("rng must be a numpy Generator or an integer seed (no global RNG)")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    active = np.flatnonzero(np.diag(cov) > 0.0)  # riskless assets (the quote) do not move
    try:
        chol = np.linalg.cholesky(cov[np.ix_(active, active)] * horizon)
    except np.linalg.LinAlgError:
        msg = "cov is not positive definite on its assets with positive variance"
        raise ValueError(msg) from None
    moves = np.zeros((n, cov.shape[0]))
    moves[:, active] = np.expm1(gen.standard_normal((n, len(active))) @ chol.T)
    return moves


@dataclass(frozen=True, eq=False)
class JointScenarios:
    """A correlated scenario set with its risk measure (cross-underlying offsets).

    Attributes:
        moves: float64[S, n_assets] relative moves of every asset price (assets
            without risk, e.g. the quote currency, should have 0 moves).
        confidence: Confidence level α in (0, 1); the tail holds
            ``k = ceil((1 − α) S)`` scenarios.
        measure: ``"es"`` (OCC STANS: expected shortfall, §2.2) or ``"var"``.
        horizon: Years of option time decay applied in every scenario (OCC
            STANS: a two-day horizon).

    Raises:
        ValueError: One-line message naming the offending field.
    """

    moves: np.ndarray
    confidence: float = 0.99
    measure: str = "es"
    horizon: float = 0.0

    def __post_init__(self) -> None:
        moves = _frozen("JointScenarios.moves", self.moves, np.float64)
        object.__setattr__(self, "moves", moves)
        if moves.ndim != 2 or moves.shape[0] == 0:
            raise ValueError(f"JointScenarios.moves must be a non-empty 2-D array, "
                             f"got shape {moves.shape}")
        if not np.all(np.isfinite(moves)) or np.any(moves <= -1.0):
            raise ValueError("JointScenarios.moves must be finite and > -1")
        if not (0.0 < self.confidence < 1.0):
            raise ValueError(f"JointScenarios.confidence must be in (0, 1), "
                             f"got {self.confidence!r}")
        if self.measure not in ("es", "var"):
            raise ValueError(f"JointScenarios.measure must be 'es' or 'var', got {self.measure!r}")
        if not (math.isfinite(self.horizon) and self.horizon >= 0.0):
            raise ValueError(f"JointScenarios.horizon must be >= 0, got {self.horizon!r}")
