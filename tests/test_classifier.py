"""Tests of companion.classifier: the encoder + head classifier and the article's flawed one."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.classifier import ArticleStyleClassifier, NewsClassifier
from companion.encoder import Encoder, length_mask


class MeanOfEmbeddings(nn.Module):
    """A minimal encoder with the same contract: mean of the valid tokens' embeddings."""

    output_size = 4

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(10, 4)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple:
        states = self.embedding(ids) * length_mask(lengths, ids.shape[1]).unsqueeze(-1)
        return states, states.sum(1) / lengths.unsqueeze(1)


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[2, 3, 4, 5], [6, 7, 0, 0], [8, 0, 0, 0]])
    return ids, torch.tensor([4, 2, 1])


@pytest.mark.parametrize("encoder", [Encoder(10, 4, 3), MeanOfEmbeddings()])
def test_logits_are_head_of_sentence_vector(encoder: nn.Module) -> None:
    torch.manual_seed(0)
    model = NewsClassifier(encoder, n_classes=5, dropout=0.3).eval()
    ids, lengths = batch()
    with torch.no_grad():
        _, sentence = encoder(ids, lengths)
        expected = sentence @ model.head.weight.T + model.head.bias
        torch.testing.assert_close(model(ids, lengths), expected)


def test_dropout_acts_on_the_sentence_vector_in_training_only() -> None:
    """Inverted dropout: each input of the head is 0 or the eval value / (1 - p)."""
    torch.manual_seed(0)
    p = 0.5
    model = NewsClassifier(MeanOfEmbeddings(), n_classes=3, dropout=p)
    seen: list[torch.Tensor] = []
    model.head.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    ids, lengths = batch()
    with torch.no_grad():
        model.eval()(ids, lengths)
        model.eval()(ids, lengths)
        for _ in range(50):
            model.train()(ids, lengths)
    clean = seen[0]
    assert torch.equal(seen[1], clean), "no dropout in eval mode"
    dropped = torch.stack(seen[2:])
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], (clean / (1 - p)).expand_as(dropped)[kept])
    assert abs(kept.float().mean().item() - (1 - p)) < 0.05  # 600 draws: sd 0.02


def test_bad_classifier_settings_raise() -> None:
    with pytest.raises(TypeError, match="output_size"):
        NewsClassifier(nn.Linear(2, 2), n_classes=3)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2"):
        NewsClassifier(MeanOfEmbeddings(), n_classes=1)


def test_article_style_is_the_articles_computation() -> None:
    torch.manual_seed(0)
    model = ArticleStyleClassifier(10, 4, 3, n_classes=2, max_len=6).eval()
    ids, lengths = batch()
    padded = torch.cat([ids, torch.zeros(3, 2, dtype=torch.long)], dim=1)  # to max_len = 6
    mask = (padded != 0).float()
    with torch.no_grad():
        output, _ = model.lstm(model.embedding(padded) * mask.unsqueeze(-1))
        expected = model.head(output[:, -1, :])
        torch.testing.assert_close(model(ids, lengths), expected)
        long = torch.randint(1, 10, (1, 9))
        torch.testing.assert_close(
            model(long, torch.tensor([9])), model(long[:, :6], torch.tensor([6]))
        )


def test_article_style_reads_padding() -> None:
    """Its forward half is not the state at the last real token (what packing gives)."""
    torch.manual_seed(0)
    model = ArticleStyleClassifier(10, 4, 3, n_classes=2, max_len=6, bidirectional=False).eval()
    ids, lengths = batch()
    with torch.no_grad():
        padded, _ = model.pad_to_max_len(ids, lengths)
        output, _ = model.lstm(model.embedding(padded) * (padded != 0).unsqueeze(-1))
        true_last = output[torch.arange(3), lengths - 1]
        logits = model(ids, lengths)
    assert (output[:, -1] - true_last).abs().amax(dim=1).min() > 1e-3
    torch.testing.assert_close(logits, model.head(output[:, -1]))  # what the classifier reads
    assert (logits - model.head(true_last)).abs().amax() > 1e-4  # not the last real token


def test_article_style_can_read_at_the_last_real_token() -> None:
    """Same padded LSTM, read at each text's last real token; a bad ``read_at`` is refused."""
    torch.manual_seed(0)
    model = ArticleStyleClassifier(10, 4, 3, n_classes=2, max_len=6, read_at="last_token").eval()
    ids, lengths = batch()
    with torch.no_grad():
        padded, _ = model.pad_to_max_len(ids, lengths)
        output, _ = model.lstm(model.embedding(padded) * (padded != 0).unsqueeze(-1))
        expected = model.head(output[torch.arange(3), lengths - 1])
        torch.testing.assert_close(model(ids, lengths), expected)
    with pytest.raises(ValueError, match="read_at must be 'end' or 'last_token', got 'middle'"):
        ArticleStyleClassifier(10, 4, 3, n_classes=2, read_at="middle")
