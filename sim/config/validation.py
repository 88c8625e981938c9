"""Validation of a run config: every value checked once, before the run, in one dialect.

:func:`validate` walks the composed config: first its shape against the schema
(unknown keys, deleted keys, unresolvable interpolations: :func:`check_schema`,
:func:`resolve_or_fail`), then every section's values with the helpers of
:mod:`sim.config.checks` (one error type, one message form), the agents'
sections in :mod:`sim.config.agents`, the liquidation section in
:mod:`sim.venue.liquidation`, and what the run can represent in
:mod:`sim.config.capacity`. Margin engines and scenarios are built once to
check their params.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sim.config.agents import validate_agents
from sim.config.checks import ConfigError, check_bool, check_int
from sim.config.checks import check_choice as _choice
from sim.config.checks import check_number as _check_range
from sim.config.checks import invalid as _fail
from sim.config.schema import STP_MODES
from sim.venue.liquidation import validate_liquidation_config

__all__ = ["RNG_STREAMS", "TOKEN_KINDS", "check_schema", "resolve_or_fail", "token_names",
           "universal_margin_config", "validate"]


def _validate_market(m: Any) -> None:
    _check_range("market.step_seconds", m.step_seconds, 0.0, lo_open=True)
    if len(m.assets) == 0:
        _fail("market.assets", [], "must list at least one asset")
    names = [a.name for a in m.assets]
    if len(set(names)) != len(names) or m.quote in names:
        _fail("market.assets", names, "asset names must be unique and differ from market.quote")
    for i, a in enumerate(m.assets):
        _check_range(f"market.assets[{i}].price", a.price, 0.0, lo_open=True)
        _check_range(f"market.assets[{i}].vol", a.vol, 0.0, 10.0)
        _check_range(f"market.assets[{i}].drift", a.drift, -10.0, 10.0)
        _check_range(f"market.assets[{i}].tick_size", a.tick_size, 0.0, lo_open=True)
        _check_range(f"market.assets[{i}].lot_size", a.lot_size, 0.0, lo_open=True)
        from sim.config.capacity import MAX_TICKS, MIN_TICKS

        ticks = a.price / a.tick_size
        if ticks > MAX_TICKS:
            _fail(f"market.assets[{i}].tick_size", a.tick_size,
                  f"price/tick_size must be <= {MAX_TICKS:.0e}")
        if ticks < MIN_TICKS:
            _fail(f"market.assets[{i}].tick_size", a.tick_size,
                  f"must be <= price/{MIN_TICKS:.0f} = {a.price / MIN_TICKS:g} (a tick of at most "
                  f"1 % of the price; coarser books cannot quote a spread)")
        if a.lot_size * a.price > 1e9:
            _fail(f"market.assets[{i}].lot_size", a.lot_size,
                  f"a lot is worth {a.lot_size * a.price:.3g} {m.quote}: must be <= 1e9")
    n = len(m.assets)
    for r, row in enumerate(m.correlation):
        if not isinstance(row, list | ListConfig) or len(row) != n:
            _fail("market.correlation", m.correlation,
                  f"must be a {n}x{n} matrix (one row per asset)")
        for c, x in enumerate(row):
            _check_range(f"market.correlation[{r}][{c}]", x, -1.0, 1.0)
    try:
        corr = np.asarray(m.correlation, dtype=float)
    except ValueError:
        _fail("market.correlation", m.correlation, f"must be a {n}x{n} matrix (one row per asset)")
    if corr.shape != (n, n):
        _fail("market.correlation", m.correlation, f"must be a {n}x{n} matrix (one row per asset)")
    if not np.allclose(corr, corr.T) or not np.allclose(np.diag(corr), 1.0):
        _fail("market.correlation", m.correlation, "must be symmetric with a unit diagonal")
    if np.any(np.abs(corr) > 1.0) or np.linalg.eigvalsh(corr).min() < -1e-12:
        _fail("market.correlation", m.correlation, "must be positive semi-definite with |rho| <= 1")
    _validate_options(m.options, names)


def _validate_options(o: Any, names: list[str]) -> None:
    """``market.options``: the listed underlyings, series, strike grid, ticks and fees."""
    k = "market.options"
    unknown = [a for a in o.assets if a not in names]
    if unknown or len(set(o.assets)) != len(o.assets):
        _fail(f"{k}.assets", list(o.assets),
              f"must be distinct market assets ({', '.join(names)}); empty lists all")
    _choice(f"{k}.premium", o.premium, ("usd", "inverse"))
    if o.enabled and len(o.series) == 0:
        _fail(f"{k}.series", [], "must list at least one expiry series")
    for i, s in enumerate(o.series):
        _check_range(f"{k}.series[{i}].period_days", s.period_days, 0.0, 3650.0, lo_open=True)
        _check_range(f"{k}.series[{i}].offset_days", s.offset_days, 0.0, 3650.0)
        _check_range(f"{k}.series[{i}].live", s.live, 1, 12)
    _check_range(f"{k}.expiry_hour", o.expiry_hour, 0.0, 24.0)
    _check_range(f"{k}.settlement_twap_seconds", o.settlement_twap_seconds, 0.0, 86_400.0)
    _check_range(f"{k}.strikes_per_side", o.strikes_per_side, 0, 20)
    _check_range(f"{k}.strike_spacing", o.strike_spacing, 0.0, 0.5, lo_open=True)
    listed = list(o.assets) or names
    for name, table in (("tick", o.tick), ("lot", o.lot)):
        missing = [a for a in listed if a not in table]
        if o.enabled and missing:
            _fail(f"{k}.{name}", dict(table), f"needs a value for {', '.join(missing)}")
        for a, v in table.items():
            _check_range(f"{k}.{name}.{a}", v, 0.0, 1e6, lo_open=True)
    _check_range(f"{k}.coin_tick", o.coin_tick, 0.0, 1.0, lo_open=True)
    _check_range(f"{k}.rate", o.rate, -0.5, 0.5)
    _check_range(f"{k}.maker_fee", o.maker_fee, 0.0, 0.01)
    _check_range(f"{k}.taker_fee", o.taker_fee, 0.0, 0.01)
    _check_range(f"{k}.fee_cap", o.fee_cap, 0.0, 1.0)
    _check_range(f"{k}.close_slippage", o.close_slippage, 0.0, 1.0)
    _check_range(f"{k}.liquidation_penalty", o.liquidation_penalty, 0.0, 0.5)
    check_bool(f"{k}.enabled", o.enabled)
    _validate_surface(o.surface, list(o.assets) or names, o.enabled)


_SURFACE_RANGES = {
    "crash_skew_gain": (0.0, 1.0, False), "crash_drawdown_ref": (0.0, 1.0, True),
    "drawdown_lookback_days": (0.0, 365.0, False), "ewma_lambda": (0.0, 0.999999, True),
    "ewma_interval_hours": (0.0, 8760.0, True), "realised_weight": (0.0, 1.0, False),
    "variance_risk_premium": (0.0, 10.0, True), "term_tau_days": (0.0, 3650.0, True),
    "wing_cap": (0.0, 100.0, True), "vol_floor": (0.0, 10.0, True),
    "vol_cap": (0.0, 10.0, True)}
"""``(lo, hi, lo_open)`` of the surface's scalar parameters."""


