"""Shared fixtures: the real data sets, parsed once per test session.

Data that lives outside the project (``../shared/data`` or ``$COMPANION_DATA``) may be
absent; a test that needs it is then skipped with the reason, never failed with a raw
error. Use the ``shared_file`` fixture for a single file::

    def test_x(shared_file):
        path = shared_file("word_similarity/EN-WS-353-ALL.txt")  # or the test skips

A ``COMPANION_DATA`` that points nowhere is still an error (see ``config.data_dirs``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from companion.config import data_dirs
from companion.data import DatasetNotFoundError, load_dataset

HOW_TO_GET = "set COMPANION_DATA to a folder holding it (see ../shared/README.md)"


def load_or_skip(name: str) -> pd.DataFrame:
    """``load_dataset(name)``, or skip the test when its local copy is not found."""
    try:
        return load_dataset(name)
    except DatasetNotFoundError as err:
        pytest.skip(f"data set {name!r} not found: {HOW_TO_GET}. ({' '.join(str(err).split())})")


@pytest.fixture(scope="session")
def shared_file() -> Callable[[str], Path]:
    """A function: the path of ``relpath`` in the first data folder holding it, else skip."""

    def find(relpath: str) -> Path:
        dirs = data_dirs()
        for folder in dirs:
            if (folder / relpath).is_file():
                return folder / relpath
        searched = ", ".join(str(d) for d in dirs)
        pytest.skip(f"{relpath} not found (searched {searched}): {HOW_TO_GET}")

    return find


@pytest.fixture(scope="session")
def bbc_df() -> pd.DataFrame:
    """BBC News (deduplicated), seed 0: a pinned dependency, so never skipped."""
    return load_dataset("bbc")


@pytest.fixture(scope="session")
def newsgroups_df() -> pd.DataFrame:
    """20 Newsgroups from the data folders, seed 0, nothing removed (skips if absent)."""
    return load_or_skip("20newsgroups")


@pytest.fixture(scope="session")
def ag_news_df() -> pd.DataFrame:
    """AG News (official test split only) from the data folders, seed 0 (skips if absent)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_or_skip("ag_news")
