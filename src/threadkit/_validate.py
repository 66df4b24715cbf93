"""Argument checks shared by every public API, so each rule is written once.

One timeout rule everywhere: ``None`` (wait forever) or a finite real number >= 0;
booleans, NaN, infinities and negatives are refused at the call that got them.
"""

from __future__ import annotations

import math
from numbers import Real

__all__ = ["check_buffersize", "check_int", "check_timeout"]


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


def check_int(value: object, name: str, *, minimum: int = 1, too_small: str = "") -> int:
    """Return ``value`` if it is an ``int`` (not a ``bool``) >= ``minimum``.

    ``too_small`` replaces the start of the ``ValueError`` message where the standard
    library has its own words for the same mistake (a drop-in keeps them).

    Raises:
        TypeError: ``value`` is not an ``int``, or is a ``bool``.
        ValueError: ``value`` is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{too_small or f'{name} must be an int >= {minimum}'}, got {value!r}")
    return value


def check_buffersize(value: object) -> int | None:
    """Return ``value`` if it is a valid ``map`` buffer size: ``None`` or an ``int >= 1``.

    The messages start with ``Executor.map``'s own (Python 3.14+), as a drop-in must.

    Raises:
        TypeError: ``value`` is not ``None`` or an ``int`` (``bool`` is refused).
        ValueError: ``value`` is below 1.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"buffersize must be an integer or None, got {value!r}")
    if value < 1:
        raise ValueError(f"buffersize must be None or > 0, got {value!r}")
    return value
