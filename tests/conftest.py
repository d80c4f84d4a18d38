"""Shared fixtures: the real data sets, parsed once per test session.

Data that lives outside the project (``../shared/data`` or ``$COMPANION_DATA``) may be
absent; a test that needs it then fails with the reason and how to get it, never with a raw
error, and is never skipped: a suite that silently runs fewer checks is not a pass. Use the
``shared_file`` fixture for a single file::

    def test_x(shared_file):
        path = shared_file("word_similarity/EN-WS-353-ALL.txt")  # or the test fails, saying why

A ``COMPANION_DATA`` that points nowhere is still an error (see ``config.data_dirs``).
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import course_helpers
import pandas as pd
import pytest
import torch

from companion import course
from companion.config import data_dirs
from companion.data import DatasetNotFoundError, load_dataset

HOW_TO_GET = "set COMPANION_DATA to a folder holding it (see ../shared/README.md)"


def load_or_fail(name: str) -> pd.DataFrame:
    """``load_dataset(name)``, or fail the test with how to get the data when it is not found."""
    try:
        return load_dataset(name)
    except DatasetNotFoundError as err:
        pytest.fail(f"data set {name!r} not found: {HOW_TO_GET}. ({' '.join(str(err).split())})")


@pytest.fixture(scope="session")
def shared_file() -> Callable[[str], Path]:
    """A function: the path of ``relpath`` in the first data folder holding it, else fail."""

    def find(relpath: str) -> Path:
        dirs = data_dirs()
        for folder in dirs:
            if (folder / relpath).is_file():
                return folder / relpath
        searched = ", ".join(str(d) for d in dirs)
        pytest.fail(f"{relpath} not found (searched {searched}): {HOW_TO_GET}")

    return find


@pytest.fixture(scope="session")
def bbc_df() -> pd.DataFrame:
    """BBC News (deduplicated), seed 0: a pinned dependency, so never skipped."""
    return load_dataset("bbc")


@pytest.fixture(scope="session")
def newsgroups_df() -> pd.DataFrame:
    """20 Newsgroups from the data folders, seed 0, nothing removed (fails if absent)."""
    return load_or_fail("20newsgroups")


@pytest.fixture(scope="session")
def ag_news_df() -> pd.DataFrame:
    """AG News (official test split only) from the data folders, seed 0 (fails if absent)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_or_fail("ag_news")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a tiny random BERT (2 layers, hidden 32, no dropout) and MiniLM's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from companion.transformer import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, num_labels=3,
    )  # fmt: skip
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-bert")
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# Headless Debian Chromium for the browser tests (test_book.py, test_lab.py).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def toy_course(tmp_path_factory) -> Path:
    """A course folder built from the toy chapter of ``course_helpers``."""
    folder = tmp_path_factory.mktemp("toy")
    course.build_course([course_helpers.toy_chapter(folder)], folder / "course")
    return folder / "course"


@pytest.fixture(scope="session")
def book_course(tmp_path_factory) -> Path:
    """A course folder built from the book's chapters (what ``make assignments`` writes)."""
    folder = tmp_path_factory.mktemp("book") / "course"
    course.build_course(course.chapter_notebooks(course_helpers.ROOT / "notebooks"), folder)
    return folder
