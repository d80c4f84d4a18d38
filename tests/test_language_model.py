"""Tests of companion.language_model against plain PyTorch and hand-built examples."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from companion import language_model
from companion.config import seed_everything
from companion.language_model import (
    EOS,
    LanguageModel,
    PretrainSettings,
    StreamWindows,
    checkpoint_name,
    evaluate_lm,
    leaked_texts,
    lm_step,
    nearest_words,
    pretrain,
    pretraining_data,
    pretraining_texts,
    sample,
    stream_loader,
    token_stream,
)
from companion.text import Vocab, tokenize
from companion.train import TrainConfig


def downstream() -> pd.DataFrame:
    return pd.DataFrame({
        "text": ["Shares rose today.", "The match ended 2-1.", "A new phone.", "Rates fell."],
        "split": ["train", "validation", "test", "train"],
    })  # fmt: skip


def test_pretraining_corpus_excludes_every_validation_and_test_text() -> None:
    extra = {"other news": ["the MATCH ended 2-1 .", "Something else entirely.", "A new  phone."]}
    corpus = pretraining_texts(downstream(), extra)
    assert list(corpus["text"]) == ["Shares rose today.", "Rates fell.", "Something else entirely."]
    assert list(corpus["source"]) == ["downstream train", "downstream train", "other news"]
    assert corpus.attrs["removed"] == {"downstream train": 0, "other news": 2}
    assert leaked_texts(corpus["text"], downstream()) == 0
    assert leaked_texts(extra["other news"], downstream()) == 2


def test_pretraining_data_keeps_held_out_text_out_and_builds_the_vocabulary_on_lm_train(
    monkeypatch,
) -> None:
    extra = {"other news": ["the MATCH ended 2-1 .", *[f"story w{i} w{i}" for i in range(40)]]}
    monkeypatch.setattr(language_model, "extra_news", lambda settings: (extra, ["a note"]))
    settings = PretrainSettings(vocab_size=50, max_tokens=30, val_share=0.3, seed=1)
    data = pretraining_data(downstream(), settings)
    assert leaked_texts(data.corpus["text"], downstream()) == 0 and data.notes == ["a note"]
    lm_train = data.corpus.loc[data.corpus["lm_split"] == "train", "text"]
    lm_val = data.corpus.loc[data.corpus["lm_split"] == "val", "text"]
    assert len(lm_train) and len(lm_val) and len(lm_train) + len(lm_val) == len(data.corpus)
    train_words = {w for t in lm_train for w in tokenize(t)}
    assert set(data.vocab.itos) - {"<pad>", "<unk>", EOS} <= train_words  # none from LM-val only
    assert len(data.train_stream) == 30  # capped at max_tokens
    assert torch.equal(data.val_stream, token_stream(lm_val, data.vocab))


def test_checkpoint_name_is_stable_and_changes_with_settings_and_corpus() -> None:
    settings = {"hidden_size": 8, "lr": 0.003}
    name = checkpoint_name(settings, "abc")
    assert name == checkpoint_name(dict(reversed(settings.items())), "abc")  # key order ignored
    assert name.startswith("lm-") and len(name) == 19
    assert name != checkpoint_name({**settings, "lr": 0.001}, "abc")
    assert name != checkpoint_name(settings, "abd")


def test_token_stream_ends_each_document() -> None:
    vocab = Vocab.build([["a", "b", EOS]])
    stream = token_stream(["a b", "b"], vocab)
    assert vocab.decode(stream.tolist()) == ["a", "b", EOS, "b", EOS]


def test_windows_are_shifted_by_one_and_cover_the_stream() -> None:
    stream = torch.arange(11)
    windows = StreamWindows(stream, seq_len=3)
    assert len(windows) == 3  # (11 - 1) // 3
    x, y = windows[1]
    assert x.tolist() == [3, 4, 5] and y.tolist() == [4, 5, 6]
    with pytest.raises(IndexError):
        windows[3]
    with pytest.raises(ValueError, match="at least seq_len"):
        StreamWindows(torch.arange(3), seq_len=3)


def tiny_lm(tie: bool = True, hidden: int = 6) -> LanguageModel:
    seed_everything(0)
    return LanguageModel(vocab_size=12, embed_dim=4, hidden_size=hidden, tie=tie)


def test_logits_match_plain_pytorch_with_tied_weights() -> None:
    model = tiny_lm().eval()
    assert model.tied
    assert model.output.weight.data_ptr() == model.encoder.embedding.weight.data_ptr()
    ids = torch.randint(2, 12, (3, 7))
    lstm = nn.LSTM(4, 6, batch_first=True)
    lstm.load_state_dict(model.encoder.lstm.state_dict())
    states, _ = lstm(nn.functional.embedding(ids, model.encoder.embedding.weight))
    projected = states @ model.projection.weight.T + model.projection.bias
    expected = projected @ model.encoder.embedding.weight.T + model.output.bias
    torch.testing.assert_close(model(ids), expected)


def test_untied_model_has_its_own_output_matrix() -> None:
    tied, untied = tiny_lm(tie=True), tiny_lm(tie=False)
    extra = sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters())
    assert extra == 12 * 4 and not untied.tied
    assert tiny_lm(hidden=4).projection is None


def test_a_shared_encoder_keeps_the_tie_and_the_language_model_trains_it() -> None:
    lm, other = tiny_lm(), tiny_lm()
    shared = other.encoder
    assigned = tiny_lm()
    assigned.encoder = shared  # plain assignment: the output layer keeps the old table
    assert not assigned.tied
    lm.use_encoder(shared)
    assert lm.tied and lm.encoder is shared and lm.output.weight is shared.embedding.weight
    own = sum(p.numel() for p in lm.projection.parameters()) + lm.output.bias.numel()
    both = nn.ModuleDict({"encoder": shared, "lm": lm})
    assert (
        sum(p.numel() for p in both.parameters())
        == sum(p.numel() for p in shared.parameters()) + own
    )
    before = shared.embedding.weight.detach().clone()
    ids = torch.randint(2, 12, (2, 5))
    loss = nn.functional.cross_entropy(lm(ids).flatten(0, 1), ids.flatten())
    loss.backward()
    torch.optim.SGD(lm.parameters(), lr=1.0).step()
    assert not torch.equal(shared.embedding.weight, before)


def test_an_encoder_that_does_not_fit_is_refused_and_nothing_changes() -> None:
    lm = tiny_lm()
    encoder = lm.encoder
    for wrong in (tiny_lm(hidden=5).encoder, LanguageModel(13, 4, 6).encoder):
        with pytest.raises(ValueError, match="does not fit"):
            lm.use_encoder(wrong)
        assert lm.encoder is encoder and lm.tied
    untied = tiny_lm(tie=False)
    untied.use_encoder(tiny_lm().encoder)
    assert not untied.tied


def test_loss_and_perplexity_match_torch_cross_entropy() -> None:
    model = tiny_lm()
    batches = [(torch.randint(2, 12, (2, 5)), torch.randint(2, 12, (2, 5))) for _ in range(3)]
    with torch.no_grad():
        logits = torch.cat([model(x) for x, _ in batches]).flatten(0, 1)
        targets = torch.cat([y for _, y in batches]).flatten()
        reference = nn.functional.cross_entropy(logits, targets).item()
    metrics = evaluate_lm(model, batches, torch.device("cpu"))
    assert model.training  # the caller's mode comes back
    assert metrics["loss"] == pytest.approx(reference, rel=1e-6)
    assert metrics["perplexity"] == pytest.approx(math.exp(reference), rel=1e-6)
    step = lm_step(model, batches[0], torch.device("cpu"))
    inputs, targets = batches[0]
    log_probs = model(inputs).log_softmax(-1)  # the mean of -log p(target), written out
    manual = -log_probs.gather(-1, targets.unsqueeze(-1)).mean()
    torch.testing.assert_close(step, manual)


def test_a_hopeless_model_has_infinite_perplexity_not_an_overflow() -> None:
    model = tiny_lm(tie=False)
    with torch.no_grad():
        model.output.bias[3] = 1e4  # every position bets everything on token 3
    batches = [(torch.randint(4, 12, (2, 5)), torch.randint(4, 12, (2, 5)))]
    metrics = evaluate_lm(model, batches, torch.device("cpu"))
    assert metrics["loss"] > 1000 and metrics["perplexity"] == math.inf


def test_pretraining_learns_a_repeating_stream_and_resumes_from_its_checkpoint(tmp_path) -> None:
    stream = torch.tensor([2, 3, 4, 5, 6] * 60)
    model = tiny_lm(hidden=16)
    config = TrainConfig(epochs=8, lr=3e-2, device="cpu", progress=False, patience=None,
                         checkpoint_dir=tmp_path)  # fmt: skip
    result = pretrain(model, stream, stream[:101], seq_len=10, batch_size=4, config=config)
    assert result.history["val_perplexity"].iloc[-1] < 1.5  # near-deterministic next token
    again = tiny_lm(hidden=16)
    reread = pretrain(again, stream, stream[:101], seq_len=10, batch_size=4, config=config)
    assert reread.resumed_from == 8
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)


def test_sampling_follows_the_learned_cycle_and_respects_blocked_tokens() -> None:
    words = ["a", "b", "c", "d", "e"]
    vocab = Vocab.build([words])
    stream = token_stream([" ".join(words * 40)], vocab)
    model = LanguageModel(len(vocab), 8, 16)
    config = TrainConfig(epochs=10, lr=3e-2, device="cpu", progress=False, patience=None)
    pretrain(model, stream, stream[:101], seq_len=10, batch_size=4, config=config)
    text = sample(model, vocab, "a b", n_tokens=8, temperature=0.3, seed=1)
    assert text == "a b c d e a b c d e"
    cold = sample(model, vocab, "a", n_tokens=5, temperature=1e-3, seed=2, blocked=["b"])
    assert "b" not in cold.split()[1:]
    with pytest.raises(ValueError, match="temperature"):
        sample(model, vocab, "a", temperature=0)


def test_stream_loader_shuffles_reproducibly() -> None:
    stream = torch.arange(41)
    first = [x[:, 0].tolist() for x, _ in stream_loader(stream, 4, 3, seed=5)]
    second = [x[:, 0].tolist() for x, _ in stream_loader(stream, 4, 3, seed=5)]
    assert first == second and sorted(sum(first, [])) == list(range(0, 40, 4))


def test_nearest_words_by_cosine() -> None:
    vocab = Vocab.build([tokenize("x y z")])
    table = torch.tensor([[9.0, 9], [9, -9], [1, 0], [0.9, 0.1], [0, 1]])  # pad, unk, x, y, z
    assert nearest_words(table, vocab, "x", k=2) == ["y", "z"]
    with pytest.raises(KeyError, match="not in the vocabulary"):
        nearest_words(table, vocab, "w")
