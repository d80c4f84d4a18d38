"""The first-token recall task and its training loop."""

from __future__ import annotations

import pytest
import torch

from companion.lstm import LSTM, RNN, ArticleGatedRNN
from companion.tasks import RecallClassifier, first_token_recall, train_recall


def test_first_token_recall_layout():
    gen = torch.Generator().manual_seed(0)
    ids, target = first_token_recall(200, 7, num_symbols=3, num_distractors=4, generator=gen)
    assert ids.shape == (200, 7) and target.shape == (200,)
    assert torch.equal(ids[:, 0], target)
    assert target.min() >= 0 and target.max() < 3
    assert ids[:, 1:].min() >= 3 and ids[:, 1:].max() < 7
    assert set(target.tolist()) == {0, 1, 2}


def test_first_token_recall_repeats_with_seed():
    a = first_token_recall(4, 5, generator=torch.Generator().manual_seed(1))
    b = first_token_recall(4, 5, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_seq_len_one_has_no_distractors():
    ids, target = first_token_recall(3, 1)
    assert ids.shape == (3, 1) and torch.equal(ids[:, 0], target)


@pytest.mark.parametrize("bad", [0, -2])
def test_bad_sizes_raise(bad):
    with pytest.raises(ValueError, match="seq_len must be an integer >= 1"):
        first_token_recall(4, bad)


@pytest.mark.parametrize(
    ("kind", "cls"), [("rnn", RNN), ("lstm", LSTM), ("article", ArticleGatedRNN)]
)
def test_classifier_kinds(kind, cls):
    model = RecallClassifier(kind, vocab_size=6, num_classes=3, hidden_size=4, forget_bias=2.0)
    assert type(model.rnn) is cls
    ids = torch.randint(6, (5, 8))
    states, _ = model.rnn(model.embed(ids))  # read-out of the last time step, by hand
    expected = states[:, -1] @ model.head.weight.T + model.head.bias
    torch.testing.assert_close(model(ids), expected)
    if kind == "lstm":
        assert torch.allclose(model.rnn.bias_ih_l0[4:8], torch.full((4,), 2.0))


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="unknown kind 'gru'"):
        RecallClassifier("gru", 6, 3)


def test_lstm_learns_short_recall():
    result = train_recall("lstm", seq_len=3, steps=150, lr=1e-2, num_symbols=4, num_distractors=2)
    assert result["accuracy"] > 0.95
    assert result["losses"][-1] < result["losses"][0]


def test_early_stop():
    result = train_recall(
        "lstm", seq_len=2, steps=400, num_symbols=2, num_distractors=1, stop_loss=0.5
    )
    assert len(result["losses"]) < 400
    assert sum(result["losses"][-20:]) / 20 < 0.5
