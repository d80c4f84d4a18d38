"""Tests for companion.checks: the shared integer-argument check."""

from __future__ import annotations

import numpy as np
import pytest

from companion.checks import check_ints


def test_accepts_integers_at_or_above_the_minimum() -> None:
    check_ints(dim=1, epochs=np.int64(3))
    check_ints(0, n_test=0)
    check_ints(2, n_classes=2)


@pytest.mark.parametrize(
    ("minimum", "value", "message"),
    [
        (1, 0, "size must be an integer >= 1, got 0"),
        (0, -1, "size must be an integer >= 0, got -1"),
        (2, 1, "size must be an integer >= 2, got 1"),
        (1, 2.0, "size must be an integer >= 1, got 2.0"),
        (1, True, "size must be an integer >= 1, got True"),
        (1, "3", "size must be an integer >= 1, got '3'"),
        (1, None, "size must be an integer >= 1, got None"),
    ],
)
def test_rejects_bad_values_with_their_name(minimum: int, value: object, message: str) -> None:
    with pytest.raises(ValueError) as error:
        check_ints(minimum, size=value)
    assert str(error.value) == message


def test_names_the_first_bad_value() -> None:
    with pytest.raises(ValueError, match="^epochs must"):
        check_ints(dim=4, epochs=0, batch_size=0)
