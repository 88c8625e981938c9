"""Reading a scenario's ``params`` mapping with one-line errors naming the param.

Every scenario factory reads its parameters through :class:`Params`, which knows
the names the scenario accepts, converts OmegaConf containers to plain Python,
fills defaults and checks types and ranges. A bad value raises ``ValueError``
with one line such as ``params.crash = 1.5 is invalid: must be < 1``;
``sim.config.validate`` prefixes it with ``scenario (<name>):``.

Neighbours: :mod:`sim.scenarios.shocks` and :mod:`sim.scenarios.replay` use it;
:func:`sim.scenarios.build_scenario` dispatches to them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

__all__ = ["Params", "plain"]

_MISSING = object()


def plain(obj: Any) -> Any:
    """Convert OmegaConf containers (recursively) to plain dicts and lists.

    Args:
        obj: Any value; ``DictConfig``/``ListConfig`` are resolved and converted.

    Returns:
        The value with every mapping a ``dict`` and every non-string sequence a
        ``list``.
    """
    if isinstance(obj, (DictConfig, ListConfig)):
        return OmegaConf.to_container(obj, resolve=True)
    if isinstance(obj, Mapping):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, (float, np.floating)) and math.isfinite(value) and value == int(value)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, bool) and math.isfinite(float(value)))


class Params:
    """The ``params`` of one scenario, read key by key.

    Args:
        scenario: Scenario name (used in messages).
        raw: The ``params`` mapping from the config (``None`` = empty).
        allowed: Every param name the scenario accepts; any other key is an error.

    Raises:
        ValueError: ``raw`` is not a mapping, or holds a key not in ``allowed``.
    """

    def __init__(self, scenario: str, raw: Any, allowed: Iterable[str]) -> None:
        self.scenario = scenario
        raw = plain(raw) if raw is not None else {}
        if not isinstance(raw, dict):
            raise ValueError(f"params = {raw!r} is invalid: must be a mapping of param names "
                             "to values")
        self.raw: dict[str, Any] = raw
        self.allowed = tuple(allowed)
        for key in raw:
            if key not in self.allowed:
                valid = ", ".join(self.allowed) if self.allowed else "none"
                raise ValueError(f"params.{key} is not a param of scenario {scenario}; "
                                 f"valid: {valid}")

    def has(self, key: str) -> bool:
        """Whether the config sets ``key`` to something other than null."""
        return self.raw.get(key) is not None

    def fail(self, key: str, value: Any, allowed: str) -> None:
        """Raise the one-line error for a bad param.

        Raises:
            sim.config.checks.ConfigError: Always (a ``ValueError``):
                ``params.<key> = <value> is invalid: <allowed>``, the project's
                one message form.
        """
        from sim.config.checks import ConfigError

        raise ConfigError(f"params.{key} = {value!r} is invalid: {allowed}")

    def get(self, key: str, default: Any = _MISSING) -> Any:
        """The raw value of ``key``, or ``default`` when absent or null.

        Raises:
            ValueError: ``key`` is absent and no default is given.
        """
        value = self.raw.get(key)
        if value is None:
            if default is _MISSING:
                raise ValueError(f"params.{key} is required by scenario {self.scenario}")
            return default
        return value

    def integer(self, key: str, default: Any = _MISSING, lo: int | None = None,
                hi: int | None = None) -> int:
        """An integer param in ``[lo, hi]``."""
        value = self.get(key, default)
        if not _is_int(value):
            self.fail(key, value, "must be an integer")
        value = int(value)
        if lo is not None and value < lo:
            self.fail(key, value, f"must be >= {lo}")
        if hi is not None and value > hi:
            self.fail(key, value, f"must be <= {hi}")
        return value

    def optional_integer(self, key: str, lo: int | None = None, hi: int | None = None
                         ) -> int | None:
        """An integer param, or ``None`` when absent or null."""
        return self.integer(key, None, lo, hi) if self.has(key) else None

    def number(self, key: str, default: Any = _MISSING, lo: float | None = None,
               hi: float | None = None, lo_open: bool = False, hi_open: bool = False) -> float:
        """A finite real param in the interval ``lo .. hi`` (open ends as flagged)."""
        value = self.get(key, default)
        if not _is_number(value):
            self.fail(key, value, "must be a finite number")
        return self.check_number(key, float(value), lo, hi, lo_open, hi_open)

    def check_number(self, key: str, value: float, lo: float | None = None,
                     hi: float | None = None, lo_open: bool = False,
                     hi_open: bool = False) -> float:
        """Range-check an already converted number (see :meth:`number`)."""
        if lo is not None and (value < lo or (lo_open and value == lo)):
            self.fail(key, value, f"must be {'>' if lo_open else '>='} {lo}")
        if hi is not None and (value > hi or (hi_open and value == hi)):
            self.fail(key, value, f"must be {'<' if hi_open else '<='} {hi}")
        return value

    def boolean(self, key: str, default: Any = _MISSING) -> bool:
        """A true/false param (YAML ``true``/``false``; no numbers or strings)."""
        value = self.get(key, default)
        if not isinstance(value, (bool, np.bool_)):
            self.fail(key, value, "must be true or false")
        return bool(value)

    def choice(self, key: str, default: Any, options: Sequence[str]) -> str:
        """A string param among ``options``."""
        value = self.get(key, default)
        if value not in options:
            self.fail(key, value, f"must be one of {', '.join(options)}")
        return str(value)

    def string(self, key: str, default: Any = _MISSING) -> str:
        """A non-empty string param (YAML dates and numbers are turned into text)."""
        value = self.get(key, default)
        if isinstance(value, (bool, list, dict)) or str(value).strip() == "":
            self.fail(key, value, "must be a non-empty string")
        return str(value).strip()

    def assets(self, key: str, names: Sequence[str], default: Any = "all") -> np.ndarray:
        """Indices of the assets a shock applies to: ``all`` or a list of names.

        Args:
            key: Param name (usually ``assets``).
            names: Asset names in config order.
            default: Value when absent.

        Returns:
            Sorted int64 indices into ``names``.
        """
        value = self.get(key, default)
        if isinstance(value, str):
            value = list(names) if value == "all" else [value]
        if not isinstance(value, list) or not value:
            self.fail(key, value, "must be 'all' or a non-empty list of asset names")
        unknown = [v for v in value if v not in names]
        if unknown:
            self.fail(key, value, f"unknown asset {unknown[0]}; known: {', '.join(names)}")
        if len(set(value)) != len(value):
            self.fail(key, value, "lists an asset twice")
        return np.array(sorted(names.index(v) for v in value), dtype=np.int64)

    def per_asset(self, key: str, names: Sequence[str], selected: np.ndarray,
                  default: Any = _MISSING, lo: float | None = None, hi: float | None = None,
                  lo_open: bool = False, hi_open: bool = False) -> np.ndarray:
        """A number common to the ``selected`` assets, or a mapping asset → number.

        Assets not selected (or absent from the mapping) get 0.

        Returns:
            float64 array with one value per asset in config order.
        """
        value = self.get(key, default)
        out = np.zeros(len(names))
        if isinstance(value, dict):
            if not value:
                self.fail(key, value, "must map at least one asset to a number")
            for name, v in value.items():
                if name not in names:
                    self.fail(f"{key}.{name}", v, f"unknown asset; known: {', '.join(names)}")
                if not _is_number(v):
                    self.fail(f"{key}.{name}", v, "must be a finite number")
                out[names.index(name)] = self.check_number(f"{key}.{name}", float(v), lo, hi,
                                                           lo_open, hi_open)
            return out
        if not _is_number(value):
            self.fail(key, value, "must be a number or a mapping of asset names to numbers")
        out[selected] = self.check_number(key, float(value), lo, hi, lo_open, hi_open)
        return out
