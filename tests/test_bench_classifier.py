"""benchmarks/bench_classifier.py: the three approaches on a few AG News texts."""

from __future__ import annotations

import sys

import pytest
import torch

from companion.config import REPO_ROOT
from companion.glove import load_pretrained_glove

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from bench_classifier import (  # noqa: E402
    BenchSettings,
    format_report,
    load_split,
    make_model,
    parse_args,
    run_benchmark,
)

TINY = {"dataset": "ag_news", "epochs": 1, "limit": 96, "batch_size": 32, "hidden_size": 8,
        "device": "cpu"}  # fmt: skip


def test_every_approach_trains_on_the_same_real_tokens() -> None:
    table = run_benchmark(BenchSettings(**TINY, embed_dim=8))
    assert list(table.index) == ["article", "padded", "bucketed"]
    assert table["real_tokens"].nunique() == 1
    assert table.loc["bucketed", "padding_share"] < table.loc["padded", "padding_share"]
    assert table.loc["padded", "speedup"] == pytest.approx(1.0)
    assert table[["test_accuracy", "test_macro_f1"]].stack().between(0, 1).all()
    assert 0.25 < table.attrs["tfidf_accuracy"] <= 1.0  # four classes: above chance
    assert "TF-IDF + logistic regression on the same split" in format_report(table, False)


def test_glove_start_copies_the_pretrained_vectors_into_every_model() -> None:
    settings = BenchSettings(**TINY, embed_dim=50, glove=True)
    data = load_split(settings)
    glove = load_pretrained_glove()
    vocab = data.vocab
    word = next(w for w in vocab.itos[2:] if w in glove.key_to_index)
    expected = torch.from_numpy(glove[word])
    for approach in ("article", "padded", "bucketed"):
        model = make_model(approach, data, settings)
        table = next(m for m in model.modules() if isinstance(m, torch.nn.Embedding))
        torch.testing.assert_close(table.weight[vocab.stoi[word]], expected, rtol=0, atol=0)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="embed_dim must be 50"):
        BenchSettings(glove=True, embed_dim=64)
    with pytest.raises(ValueError, match="must be >= 1"):
        BenchSettings(epochs=0)
    settings = parse_args(["--glove", "--epochs", "3", "--hidden-size", "32", "--lr", "0.003"])
    assert (settings.glove, settings.embed_dim, settings.epochs) == (True, 50, 3)
    assert (settings.hidden_size, settings.lr) == (32, 0.003)
