"""Argument checks shared by the companion modules: one clear message for every bad size."""

from __future__ import annotations

import numpy as np


def check_ints(minimum: int = 1, /, **values: object) -> None:
    """Raise ValueError naming the first value that is not an integer >= ``minimum``.

    Booleans are rejected although Python counts them as integers; NumPy integers are accepted.
    Example: ``check_ints(dim=dim, epochs=epochs)`` or ``check_ints(0, n_test=n_test)``.
    """
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
