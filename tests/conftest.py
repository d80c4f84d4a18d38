"""Shared fixtures: the real data sets, parsed once per test session."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from companion.data import load_dataset


@pytest.fixture(scope="session")
def bbc_df() -> pd.DataFrame:
    """BBC News (deduplicated), seed 0."""
    return load_dataset("bbc")


@pytest.fixture(scope="session")
def newsgroups_df() -> pd.DataFrame:
    """20 Newsgroups from $COMPANION_DATA, seed 0, nothing removed."""
    return load_dataset("20newsgroups")


@pytest.fixture(scope="session")
def ag_news_df() -> pd.DataFrame:
    """AG News (official test split only) from $COMPANION_DATA, seed 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_dataset("ag_news")
