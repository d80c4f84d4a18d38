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
    make_loader,
    make_model,
    parse_args,
    run_benchmark,
)

TINY = {"dataset": "ag_news", "epochs": 1, "limit": 96, "batch_size": 32, "hidden_size": 8,
        "device": "cpu"}  # fmt: skip


def test_every_approach_trains_on_the_same_real_tokens() -> None:
    settings = BenchSettings(**TINY, embed_dim=8)
    table = run_benchmark(settings)
    assert list(table.index) == ["article", "padded", "bucketed"]
    train = load_split(settings).train
    for approach in table.index:  # count what each loader really feeds, batch by batch
        loader = make_loader(train, approach, settings, train=True)
        if approach == "bucketed":
            loader.batch_sampler.set_epoch(settings.epochs - 1)  # the order padded_tokens reads
        batches = list(loader)
        real = settings.epochs * sum(int(lengths.sum()) for _, lengths, _ in batches)
        assert table.loc[approach, "real_tokens"] == real
        # bucketed batches are as wide as their longest row; the other two pad to max_len
        widths = [
            ids.shape[1] if approach == "bucketed" else settings.max_len for ids, _, _ in batches
        ]
        fed = settings.epochs * sum(
            len(ids) * w for (ids, _, _), w in zip(batches, widths, strict=True)
        )
        assert table.loc[approach, "tokens_fed"] == fed
    assert table.loc["bucketed", "padding_share"] < table.loc["padded", "padding_share"]
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
