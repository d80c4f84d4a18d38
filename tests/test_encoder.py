"""Tests of companion.encoder: packed (bi)LSTM encoder, pooling, pretrained embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gensim.models import KeyedVectors
from torch import nn

from companion.encoder import POOLINGS, Encoder, embedding_matrix_from, length_mask
from companion.text import Vocab

VOCAB = 30


def make_encoder(pooling: str = "last", bidirectional: bool = True, layers: int = 2) -> Encoder:
    """A small encoder in eval mode with fixed random weights."""
    torch.manual_seed(0)
    return Encoder(VOCAB, 6, 5, num_layers=layers, bidirectional=bidirectional, pooling=pooling)


def padded_batch(lengths: list[int], pad_id: int = 0) -> tuple:
    """Random ids (the same for the same lengths) right-padded with ``pad_id``."""
    gen = torch.Generator().manual_seed(1)
    width = max(lengths)
    ids = torch.randint(2, VOCAB, (len(lengths), width), generator=gen)
    lens = torch.tensor(lengths)
    ids[~length_mask(lens, width)] = pad_id
    return ids, lens


def reference(enc: Encoder, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unpacked nn.LSTM (copied weights) on an unpadded batch: states and final h."""
    lstm = nn.LSTM(6, 5, num_layers=enc.lstm.num_layers, batch_first=True,
                   bidirectional=enc.num_directions == 2)  # fmt: skip
    lstm.load_state_dict(enc.lstm.state_dict())
    states, (h_n, _) = lstm(enc.embedding(ids))
    return states, torch.cat(list(h_n[-enc.num_directions :]), dim=-1)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_matches_unpacked_lstm_on_unpadded_batch(pooling: str, bidirectional: bool) -> None:
    enc = make_encoder(pooling, bidirectional).eval()
    ids, lengths = padded_batch([7, 7, 7])
    with torch.no_grad():
        states, sentence = enc(ids, lengths)
        ref_states, ref_last = reference(enc, ids)
    torch.testing.assert_close(states, ref_states)
    expected = {"last": ref_last, "mean": ref_states.mean(1), "max": ref_states.amax(1)}
    torch.testing.assert_close(sentence, expected[pooling])


