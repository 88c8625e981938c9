"""Per-asset implied-volatility surface for marking European options on the index.

The surface marks options with Black-76 on the index (zero carry), so it is
quoted in forward log-moneyness ``k = ln(K/F)`` and time to expiry ``T``
(years of 365 days; crypto trades every day, ``margin_methods.md`` §5.2).

* **Level.** RiskMetrics EWMA of the index log-returns (J.P. Morgan/Reuters
  *RiskMetrics Technical Document*, 4th ed. 1996; ``margin_methods.md`` §5.2),
  ``v_t = λ_step v_{t−1} + (1 − λ_step) r_t²``, annualised with the step length:
  ``σ_realised = √(v / Δt)``. ``λ`` refers to a sampling interval
  (``ewma_interval_hours``) and is rescaled to the step, ``λ_step = λ^(Δt/interval)``,
  so the memory is the same in calendar time whatever the step. The short-end
  implied level blends it with a long-run implied level and applies a variance
  risk premium (implied above realised) and the scenario's volatility factor::

      σ_short = clip(w · vrp · vol_factor · σ_realised + (1 − w) · σ_long, lo, hi)

  with ``lo = vol_floor / min h`` and ``hi = vol_cap / max h`` (``h`` the smile factor
  below, over calm and crash skew), so every smile lies in ``[vol_floor, vol_cap]``
  without being clipped; ``σ_long`` is held to the same bounds.

* **ATM term structure.** Mean reversion of variance from ``σ_short²`` to
  ``σ_long²`` with time constant ``τ``, as in the GARCH(1,1) volatility term
  structure (Hull, *Options, Futures, and Other Derivatives*, GARCH chapter)::

      σ_atm(T)² = σ_long² + (σ_short² − σ_long²) · (1 − e^{−T/τ}) / (T/τ)

  Total ATM variance ``σ_atm² T`` then has slope ``σ_long² + (σ_short² − σ_long²)
  e^{−T/τ} > 0``, so the ATM term structure is free of calendar arbitrage even when
  a crash lifts ``σ_short`` far above ``σ_long`` (the plain ``σ``-space exponential
  blend is not once ``σ_short ≳ 3.2 σ_long``).

* **Smile.** In standardised moneyness ``x = k / (σ_atm(T) √T)``, smoothly capped at
  ``±wing_cap`` by ``x_c = wing_cap · tanh(x / wing_cap)`` (a hard clip puts a kink in
  the smile, i.e. a negative-density spike, at the cap)::

      σ(K, T) = σ_atm(T) · h(x),   h(x) = 1 + skew · x_c + curvature · x_c²

  With ``h(x)`` the smile factor, ``√(σ²T) = √w_atm · h(k/√w_atm)``, so total
  variance at fixed ``k`` grows with ``T`` (calendar no-arbitrage) where
  ``h(x) − x h'(x) > 0``; the constructor checks this, and ``h > 0``, for the calm
  and the crash skew. A clip of the smile itself at a floor or cap would kink it
  (a negative-density spike), hence the bounds on the level instead; a final clip to
  ``[vol_floor, vol_cap]`` guards only against rounding.
  A 25-delta risk reversal is about ``1.35 · skew · σ_atm`` and a 25-delta butterfly
  about ``0.45 · curvature · σ_atm`` (``x ≈ ±0.674`` at 25 delta).

* **Crash skew.** ``skew = base_skew − crash_skew_gain · min(1, drawdown /
  crash_drawdown_ref)``, where the drawdown is the index's fall from its maximum
  over the last ``drawdown_lookback_days`` (a ring buffer of index prices).

Defaults and their sources are listed in ``ASSUMPTIONS.md`` (volatility surface).
Deterministic: the state is a function of the index path and the volatility factors.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["DAYS_PER_YEAR", "VolSurface", "VolSurfaceConfig"]

DAYS_PER_YEAR = 365.0


@dataclass
class VolSurfaceConfig:
    """Parameters of :class:`VolSurface`; per-asset values are keyed by asset symbol.

    Attributes:
        long_vol: Long-run implied ATM volatility per asset (annualised), the level
            the term structure reverts to (Deribit DVOL range; BTC 0.55, ETH 0.70).
        base_skew: Calm-market skew per unit of standardised moneyness, negative for
            puts richer than calls (25-delta risk reversal ≈ 1.35 · skew · σ_atm).
        curvature: Smile convexity per unit ``x²`` (25-delta butterfly ≈ 0.45 ·
            curvature · σ_atm).
        crash_skew_gain: Extra negative skew at a full crash (drawdown at or above
            ``crash_drawdown_ref``).
        crash_drawdown_ref: Drawdown from the look-back maximum at which the crash
            steepening is complete (fraction, 0.20 = 20 %).
        drawdown_lookback_days: Look-back window of the running maximum, in days.
        ewma_lambda: RiskMetrics decay factor of the realised-variance EWMA.
        ewma_interval_hours: Sampling interval that ``ewma_lambda`` refers to; the
            per-step factor is ``ewma_lambda ** (step / interval)``.
        realised_weight: Weight ``w`` of (premium-scaled) realised volatility in the
            short-end level; the rest is the long-run level.
        variance_risk_premium: Multiplier of realised volatility (implied above realised).
        term_tau_days: Mean-reversion time constant of the ATM term structure, in days.
        wing_cap: Saturation of the standardised moneyness ``|x|`` in the smile.
        vol_floor: Lowest volatility the surface returns; the level is floored at
            ``vol_floor / min h`` (``h`` the smile factor) so the smile never clips.
        vol_cap: Highest volatility the surface returns (deep put wing in a crash); the
            level is capped at ``vol_cap / max h`` (2.63 for the defaults).
    """

    long_vol: dict[str, float] = field(default_factory=lambda: {"BTC": 0.55, "ETH": 0.70})
    base_skew: dict[str, float] = field(default_factory=lambda: {"BTC": -0.08, "ETH": -0.08})
    curvature: dict[str, float] = field(default_factory=lambda: {"BTC": 0.04, "ETH": 0.04})
    crash_skew_gain: float = 0.08
    crash_drawdown_ref: float = 0.20
    drawdown_lookback_days: float = 1.0
    ewma_lambda: float = 0.94
    ewma_interval_hours: float = 1.0
    realised_weight: float = 0.7
    variance_risk_premium: float = 1.1
    term_tau_days: float = 30.0
    wing_cap: float = 4.0
    vol_floor: float = 0.10
    vol_cap: float = 6.0


def _per_asset(table: dict[str, float], assets: tuple[str, ...], name: str) -> np.ndarray:
    missing = [a for a in assets if a not in table]
    if missing:
        raise ValueError(f"VolSurfaceConfig.{name} has no value for assets {missing}")
    return np.array([float(table[a]) for a in assets], dtype=np.float64)


class VolSurface:
    """Implied-volatility surfaces of ``n`` assets, updated once per simulation step.

    Level from a RiskMetrics EWMA of index returns, GARCH-style ATM term structure,
    and a skew/curvature smile in standardised moneyness that steepens with the
    drawdown (formulas and sources in the module docstring).

    Args:
        config: Surface parameters.
        index_prices: Initial index price per asset, shape ``(n,)``.
        step_years: Length of one simulation step in years (60 s = 60 / (365 · 86400)).
        assets: Asset symbols, one per price, keying the per-asset parameters.

    Raises:
        ValueError: On non-positive prices or step, mismatched lengths, assets without
            parameters, or parameters outside their valid ranges (including a smile
            factor ``1 + skew · x + curvature · x²`` that is not positive on the wings).
    """

    def __init__(self, config: VolSurfaceConfig, index_prices: np.ndarray, step_years: float,
                 assets: tuple[str, ...] | list[str]) -> None:
        prices = np.asarray(index_prices, dtype=np.float64).reshape(-1)
        names = tuple(assets)
        if len(names) != prices.shape[0]:
            raise ValueError(f"VolSurface got {prices.shape[0]} prices for {len(names)} assets")
        if not np.all(np.isfinite(prices)) or np.any(prices <= 0.0):
            raise ValueError(f"VolSurface needs positive index prices, got {prices}")
        if not (step_years > 0.0 and math.isfinite(step_years)):
            raise ValueError(f"VolSurface needs step_years > 0, got {step_years}")
        c = config
        if not 0.0 < c.ewma_lambda < 1.0 or c.ewma_interval_hours <= 0.0:
            raise ValueError("ewma_lambda must be in (0, 1) and ewma_interval_hours > 0")
        if not 0.0 <= c.realised_weight <= 1.0 or c.variance_risk_premium <= 0.0:
            raise ValueError("realised_weight must be in [0, 1] and variance_risk_premium > 0")
        if not 0.0 < c.vol_floor < c.vol_cap:
            raise ValueError("need 0 < vol_floor < vol_cap")
        if (c.term_tau_days <= 0.0 or c.wing_cap <= 0.0 or c.crash_drawdown_ref <= 0.0
                or c.crash_skew_gain < 0.0 or c.drawdown_lookback_days < 0.0):
            raise ValueError("term_tau_days, wing_cap, crash_drawdown_ref must be > 0 and "
                             "crash_skew_gain, drawdown_lookback_days >= 0")
        self.assets = names
        self.step_years = float(step_years)
        self._long = _per_asset(c.long_vol, names, "long_vol")
        self._base_skew = _per_asset(c.base_skew, names, "base_skew")
        self._curv = _per_asset(c.curvature, names, "curvature")
        if np.any(self._curv < 0.0):
            raise ValueError("curvature must be >= 0")
        # both conditions are linear in the skew, so checking the calm and the crash
        # skew covers every state: the smile factor h(x) stays positive, and
        # h(x) − x h'(x) > 0 makes total variance at fixed k increase with T
        x = np.linspace(-12.0 * c.wing_cap, 12.0 * c.wing_cap, 4801)
        g = c.wing_cap * np.tanh(x / c.wing_cap)
        dg = 1.0 / np.cosh(x / c.wing_cap) ** 2
        h_lo = np.full(len(names), np.inf)
        h_hi = np.zeros(len(names))
        for s in (self._base_skew, self._base_skew - c.crash_skew_gain):
            for i, (si, q) in enumerate(zip(s, self._curv, strict=True)):
                h = 1.0 + si * g + q * g * g
                if np.min(h) <= 0.0 or np.min(h - x * (si + 2.0 * q * g) * dg) <= 0.0:
                    raise ValueError("skew/curvature/wing_cap give a smile factor that is not "
                                     "positive or a total variance that falls with expiry")
                h_lo[i] = min(h_lo[i], np.min(h))
                h_hi[i] = max(h_hi[i], np.max(h))
        # bounds of the ATM level that keep every smile inside [vol_floor, vol_cap]
        # without clipping it (a clip that binds kinks the smile: butterfly arbitrage)
        self._lvl_lo = c.vol_floor / h_lo
        self._lvl_hi = c.vol_cap / h_hi
        if np.any(self._lvl_lo >= self._lvl_hi):
            raise ValueError("vol_cap / vol_floor is too small for the smile's range")
        self._long = np.clip(self._long, self._lvl_lo, self._lvl_hi)
        self._cfg = copy.deepcopy(c)  # later edits of the caller's config do not leak in
        step_hours = self.step_years * DAYS_PER_YEAR * 24.0
        self._lam = c.ewma_lambda ** (step_hours / c.ewma_interval_hours)
        self._tau = c.term_tau_days / DAYS_PER_YEAR
        lookback = max(1, round(c.drawdown_lookback_days / (self.step_years * DAYS_PER_YEAR)))
        self._ring = np.tile(prices, (lookback, 1))
        self._head = 0
        self._last = prices.copy()
        # seed: realised vol that puts the level at the long-run vol (flat term structure)
        seed = self._long / c.variance_risk_premium
        self._var = seed**2 * self.step_years
        self._factor = np.ones_like(prices)
        self._drawdown = np.zeros_like(prices)
        self._refresh()

    # ------------------------------------------------------------------ state

    def _refresh(self) -> None:
        c = self._cfg
        realised = np.sqrt(self._var / self.step_years)
        blend = (c.realised_weight * c.variance_risk_premium * self._factor * realised
                 + (1.0 - c.realised_weight) * self._long)
        self._level = np.clip(blend, self._lvl_lo, self._lvl_hi)
        crash = np.minimum(1.0, self._drawdown / c.crash_drawdown_ref)
        self._skew = self._base_skew - c.crash_skew_gain * crash

    def update(self, index_prices: np.ndarray, vol_factor: np.ndarray | None = None) -> None:
        """Advance one step: EWMA variance, look-back maximum, drawdown, skew and level.

        Args:
            index_prices: Index price per asset this step, shape ``(n,)``; a
                non-positive or non-finite price is treated as unchanged.
            vol_factor: Scenario volatility multiplier per asset (1 when calm),
                scaling the realised part of the level; ``None`` means 1.
        """
        p = np.asarray(index_prices, dtype=np.float64).reshape(-1)
        if p.shape != self._last.shape:
            raise ValueError(f"VolSurface.update expects {self._last.shape[0]} prices")
        p = np.where(np.isfinite(p) & (p > 0.0), p, self._last)
        r = np.log(p / self._last)
        self._var = self._lam * self._var + (1.0 - self._lam) * r * r
        self._last = p
        self._ring[self._head] = p
        self._head = (self._head + 1) % self._ring.shape[0]
        self._drawdown = np.maximum(0.0, 1.0 - p / self._ring.max(axis=0))
        if vol_factor is None:
            self._factor = np.ones_like(p)
        else:
            self._factor = np.maximum(
                0.0, np.broadcast_to(np.asarray(vol_factor, dtype=np.float64), p.shape).copy())
        self._refresh()

    # ------------------------------------------------------------------ read

    @property
    def realised_vol(self) -> np.ndarray:
        """Annualised EWMA realised volatility per asset (a copy)."""
        return np.sqrt(self._var / self.step_years)

    @property
    def level(self) -> np.ndarray:
        """Short-end implied ATM level ``σ_short`` per asset (a copy)."""
        return self._level.copy()

    @property
    def skew(self) -> np.ndarray:
        """Current skew per unit standardised moneyness per asset (a copy)."""
        return self._skew.copy()

    @property
    def drawdown(self) -> np.ndarray:
        """Fall of the index from its look-back maximum per asset, as a fraction (a copy)."""
        return self._drawdown.copy()

    def _tte(self, tte: np.ndarray) -> np.ndarray:
        t = np.asarray(tte, dtype=np.float64)
        return np.maximum(np.where(np.isfinite(t), t, self.step_years), self.step_years)

    def _atm(self, a: np.ndarray, t: np.ndarray) -> np.ndarray:
        u = t / self._tau
        mean_rev = -np.expm1(-u) / u  # (1 − e^{−u}) / u, exact for small u
        lo2 = self._long[a] ** 2
        var = lo2 + (self._level[a] ** 2 - lo2) * mean_rev
        return np.sqrt(var)

    def atm_vol(self, asset: np.ndarray, tte: np.ndarray) -> np.ndarray:
        """At-the-money-forward implied volatility (GARCH-style term structure).

        Args:
            asset: Integer asset indices.
            tte: Years to expiry (values below one step are raised to one step).

        Returns:
            float64 array of the broadcast shape of ``asset`` and ``tte``.
        """
        a, t = np.broadcast_arrays(np.asarray(asset, dtype=np.intp), self._tte(tte))
        c = self._cfg
        return np.clip(self._atm(a, t), c.vol_floor, c.vol_cap)

    def iv(self, asset: np.ndarray, strike: np.ndarray, forward: np.ndarray,
           tte: np.ndarray) -> np.ndarray:
        """Implied volatilities for Black-76 marks of European options on the index.

        Args:
            asset: Integer asset indices.
            strike: Strikes (> 0).
            forward: Forwards of the index to expiry (> 0; the index at zero carry).
            tte: Years to expiry (values below one step are raised to one step, so
                expiring options stay finite).

        Returns:
            float64 array of the broadcast shape of the inputs, in
            ``[vol_floor, vol_cap]``.
        """
        a, k_, f, t = np.broadcast_arrays(np.asarray(asset, dtype=np.intp),
                                          np.asarray(strike, dtype=np.float64),
                                          np.asarray(forward, dtype=np.float64),
                                          self._tte(tte))
        c = self._cfg
        atm = self._atm(a, t)
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.log(k_ / f)
        k = np.nan_to_num(k, nan=0.0, posinf=50.0, neginf=-50.0)
        x = k / (atm * np.sqrt(t))
        xc = c.wing_cap * np.tanh(x / c.wing_cap)
        smile = 1.0 + self._skew[a] * xc + self._curv[a] * xc * xc
        return np.clip(atm * smile, c.vol_floor, c.vol_cap)
