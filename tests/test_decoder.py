"""Tests for companion.decoder: attention, teacher forcing, greedy and beam decoding."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from companion.config import seed_everything
from companion.decoder import (
    AdditiveAttention,
    AttentionDecoder,
    DotAttention,
    Seq2Seq,
    evaluate_seq2seq,
    make_attention,
    masked_softmax,
    seq2seq_step,
    strip_special,
)
from companion.encoder import Encoder
from companion.seq2seq_data import BOS_ID, EOS_ID, collate_pairs

SRC_V, TGT_V = 11, 9


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread (and do not fight other processes for cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_model(attention: str = "additive", tgt_vocab: int = TGT_V, seed: int = 0) -> Seq2Seq:
    """A small random model (eval mode) over SRC_V source and ``tgt_vocab`` target ids."""
    seed_everything(seed)
    enc = Encoder(SRC_V, 6, 5, bidirectional=True)
    dec = AttentionDecoder(tgt_vocab, 6, 10 if attention == "dot" else 7, 10, attention=attention)
    return Seq2Seq(enc, dec, bos_id=BOS_ID, eos_id=EOS_ID).eval()


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Three right-padded sources of lengths 5, 2, 4 and random targets of length 6."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([5, 2, 4])
    src = torch.randint(1, SRC_V, (3, 5), generator=gen)
    src[torch.arange(5)[None, :] >= lengths[:, None]] = 0
    tgt_in = torch.randint(4, TGT_V, (3, 6), generator=gen)
    tgt_in[:, 0] = BOS_ID
    return src, lengths, tgt_in


def test_masked_softmax_matches_softmax_over_unmasked_positions() -> None:
    scores = torch.randn(2, 5)
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    weights = masked_softmax(scores, mask)
    torch.testing.assert_close(weights[0, :3], torch.softmax(scores[0, :3], dim=0))
    assert torch.equal(weights[0, 3:], torch.zeros(2))
    torch.testing.assert_close(weights[1], torch.softmax(scores[1], dim=0))


def test_additive_scores_match_formula() -> None:
    torch.manual_seed(0)
    attn = AdditiveAttention(query_size=3, key_size=4, attn_size=5)
    q, k = torch.randn(2, 3), torch.randn(2, 6, 4)
    w_q, w_k, b_k, v = (
        attn.query_proj.weight,
        attn.key_proj.weight,
        attn.key_proj.bias,
        attn.v.weight,
    )
    expected = torch.stack(
        [
            torch.stack([v[0] @ torch.tanh(w_q @ q[b] + w_k @ k[b, j] + b_k) for j in range(6)])
            for b in range(2)
        ]
    )
    torch.testing.assert_close(attn.scores(q, k), expected)
    context, weights = attn(q, k)
    torch.testing.assert_close(context, torch.einsum("bt,bth->bh", torch.softmax(expected, -1), k))
    torch.testing.assert_close(weights.sum(-1), torch.ones(2))


@pytest.mark.parametrize("general", [True, False])
def test_dot_scores_match_formula(general: bool) -> None:
    torch.manual_seed(0)
    attn = DotAttention(query_size=4, key_size=4, general=general)
    q, k = torch.randn(2, 4), torch.randn(2, 3, 4)
    w = attn.proj.weight if general else torch.eye(4)
    expected = torch.stack([torch.stack([q[b] @ w @ k[b, j] for j in range(3)]) for b in range(2)])
    torch.testing.assert_close(attn.scores(q, k), expected)


@pytest.mark.parametrize("attention", ["additive", "general", "dot"])
def test_attention_sums_to_one_and_ignores_padding(attention: str) -> None:
    model = make_model(attention)
    src, lengths, tgt_in = batch()
    logits, weights = model(src, lengths, tgt_in)
    assert logits.shape == (3, 6, TGT_V) and weights.shape == (3, 6, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 6))
    padded = torch.arange(5)[None, None, :] >= lengths[:, None, None]
    assert torch.equal(weights[padded.expand_as(weights)], torch.zeros(int(padded.sum()) * 6))
    # The padded row decodes exactly as it does alone, without padding.
    alone_logits, alone_weights = model(src[1:2, :2], lengths[1:2], tgt_in[1:2])
    torch.testing.assert_close(logits[1:2], alone_logits)
    torch.testing.assert_close(weights[1:2, :, :2], alone_weights)


def test_teacher_forcing_one_feeds_gold_tokens() -> None:
    model = make_model()
    src, lengths, tgt_in = batch()
    logits, _ = model(src, lengths, tgt_in, teacher_forcing=1.0)
    changed = tgt_in.clone()
    changed[:, 3] = (changed[:, 3] - 4 + 1) % (TGT_V - 4) + 4  # another ordinary token
    logits2, _ = model(src, lengths, changed, teacher_forcing=1.0)
    torch.testing.assert_close(logits[:, :3], logits2[:, :3])  # steps before the change agree
    assert not torch.allclose(logits[:, 3], logits2[:, 3])  # the step reading it differs


def test_teacher_forcing_zero_feeds_own_predictions_like_greedy() -> None:
    model = make_model(tgt_vocab=40)  # large vocabulary: <eos> is unlikely to come early
    src, lengths, tgt_in = batch()
    logits, weights = model(src, lengths, tgt_in, teacher_forcing=0.0)
    other = torch.randint(4, 40, tgt_in.shape)
    other[:, 0] = BOS_ID
    logits2, _ = model(src, lengths, other, teacher_forcing=0.0)
    torch.testing.assert_close(logits, logits2)  # only <bos> is read from the target
    tokens, greedy_weights = model.greedy_decode(src, lengths, max_len=6)
    predicted = logits.argmax(-1)
    greedy = strip_special(tokens, EOS_ID)
    assert all(len(toks) >= 3 for toks in greedy)  # the comparison below covers real steps
    for row, toks in enumerate(greedy):
        n = len(toks)
        assert predicted[row, :n].tolist() == toks
        torch.testing.assert_close(weights[row, :n], greedy_weights[row, :n])


def test_teacher_forcing_ratio_mixes_per_example() -> None:
    model = make_model(tgt_vocab=40)
    src, lengths, tgt_in = batch()
    gold, _ = model(src, lengths, tgt_in, teacher_forcing=1.0)
    free, _ = model(src, lengths, tgt_in, teacher_forcing=0.0)
    torch.manual_seed(3)
    mixed, _ = model(src, lengths, tgt_in, teacher_forcing=0.5)
    last = mixed[:, -1]
    assert not torch.allclose(last, gold[:, -1]) and not torch.allclose(last, free[:, -1])
    # By hand: after each step, one coin per example picks gold or the model's own arg-max.
    torch.manual_seed(3)
    states, mask, h, c = model.encode(src, lengths)
    prev, state, expected, coins = tgt_in[:, 0], (h, c), [], []
    with torch.no_grad():
        for t in range(tgt_in.shape[1]):
            logits, state, _ = model.decoder.step(prev, state, states, mask)
            expected.append(logits)
            if t + 1 < tgt_in.shape[1]:
                coins.append(torch.rand(len(prev)) < 0.5)
                prev = torch.where(coins[-1], tgt_in[:, t + 1], logits.argmax(-1))
    coins = torch.stack(coins)
    assert coins.any() and not coins.all() and (coins != coins[:, :1]).any()  # mixed per row
    torch.testing.assert_close(mixed.detach(), torch.stack(expected, dim=1))


@pytest.mark.parametrize("attention", ["additive", "general"])
def test_beam_one_equals_greedy(attention: str) -> None:
    for seed in range(4):
        model = make_model(attention, seed=seed)
        src, lengths, _ = batch(seed)
        tokens, weights = model.greedy_decode(src, lengths, max_len=8)
        for row, toks in enumerate(strip_special(tokens, EOS_ID)):
            n = int(lengths[row])
            (best,) = model.beam_search(src[row : row + 1, :n], lengths[row : row + 1], 1, 8)
            assert best.tokens == toks
            torch.testing.assert_close(best.weights[:, :n], weights[row, : len(best.weights), :n])


@torch.no_grad()
def sequence_log_prob(
    model: Seq2Seq, src: torch.Tensor, lengths: torch.Tensor, toks: list
) -> float:
    """log p(toks) under teacher forcing, computed from the forward pass."""
    tgt_in = torch.tensor([[BOS_ID, *toks[:-1]]])
    logits, _ = model(src, lengths, tgt_in)
    return float(torch.log_softmax(logits[0], -1)[torch.arange(len(toks)), toks].sum())


@pytest.mark.parametrize("penalty", [0.0, 1.0])
def test_beam_search_scores_and_exhaustive_optimum(penalty: float) -> None:
    vocab = 5  # <pad> <unk> <bos> <eos> and one word: every sequence can be enumerated
    model = make_model(tgt_vocab=vocab, seed=1)
    src, lengths = torch.tensor([[3, 5, 7]]), torch.tensor([3])
    hyps = model.beam_search(src, lengths, beam_size=200, max_len=3, length_penalty=penalty)
    for hyp in hyps:
        full = hyp.tokens + [EOS_ID] if hyp.finished else hyp.tokens
        assert hyp.log_prob == pytest.approx(sequence_log_prob(model, src, lengths, full), abs=1e-5)
        assert hyp.score == pytest.approx(hyp.log_prob / len(full) ** penalty)
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    words = [t for t in range(vocab) if t != EOS_ID]
    candidates = [list(p) + [EOS_ID] for n in range(3) for p in itertools.product(words, repeat=n)]
    candidates += [list(p) for p in itertools.product(words, repeat=3)]
    scores = [sequence_log_prob(model, src, lengths, c) / len(c) ** penalty for c in candidates]
    assert len(hyps) == len(candidates)
    assert hyps[0].score == pytest.approx(max(scores), abs=1e-5)


def test_tiny_model_overfits_a_few_pairs() -> None:
    seed_everything(0)
    enc = Encoder(SRC_V, 16, 16, bidirectional=True)
    model = Seq2Seq(enc, AttentionDecoder(TGT_V, 16, 32, 32), bos_id=BOS_ID, eos_id=EOS_ID)
    pairs = [
        (torch.tensor([5, 6, 7]), torch.tensor([BOS_ID, 7, 6, 5, EOS_ID])),
        (torch.tensor([8, 9]), torch.tensor([BOS_ID, 4, 8, EOS_ID])),
        (torch.tensor([10, 4, 4, 6]), torch.tensor([BOS_ID, 6, 4, 4, 8, EOS_ID])),
        (torch.tensor([2, 3]), torch.tensor([BOS_ID, 5, EOS_ID])),
    ]
    loader = DataLoader(pairs, batch_size=4, collate_fn=collate_pairs)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(80):
        loss = seq2seq_step(model, next(iter(loader)), torch.device("cpu"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    metrics = evaluate_seq2seq(model, loader, torch.device("cpu"))
    assert metrics["exact_match"] == 1.0 and metrics["token_accuracy"] == 1.0
    assert metrics["loss"] < 0.05
    assert model.training  # evaluate restores the mode


def test_evaluate_matches_hand_count() -> None:
    model = make_model()
    with torch.no_grad():
        model.decoder.out.bias[EOS_ID] += 2.0  # make <eos> come early
    src, lengths, tgt_in = batch()
    tokens, _ = model.greedy_decode(src, lengths, max_len=6)
    assert (tokens == EOS_ID).any(dim=1).all()
    predicted = strip_special(tokens, EOS_ID)
    # Targets: row 0 is row 0's greedy output (exact), row 1 one wrong token, row 2 unrelated.
    targets = [predicted[0], [4] if predicted[1][:1] != [4] else [5], [4, 4, 4, 4, 4]]
    pairs = [
        (src[i, : int(lengths[i])], torch.tensor([BOS_ID, *t, EOS_ID]))
        for i, t in enumerate(targets)
    ]
    metrics = evaluate_seq2seq(
        model, DataLoader(pairs, batch_size=2, collate_fn=collate_pairs), torch.device("cpu")
    )
    right = sum(p == t for p, t in zip(predicted, targets, strict=True))
    assert metrics["exact_match"] == pytest.approx(right / 3)
    gold = [t + [EOS_ID] for t in targets]
    full = [p + [EOS_ID] for p in predicted]
    hits = sum(a == b for g, p in zip(gold, full, strict=True) for a, b in zip(g, p, strict=False))
    assert metrics["token_accuracy"] == pytest.approx(hits / sum(map(len, gold)))
    src_b, lengths_b, tgt_b, _ = collate_pairs(pairs)
    with torch.no_grad():
        logits, _ = model(src_b, lengths_b, tgt_b[:, :-1])
    gold_out = tgt_b[:, 1:]
    expected = F.cross_entropy(logits.flatten(0, 1), gold_out.flatten(), ignore_index=0)
    assert metrics["loss"] == pytest.approx(float(expected), rel=1e-5)


def test_bad_input_errors() -> None:
    model = make_model()
    src, lengths, tgt_in = batch()
    with pytest.raises(ValueError, match="empty batch"):
        model(src[:0], lengths[:0], tgt_in[:0])
    with pytest.raises(ValueError, match="token ids must lie in 0..10"):
        model(src + 20, lengths, tgt_in)
    with pytest.raises(ValueError, match=r"tgt_in ids must lie in 0..8"):
        model(src, lengths, tgt_in + 20)
    with pytest.raises(ValueError, match="tgt_in is empty"):
        model(src, lengths, tgt_in[:, :0])
    with pytest.raises(ValueError, match="src has 3 rows but tgt_in has 2"):
        model(src, lengths, tgt_in[:2])
    with pytest.raises(ValueError, match="teacher_forcing must be a probability"):
        model(src, lengths, tgt_in, teacher_forcing=1.5)
    with pytest.raises(ValueError, match="beam_size must be an integer >= 1"):
        model.beam_search(src[:1], lengths[:1], beam_size=0, max_len=5)
    with pytest.raises(ValueError, match="one sentence at a time"):
        model.beam_search(src, lengths, beam_size=2, max_len=5)
    with pytest.raises(ValueError, match="max_len must be an integer >= 1"):
        model.greedy_decode(src, lengths, max_len=0)
    with pytest.raises(ValueError, match="unknown attention 'cosine'"):
        make_attention("cosine", 4, 4, 4)
    with pytest.raises(ValueError, match="dot attention needs query_size == key_size"):
        DotAttention(3, 4, general=False)
    with pytest.raises(ValueError, match="at least one True"):
        masked_softmax(torch.zeros(1, 3), torch.zeros(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(src, src_lengths, tgt, tgt_lengths\)"):
        seq2seq_step(model, (src, lengths), torch.device("cpu"))


def test_blocked_tokens_are_never_generated() -> None:
    model = make_model(tgt_vocab=40)
    src, lengths, _ = batch()
    tokens, _ = model.greedy_decode(src, lengths, max_len=6)
    favourite = int(torch.mode(tokens.flatten()).values)  # the most generated token
    blocked, _ = model.greedy_decode(src, lengths, max_len=6, blocked=[favourite])
    assert favourite in tokens and favourite not in blocked
    hyps = model.beam_search(src[:1], lengths[:1], 3, 6, blocked=[favourite, EOS_ID])
    assert all(favourite not in h.tokens and not h.finished for h in hyps)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hidden_size": 0}, "hidden_size must be an integer >= 1, got 0"),
        ({"vocab_size": 2.5}, "vocab_size must be an integer >= 1, got 2.5"),
        ({"pad_id": 15}, "pad_id must be < vocab_size = 15, got 15"),
        ({"pad_id": -1}, "pad_id must be an integer >= 0, got -1"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ],
)
def test_a_bad_decoder_setting_is_named_with_its_value(changes: dict, message: str) -> None:
    settings = {"vocab_size": 15, "embed_dim": 8, "hidden_size": 16, "enc_size": 16} | changes
    with pytest.raises(ValueError, match=message):
        AttentionDecoder(**settings)