def test_last_pooling_is_forward_last_valid_and_backward_first() -> None:
    enc = make_encoder("last", bidirectional=True).eval()
    ids, lengths = padded_batch([6, 2, 4])
    with torch.no_grad():
        states, sentence = enc(ids, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(sentence[b, :5], states[b, n - 1, :5])
        torch.testing.assert_close(sentence[b, 5:], states[b, 0, 5:])


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_padding_changes_nothing(pooling: str, bidirectional: bool) -> None:
    enc = make_encoder(pooling, bidirectional).eval()
    ids, lengths = padded_batch([6, 2, 4, 1])
    other_pad, _ = padded_batch([6, 2, 4, 1], pad_id=7)  # garbage in the padded slots
    wider = nn.functional.pad(ids, (0, 5), value=0)  # five more columns of padding
    with torch.no_grad():
        states, sentence = enc(ids, lengths)
        states_other, sentence_other = enc(other_pad, lengths)
        states_wide, sentence_wide = enc(wider, lengths)
        alone = [enc(ids[b : b + 1, :n], lengths[b : b + 1]) for b, n in enumerate(lengths)]
    torch.testing.assert_close(sentence_other, sentence, rtol=0, atol=0)
    torch.testing.assert_close(states_other, states, rtol=0, atol=0)
    # A wider batch may change the fused kernel's float rounding (~1e-8), nothing more.
    torch.testing.assert_close(sentence_wide, sentence)
    torch.testing.assert_close(states_wide[:, : ids.shape[1]], states)
    assert not states_wide[:, ids.shape[1] :].any()
    assert not states[~length_mask(lengths, ids.shape[1])].any(), "padded states must be zero"
    for b, (s, v) in enumerate(alone):
        torch.testing.assert_close(v[0], sentence[b])
        torch.testing.assert_close(s[0], states[b, : lengths[b]])


@pytest.mark.parametrize("pooling", POOLINGS)
def test_forward_only_path_equals_packing(pooling: str) -> None:
    """A unidirectional encoder skips packing; its result must equal the packed LSTM's."""
    enc = make_encoder(pooling, bidirectional=False).eval()
    ids, lengths = padded_batch([6, 2, 4, 1])
    with torch.no_grad():
        states, sentence = enc(ids, lengths)
        packed = nn.utils.rnn.pack_padded_sequence(
            enc.embedding(ids), lengths, batch_first=True, enforce_sorted=False
        )
        out, (h_n, _) = enc.lstm(packed)
        ref_states, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
    torch.testing.assert_close(states, ref_states)
    valid = length_mask(lengths, ids.shape[1]).unsqueeze(-1)
    expected = {
        "last": h_n[-1],
        "mean": ref_states.sum(1) / lengths.unsqueeze(1),
        "max": ref_states.masked_fill(~valid, float("-inf")).amax(1),
    }
    torch.testing.assert_close(sentence, expected[pooling])


def test_output_size_and_shapes() -> None:
    for bidirectional, width in ((False, 5), (True, 10)):
        enc = make_encoder(bidirectional=bidirectional)
        ids, lengths = padded_batch([3, 5])
        states, sentence = enc(ids, lengths)
        assert enc.output_size == width
        assert states.shape == (2, 5, width) and sentence.shape == (2, width)


def test_pretrained_embeddings_copied_and_frozen() -> None:
    table = torch.randn(VOCAB, 6)
    enc = Encoder(VOCAB, 6, 5, embeddings=table, freeze=True)
    torch.testing.assert_close(enc.embedding.weight, table)
    assert not enc.embedding.weight.requires_grad
    assert Encoder(VOCAB, 6, 5, embeddings=table).embedding.weight.requires_grad


@pytest.mark.parametrize(
    ("ids", "lengths", "match"),
    [
        (torch.zeros(0, 4, dtype=torch.long), torch.zeros(0, dtype=torch.long), "empty batch"),
        (torch.full((2, 3), VOCAB), torch.tensor([3, 3]), r"token ids must lie in 0\.\.29"),
        (torch.full((2, 3), -1), torch.tensor([3, 3]), "token ids must lie"),
        (torch.ones(2, 3, dtype=torch.long), torch.tensor([4, 3]), r"lengths must lie in 1\.\.3"),
        (torch.ones(2, 3, dtype=torch.long), torch.tensor([0, 3]), r"lengths must lie in 1\.\.3"),
        (torch.ones(2, 3, dtype=torch.long), torch.tensor([3]), "lengths must be 1-d with 2"),
        (torch.ones(2, 3), torch.tensor([3, 3]), "ids must be a LongTensor"),
    ],
)
def test_bad_batches_raise(ids: torch.Tensor, lengths: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_encoder()(ids, lengths)


def test_bad_settings_raise() -> None:
    with pytest.raises(ValueError, match="pooling must be one of"):
        Encoder(VOCAB, 6, 5, pooling="first")
    with pytest.raises(ValueError, match=r"embeddings must have shape .* \(30, 6\)"):
        Encoder(VOCAB, 6, 5, embeddings=torch.zeros(VOCAB, 7))
    with pytest.raises(ValueError, match="hidden_size must be an integer >= 1"):
        Encoder(VOCAB, 6, 0)


def test_embedding_matrix_from_keyed_vectors() -> None:
    kv = KeyedVectors(vector_size=3)
    kv.add_vectors(["cat", "dog", "fish"], np.arange(9, dtype=np.float32).reshape(3, 3))
    vocab = Vocab(["<pad>", "<unk>", "dog", "zebra", "cat", "yak"])
    matrix, coverage = embedding_matrix_from(vocab, kv)
    assert coverage == 2 / 4  # dog and cat of the four ordinary tokens
    torch.testing.assert_close(matrix[2], torch.tensor([3.0, 4.0, 5.0]))
    torch.testing.assert_close(matrix[4], torch.tensor([0.0, 1.0, 2.0]))
    assert not matrix[0].any(), "<pad> must be the zero vector"
    assert matrix[[1, 3, 5]].abs().sum() > 0, "unknown tokens get random vectors"
    again, _ = embedding_matrix_from(vocab, kv)
    torch.testing.assert_close(again, matrix)  # seeded
    zero, _ = embedding_matrix_from(vocab, kv, scale=0.0)
    assert not zero[[1, 3, 5]].any()


def test_embedding_matrix_scale_defaults_to_found_vectors_std() -> None:
    kv = KeyedVectors(vector_size=50)
    kv.add_vectors(
        [f"w{i}" for i in range(400)], np.random.default_rng(0).normal(0, 2.0, (400, 50))
    )
    vocab = Vocab(
        ["<pad>", "<unk>"] + [f"w{i}" for i in range(200)] + [f"x{i}" for i in range(200)]
    )
    matrix, coverage = embedding_matrix_from(vocab, kv)
    assert coverage == 0.5
    assert abs(float(matrix[202:].std()) - float(matrix[2:202].std())) < 0.1


def test_embedding_matrix_from_rejects_non_vectors() -> None:
    with pytest.raises(TypeError, match="must look like gensim KeyedVectors"):
        embedding_matrix_from(Vocab(["<pad>", "<unk>"]), {"cat": [1.0]})
