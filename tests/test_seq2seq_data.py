"""Tests for companion.seq2seq_data: the date task, pair datasets, headline pairs and ROUGE."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import torch

from companion.seq2seq_data import (
    BOS_ID,
    DATE_FORMATS,
    EOS_ID,
    PairDataset,
    chars,
    collate_pairs,
    format_date,
    headline_pairs,
    lead_baseline,
    make_date_pairs,
    rouge_f1,
    seq2seq_vocab,
)
from companion.text import Vocab

# strptime patterns for DATE_FORMATS, in order: an independent parser of the sources.
PARSE = ("%B %d, %Y", "%d %B %Y", "%b %d %Y", "%d.%m.%Y", "%A, %d %b %Y", "%B %d %Y")


def test_format_date_hand_examples() -> None:
    day = dt.date(2019, 3, 5)  # a Tuesday
    written = [format_date(day, s) for s in range(len(DATE_FORMATS))]
    assert written == [
        "March 5, 2019",
        "5 March 2019",
        "Mar 5 2019",
        "05.03.2019",
        "Tuesday, 5 Mar 2019",
        "march 5 2019",
    ]


def test_date_pairs_follow_the_rule() -> None:
    frame = make_date_pairs(300, 50, 50, seed=1)
    used = set()
    for source, target in zip(frame["source"], frame["target"], strict=True):
        parsed = set()
        for style, pattern in enumerate(PARSE):
            try:
                parsed.add(dt.datetime.strptime(source, pattern).date().isoformat())
            except ValueError:
                continue
            used.add(style)
        assert parsed == {target}, source
    assert used == set(range(len(DATE_FORMATS)))  # every format occurs


def test_date_pairs_deterministic_and_disjoint() -> None:
    a, b = make_date_pairs(500, 100, 200, seed=3), make_date_pairs(500, 100, 200, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(make_date_pairs(500, 100, 200, seed=4))
    assert a["split"].value_counts().to_dict() == {"train": 500, "validation": 100, "test": 200}
    splits = {name: set(g["target"]) for name, g in a.groupby("split")}
    assert sum(map(len, splits.values())) == 800  # 800 distinct days
    train_sources = set(a.loc[a["split"] == "train", "source"])
    assert not train_sources & set(a.loc[a["split"] != "train", "source"])


def test_seq2seq_vocab_and_pair_dataset() -> None:
    vocab = seq2seq_vocab([chars("abca"), chars("ab")], max_size=6)
    assert vocab.itos == ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b"]
    data = PairDataset([chars("abz"), []], [chars("ba"), chars("cab")], vocab, vocab, max_tgt_len=2)
    src, tgt = data[0]
    assert src.tolist() == [4, 5, 1] and tgt.tolist() == [BOS_ID, 5, 4, EOS_ID]
    assert data[1][0].tolist() == [1]  # an empty source becomes <unk>
    assert data[1][1].tolist() == [BOS_ID, 1, 4, EOS_ID]  # truncated to 2 tokens, c unknown
    assert data.src_lengths == [3, 1]
    src_b, src_len, tgt_b, tgt_len = collate_pairs([data[0], data[1]])
    assert src_b.tolist() == [[4, 5, 1], [1, 0, 0]] and src_len.tolist() == [3, 1]
    assert torch.equal(tgt_b, torch.stack([data[0][1], data[1][1]])) and tgt_len.tolist() == [4, 4]


def test_headline_pairs_and_lead_baseline() -> None:
    frame = pd.DataFrame({"title": ["Shares Rise!"], "text": ["Shares rose 5% on Monday, a lot."]})
    sources, targets = headline_pairs(frame, src_tokens=4)
    assert sources == [["shares", "rose", "5", "on"]] and targets == [["shares", "rise"]]
    assert lead_baseline(sources, 2) == [["shares", "rose"]]


def test_rouge_hand_example() -> None:
    # candidate "the cat" vs reference "the cat sat": unigram P = 1, R = 2/3, F = 0.8;
    # bigrams: P = 1/1, R = 1/2, F = 2/3; LCS = 2 as for unigrams.
    scores = rouge_f1(["the cat sat", "a b"], ["the cat", "a b"])
    assert scores["rouge1"] == pytest.approx((0.8 + 1) / 2)
    assert scores["rouge2"] == pytest.approx((2 / 3 + 1) / 2)
    assert scores["rougeL"] == pytest.approx((0.8 + 1) / 2)


def test_bad_input_errors() -> None:
    with pytest.raises(ValueError, match="n_train must be an integer >= 0"):
        make_date_pairs(-1, 1, 1)
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        make_date_pairs(1, 1, 1, seed=-1)
    with pytest.raises(ValueError, match="need 1..73049 pairs"):
        make_date_pairs(0, 0, 0)
    with pytest.raises(ValueError, match="style must lie in 0..5"):
        format_date(dt.date(2000, 1, 1), 6)
    with pytest.raises(ValueError, match="max_size must be an integer >= 4"):
        seq2seq_vocab([["a"]], max_size=3)
    plain = seq2seq_vocab([["a"]])
    with pytest.raises(ValueError, match="2 sources but 1 targets"):
        PairDataset([["a"], ["a"]], [["a"]], plain, plain)
    with pytest.raises(ValueError, match="build it with seq2seq_vocab"):
        PairDataset([["a"]], [["a"]], plain, Vocab.build([["a", "b"]]))
    with pytest.raises(ValueError, match="missing \\['title'\\]"):
        headline_pairs(pd.DataFrame({"text": ["x"]}))
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        lead_baseline([["a"]], 0)
    with pytest.raises(ValueError, match="2 references but 1 candidates"):
        rouge_f1(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="at least one pair"):
        rouge_f1([], [])
