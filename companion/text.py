"""Text to tensors: a tokenizer, a vocabulary, padding and length-bucketed batches.

The pipeline every classifier chapter uses::

    tokens = [tokenize(t) for t in texts]          # "Hello, World!" -> ["hello", "world"]
    vocab = Vocab.build(tokens, min_freq=2)        # <pad>=0, <unk>=1, then by frequency
    dataset = TextClassificationDataset(texts, labels, vocab, max_len=400)
    sampler = BucketBatchSampler(dataset.lengths, batch_size=32, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_batch)
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from companion.checks import check_ints
from companion.io import atomic_write_text

PAD = "<pad>"
UNK = "<unk>"
TOKEN_RE = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-case ``text`` and return its runs of ASCII letters and digits."""
    if not isinstance(text, str):
        raise TypeError(f"tokenize expects a str, got {type(text).__name__}")
    return TOKEN_RE.findall(text.lower())


class Vocab:
    """A token <-> id mapping with ``<pad>`` = 0 and ``<unk>`` = 1.

    ``Vocab.build`` orders the other tokens by decreasing frequency, ties broken
    alphabetically, so the same corpus always gives the same ids.
    """

    pad_id = 0
    unk_id = 1

    def __init__(self, itos: Sequence[str]) -> None:
        itos = list(itos)
        if itos[:2] != [PAD, UNK]:
            raise ValueError(f"a vocabulary must start with {PAD!r}, {UNK!r}; got {itos[:2]}")
        first: dict[str, int] = {}
        for i, token in enumerate(itos):
            if not isinstance(token, str):
                raise TypeError(f"vocabulary entry {i} is {token!r}, not a str token")
            if token in first:
                raise ValueError(f"duplicate token {token!r} at entries {first[token]} and {i}")
            first[token] = i
        self.itos: list[str] = itos
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(itos)}

    @classmethod
    def build(
        cls, token_lists: Iterable[Iterable[str]], min_freq: int = 1, max_size: int | None = None
    ) -> Vocab:
        """Count tokens; keep those seen ``min_freq`` times, at most ``max_size`` ids in all.

        ``max_size`` counts the two special tokens, so ``len(vocab) <= max_size``.
        """
        check_ints(min_freq=min_freq)
        if max_size is not None:
            check_ints(2, max_size=max_size)  # room for the two special tokens
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            if isinstance(tokens, str):
                raise TypeError("build expects lists of tokens, got a str; call tokenize() first")
            counts.update(tokens)
        kept = [(t, c) for t, c in counts.items() if c >= min_freq and t not in (PAD, UNK)]
        kept.sort(key=lambda tc: (-tc[1], tc[0]))
        if max_size is not None:
            kept = kept[: max_size - 2]
        return cls([PAD, UNK] + [t for t, _ in kept])

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, first={self.itos[2:7]})"

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Ids of ``tokens``; unknown tokens map to ``unk_id``."""
        if isinstance(tokens, str):
            raise TypeError("encode expects a list of tokens, got a str; call tokenize() first")
        return [self.stoi.get(t, self.unk_id) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids`` (a list or a 1-d tensor)."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        out = []
        for i in ids:
            if not 0 <= i < len(self.itos):
                raise ValueError(f"id {i} is outside the vocabulary (0..{len(self.itos) - 1})")
            out.append(self.itos[i])
        return out

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as JSON (atomically: never a half-written file)."""
        atomic_write_text(Path(path), json.dumps({"itos": self.itos}, ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by ``save``; a malformed file is a ValueError naming it."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} is not a vocabulary JSON file: {err}") from err
        if not isinstance(data, dict) or not isinstance(data.get("itos"), list):
            raise ValueError(f"{path} is not a vocabulary file: expected an object with 'itos'")
        try:
            return cls(data["itos"])
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"{path} is not a valid vocabulary: {err}; rebuild it and write it with Vocab.save"
            ) from err


class TextClassificationDataset(Dataset):
    """Texts encoded once with ``vocab``; item ``i`` is ``(ids LongTensor, label int)``.

    ``max_len`` keeps the first ``max_len`` tokens. A text with no tokens becomes a
    single ``<unk>``, so every length is at least 1 (as ``pack_padded_sequence`` needs).
    """

    def __init__(
        self,
        texts: Sequence[str],
        labels: Sequence[int],
        vocab: Vocab,
        max_len: int | None = None,
    ) -> None:
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        if max_len is not None:
            check_ints(max_len=max_len)
        self.ids = [vocab.encode(tokenize(t))[:max_len] or [vocab.unk_id] for t in texts]
        self.labels = [int(y) for y in labels]
        self.lengths = [len(x) for x in self.ids]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.tensor(self.ids[i], dtype=torch.long), self.labels[i]


def collate_batch(
    batch: Sequence[tuple[Sequence[int] | torch.Tensor, int]], pad_id: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad ``(ids, label)`` pairs: returns ids [B, T], lengths [B], labels [B]."""
    if len(batch) == 0:
        raise ValueError("collate_batch got an empty batch")
    seqs = [torch.as_tensor(ids, dtype=torch.long) for ids, _ in batch]
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    if (lengths == 0).any():
        raise ValueError(f"empty sequence at batch position {int((lengths == 0).nonzero()[0])}")
    ids = torch.full((len(seqs), int(lengths.max())), pad_id, dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = seq
    labels = torch.tensor([int(y) for _, y in batch], dtype=torch.long)
    return ids, lengths, labels


def check_lengths(lengths: Sequence[int]) -> np.ndarray:
    """``lengths`` as a 1-d int64 array; a ValueError unless they are integers >= 0."""
    array = np.asarray(lengths)
    if array.ndim != 1:
        raise ValueError(f"lengths must be 1-d, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"lengths must be integers, got dtype {array.dtype}: {array[:5]}")
    if array.size and array.min() < 0:
        raise ValueError(f"lengths must be >= 0, got {array.min()} at index {array.argmin()}")
    return array.astype(np.int64)


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of indices of similar length, so little of each batch is padding.

    With ``shuffle``: shuffle all indices, cut them into chunks of
    ``batch_size * bucket_batches``, sort each chunk by length, cut it into batches,
    and shuffle the batches. The order depends only on ``seed`` and the epoch
    (``set_epoch``). Without ``shuffle``: batches of the indices sorted by length.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        bucket_batches: int = 100,
    ) -> None:
        check_ints(batch_size=batch_size, bucket_batches=bucket_batches)
        check_ints(0, seed=seed)
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, bool | np.bool_):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        self.lengths = check_lengths(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.bucket_batches = bucket_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order of epoch ``epoch`` (call before each epoch for a fresh shuffle)."""
        check_ints(0, epoch=epoch)
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        n, bs = len(self.lengths), self.batch_size
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            batches = [order[i : i + bs] for i in range(0, n, bs)]
        else:
            rng = np.random.default_rng([self.seed, self.epoch])
            perm = rng.permutation(n)
            chunk = bs * self.bucket_batches
            batches = []
            for start in range(0, n, chunk):
                part = perm[start : start + chunk]
                part = part[np.argsort(self.lengths[part], kind="stable")]
                batches += [part[i : i + bs] for i in range(0, len(part), bs)]
            batches = [batches[i] for i in rng.permutation(len(batches))]
        for batch in batches:
            if self.drop_last and len(batch) < bs:
                continue
            yield batch.tolist()


def bucketed_loader(
    dataset: Dataset,
    lengths: Sequence[int],
    collate: Callable[[list[Any]], Any],
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader of ``BucketBatchSampler`` batches of ``dataset``, joined by ``collate``."""
    sampler = BucketBatchSampler(lengths, batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)
