"""Schema conformance of a composed run config, checked before any value is read.

Hydra composes overrides into the structured schema (``sim.config.RunConfig``),
but three kinds of bad input get through composition and only fail, or are
silently ignored, later:

* a key added with ``+`` that the schema does not have
  (``+agents.noise.order_probb=0.5`` is composed and then never read);
* a schema key deleted with ``~`` (``~steps``), which fails at first use;
* an interpolation that cannot be resolved (``steps=${oops}``), which fails
  at first use with OmegaConf's traceback.

And at the level of the override strings, two more: OmegaConf turns any
integer into a boolean (``progress=2`` becomes ``true``), and a list given to a
config group (``margin=[cross,static]``) selects every listed preset and merges
them into one. :func:`check_schema` and :func:`check_overrides` refuse each
with one line naming the key and what is allowed (``sim.config.ConfigError``).
Keys under mapping fields (``margin.params``, ``scenario.params``,
``margin.haircuts``, token ``holdings``) are free here: their owners (the
margin engine, the scenario builder) check them by name.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

__all__ = ["CONFIG_GROUPS", "check_overrides", "check_schema", "resolve_or_fail"]

CONFIG_GROUPS = ("market", "protocols", "margin", "agents", "scenario")
"""Config groups of ``conf/`` whose choice is one preset name."""


def _error(message: str) -> Exception:
    from sim.config import ConfigError

    return ConfigError(message)


def _unknown_key(path: str, key: str, value: Any, fields: list[str]) -> Exception:
    close = difflib.get_close_matches(key, fields, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    shown = value if not isinstance(value, DictConfig | ListConfig) else "{...}"
    return _error(f"{path}{key} = {shown!r} is invalid: unknown key; {hint}"
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
            raise _error(f"{path}{name} is invalid: the key was deleted (~{path}{name}) but the "
                         f"run needs it; set a value instead")
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
        raise _error(f"{key} is invalid: {first}") from None


def check_overrides(overrides: list[str], cfg: Any) -> None:
    """Override values whose kind composition would silently change.

    * A boolean schema key must be given ``true`` or ``false``: OmegaConf
      turns ``2`` (or any integer) into ``true``.
    * A config group (:data:`CONFIG_GROUPS`) takes one preset name: a list
      would merge several presets into one config.

    Args:
        overrides: Hydra override strings as given (sweeps included).
        cfg: The composed config (to find which keys are booleans).

    Raises:
        sim.config.ConfigError: One line naming the key and what is allowed.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for text in overrides:
        try:
            ov = parser.parse_override(text)
        except Exception:  # noqa: BLE001, S112 - Hydra's own parse reports its error later
            continue
        key = ov.key_or_group
        if ov.is_delete():
            continue
        values = list(ov.sweep_iterator()) if ov.is_sweep_override() else [ov.value()]
        if key in CONFIG_GROUPS and ov.package is None:
            for v in values:
                if isinstance(v, list | dict):
                    raise _error(f"{key} = {v!r} is invalid: choose one {key} preset (a list "
                                 f"would merge several into one); sweep them with -m "
                                 f"{key}=a,b instead")
            continue
        if key.startswith("hydra") or not isinstance(cfg, DictConfig):
            continue
        try:
            current = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
        except OmegaConfBaseException:
            continue
        if isinstance(current, bool):
            for v in values:
                if not isinstance(v, bool):
                    raise _error(f"{key} = {v!r} is invalid: must be true or false")
