"""Helpers shared by the study scripts: config loading and figure styling.

A study's parameters live in ``conf/experiment/<study>.yaml`` and are loaded
with OmegaConf (not composed into the run config); ``key=value`` arguments on
the command line override them (values parsed as YAML, so
``regimes=[cross,portfolio]`` and ``scenarios={calm: []}`` replace the
configured values). Figures reuse ``sim.figures``
(Okabe–Ito palette, ``save`` → PNG + vector PDF).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

__all__ = ["CONF_DIR", "load_study_config"]

CONF_DIR = Path(__file__).resolve().parents[1] / "conf" / "experiment"


def load_study_config(name: str, argv: list[str] | None = None) -> DictConfig:
    """``conf/experiment/<name>.yaml`` merged with ``key=value`` overrides.

    Args:
        name: Study name.
        argv: ``key=value`` strings.

    Returns:
        The merged config.

    Raises:
        ValueError: An argument without ``=`` or a key the study does not have.
    """
    base = OmegaConf.load(CONF_DIR / f"{name}.yaml")
    args = list(argv or [])
    bad = [a for a in args if "=" not in a]
    if bad:
        raise ValueError(f"arguments must be key=value, got {bad}")
    for arg in args:
        key = arg.split("=", 1)[0].strip()
        if key.split(".")[0] not in base:
            raise ValueError(f"{name}: unknown key {key!r} "
                             f"(valid keys: {', '.join(map(str, base.keys()))})")
        value = OmegaConf.select(OmegaConf.from_dotlist([arg]), key)
        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value)
        # replace, not merge: scenarios={calm: []} drops the configured scenarios
        OmegaConf.update(base, key, value, merge=False)
    return base
