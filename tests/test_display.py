"""show_source displays companion code in notebooks."""

from __future__ import annotations

import pytest

from companion.config import choose
from companion.display import show_source
from companion.io import atomic_write


def test_show_source_contains_the_code_and_its_name() -> None:
    code = show_source(choose, atomic_write)
    assert "# companion.config.choose\ndef choose(" in code.data
    assert "def atomic_write(" in code.data
    assert "<pre" in code._repr_html_()


def test_show_source_needs_an_object() -> None:
    with pytest.raises(ValueError, match="at least one"):
        show_source()
