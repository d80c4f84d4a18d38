"""Tests for companion.text: tokenizer, vocabulary, padding and bucketed batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

from companion.text import (
    BucketBatchSampler,
    TextClassificationDataset,
    Vocab,
    bucketed_loader,
    collate_batch,
    tokenize,
)


def test_tokenize_hand_example() -> None:
    assert tokenize("Hello, World! It's 2024 -- GPT-4o.") == [
        "hello",
        "world",
        "it",
        "s",
        "2024",
        "gpt",
        "4o",
    ]
    assert tokenize("") == []
    assert tokenize("café naïve") == ["caf", "na", "ve"]


def test_tokenize_rejects_non_str() -> None:
    with pytest.raises(TypeError, match="expects a str"):
        tokenize(["a", "b"])  # type: ignore[arg-type]


def test_vocab_order_frequency_then_alphabet() -> None:
    docs = [["b", "a", "c"], ["a", "b", "d"], ["a", "e"]]
    vocab = Vocab.build(docs)
    # a:3, b:2, then c, d, e (1 each) alphabetically
    assert vocab.itos == ["<pad>", "<unk>", "a", "b", "c", "d", "e"]
    assert vocab.pad_id == 0 and vocab.unk_id == 1
    assert vocab.stoi["b"] == 3 and len(vocab) == 7


def test_vocab_min_freq_and_max_size() -> None:
    docs = [["x"] * 5 + ["y"] * 3 + ["z"] * 3 + ["w"]]
    assert Vocab.build(docs, min_freq=2).itos == ["<pad>", "<unk>", "x", "y", "z"]
    assert Vocab.build(docs, max_size=4).itos == ["<pad>", "<unk>", "x", "y"]
    assert len(Vocab.build(docs, max_size=2)) == 2


def test_vocab_encode_decode_roundtrip_and_unknown() -> None:
    vocab = Vocab.build([tokenize("the cat sat on the mat")])
    ids = vocab.encode(tokenize("the dog sat"))
    assert ids == [vocab.stoi["the"], vocab.unk_id, vocab.stoi["sat"]]
    assert vocab.decode(ids) == ["the", "<unk>", "sat"]
    assert vocab.decode(torch.tensor(ids)) == ["the", "<unk>", "sat"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"min_freq": 0}, "min_freq must be"), ({"max_size": 1}, "max_size must be")],
)
def test_vocab_build_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Vocab.build([["a"]], **kwargs)


def test_vocab_rejects_strings_and_bad_ids() -> None:
    vocab = Vocab.build([["a"]])
    with pytest.raises(TypeError, match="call tokenize"):
        Vocab.build(["a b"])
    with pytest.raises(TypeError, match="call tokenize"):
        vocab.encode("a")
    with pytest.raises(ValueError, match="id 7 is outside the vocabulary"):
        vocab.decode([0, 7])
    with pytest.raises(ValueError, match="must start with"):
        Vocab(["a", "<pad>", "<unk>"])
    with pytest.raises(ValueError, match="duplicate token 'a' at entries 2 and 4"):
        Vocab(["<pad>", "<unk>", "a", "b", "a"])
    with pytest.raises(TypeError, match="vocabulary entry 3 is 5, not a str token"):
        Vocab(["<pad>", "<unk>", "a", 5])  # type: ignore[list-item]


def test_vocab_save_load(tmp_path) -> None:
    vocab = Vocab.build([tokenize("zeta alpha alpha beta ünïcode")])
    path = tmp_path / "sub" / "vocab.json"
    vocab.save(path)
    assert Vocab.load(path) == vocab
    assert [p.name for p in path.parent.iterdir()] == ["vocab.json"]  # no temp files left


def test_vocab_load_bad_file(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a vocabulary JSON file"):
        Vocab.load(bad)
    bad.write_text(json.dumps(["<pad>", "<unk>"]))
    with pytest.raises(ValueError, match="expected an object with 'itos'"):
        Vocab.load(bad)
    bad.write_bytes(b'{"itos": ["<pad>", "<unk>", "caf\xe9"]}')
    with pytest.raises(ValueError, match=f"{bad} is not a vocabulary JSON file"):
        Vocab.load(bad)


@pytest.mark.parametrize(
    ("itos", "match"),
    [
        (["<pad>", "<unk>", "a", 5], "vocabulary entry 3 is 5, not a str token"),
        (["<pad>", "<unk>", None], "vocabulary entry 2 is None, not a str token"),
        (["<pad>", "<unk>", "a", "a"], "duplicate token 'a' at entries 2 and 3"),
    ],
)
def test_vocab_load_names_the_file_and_the_bad_entry(tmp_path, itos: list, match: str) -> None:
    bad = tmp_path / "vocab.json"
    bad.write_text(json.dumps({"itos": itos}))
    with pytest.raises(ValueError, match=f"{bad} is not a valid vocabulary: {match}"):
        Vocab.load(bad)


def test_collate_matches_pad_sequence() -> None:
    seqs = [[5, 6, 7], [8], [9, 10]]
    batch = [(s, y) for s, y in zip(seqs, [2, 0, 1], strict=True)]
    ids, lengths, labels = collate_batch(batch, pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    expected = pad_sequence([torch.tensor(s) for s in seqs], batch_first=True, padding_value=0)
    assert torch.equal(ids, expected)
    assert lengths.tolist() == [3, 1, 2] and labels.tolist() == [2, 0, 1]
    assert ids.dtype == lengths.dtype == labels.dtype == torch.long
    ids9, _, _ = collate_batch(batch, pad_id=9)
    assert ids9[1].tolist() == [8, 9, 9]


def test_collate_errors() -> None:
    with pytest.raises(ValueError, match="empty batch"):
        collate_batch([])
    with pytest.raises(ValueError, match="empty sequence at batch position 1"):
        collate_batch([([1], 0), ([], 1)])


def test_dataset_encodes_truncates_and_never_empty() -> None:
    texts = ["the cat sat on the mat", "the dog", "!!!"]
    vocab = Vocab.build(tokenize(t) for t in texts)
    ds = TextClassificationDataset(texts, [0, 1, 0], vocab, max_len=4)
    assert len(ds) == 3 and ds.lengths == [4, 2, 1]
    ids, label = ds[0]
    assert vocab.decode(ids) == ["the", "cat", "sat", "on"] and label == 0
    assert ds[2][0].tolist() == [vocab.unk_id]
    with pytest.raises(ValueError, match="3 texts but 2 labels"):
        TextClassificationDataset(texts, [0, 1], vocab)
    with pytest.raises(ValueError, match="max_len must be"):
        TextClassificationDataset(texts, [0, 1, 0], vocab, max_len=0)


def test_dataset_with_loader_and_sampler() -> None:
    # text i is "w" repeated i % 7 + 1 times, label i % 3; "w" gets id 2
    texts = [" ".join(["w"] * (i % 7 + 1)) for i in range(50)]
    vocab = Vocab.build(tokenize(t) for t in texts)
    ds = TextClassificationDataset(texts, [i % 3 for i in range(50)], vocab)
    sampler = BucketBatchSampler(ds.lengths, batch_size=8, shuffle=False)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate_batch)
    batches = list(loader)
    assert [len(labels) for _, _, labels in batches] == [8, 8, 8, 8, 8, 8, 2]
    # sorted by length, stable: lengths 1 at i = 0, 7, ..., 49 (8 texts), then lengths 2 ...
    ids, lengths, labels = batches[0]
    assert ids.tolist() == [[2]] * 8 and lengths.tolist() == [1] * 8
    assert labels.tolist() == [i % 3 for i in range(0, 50, 7)]
    ids, lengths, labels = batches[1]  # the 7 texts of length 2 (i = 1, 8, ..., 43), then 1 of 3
    assert lengths.tolist() == [2] * 7 + [3]
    assert ids.tolist() == [[2, 2, 0]] * 7 + [[2, 2, 2]]
    assert labels.tolist() == [i % 3 for i in range(1, 50, 7)] + [2 % 3]


@pytest.mark.parametrize(
    ("n", "bs", "drop_last"), [(103, 10, False), (103, 10, True), (40, 8, False)]
)
def test_sampler_covers_every_index_once(n: int, bs: int, drop_last: bool) -> None:
    lengths = np.random.default_rng(0).integers(1, 50, size=n)
    sampler = BucketBatchSampler(lengths, bs, seed=3, drop_last=drop_last, bucket_batches=3)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    flat = [i for b in batches for i in b]
    assert len(flat) == len(set(flat))
    if drop_last:
        assert all(len(b) == bs for b in batches) and len(flat) == n // bs * bs
    else:
        assert sorted(flat) == list(range(n))


def test_sampler_deterministic_and_epochs_differ() -> None:
    lengths = np.random.default_rng(1).integers(1, 100, size=200)
    a = BucketBatchSampler(lengths, 16, seed=7)
    b = BucketBatchSampler(lengths, 16, seed=7)
    assert list(a) == list(b)
    assert list(a) == list(a)  # re-iterating without set_epoch repeats the order
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    assert list(BucketBatchSampler(lengths, 16, seed=8)) != first


def test_sampler_reduces_padding_vs_random_batches() -> None:
    rng = np.random.default_rng(2)
    lengths = rng.integers(1, 500, size=2000)

    def padding(batches: list[list[int]]) -> int:
        return sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in batches)

    bucketed = list(BucketBatchSampler(lengths, 32, seed=0, bucket_batches=20))
    perm = rng.permutation(len(lengths))
    random_batches = [perm[i : i + 32].tolist() for i in range(0, len(perm), 32)]
    assert padding(bucketed) < 0.2 * padding(random_batches)


def test_sampler_without_shuffle_sorts_by_length() -> None:
    lengths = [5, 1, 4, 2, 3]
    assert list(BucketBatchSampler(lengths, 2, shuffle=False)) == [[1, 3], [4, 2], [0]]


def test_sampler_shuffled_hand_example() -> None:
    # one chunk (bucket_batches * batch_size >= n): the shuffled chunk is sorted by length,
    # so the batches are pairs of the length order 1, 3, 5, 2, 0, 4 (10, 20, ..., 60)
    lengths = [50, 10, 40, 20, 60, 30]
    batches = list(BucketBatchSampler(lengths, 2, seed=5, bucket_batches=3))
    assert sorted(batches) == [[0, 4], [1, 3], [5, 2]]


def test_sampler_bad_arguments() -> None:
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        BucketBatchSampler([1, 2], 0)
    with pytest.raises(ValueError, match="bucket_batches must be"):
        BucketBatchSampler([1, 2], 2, bucket_batches=0)
    with pytest.raises(ValueError, match="lengths must be 1-d"):
        BucketBatchSampler([[1, 2]], 2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"seed": -1}, ValueError, "seed must be an integer >= 0, got -1"),
        ({"seed": 1.5}, ValueError, "seed must be an integer >= 0, got 1.5"),
        ({"shuffle": "no"}, TypeError, "shuffle must be True or False, got 'no'"),
        ({"drop_last": 1}, TypeError, "drop_last must be True or False, got 1"),
        ({"lengths": [3, 2.5]}, ValueError, "lengths must be integers, got dtype float64"),
        ({"lengths": [3, -1]}, ValueError, "lengths must be >= 0, got -1 at index 1"),
    ],
)
def test_sampler_checks_arguments_when_built(kwargs: dict, error: type, match: str) -> None:
    arguments = {"lengths": [3, 1, 2], "batch_size": 2, **kwargs}
    with pytest.raises(error, match=match):
        BucketBatchSampler(**arguments)


def test_sampler_set_epoch_checks_the_epoch() -> None:
    sampler = BucketBatchSampler([3, 1, 2], 2)
    with pytest.raises(ValueError, match="epoch must be an integer >= 0, got -1"):
        sampler.set_epoch(-1)


def test_bucketed_loader_yields_the_sampler_batches_through_collate() -> None:
    lengths = [5, 1, 9, 3, 7, 2, 8]
    rows = [list(range(n)) for n in lengths]
    loader = bucketed_loader(rows, lengths, lambda batch: [len(r) for r in batch], 3, seed=4)
    sampler = BucketBatchSampler(lengths, 3, seed=4)
    assert list(loader) == [[lengths[i] for i in batch] for batch in sampler]
    ordered = bucketed_loader(
        rows, lengths, lambda batch: [len(r) for r in batch], 3, shuffle=False
    )
    assert list(ordered) == [[1, 2, 3], [5, 7, 8], [9]]
