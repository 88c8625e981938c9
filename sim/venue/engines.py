"""From the ``margin`` config group to a margin engine over the world's assets.

``margin.name`` picks a registered regime (``static``, ``cross``, ``portfolio``,
``adaptive``); ``margin.params`` are its parameters; ``margin._target_`` may
instead name any :class:`margin.engine.MarginEngine` subclass by class path, which
is constructed with ``params`` plus ``asset_names`` (Hydra ``instantiate``), so
a user's own engine needs no change to this package.

World-level facts that regimes need (asset order, the step length for
annualising price history) are supplied here, so configs stay per-regime.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from margin.engine import MarginEngine, make_engine
from margin.methods.tiers import (
    BINANCE_BTCUSDT,
    BINANCE_ETHUSDT,
    HYPERLIQUID_BTC,
    HYPERLIQUID_ETH,
    TierTable,
    flat_table,
)

__all__ = ["BINANCE_TABLES", "HYPERLIQUID_TABLES", "TIERS", "build_engine", "tier_tables"]

BINANCE_TABLES: dict[str, TierTable] = {"BTC": BINANCE_BTCUSDT, "ETH": BINANCE_ETHUSDT}
"""Published bracket tables by asset; other assets fall back to BTC's (ASSUMPTIONS.md)."""

HYPERLIQUID_TABLES: dict[str, TierTable] = {"BTC": HYPERLIQUID_BTC, "ETH": HYPERLIQUID_ETH}
"""Hyperliquid's margin tiers by asset (``margin_methods.md`` §3.3); others fall back to BTC's."""

TIERS = ("binance", "hyperliquid", "flat")
"""Values of ``margin.params.tiers`` for the cross and static regimes."""


def tier_tables(asset_names: list[str], tiers: str = "binance", imr: float = 0.05,
                mmr: float = 0.03) -> list[TierTable | None]:
    """One bracket table per asset (``None`` for the quote asset, listed first).

    Args:
        asset_names: World assets, quote asset first.
        tiers: ``binance`` (:data:`BINANCE_TABLES`), ``hyperliquid``
            (:data:`HYPERLIQUID_TABLES`, ``MMR = 1 / (2 × max leverage)``,
            ``margin_methods.md`` §3.3) or ``flat`` (``imr`` / ``mmr`` for every asset).
        imr: Initial-margin rate of ``flat``.
        mmr: Maintenance-margin rate of ``flat``.

    Raises:
        ValueError: An unknown ``tiers`` (one line).
    """
    if tiers == "flat":
        return [None] + [flat_table(imr, mmr) for _ in asset_names[1:]]
    if tiers == "binance":
        return [None] + [BINANCE_TABLES.get(a, BINANCE_BTCUSDT) for a in asset_names[1:]]
    if tiers == "hyperliquid":
        return [None] + [HYPERLIQUID_TABLES.get(a, HYPERLIQUID_BTC) for a in asset_names[1:]]
    raise ValueError(f"tiers must be one of {', '.join(TIERS)}, got {tiers!r}")


def _params(margin_cfg: Any) -> dict[str, Any]:
    params = margin_cfg.params
    if isinstance(params, DictConfig):
        params = OmegaConf.to_container(params, resolve=True)
    return dict(params or {})


def check_param_kinds(margin_cfg: Any, key: str = "margin") -> None:
    """``margin.params`` values have the kind of the regime constructor's defaults.

    A parameter whose default is a number (or ``None`` with a ``float | None``
    annotation) must be a finite real number (not a boolean) of size at most
    :data:`sim.config.checks.MAX_MAGNITUDE`, an integer
    parameter an integer, a boolean one ``true`` or ``false``; parameters
    with other defaults are left to the constructor. User engines
    (``_target_``) are not checked here.

    Raises:
        ValueError: ``<key>.params.<name> = <value> is invalid: ...`` (one line).
    """
    import inspect

    from margin.engine import engine_class
    from sim.config.checks import check_number, invalid

    if getattr(margin_cfg, "_target_", None):
        return
    try:
        cls = engine_class(margin_cfg.name)
    except ValueError:
        return
    sig = inspect.signature(cls.__init__).parameters
    defaults = {n: p.default for n, p in sig.items() if p.default is not inspect.Parameter.empty}
    for name, value in _params(margin_cfg).items():
        if name not in defaults:
            continue
        default, k = defaults[name], f"{key}.params.{name}"
        if default is None and str(sig[name].annotation) in ("float | None", "int | None"):
            if value is not None:  # an optional number, e.g. static's max_leverage
                check_number(k, value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                invalid(k, value, "must be true or false")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                invalid(k, value, "must be an integer")
            check_number(k, value)
        elif isinstance(default, float):
            check_number(k, value)
    if margin_cfg.name == "portfolio":
        from margin.regimes.portfolio import PRESETS

        under = _params(margin_cfg).get("underlyings", {})
        if not isinstance(under, Mapping):
            invalid(f"{key}.params.underlyings", under,
                    "must map asset names to presets, e.g. {BTC: deribit_btc}")
        if isinstance(under, Mapping):
            for asset, preset in under.items():
                if preset is not None and (not isinstance(preset, str) or preset not in PRESETS):
                    invalid(f"{key}.params.underlyings.{asset}", preset,
                            f"must be one of {', '.join(PRESETS)} or null")


def build_engine(margin_cfg: Any, asset_names: list[str], periods_per_year: float) -> MarginEngine:
    """The engine a ``margin`` config describes.

    Args:
        margin_cfg: The ``margin`` node (``name``, ``params``, optional ``_target_``).
        asset_names: World assets, quote asset first.
        periods_per_year: Model steps per year (for regimes reading price history).

    Raises:
        ValueError: Unknown regime, unknown parameter or invalid value (one line).
    """
    params = _params(margin_cfg)
    target = getattr(margin_cfg, "_target_", None)
    try:
        if target:
            from hydra.utils import instantiate

            engine = instantiate({"_target_": target, **params}, asset_names=asset_names)
            if not isinstance(engine, MarginEngine):
                raise ValueError(f"{target} is not a margin.engine.MarginEngine")
            return engine
        name = margin_cfg.name
        if name in ("cross", "static"):
            tiers = {k: params.pop(k) for k in ("tiers", "imr", "mmr") if k in params}
            if tiers.get("tiers", "binance") != "flat" and {"imr", "mmr"} & set(tiers):
                raise ValueError("imr/mmr apply only with tiers=flat")
            if name == "static" and params.get("max_leverage") is not None:
                return make_engine(name, tables=None, **params)
            return make_engine(name, tables=tier_tables(asset_names, **tiers), **params)
        if name == "portfolio":
            under = params.pop("underlyings", {})
            if not isinstance(under, Mapping):
                raise ValueError(f"params.underlyings = {under!r} is invalid: must map "
                                 f"asset names to presets, e.g. {{BTC: deribit_btc}}")
            return make_engine(name, underlyings=[None] + [under.get(a) for a in asset_names[1:]],
                               **params)
        if name == "adaptive":
            return make_engine(name, asset_names=asset_names, periods_per_year=periods_per_year,
                               **params)
        return make_engine(name, **params)
    except TypeError as exc:
        raise ValueError(f"margin.params of regime {margin_cfg.name!r}: {exc}") from None
    except Exception as exc:
        from hydra.errors import InstantiationException

        if not isinstance(exc, InstantiationException):
            raise
        cause = exc.__cause__ or exc
        raise ValueError(f"margin._target_ {target}: {str(cause).splitlines()[0]}") from None
