"""The override grammar: per-protocol margin overrides and the override checks composition needs.

* ``protocols.<i>.margin=<preset>`` / ``protocols.<i>.margin.<key>=<value>``
  are taken out of the Hydra overrides (:func:`split_protocol_margin_overrides`)
  and applied to the composed config (:func:`apply_protocol_margin_overrides`),
  since OmegaConf cannot set keys below a ``None`` node.
* :func:`check_overrides` refuses the override values composition would
  silently change: OmegaConf turns any integer into a boolean (``progress=2``
  becomes ``true``), and a list given to a config group
  (``margin=[cross,static]``) merges every listed preset into one.
"""

from __future__ import annotations

import re
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from sim.config.checks import ConfigError
from sim.config.schema import MarginConfig

__all__ = ["CONFIG_GROUPS", "apply_protocol_margin_overrides", "check_overrides", "margin_preset",
           "one_line", "split_protocol_margin_overrides"]

CONFIG_GROUPS = ("market", "protocols", "margin", "agents", "scenario")
"""Config groups of ``conf/`` whose choice is one preset name."""


def one_line(exc: BaseException) -> str:
    """Collapse an OmegaConf/Hydra error (and its cause) into one line."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 2:
        lines = [ln.strip() for ln in str(seen).strip().splitlines() if ln.strip()]
        if lines:
            parts.append(lines[0])
            for i, ln in enumerate(lines[1:], start=1):
                if ln.startswith("Available options"):
                    opts = [
                        o
                        for o in lines[i + 1 :]
                        if o.isidentifier() or o.replace("-", "_").isidentifier()
                    ]
                    parts.append(ln.rstrip(":") + ": " + ", ".join(opts))
                    break
        seen = seen.__cause__
    return ": ".join(dict.fromkeys(parts)) or type(exc).__name__


_PROTOCOL_MARGIN = re.compile(r"^\+{0,2}protocols\.(\d+)\.margin(\.[^=]+)?=(.*)$")


def split_protocol_margin_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """Separate per-protocol margin overrides from the ones Hydra applies itself.

    ``ProtocolConfig.margin`` starts as ``None`` (inherit the run's ``margin``),
    and OmegaConf cannot set a key below a ``None`` node, so Hydra rejects
    ``protocols.0.margin.name=static``. These overrides are applied after
    composition by :func:`apply_protocol_margin_overrides` instead.

    Returns:
        ``(hydra_overrides, protocol_margin_overrides)``, each in the given order.
    """
    hydra_ov, margin_ov = [], []
    for o in overrides:
        (margin_ov if _PROTOCOL_MARGIN.match(o) else hydra_ov).append(o)
    return hydra_ov, margin_ov


def margin_preset(name: str) -> DictConfig:
    """``conf/margin/<name>.yaml`` as a structured ``MarginConfig`` node."""
    from importlib.resources import files

    folder = files("conf") / "margin"
    presets = sorted(f.name[:-5] for f in folder.iterdir() if f.name.endswith(".yaml"))
    if name not in presets:
        raise ConfigError(f"margin preset {name!r} is unknown; known: {', '.join(presets)}")
    node = OmegaConf.create((folder / f"{name}.yaml").read_text())
    return OmegaConf.merge(OmegaConf.structured(MarginConfig), node)


def apply_protocol_margin_overrides(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """Apply ``protocols.<i>.margin...`` overrides to a composed config, in order (in place).

    Syntax (documented in ``conf/protocols/two_venues.yaml``):

    * ``protocols.<i>.margin=<preset>``: protocol ``i`` uses ``conf/margin/<preset>.yaml``
      (as the ``margin=<preset>`` group choice does for the run);
      ``protocols.<i>.margin=null`` reverts it to the run's ``margin``.
    * ``protocols.<i>.margin.<key>=<value>`` (``+`` allowed for new keys under
      ``params``): sets one key; a protocol without its own margin first gets
      a copy of the run's ``margin``.

    Values are parsed with Hydra's override grammar, so types match the CLI.

    Raises:
        ConfigError: One line naming the override and what was wrong.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for text in overrides:
        match = _PROTOCOL_MARGIN.match(text)
        if match is None:
            raise ConfigError(f"{text!r} is not a protocols.<i>.margin override")
        i, rest = int(match.group(1)), match.group(2)
        if i >= len(cfg.protocols):
            raise ConfigError(f"{text}: no protocol {i}; the run has {len(cfg.protocols)} "
                              f"(indices 0..{len(cfg.protocols) - 1})")
        try:
            value = parser.parse_override(text.lstrip("+")).value()
        except Exception as exc:  # noqa: BLE001 - Hydra's grammar raises several types
            raise ConfigError(f"{text}: {one_line(exc)}") from None
        proto = cfg.protocols[i]
        try:
            if not rest:
                proto.margin = None if value is None else margin_preset(str(value))
                continue
            if proto.margin is None:
                proto.margin = OmegaConf.merge(OmegaConf.structured(MarginConfig), cfg.margin)
            key = rest[1:]
            if text.startswith("+"):
                with open_dict(proto.margin):
                    OmegaConf.update(proto.margin, key, value, merge=True)
            else:
                if OmegaConf.select(proto.margin, key, default=_MISSING) is _MISSING:
                    raise ConfigError(f"key protocols.{i}.margin{rest} does not exist "
                                      f"(prefix + to add a key under params)")
                OmegaConf.update(proto.margin, key, value, merge=False)
        except ConfigError as exc:
            raise ConfigError(f"{text}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - OmegaConf type errors
            raise ConfigError(f"{text}: {one_line(exc)}") from None
    return cfg


_MISSING = object()


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
        except Exception:  # noqa: BLE001 - Hydra's own parse reports its error later
            continue
        key = ov.key_or_group
        if ov.is_delete():
            continue
        values = list(ov.sweep_iterator()) if ov.is_sweep_override() else [ov.value()]
        if key in CONFIG_GROUPS and ov.package is None:
            for v in values:
                if isinstance(v, list | dict):
                    raise ConfigError(f"{key} = {v!r} is invalid: choose one {key} preset (a list "
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
                    raise ConfigError(f"{key} = {v!r} is invalid: must be true or false")