def _validate_surface(c: Any, assets: list[str], enabled: bool) -> None:
    """``market.options.surface``: ranges, then the surface's own no-arbitrage checks."""
    k = "market.options.surface"
    for name, (lo, hi, lo_open) in _SURFACE_RANGES.items():
        _check_range(f"{k}.{name}", getattr(c, name), lo, hi, lo_open=lo_open)
    for name, (lo, hi, lo_open) in {"long_vol": (0.0, 5.0, True), "base_skew": (-1.0, 1.0, False),
                                    "curvature": (0.0, 1.0, False)}.items():
        table = getattr(c, name)
        missing = [a for a in assets if a not in table]
        if enabled and missing:
            _fail(f"{k}.{name}", dict(table), f"needs a value for {', '.join(missing)}")
        for a, v in table.items():
            _check_range(f"{k}.{name}.{a}", v, lo, hi, lo_open=lo_open)
    if enabled:
        from sim.market.volsurface import VolSurface

        try:
            VolSurface(c, np.ones(len(assets)), 1e-4, assets)
        except ValueError as exc:
            _fail(k, "(the surface)", str(exc).splitlines()[0])


def _validate_protocols(protocols: Any, market_assets: list[str]) -> None:
    if len(protocols) == 0:
        _fail("protocols", [], "must list at least one protocol")
    names = [p.name for p in protocols]
    if len(set(names)) != len(names):
        _fail("protocols", names, "protocol names must be unique")
    for i, p in enumerate(protocols):
        k = f"protocols[{i}]"
        if not (p.spot or p.perp):
            _fail(f"{k}.spot", p.spot, "a protocol needs a spot or a perp market")
        listed = list(p.assets)
        unknown = [a for a in listed if a not in market_assets]
        if unknown or len(set(listed)) != len(listed):
            _fail(f"{k}.assets", listed,
                  f"must be distinct market assets ({', '.join(market_assets)}); empty lists all")
        _check_range(f"{k}.maker_fee", p.maker_fee, -0.01, 0.01)
        _check_range(f"{k}.taker_fee", p.taker_fee, 0.0, 0.01)
        if p.maker_fee + p.taker_fee < 0:
            _fail(f"{k}.maker_fee", p.maker_fee, "maker rebate must not exceed the taker fee")
        _check_range(f"{k}.funding_interval", p.funding_interval, 1)
        _check_range(f"{k}.interest_rate", p.interest_rate, -0.01, 0.01)
        _check_range(f"{k}.premium_clamp", p.premium_clamp, 0.0, 0.1)
        _check_range(f"{k}.funding_cap", p.funding_cap, 0.0, 0.1)
        _check_range(f"{k}.insurance_fund", p.insurance_fund, 0.0)
        _choice(f"{k}.stp", p.stp, STP_MODES)
        _choice(f"{k}.mark_price", p.mark_price, ("binance", "median"))
        try:
            validate_liquidation_config(p.liquidation, f"{k}.liquidation")
        except ValueError as exc:
            raise ConfigError(str(exc).splitlines()[0]) from None


