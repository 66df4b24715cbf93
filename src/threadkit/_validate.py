"""Argument checks shared by every public API, so each rule is written once.

One timeout rule everywhere: ``None`` (wait forever) or a finite real number >= 0;
booleans, NaN, infinities and negatives are refused at the call that got them.
"""

from __future__ import annotations

import math
from numbers import Real

__all__ = ["check_int", "check_timeout"]


def check_timeout(value: object, name: str = "timeout") -> float | None:
    """Return ``value`` as a float (or ``None``) if it is a valid timeout.

    Raises:
        TypeError: ``value`` is not ``None`` or a real number (``bool`` is refused).
        ValueError: ``value`` is negative, NaN or infinite.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be None or a number >= 0, got {value!r}")
    seconds = float(value)
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"{name} must be None or a finite number >= 0, got {value!r}")
    return seconds


def check_int(value: object, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an ``int`` (not a ``bool``) >= ``minimum``.

    Raises:
        TypeError: ``value`` is not an ``int``, or is a ``bool``.
        ValueError: ``value`` is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value
