"""How threadkit writes numbers a user reads in its messages and reprs.

Every duration in a log line, an exception message or a repr goes through
``format_seconds``, so none shows as ``2.9998413240000446 s``.
"""

from __future__ import annotations

import math

__all__ = ["format_seconds"]


def format_seconds(value: float | None) -> str:
    """Write a duration for people: ``"3 s"``, ``"0.25 s"``, ``"45 s"``.

    Ten seconds and more are rounded to whole seconds, from 1 s to one decimal (a
    trailing ``.0`` dropped), below that to two significant digits.

    Args:
        value: Seconds, or ``None`` for no limit.

    Returns:
        The rounded duration with its unit, or ``"no limit"`` for ``None``.
    """
    if value is None:
        return "no limit"
    if not math.isfinite(value):
        return f"{value} s"
    size = abs(value)
    if size >= 10:
        text = f"{value:.0f}"
    elif size >= 1 or size == 0:
        text = f"{value:.1f}".removesuffix(".0")
    else:
        text = f"{value:.2g}"
    return f"{text} s"