def _validate_margin(m: Any, assets: list[str], quote: str, step_seconds: float,
                     key: str = "margin", market_assets: list[str] | None = None) -> None:
    from margin.engine import available_engines
    from sim.scenarios.gbm import SECONDS_PER_YEAR
    from sim.venue.engines import build_engine, check_param_kinds

    if not m._target_:
        _choice(f"{key}.name", m.name, tuple(available_engines()))
    known = [quote, *assets]
    stale = [name for name in m.haircuts if name not in known]
    if stale:
        name = stale[0]
        unpriced = [a for a in assets if a not in m.haircuts]
        if len(stale) == 1 and len(unpriced) == 1 and market_assets is not None \
                and unpriced[0] in market_assets:
            i = market_assets.index(unpriced[0])
            _fail(f"market.assets[{i}].name", unpriced[0],
                  f"{key}.haircuts still names {name}, which is no longer an asset; give the "
                  f"renamed asset its haircut ({key}.haircuts.{unpriced[0]}=... "
                  f"~{key}.haircuts.{name})")
        _fail(f"{key}.haircuts.{name}", m.haircuts[name],
              f"unknown asset; known: {', '.join(known)}")
    for name, h in m.haircuts.items():
        _check_range(f"{key}.haircuts.{name}", h, 0.0, 1.0)
        if h >= 1.0:
            _fail(f"{key}.haircuts.{name}", h, "must be < 1")
    try:
        check_param_kinds(m, key)
    except ValueError as exc:
        raise ConfigError(str(exc).splitlines()[0]) from None
    try:
        build_engine(m, [quote, *assets], SECONDS_PER_YEAR / step_seconds)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any engine's constructor: one line, never a traceback
        text = str(exc).strip().splitlines()
        detail = text[0] if text else type(exc).__name__
        if not isinstance(exc, ValueError | ImportError):
            detail = f"{key}.params do not fit the {m.name} engine ({type(exc).__name__}: {detail})"
        raise ConfigError(f"{key} ({m.name}): {detail}") from None


TOKEN_KINDS = ("receipt", "stablecoin")
RNG_STREAMS = ("auto", "shared", "per_protocol")


def token_names(cfg: Any) -> list[str]:
    """Names of the issued tokens, in protocol order (world assets after the market's)."""
    return [p.issues.name for p in cfg.protocols if p.issues is not None]


