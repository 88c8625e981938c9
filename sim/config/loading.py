"""Loading a run config exactly as ``python -m sim`` composes it (Hydra's Compose API).

:func:`load_config` composes the overrides into the schema, :func:`finish_config`
applies the per-protocol margin overrides and validates the result once;
:func:`plain_config` gives the dataclass form the model reads in its hot loop,
:func:`to_container` the resolved dict written next to a run's outputs.
"""

from __future__ import annotations


from omegaconf import DictConfig

from sim.config.checks import ConfigError
from sim.config.overrides import (
    apply_protocol_margin_overrides,
    check_overrides,
    one_line,
    split_protocol_margin_overrides,
)
from sim.config.schema import plain_config, register_configs, to_container
from sim.config.validation import validate

__all__ = ["finish_config", "load_config", "plain_config", "to_container"]


def load_config(overrides: list[str] | None = None, *, validate_values: bool = True) -> DictConfig:
    """Compose the run config exactly as ``python -m sim`` would, via Hydra's Compose API.

    Args:
        overrides: Hydra override strings, e.g. ``["steps=200", "seed=7"]``;
            ``protocols.<i>.margin...`` ones go through
            :func:`apply_protocol_margin_overrides`.
        validate_values: Run :func:`validate` on the result.

    Returns:
        The composed, typed config (an OmegaConf DictConfig backed by ``RunConfig``).

    Raises:
        ConfigError: For an unknown key, a type mismatch or an invalid value.
    """
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf.errors import OmegaConfBaseException

    register_configs()
    gh = GlobalHydra.instance()
    was_initialized = gh.is_initialized()
    try:
        if not was_initialized:
            initialize_config_module(config_module="conf", version_base="1.3")
        hydra_ov, _ = split_protocol_margin_overrides(list(overrides or []))
        check_overrides(hydra_ov, None)
        cfg = compose(config_name="config", overrides=hydra_ov)
    except (OmegaConfBaseException, Exception) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(one_line(exc)) from None
    finally:
        if not was_initialized:
            GlobalHydra.instance().clear()
    return finish_config(cfg, list(overrides or []), validate_values=validate_values)


def finish_config(cfg: DictConfig, overrides: list[str], *, validate_values: bool = True
                  ) -> DictConfig:
    """What :func:`load_config` does after Hydra composed ``cfg`` from ``overrides``.

    Checks the override values composition would silently change
    (:func:`sim.config.overrides.check_overrides`), applies the
    ``protocols.<i>.margin`` ones and validates the result.

    Raises:
        ConfigError: One line naming the key and what is allowed.
    """
    from omegaconf.errors import OmegaConfBaseException

    hydra_ov, margin_ov = split_protocol_margin_overrides(overrides)
    try:
        check_overrides(hydra_ov, cfg)
        apply_protocol_margin_overrides(cfg, margin_ov)
    except ConfigError:
        raise
    except (OmegaConfBaseException, Exception) as exc:  # noqa: BLE001 - OmegaConf raises many types
        raise ConfigError(one_line(exc)) from None
    if validate_values:
        validate(cfg)
    return cfg
