"""The one validation dialect: ``<key> = <value> is invalid: <rule>`` as :class:`ConfigError`.

The project's rule for bad input (README, "Configuration"): stop with one line
naming the key, the value given and what is allowed. Every check of a run
config (``sim.config.validation``, ``sim.config.agents``, the liquidation
section) uses these helpers; :class:`ConfigError` is a :class:`ValueError`, so
callers that catch ``ValueError`` keep working.
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

__all__ = [
    "MAX_MAGNITUDE",
    "ConfigError",
    "check_bool",
    "check_choice",
    "check_int",
    "check_number",
    "invalid",
]

MAX_MAGNITUDE = 1e15
"""Largest size of a number without a bound of its own: no amount, count or rate of a
world is meaningfully larger (world GDP is about 1e14 USD), and products of larger
ones overflow float64 sums of a step."""


class ConfigError(ValueError):
    """A configuration value is invalid; the message is one line naming the key."""


def invalid(key: str, value: Any, allowed: str) -> NoReturn:
    """Raise ``ConfigError("<key> = <value!r> is invalid: <allowed>")``."""
    raise ConfigError(f"{key} = {value!r} is invalid: {allowed}")


def check_number(key: str, value: Any, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False) -> None:
    """A finite real number (not a bool, NaN or infinity) in ``lo <= value <= hi``.

    ``lo_open`` makes the lower bound strict; without ``hi`` the size is at most
    :data:`MAX_MAGNITUDE`. Infinity is refused everywhere: no parameter of a run
    has a meaning at infinity, and an infinite size, price or rate passes every
    range check only to overflow in a kernel.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        invalid(key, value, "must be a finite number")
    if hi is None and abs(value) > MAX_MAGNITUDE:
        invalid(key, value, f"must be <= {MAX_MAGNITUDE:.0e} in size")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        invalid(key, value, f"must be {'>' if lo_open else '>='} {lo}")
    if hi is not None and value > hi:
        invalid(key, value, f"must be <= {hi}")


def check_choice(key: str, value: Any, options: tuple[str, ...]) -> None:
    """``value`` is one of ``options``."""
    if value not in options:
        invalid(key, value, f"must be one of {', '.join(options)}")


def check_bool(key: str, value: Any) -> None:
    """``value`` is ``True`` or ``False`` (not an integer)."""
    if not isinstance(value, bool):
        invalid(key, value, "must be true or false")


def check_int(key: str, value: Any) -> None:
    """``value`` is an integer (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int):
        invalid(key, value, "must be an integer")
