"""Data for sequence-to-sequence models: a date-format toy task, headline pairs and ROUGE.

The toy task (a documented, deterministic rule)::

    "March 5, 2019" | "5 March 2019" | "Mar 5 2019" | "05.03.2019" | ...  ->  "2019-03-05"

``make_date_pairs`` draws distinct calendar days from a seeded generator, so the same
seed always gives the same pairs and no day (hence no source string) is in two splits.

The news task: the first ``src_tokens`` tokens of an article's body -> its headline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from rouge_score import rouge_scorer
from torch.utils.data import Dataset

from companion.checks import check_ints
from companion.text import PAD, UNK, Vocab, collate_batch, tokenize

BOS = "<bos>"
EOS = "<eos>"
BOS_ID = 2
EOS_ID = 3

MONTHS = (
    *("January", "February", "March", "April", "May", "June"),
    *("July", "August", "September", "October", "November", "December"),
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DATE_FORMATS = (
    "{month} {day}, {year}",  # March 5, 2019
    "{day} {month} {year}",  # 5 March 2019
    "{mon} {day} {year}",  # Mar 5 2019
    "{dd}.{mm}.{year}",  # 05.03.2019 (day first)
    "{weekday}, {day} {mon} {year}",  # Tuesday, 5 Mar 2019
    "{month_lower} {day} {year}",  # march 5 2019
)
FIRST_DAY = dt.date(1900, 1, 1)
LAST_DAY = dt.date(2099, 12, 31)


def format_date(day: dt.date, style: int) -> str:
    """``day`` written in ``DATE_FORMATS[style]``."""
    if not 0 <= style < len(DATE_FORMATS):
        raise ValueError(f"style must lie in 0..{len(DATE_FORMATS) - 1}, got {style}")
    month = MONTHS[day.month - 1]
    return DATE_FORMATS[style].format(
        month=month,
        month_lower=month.lower(),
        mon=month[:3],
        day=day.day,
        dd=f"{day.day:02d}",
        mm=f"{day.month:02d}",
        year=day.year,
        weekday=WEEKDAYS[day.weekday()],
    )


def make_date_pairs(n_train: int, n_val: int, n_test: int, seed: int = 0) -> pd.DataFrame:
    """Date pairs: columns ``source`` (a human format), ``target`` (ISO 8601), ``split``.

    Draws ``n_train + n_val + n_test`` distinct days between 1900-01-01 and 2099-12-31
    without replacement, assigns them to the splits in that order and writes each
    day in a format drawn uniformly from ``DATE_FORMATS``.
    """
    sizes = {"train": n_train, "validation": n_val, "test": n_test}
    n_days = (LAST_DAY - FIRST_DAY).days + 1
    check_ints(0, **{f"n_{name}": size for name, size in sizes.items()}, seed=seed)
    total = sum(sizes.values())
    if not 0 < total <= n_days:
        raise ValueError(f"need 1..{n_days} pairs in all (one per distinct day), got {total}")
    rng = np.random.default_rng(seed)
    offsets = rng.choice(n_days, size=total, replace=False)
    styles = rng.integers(len(DATE_FORMATS), size=total)
    days = [FIRST_DAY + dt.timedelta(days=int(o)) for o in offsets]
    return pd.DataFrame(
        {
            "source": [format_date(d, int(s)) for d, s in zip(days, styles, strict=True)],
            "target": [d.isoformat() for d in days],
            "split": np.repeat(list(sizes), list(sizes.values())),
        }
    )


def seq2seq_vocab(
    token_lists: Iterable[Iterable[str]], min_freq: int = 1, max_size: int | None = None
) -> Vocab:
    """A :class:`Vocab` with ``<pad>``, ``<unk>``, ``<bos>``, ``<eos>`` at ids 0-3, then others."""
    if max_size is not None:
        check_ints(4, max_size=max_size)  # room for the four special tokens
    base = Vocab.build(token_lists, min_freq=min_freq, max_size=max_size and max_size - 2)
    return Vocab([PAD, UNK, BOS, EOS] + [t for t in base.itos[2:] if t not in (BOS, EOS)])


class PairDataset(Dataset):
    """Token-list pairs encoded once; item ``i`` is ``(src ids, <bos> tgt ids <eos>)``.

    Sources keep their first ``max_src_len`` tokens (an empty one becomes ``<unk>``);
    targets their first ``max_tgt_len`` tokens before ``<eos>`` is appended.
    """

    def __init__(
        self,
        sources: Sequence[Sequence[str]],
        targets: Sequence[Sequence[str]],
        src_vocab: Vocab,
        tgt_vocab: Vocab,
        max_src_len: int | None = None,
        max_tgt_len: int | None = None,
    ) -> None:
        if len(sources) != len(targets):
            raise ValueError(f"{len(sources)} sources but {len(targets)} targets")
        if tgt_vocab.itos[BOS_ID] != BOS or tgt_vocab.itos[EOS_ID] != EOS:
            raise ValueError("tgt_vocab lacks <bos>/<eos> at ids 2/3: build it with seq2seq_vocab")
        self.src = [src_vocab.encode(s)[:max_src_len] or [src_vocab.unk_id] for s in sources]
        self.tgt = [[BOS_ID, *tgt_vocab.encode(t)[:max_tgt_len], EOS_ID] for t in targets]
        self.src_lengths = [len(s) for s in self.src]

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor(self.src[i]), torch.tensor(self.tgt[i])


def collate_pairs(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor]], pad_id: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad ``(src, tgt)`` pairs: src [B, S], src_lengths [B], tgt [B, L], tgt_lengths [B]."""
    src, src_lengths, _ = collate_batch([(s, 0) for s, _ in batch], pad_id=pad_id)
    tgt, tgt_lengths, _ = collate_batch([(t, 0) for _, t in batch], pad_id=pad_id)
    return src, src_lengths, tgt, tgt_lengths


def chars(text: str) -> list[str]:
    """The characters of ``text``: the date task's tokens."""
    return list(text)


def headline_pairs(
    frame: pd.DataFrame, src_tokens: int = 40
) -> tuple[list[list[str]], list[list[str]]]:
    """(lead tokens, headline tokens) per row: the first ``src_tokens`` tokens of ``text``."""
    missing = {"text", "title"} - set(frame.columns)
    if missing:
        raise ValueError(f"frame needs columns 'text' and 'title'; missing {sorted(missing)}")
    check_ints(src_tokens=src_tokens)
    sources = [tokenize(t)[:src_tokens] for t in frame["text"]]
    return sources, [tokenize(t) for t in frame["title"]]


def lead_baseline(sources: Sequence[Sequence[str]], k: int) -> list[list[str]]:
    """The lead baseline: the first ``k`` words of each source as its headline."""
    check_ints(k=k)
    return [list(s[:k]) for s in sources]


def rouge_f1(references: Sequence[str], candidates: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F1 (0..1) of ``candidates`` against ``references``."""
    if len(references) != len(candidates):
        raise ValueError(f"{len(references)} references but {len(candidates)} candidates")
    if not references:
        raise ValueError("rouge_f1 needs at least one pair")
    kinds = ["rouge1", "rouge2", "rougeL"]
    scorer = rouge_scorer.RougeScorer(kinds)
    totals = dict.fromkeys(kinds, 0.0)
    for ref, cand in zip(references, candidates, strict=True):
        for kind, score in scorer.score(ref, cand).items():
            totals[kind] += score.fmeasure
    return {kind: total / len(references) for kind, total in totals.items()}
