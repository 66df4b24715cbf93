"""The shared argument rules that every public API applies."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from threadkit._validate import check_int, check_timeout


@pytest.mark.parametrize("value", [0, 0.0, 1, 2.5, Fraction(1, 3), 10**6])
def test_timeout_accepts_finite_non_negative_numbers(value: float) -> None:
    """Finite real numbers >= 0 are valid timeouts and come back as floats."""
    assert check_timeout(value) == float(value)


def test_timeout_accepts_none() -> None:
    """``None`` means wait forever."""
    assert check_timeout(None) is None


@pytest.mark.parametrize("value", [-1, -0.001, math.nan, math.inf, -math.inf])
def test_timeout_refuses_negative_nan_and_infinite(value: float) -> None:
    """Negative, NaN and infinite timeouts raise ``ValueError`` naming the parameter."""
    with pytest.raises(ValueError, match=r"^wait_for must be"):
        check_timeout(value, "wait_for")


@pytest.mark.parametrize("value", [True, "1", [], object()])
def test_timeout_refuses_non_numbers(value: object) -> None:
    """Booleans and non-numbers raise ``TypeError``."""
    with pytest.raises(TypeError, match="timeout must be"):
        check_timeout(value)


def test_int_rule() -> None:
    """``check_int`` takes ints >= minimum and refuses bools, floats and smaller ints."""
    assert check_int(3, "n") == 3
    assert check_int(0, "n", minimum=0) == 0
    with pytest.raises(TypeError, match="n must be an int >= 1, got True"):
        check_int(True, "n")
    with pytest.raises(TypeError, match=r"got 1\.5"):
        check_int(1.5, "n")
    with pytest.raises(ValueError, match="got 0"):
        check_int(0, "n")
