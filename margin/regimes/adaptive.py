"""Adaptive margin: scan ranges and haircuts that follow EWMA volatility, with APC.

Methodology:

* Volatility per asset is the RiskMetrics EWMA of one-step log returns of the
  index history (``σ²_t = λ σ²_{t−1} + (1 − λ) r²_{t−1}``, λ = 0.94 per day,
  RiskMetrics Technical Document 1996; margin_methods.md §5.2). For histories
  sampled more often than daily the per-step decay is ``λ^(Δt/1 day)``, so
  the half-life in days is RiskMetrics'.
* The scan range follows it as in NSE's SPAN calibration (§1.8): ``PSR =
  sigma_multiple × σ × √(horizon_days / 365)``, VSR = 25 % of σ; the portfolio
  regime (:mod:`margin.regimes.portfolio`) then revalues every position on that grid.
* Haircuts follow it too: ``h_a = max(h_configured, min(max_haircut,
  haircut_multiple × PSR_a))`` — the collateral's own one-horizon move.
* Anti-procyclicality, one tool selectable (EMIR RTS 153/2013 Art. 28, §5.1;
  :mod:`margin.methods.apc`): ``buffer`` (25 % buffer released as margin rises),
  ``stressed_weight`` (25 % weight on the stressed-period volatility, the
  highest EWMA level in the history unless given), ``floor`` (volatility no
  lower than the long-lookback estimate: the whole history's, standing in for
  EMIR's 10 years, unless given), or ``none``.
* A liquidity add-on from current book depth comes with the portfolio regime
  (``MarginInputs.depth``, §5.4).

The procyclicality of the resulting margin is measured with
:func:`margin.methods.apc.peak_to_trough` and :func:`margin.methods.apc.max_n_step_increase`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from margin.methods.apc import APC_TOOLS, apc_buffer_rates, apc_floor_vol, apc_stressed_vol
from margin.risk.calibration import ewma_variance_kernel
from margin.engine import MarginEngine, MarginInputs, MarginResult, register_engine
from margin.regimes.portfolio import PortfolioMarginEngine, UnderlyingParams
from margin.methods.scenarios import span_from_volatility

__all__ = ["DEFAULT_BASE_VOLS", "AdaptiveMarginEngine"]

DEFAULT_BASE_VOLS: dict[str, float] = {"BTC": 0.60, "ETH": 0.80}
"""Prior annualised volatility before enough history exists (ASSUMPTIONS.md)."""

_DAYS = 365.0


@register_engine
class AdaptiveMarginEngine(MarginEngine):
    """Portfolio margin whose scan ranges and haircuts move with EWMA volatility.

    Args:
        asset_names: World assets, quote asset first (it is not scanned).
        periods_per_year: Steps per year of ``MarginInputs.price_history``.
        lam: Daily EWMA decay (RiskMetrics 0.94).
        sigma_multiple: Daily standard deviations covered by the price scan range.
        horizon_days: Margin period of risk in days (EMIR Art. 26: 2 for
            exchange-traded; crypto venues use about 1).
        base_vols: Prior annualised volatility per asset name (default
            :data:`DEFAULT_BASE_VOLS`, else 0.8), also the EWMA starting value.
        apc: ``none``, ``buffer``, ``stressed_weight`` or ``floor``.
        buffer: APC buffer fraction (EMIR: at least 0.25).
        buffer_window: Steps over which the calm reference rate is taken.
        stressed_weight: Weight on the stressed volatility (EMIR: at least 0.25).
        stressed_vols: Stressed-period volatility per asset name (default: the
            highest EWMA level in the history).
        long_run_vols: Long-lookback volatility per asset name (default: the
            whole history's).
        haircut_multiple: Haircut as a multiple of the price scan range.
        max_haircut: Cap on volatility-driven haircuts.
        max_price_scan_range: Cap on the price scan range (fraction of the
            price, below 0.5): SPAN's extreme scenarios move the price by twice
            the PSR, and a move of -100 % or more is no price at all. Reached
            only after gaps of about 30 % in one step (EWMA vol near 270 %).
        min_history: Returns needed before the EWMA replaces the prior.
        mm_factor: MM / IM ratio passed to the portfolio regime.
        liquidity_coeff: Square-root impact coefficient of the liquidity add-on.
        liquidity_threshold: Position/depth ratio below which no add-on applies.
    """

    name = "adaptive"

    def __init__(self, asset_names: Sequence[str] = ("USD", "BTC", "ETH"),
                 periods_per_year: float = _DAYS, lam: float = 0.94,
                 sigma_multiple: float = 3.5, horizon_days: float = 1.0,
                 base_vols: Mapping[str, float] | None = None, apc: str = "buffer",
                 buffer: float = 0.25, buffer_window: int = 1440, stressed_weight: float = 0.25,
                 stressed_vols: Mapping[str, float] | None = None,
                 long_run_vols: Mapping[str, float] | None = None,
                 haircut_multiple: float = 1.0, max_haircut: float = 0.5, min_history: int = 10,
                 max_price_scan_range: float = 0.45, mm_factor: float = 0.8,
                 liquidity_coeff: float = 0.5,
                 liquidity_threshold: float = 0.5) -> None:
        if apc not in APC_TOOLS:
            raise ValueError(f"apc must be one of {', '.join(APC_TOOLS)}, got {apc!r}")
        for key, value, lo, hi in (("lam", lam, 0.0, 1.0), ("buffer", buffer, 0.0, 10.0),
                                   ("stressed_weight", stressed_weight, 0.0, 1.0),
                                   ("max_haircut", max_haircut, 0.0, 1.0)):
            if not (lo <= value <= hi) or (key == "lam" and value in (0.0, 1.0)):
                raise ValueError(f"{key} must lie in [{lo}, {hi}], got {value!r}")
        for key, value in (("periods_per_year", periods_per_year),
                           ("sigma_multiple", sigma_multiple), ("horizon_days", horizon_days)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{key} must be > 0, got {value!r}")
        if buffer_window < 1 or min_history < 2:
            raise ValueError(f"buffer_window must be >= 1 and min_history >= 2, got "
                             f"{buffer_window}, {min_history}")
        if haircut_multiple < 0:
            raise ValueError(f"haircut_multiple must be >= 0, got {haircut_multiple!r}")
        if not 0.0 < max_price_scan_range < 0.5:
            raise ValueError(f"max_price_scan_range must lie in (0, 0.5), got "
                             f"{max_price_scan_range!r}")
        self.max_price_scan_range = float(max_price_scan_range)
        self.asset_names = list(asset_names)
        base = {**DEFAULT_BASE_VOLS, **(base_vols or {})}
        self.base_vols = np.array([0.0] + [base.get(a, 0.8) for a in self.asset_names[1:]])
        self.stressed_vols = self._per_asset(stressed_vols, "stressed_vols")
        self.long_run_vols = self._per_asset(long_run_vols, "long_run_vols")
        self.periods_per_year = float(periods_per_year)
        self.lam_step = lam ** (_DAYS / self.periods_per_year)
        self.sigma_multiple = float(sigma_multiple)
        self.horizon_days = float(horizon_days)
        self.apc = apc
        self.buffer = float(buffer)
        self.buffer_window = int(buffer_window)
        self.stressed_weight = float(stressed_weight)
        self.haircut_multiple = float(haircut_multiple)
        self.max_haircut = float(max_haircut)
        self.min_history = int(min_history)
        self.portfolio_params = {"mm_factor": mm_factor, "liquidity_coeff": liquidity_coeff,
                                 "liquidity_threshold": liquidity_threshold}
        PortfolioMarginEngine(underlyings=[None], **self.portfolio_params)  # validates them
        self._cache_key: np.ndarray | None = None
        self._cache: tuple[PortfolioMarginEngine, np.ndarray] | None = None
        self._var_memo: tuple[np.ndarray, np.ndarray] | None = None
        self.last_state: dict[str, np.ndarray] = {}

    def _per_asset(self, values: Mapping[str, float] | None, key: str) -> np.ndarray | None:
        if values is None:
            return None
        unknown = set(values) - set(self.asset_names[1:])
        if unknown:
            raise ValueError(f"{key} names unknown assets {sorted(unknown)}")
        return np.array([np.nan] + [values.get(a, np.nan) for a in self.asset_names[1:]])

    # ------------------------------------------------------------------ state
    def volatility_paths(self, price_history: np.ndarray | None) -> np.ndarray:
        """Annualised EWMA volatility per step and asset, float64[n_steps, n_assets].

        Row ``t`` is the forecast for the move after step ``t`` (so the last row
        is the current estimate). Column 0 (quote asset) is zero.
        """
        n_assets = len(self.asset_names)
        if price_history is None or len(price_history) < self.min_history + 1:
            n = 1 if price_history is None else max(len(price_history), 1)
            return np.tile(self.base_vols, (n, 1))
        hist = np.asarray(price_history, dtype=np.float64)
        if hist.shape[1] != n_assets:
            raise ValueError(f"price_history has {hist.shape[1]} columns, expected {n_assets}")
        n = len(hist)
        scale = math.sqrt(self.periods_per_year)
        # A history that extends the last one continues its recursion from the last
        # variance: the same operations in the same order, so the same bits as a full
        # pass, at O(new rows) instead of O(history) per step of a growing run.
        memo = self._var_memo
        done = 0
        if memo is not None and len(memo[0]) <= n and np.array_equal(memo[0], hist[:len(memo[0])]):
            done = len(memo[0])
        var = np.empty((n, n_assets))
        var[:, 0] = 0.0
        if done:
            var[:done] = memo[1]
        for a in range(1, n_assets):
            if done:
                r = np.diff(np.log(hist[done - 1:, a]))
                start = var[done - 1, a]
            else:
                r = np.diff(np.log(hist[:, a]))
                start = (self.base_vols[a] / scale) ** 2
            var[max(done - 1, 0):, a] = ewma_variance_kernel(np.ascontiguousarray(r),
                                                             self.lam_step, start)
        self._var_memo = (hist.copy(), var)
        out = np.sqrt(var) * scale
        out[:, 0] = 0.0
        return out

    def effective_vols(self, price_history: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Volatility after APC tools (b)/(c) and the buffer factor of tool (a).

        Returns:
            ``(vols, factor)``: float64[n_assets] annualised volatilities used for
            the scan, and float64[n_assets] multipliers ``>= 1`` from the buffer.
        """
        path = self.volatility_paths(price_history)
        vol = path[-1].copy()
        factor = np.ones_like(vol)
        if self.apc == "stressed_weight":
            stressed = path.max(axis=0) if self.stressed_vols is None else np.where(
                np.isnan(self.stressed_vols), path.max(axis=0), self.stressed_vols)
            vol = apc_stressed_vol(vol, stressed, self.stressed_weight)
        elif self.apc == "floor":
            long_run = self._long_run(price_history, path)
            vol = apc_floor_vol(vol, long_run)
        elif self.apc == "buffer":
            window = path[-self.buffer_window:]
            for a in range(1, len(vol)):
                if vol[a] > 0:
                    posted = apc_buffer_rates(np.ascontiguousarray(window[:, a]), self.buffer,
                                              self.buffer_window)
                    factor[a] = posted[-1] / window[-1, a]
        vol[0] = 0.0
        return vol, factor

    def _long_run(self, price_history: np.ndarray | None, path: np.ndarray) -> np.ndarray:
        if self.long_run_vols is not None and not np.isnan(self.long_run_vols[1:]).any():
            return self.long_run_vols
        if price_history is None or len(price_history) < self.min_history + 1:
            est = self.base_vols.copy()
        else:
            r = np.diff(np.log(np.asarray(price_history, dtype=np.float64)), axis=0)
            est = np.sqrt((r * r).mean(axis=0) * self.periods_per_year)
        if self.long_run_vols is not None:
            est = np.where(np.isnan(self.long_run_vols), est, self.long_run_vols)
        return est

    def _engine(self, inputs: MarginInputs) -> tuple[PortfolioMarginEngine, np.ndarray]:
        ph = inputs.price_history
        # the cached result holds for an equal history: compared in full (a memcmp),
        # not hashed, so a growing history costs O(T) bytes compared, not hashed
        if self._cache is not None and (
                (ph is None and self._cache_key is None)
                or (ph is not None and self._cache_key is not None
                    and self._cache_key.shape == np.shape(ph)
                    and np.array_equal(self._cache_key, ph))):
            return self._cache
        key = None if ph is None else np.array(ph, dtype=np.float64, copy=True)
        vol, factor = self.effective_vols(ph)
        # the PSR cap, as a volatility: PSR = sigma_multiple * vol * sqrt(horizon / 365)
        cap = self.max_price_scan_range / (self.sigma_multiple
                                           * math.sqrt(self.horizon_days / _DAYS))
        psr_vol = np.minimum(vol * factor, cap)
        underlyings: list[UnderlyingParams | None] = [None]
        for a in range(1, len(vol)):
            grid = span_from_volatility(float(psr_vol[a]), self.sigma_multiple, self.horizon_days,
                                        vsr_fraction=0.25)
            underlyings.append(UnderlyingParams(grid, impact_vol=float(vol[a]) / math.sqrt(_DAYS)))
        engine = PortfolioMarginEngine(underlyings=underlyings, **self.portfolio_params)
        psr = self.sigma_multiple * psr_vol * math.sqrt(self.horizon_days / _DAYS)
        haircut_floor = np.minimum(self.max_haircut, self.haircut_multiple * psr)
        haircut_floor[0] = 0.0
        self.last_state = {"vol": vol, "apc_factor": factor, "price_scan_range": psr,
                           "haircut_floor": haircut_floor}
        self._cache_key, self._cache = key, (engine, haircut_floor)
        return engine, haircut_floor

    def _adjusted(self, inputs: MarginInputs) -> tuple[PortfolioMarginEngine, MarginInputs]:
        if len(inputs.asset_prices) != len(self.asset_names):
            raise ValueError(f"adaptive engine knows {len(self.asset_names)} assets, inputs have "
                             f"{len(inputs.asset_prices)}")
        engine, floor = self._engine(inputs)
        return engine, replace(inputs, haircuts=np.maximum(inputs.haircuts, floor))

    # --------------------------------------------------------------- contract
    def evaluate(self, inputs: MarginInputs) -> MarginResult:
        """Portfolio margin on the current EWMA-scaled grid and haircuts."""
        engine, adj = self._adjusted(inputs)
        return engine.evaluate(adj)

    def pretrade(self, inputs: MarginInputs, rows: np.ndarray, instrument: np.ndarray,
                 delta: np.ndarray, price: np.ndarray, fee_rate: float) -> np.ndarray:
        """The portfolio regime's pre-trade check on the current grid."""
        engine, adj = self._adjusted(inputs)
        return engine.pretrade(adj, rows, instrument, delta, price, fee_rate)

    def stress(self, inputs: MarginInputs, shocks: np.ndarray) -> np.ndarray:
        """The portfolio regime's stress losses (options repriced)."""
        engine, adj = self._adjusted(inputs)
        return engine.stress(adj, shocks)

    def describe(self) -> dict[str, Any]:
        """Last computed volatilities, APC factors, scan ranges and haircut floors."""
        return {k: v.tolist() for k, v in self.last_state.items()}