def _validate_tokens(cfg: Any) -> None:
    market = [cfg.market.quote, *[a.name for a in cfg.market.assets]]
    pnames = [p.name for p in cfg.protocols]
    seen: list[str] = []
    for i, p in enumerate(cfg.protocols):
        t = p.issues
        if t is None:
            continue
        k = f"protocols[{i}].issues"
        if t.name in market or t.name in seen:
            _fail(f"{k}.name", t.name, "must differ from market assets, the quote and other tokens")
        seen.append(t.name)
        _choice(f"{k}.kind", t.kind, TOKEN_KINDS)
        _check_range(f"{k}.par", t.par, 0.0, lo_open=True)
        _check_range(f"{k}.supply", t.supply, 0.0, lo_open=True)
        _check_range(f"{k}.backing_ratio", t.backing_ratio, 0.0, 100.0, lo_open=True)
        _check_range(f"{k}.run_threshold", t.run_threshold, 0.0, 100.0)
        _check_range(f"{k}.run_discount", t.run_discount, 0.0, 1.0)
        _check_range(f"{k}.floor", t.floor, 0.0, 1.0)
        for name, v in t.holdings.items():
            if name not in pnames:
                _fail(f"{k}.holdings.{name}", v, f"unknown protocol; known: {', '.join(pnames)}")
            _check_range(f"{k}.holdings.{name}", v, 0.0)
        if t.venue and t.venue not in pnames:
            _fail(f"{k}.venue", t.venue, f"unknown protocol; known: {', '.join(pnames)}")


def _validate_contagion(c: Any, n_protocols: int) -> None:
    _choice("contagion.rng_streams", c.rng_streams, RNG_STREAMS)
    for key in ("fire_sales", "arbitrage", "token_impairment", "venue_oracle",
                "universal_margin", "universal_cover", "shared_liquidator_capital"):
        if not isinstance(getattr(c, key), bool):
            _fail(f"contagion.{key}", getattr(c, key), "must be true or false")
    _check_range("contagion.universal_spread_charge", c.universal_spread_charge, 0.0, 1.0)


def universal_margin_config(c: Any, default: Any = None) -> Any:
    """The margin config of the universal engine.

    ``contagion.universal_regime``'s preset, or ``default`` (the run's ``margin``) when it is empty.

    Raises:
        ConfigError: An unknown preset name (one line listing the known ones).
    """
    if not c.universal_regime:
        return default
    from sim.config.overrides import margin_preset

    return margin_preset(str(c.universal_regime))


def _validate_scenario(s: Any, market: Any, steps: int) -> None:
    """Build the scenario once (it checks its own params and data files) and check the path.

    Beyond its params, the fundamental path must stay where the books can quote
    it (:func:`sim.config.capacity.check_price_path`): a tick of at most 1 % of the
    price and at most 1e12 ticks, over a replayed window at the start and for
    the volatility the scenario can reach.
    """
    from sim.config.capacity import check_scenario_path
    from sim.scenarios import build_scenario

    try:
        scenario = build_scenario(s, market)
    except Exception as exc:  # noqa: BLE001 - any builder: one line, never a traceback
        text = str(exc).strip().splitlines()
        detail = text[0] if text else type(exc).__name__
        if not isinstance(exc, ValueError | TypeError | OSError):
            detail = f"{type(exc).__name__}: {detail}"
        raise ConfigError(f"scenario ({s.name}): {detail}") from None
    check_scenario_path(scenario, s, market, steps)


def validate(cfg: Any) -> Any:
    """Check every value of a run config; return it unchanged when valid.

    Args:
        cfg: A ``RunConfig`` or an OmegaConf node with its structure.

    Returns:
        The same config.

    Raises:
        ConfigError: One line naming the first bad key, its value and what is
            allowed.

    A run passes its config through several doors (the command line, the
    runner, the model); the checks run once per distinct config: a config whose
    content (its resolved form, :func:`sim.output.provenance.config_fingerprint`)
    has passed before in this process is returned at once.
    """
    check_schema(cfg)
    resolve_or_fail(cfg)
    key = _content_key(cfg)
    if key is not None and key in _PASSED:
        return cfg
    _check_all(cfg)
    if key is not None:
        _PASSED[key] = None
        while len(_PASSED) > 256:
            _PASSED.pop(next(iter(_PASSED)))
    return cfg


_PASSED: dict[str, None] = {}
"""Content keys of the configs that passed :func:`validate` in this process (oldest first)."""


