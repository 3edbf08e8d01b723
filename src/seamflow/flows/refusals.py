"""The errors a filter raises when it cannot use a value: wrong type, or right type and unusable."""

from __future__ import annotations

from seamflow import errors


def value_error(problem: str, expected: str) -> errors.ExpressionError:
    """A value of the right type that cannot be used (`expression.value`)."""
    return errors.ExpressionError(f"{problem}; expected {expected}", code="expression.value")


def type_error(value: object, expected: str) -> errors.ExpressionError:
    """A value of the wrong type (`expression.type`)."""
    return errors.ExpressionError(
        f"got {type(value).__name__} {errors.redact(value)}; expected {expected}",
        code="expression.type",
    )
