"""The book's headline results, read from the stored full runs the rendered book shows.

nbval runs the chapters in smoke mode only, and a chapter's digest covers its code, so a change
in ``companion`` that moves a result would leave the prose stale without failing anything. These
tests read the stored tables and check what the prose says about them.
"""

from __future__ import annotations

import pytest

from companion.config import REPO_ROOT
from companion.notebooks import stored_table

NOTEBOOKS = REPO_ROOT / "notebooks"


@pytest.fixture(scope="module")
def minilm():
    """Chapter 9's results table (strategies of MiniLM, TF-IDF and chapter 8's LSTMs)."""
    return stored_table(NOTEBOOKS / "09_transformer_fine_tuning.ipynb", "table = pd.DataFrame({")


def test_minilm_full_fine_tuning_reaches_97_percent_on_bbc(minilm) -> None:
    assert minilm.loc["MiniLM: full fine-tuning", "accuracy"] >= 0.97


def test_chapter_9_reading_of_its_table(minilm) -> None:
    """LoRA close to full, the pooler adds little, TF-IDF within a point; where the LSTMs stand."""
    acc = minilm["accuracy"]
    full, probe = acc["MiniLM: full fine-tuning"], acc["MiniLM: linear probe"]
    lora = acc[[i for i in acc.index if i.startswith("MiniLM: LoRA")]].item()
    assert full >= lora >= full - 0.02
    assert abs(acc["MiniLM: linear probe + pooler"] - probe) <= 0.01 < full - probe
    assert full - 0.01 <= acc["TF-IDF + logistic regression"] <= full
    lstm_tuned, lstm_scratch = (
        acc["LSTM (ch. 8): full fine-tuning"],
        acc["LSTM (ch. 8): from scratch (full training)"],
    )
    assert acc["MiniLM: linear probe + pooler"] < lstm_tuned < lora
    assert lstm_scratch < probe
