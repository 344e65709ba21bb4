"""Input checks shared by the Python API and the command line: one clear sentence per mistake."""

import math
import numbers


def positive_number(name: str, value, integer: bool = False):
    """Return `value` if it is a finite number > 0 (a whole number when `integer`), else raise ValueError."""
    kind = "a whole number" if integer else "a number"
    if isinstance(value, str):
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            raise ValueError(f"{name} must be {kind} greater than 0, got {value!r}.") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {kind} greater than 0, got {value!r}.")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be {kind} greater than 0, got {value!r}.")
    if integer and int(value) != value:
        raise ValueError(f"{name} must be a whole number greater than 0, got {value!r}.")
    return int(value) if integer else float(value)


def finite_number(name: str, value, minimum: float = 0.0) -> float:
    """Return `value` as a float if it is finite and >= minimum, else raise ValueError."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{name} must be a number of at least {minimum:g}, got {value!r}.") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be a number of at least {minimum:g}, got {value!r}.")
    return float(value)