def _content_key(cfg: Any) -> str | None:
    """The resolved config's SHA-256 (with the stamps of replayed data files), or None."""
    import hashlib
    import json

    from sim.config.schema import to_container

    try:
        plain = to_container(cfg)
        files = ((plain.get("scenario") or {}).get("params") or {}).get("files")
        if isinstance(files, dict):  # a replay: an edited data file is checked again
            from sim.scenarios.replay import resolve_data_path

            stamps = {}
            for name, path in files.items():
                st = resolve_data_path(str(path)).stat()
                stamps[name] = [st.st_mtime_ns, st.st_size]
            plain = {**plain, "_data_files": stamps}
        text = json.dumps(plain, sort_keys=True, default=repr)
    except Exception:  # noqa: BLE001 - an odd config (or a missing file) is checked in full
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def _check_all(cfg: Any) -> None:
    """Every value check of :func:`validate` (after the shape checks)."""
    check_int("seed", cfg.seed)
    _check_range("seed", cfg.seed, 0, 2**63 - 1)
    check_int("steps", cfg.steps)
    _check_range("steps", cfg.steps, 1, 100_000_000)
    for key in ("progress", "check_invariants"):
        check_bool(key, getattr(cfg, key))
    check_bool("output.figures", cfg.output.figures)
    _validate_market(cfg.market)
    _validate_protocols(cfg.protocols, [a.name for a in cfg.market.assets])
    _validate_tokens(cfg)
    market_assets = [a.name for a in cfg.market.assets]
    assets = market_assets + token_names(cfg)
    _validate_margin(cfg.margin, assets, cfg.market.quote, cfg.market.step_seconds,
                     market_assets=market_assets)
    for i, p in enumerate(cfg.protocols):
        if p.margin is not None:
            _validate_margin(p.margin, assets, cfg.market.quote, cfg.market.step_seconds,
                             f"protocols[{i}].margin")
    _validate_contagion(cfg.contagion, len(cfg.protocols))
    if cfg.contagion.universal_regime:
        try:
            universal = universal_margin_config(cfg.contagion)
        except ConfigError as exc:
            raise ConfigError(f"contagion.universal_regime: {exc}") from None
        _validate_margin(universal, assets, cfg.market.quote, cfg.market.step_seconds,
                         "contagion.universal_regime")
    validate_agents(cfg.agents)
    from sim.config.capacity import check_run_memory

    check_run_memory(cfg)
    _validate_scenario(cfg.scenario, cfg.market, int(cfg.steps))
    _check_range("oracle.latency_steps", cfg.oracle.latency_steps, 0, 1_000_000)
    _check_range("oracle.twap_steps", cfg.oracle.twap_steps, 1, 1_000_000)
    _check_range("oracle.venue_weight", cfg.oracle.venue_weight, 0.0, 1.0)
    _check_range("output.burn_in_steps", cfg.output.burn_in_steps, 0, 100_000_000)
    _check_range("output.accounts_every", cfg.output.accounts_every, 0, 100_000_000)


def _unknown_key(path: str, key: str, value: Any, fields: list[str]) -> Exception:
    close = difflib.get_close_matches(key, fields, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    shown = value if not isinstance(value, DictConfig | ListConfig) else "{...}"
    return ConfigError(f"{path}{key} = {shown!r} is invalid: unknown key; {hint}"
                  f"known: {', '.join(fields)}")


def check_schema(cfg: Any, path: str = "") -> None:
    """Every key of ``cfg`` is in its dataclass schema and no schema key is missing.

    Walks DictConfig nodes backed by a dataclass (and lists of them), so
    mapping-typed fields are left to their own validators.

    Args:
        cfg: A composed config node (typed by ``RunConfig``).
        path: Dotted prefix of ``cfg`` in the run config (for messages).

    Raises:
        sim.config.ConfigError: An unknown key (with the closest known one) or
            a deleted schema key.
    """
    if not isinstance(cfg, DictConfig):
        return
    schema = OmegaConf.get_type(cfg)
    if schema is None or not dataclasses.is_dataclass(schema):
        return
    fields = [f.name for f in dataclasses.fields(schema)]
    for key in cfg.keys():
        if key not in fields:
            raise _unknown_key(path, str(key), cfg._get_node(key)._value(), fields)
    for name in fields:
        if name not in cfg:
            raise ConfigError(
                f"{path}{name} is invalid: the key was deleted (~{path}{name}) but the "
                f"run needs it; set a value instead"
            )
        node = cfg._get_node(name)
        if isinstance(node, DictConfig) and not node._is_none() and not node._is_interpolation():
            check_schema(node, f"{path}{name}.")
        elif isinstance(node, ListConfig) and not node._is_none() \
                and not node._is_interpolation():
            for i in range(len(node)):
                item = node._get_node(i)
                if isinstance(item, DictConfig):
                    check_schema(item, f"{path}{name}.{i}.")


def resolve_or_fail(cfg: Any) -> None:
    """Resolve every interpolation of ``cfg`` (read-only); one line naming the key if one fails.

    Raises:
        sim.config.ConfigError: ``<key>: interpolation ... cannot be resolved``.
    """
    if not isinstance(cfg, DictConfig):
        return
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "config"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{key} is invalid: {first}") from None
