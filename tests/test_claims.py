"""The book's headline results, read from the stored full runs the rendered book shows.

nbval runs the chapters in smoke mode only, and a chapter's digest covers its code, so a change
in ``companion`` that moves a result would leave the prose stale without failing anything. These
tests read the stored tables and check what the prose says about them.
"""

from __future__ import annotations

import pandas as pd
import pytest

from companion.config import REPO_ROOT
from companion.notebooks import stored_table

NOTEBOOKS = REPO_ROOT / "notebooks"


def row_named(column: pd.Series, prefix: str) -> float:
    """The one value whose row name starts with ``prefix`` (names that carry a setting)."""
    return column[column.index.str.startswith(prefix)].item()


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
    lora = row_named(acc, "MiniLM: LoRA")
    assert full >= lora >= full - 0.02
    assert abs(acc["MiniLM: linear probe + pooler"] - probe) <= 0.01 < full - probe
    assert full - 0.01 <= acc["TF-IDF + logistic regression"] <= full
    lstm_tuned, lstm_scratch = (
        acc["LSTM (ch. 8): full fine-tuning"],
        acc["LSTM (ch. 8): from scratch (full training)"],
    )
    assert acc["MiniLM: linear probe + pooler"] < lstm_tuned < lora
    assert lstm_scratch < probe


def test_chapter_1_pretrained_vectors_are_far_better_on_every_benchmark() -> None:
    scores = stored_table(NOTEBOOKS / "01_glove.ipynb", "ours = result.keyed_vectors()")
    gap = scores["6B, shared items"] - scores["ours, shared items"]
    assert (gap >= 0.1).all(), gap


def test_chapter_5_lead_baseline_stays_far_ahead_of_the_decoder() -> None:
    rouge = stored_table(NOTEBOOKS / "05_decoder.ipynb", "rouge_table = pd.DataFrame(")
    assert (rouge.loc["lead 5"] >= 2 * rouge.loc[["greedy", "beam 4"]].max()).all()


def test_chapter_6_glove_lstm_reaches_95_percent_and_tf_idf_stays_ahead() -> None:
    """The chapter's target, and its reading: GloVe 6B > random > own GloVe; TF-IDF first."""
    table = stored_table(NOTEBOOKS / "06_classifier.ipynb", "table = pd.DataFrame(results)[[")
    acc = table["accuracy"]
    assert acc["BiLSTM, GloVe 6B embeddings"] >= 0.95
    assert acc["BiLSTM, GloVe 6B embeddings"] > acc["BiLSTM, random embeddings"]
    assert acc["BiLSTM, random embeddings"] > acc["BiLSTM, own GloVe embeddings"]
    assert acc.idxmax() == "TF-IDF + logistic regression"


def test_chapter_7_language_model_beats_both_baselines() -> None:
    ppl = stored_table(NOTEBOOKS / "07_pretraining.ipynb", "unigram = torch.bincount")
    ppl = ppl["held-out perplexity"]
    assert ppl["LSTM language model"] < ppl["unigram"] < ppl["uniform"]


def test_chapter_4_padding_bug_costs_the_classifier_its_task() -> None:
    """Packed well above the article's padded x[:, -1], which stays near one class (macro-F1)."""
    runs = stored_table(NOTEBOOKS / "04_encoder.ipynb", "n_classes = len(label_names)")
    packed, padded = runs.loc["packed (correct)"], runs.loc["article (pad to 128, x[:, -1])"]
    assert packed["test accuracy"] >= padded["test accuracy"] + 0.3
    assert padded["test macro-F1"] <= 0.1 < packed["test macro-F1"]


def test_chapter_8_strategies_read_as_the_prose_says() -> None:
    """Full first, multi-task as accurate and forgetting least, the probe far behind."""
    runs = stored_table(NOTEBOOKS / "08_supervised_fine_tuning.ipynb", "def head_only")
    acc, ppl = runs["accuracy"], runs["LM perplexity after"]
    assert (
        acc.idxmax() == "full fine-tuning"
        and acc["full fine-tuning"] > acc["from scratch (full training)"]
    )
    assert acc["full fine-tuning"] - acc["multi-task: topic + language model"] <= 0.01
    moved = ppl.drop(["selective: head only", "from scratch (full training)"])
    assert moved.idxmin() == "multi-task: topic + language model"
    assert acc["selective: head only"] < 0.5
    for weaker in ("selective: top layer only", "ULMFiT: discriminative + slanted + gradual"):
        assert acc[weaker] <= acc["full fine-tuning"] - 0.1


def test_chapter_10_fine_tuning_beats_prompting_and_the_lead_but_not_minilm(minilm) -> None:
    """Zero-shot < few-shot < LoRA, full; fine-tuned headlines beat the lead; MiniLM stays ahead."""
    path = NOTEBOOKS / "10_llm_supervised_fine_tuning.ipynb"
    acc = stored_table(path, 'table.index.name = f"SmolLM2-135M')["accuracy"]
    lora = row_named(acc, "LoRA")
    assert acc["zero-shot"] < acc["few-shot (5 examples)"] < min(lora, acc["full fine-tuning"])
    assert acc["full fine-tuning"] < minilm.loc["MiniLM: full fine-tuning", "accuracy"]
    rouge = stored_table(path, "rouge = pd.DataFrame(")
    lead = row_named(rouge["rouge1"], "lead")
    assert (
        rouge.loc["SmolLM2 full fine-tuning", "rouge1"]
        > lead
        > rouge.loc["SmolLM2 zero-shot", "rouge1"]
    )
