"""One-line input errors shared by config validators: ``<key> = <value> is invalid: <rule>``.

The project's rule for bad input (README, "Configuration"): stop with one line
naming the key, the value given and what is allowed. Agent and liquidation
validators raise :class:`ValueError`; ``sim.config`` wraps its own as
``ConfigError``.
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

__all__ = ["check_choice", "check_number", "invalid"]


def invalid(key: str, value: Any, allowed: str) -> NoReturn:
    """Raise ``ValueError("<key> = <value!r> is invalid: <allowed>")``."""
    raise ValueError(f"{key} = {value!r} is invalid: {allowed}")


def check_number(key: str, value: Any, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False) -> None:
    """A real number (not a bool, not NaN) with ``lo <= value`` (``<`` if ``lo_open``) ``<= hi``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        invalid(key, value, "must be a number")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        invalid(key, value, f"must be {'>' if lo_open else '>='} {lo}")
    if hi is not None and value > hi:
        invalid(key, value, f"must be <= {hi}")


def check_choice(key: str, value: Any, options: tuple[str, ...]) -> None:
    """``value`` is one of ``options``."""
    if value not in options:
        invalid(key, value, f"must be one of {', '.join(options)}")
