"""Classifier training throughput: the source article's batches vs length-bucketed batches.

* ``article``: the source article's approach. Every text is padded (or cut) to a fixed
  ``--max-len`` (128) tokens, batches are drawn at random, and a plain LSTM runs over all
  positions, padding included (:class:`companion.classifier.ArticleStyleClassifier`).
* ``padded``: the article's batching and unpacked LSTM, but classifying the state at each
  text's *last real token* instead of position 128. It computes what ``bucketed`` computes
  (the forward LSTM's last valid state), so the two reach the same accuracy and differ only
  in the work spent on padding: the fair baseline for the speed-up.
* ``bucketed``: texts cut to the same ``--max-len``, batches of similar length
  (:class:`companion.text.BucketBatchSampler`), each padded only to its own longest text
  (:class:`companion.encoder.Encoder` inside :class:`companion.classifier.NewsClassifier`).
  Being forward-only, the encoder runs the fused LSTM unpacked over each batch and reads each
  text's last real state, which equals the packed result (``Encoder.forward_only``): the only
  padding it steps through is what is left inside a bucket.

All three are unidirectional (a backward LSTM over right padding would start on padding)
and train the same number of epochs with the same sizes; throughput counts *real*
(non-padding) tokens, the same number for both, per second of training (``tokens_fed``
counts the positions of the padded batches, ``padding_share`` the padding among them).
A speed-up only matters at settings a user would keep, so ``--glove`` starts every approach
from the GloVe 6B vectors (50-d, as chapter 6) and the report prints the test accuracy of
TF-IDF + logistic regression on the same split beside the LSTMs'. Run from the repository
root::

    python benchmarks/bench_classifier.py                     # AG News, 6 epochs, auto device
    python benchmarks/bench_classifier.py --glove --epochs 10 --lr 3e-3  # chapter 6's run
    python benchmarks/bench_classifier.py --dataset bbc --max-len 512 --epochs 1

Timings depend on what else runs on the machine: the script prints ``uptime`` with them.
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from companion.baselines import TfidfLogReg
from companion.classifier import ArticleStyleClassifier, NewsClassifier
from companion.config import device_name, get_device, machine_load, seed_everything
from companion.data import load_dataset
from companion.encoder import Encoder, embedding_matrix_from
from companion.glove import load_pretrained_glove
from companion.metrics import classification_metrics
from companion.text import (
    BucketBatchSampler,
    TextClassificationDataset,
    Vocab,
    collate_batch,
    tokenize,
)
from companion.train import TrainConfig, fit, predict

APPROACHES = ("article", "padded", "bucketed")
BASELINE = "padded"
GLOVE_DIM = 50  # load_pretrained_glove: GloVe 6B, 50-d


@dataclass
class BenchSettings:
    """What one benchmark run trains: data, sizes and epochs."""

    dataset: str = "ag_news"
    epochs: int = 6
    max_len: int = 128
    batch_size: int = 128
    embed_dim: int = 64
    hidden_size: int = 64
    lr: float = 1e-3
    max_vocab: int = 20_000
    glove: bool = False  # every embedding table starts from GloVe 6B (then embed_dim is 50)
    limit: int | None = None
    device: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.epochs, self.max_len, self.batch_size, self.embed_dim, self.hidden_size) < 1:
            raise ValueError(f"epochs, max_len, batch_size and sizes must be >= 1, got {self}")
        if self.glove and self.embed_dim != GLOVE_DIM:
            raise ValueError(f"GloVe 6B vectors are {GLOVE_DIM}-d: with glove=True, "
                             f"embed_dim must be {GLOVE_DIM}, got {self.embed_dim}")  # fmt: skip


@dataclass
class BenchData:
    """Train and test texts as ids (cut to ``max_len`` tokens), vocabulary and class count."""

    train: TextClassificationDataset
    test: TextClassificationDataset
    vocab: Vocab
    n_classes: int
    train_texts: list[str]
    test_texts: list[str]
    embeddings: torch.Tensor | None = None  # the initial table (GloVe), or None for random


def load_split(settings: BenchSettings) -> BenchData:
    """Encode the data set's train and test splits with a vocabulary built on train."""
    with warnings.catch_warnings():  # AG News offline is a re-split of its test file: fine here
        warnings.simplefilter("ignore", UserWarning)
        frame = load_dataset(settings.dataset, seed=settings.seed)
    train, test = (frame[frame["split"] == s] for s in ("train", "test"))
    if settings.limit is not None:
        train, test = (
            part.sample(n=min(settings.limit, len(part)), random_state=settings.seed)
            for part in (train, test)
        )
    vocab = Vocab.build((tokenize(t) for t in train["text"]), max_size=settings.max_vocab)
    train_set, test_set = (
        TextClassificationDataset(
            part["text"].tolist(), part["label"].tolist(), vocab, max_len=settings.max_len
        )
        for part in (train, test)
    )
    table = embedding_matrix_from(vocab, load_pretrained_glove())[0] if settings.glove else None
    return BenchData(train_set, test_set, vocab, int(frame["label"].nunique()),
                     train["text"].tolist(), test["text"].tolist(), table)  # fmt: skip


def make_loader(
    data: TextClassificationDataset, approach: str, settings: BenchSettings, *, train: bool
) -> DataLoader:
    """Random fixed-size batches (``article``, ``padded``) or length buckets (``bucketed``)."""
    if approach != "bucketed":
        generator = torch.Generator().manual_seed(settings.seed)
        return DataLoader(
            data,
            batch_size=settings.batch_size,
            shuffle=train,
            generator=generator,
            collate_fn=collate_batch,
        )
    sampler = BucketBatchSampler(
        data.lengths, settings.batch_size, shuffle=train, seed=settings.seed
    )
    return DataLoader(data, batch_sampler=sampler, collate_fn=collate_batch)


def make_model(approach: str, data: BenchData, settings: BenchSettings) -> torch.nn.Module:
    """The article's padded LSTM classifier (as is, or read at the last real token), or the
    encoder + linear head over buckets; all unidirectional, from ``data.embeddings`` if given."""
    if approach != "bucketed":
        model = ArticleStyleClassifier(
            len(data.vocab),
            settings.embed_dim,
            settings.hidden_size,
            data.n_classes,
            bidirectional=False,
            max_len=settings.max_len,
            read_at="end" if approach == "article" else "last_token",
        )
        if data.embeddings is not None:
            model.embedding.weight.data.copy_(data.embeddings)
        return model
    encoder = Encoder(len(data.vocab), settings.embed_dim, settings.hidden_size,
                      bidirectional=False, embeddings=data.embeddings)  # fmt: skip
    return NewsClassifier(encoder, data.n_classes)


def run_approach(approach: str, data: BenchData, settings: BenchSettings) -> dict[str, object]:
    """Train one approach from scratch; time it; evaluate on the test split."""
    if approach not in APPROACHES:
        raise ValueError(f"approach must be one of {APPROACHES}, got {approach!r}")
    seed_everything(settings.seed)
    device = get_device(settings.device)
    model = make_model(approach, data, settings)
    train_loader = make_loader(data.train, approach, settings, train=True)
    config = TrainConfig(
        epochs=settings.epochs,
        lr=settings.lr,
        schedule="constant",
        patience=None,
        seed=settings.seed,
        device=str(device),
        progress=False,
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fit(model, train_loader, None, config=config)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    y_true, y_pred, _ = predict(
        model, make_loader(data.test, approach, settings, train=False), device
    )
    metrics = classification_metrics(y_true, y_pred, labels=range(data.n_classes))
    real = sum(data.train.lengths) * settings.epochs
    fed = padded_tokens(train_loader, approach, settings) * settings.epochs
    return {
        "approach": approach,
        "real_tokens": real,
        "tokens_fed": fed,
        "padding_share": 1 - real / fed,
        "train_s": seconds,
        "real_tokens_per_s": real / seconds,
        "test_accuracy": metrics["accuracy"],
        "test_macro_f1": metrics["macro_f1"],
    }


def padded_tokens(loader: DataLoader, approach: str, settings: BenchSettings) -> int:
    """Positions in one epoch's padded batches (the last epoch's order for ``bucketed``).

    Every approach's LSTM steps through all of them; bucketing makes them fewer.
    """
    if approach != "bucketed":
        return len(loader.dataset) * settings.max_len
    lengths = loader.dataset.lengths
    return sum(len(batch) * max(lengths[i] for i in batch) for batch in loader.batch_sampler)


def run_benchmark(settings: BenchSettings | None = None) -> pd.DataFrame:
    """All approaches on the same data; one row each, plus the speed-up over ``padded``."""
    settings = settings or BenchSettings()
    data = load_split(settings)
    load_before = machine_load()
    rows = [run_approach(a, data, settings) for a in APPROACHES]
    table = pd.DataFrame(rows).set_index("approach")
    table["speedup"] = table["real_tokens_per_s"] / table.loc[BASELINE, "real_tokens_per_s"]
    table.attrs = {
        "device": device_name(get_device(settings.device)),
        "threads": torch.get_num_threads(),
        "uptime_before": load_before,
        "uptime_after": machine_load(),
        "settings": settings,
        "tfidf_accuracy": tfidf_accuracy(data, settings.seed),
    }
    return table


def tfidf_accuracy(data: BenchData, seed: int) -> float:
    """Test accuracy of TF-IDF + logistic regression on the same split: the bar to reach."""
    model = TfidfLogReg(seed=seed).fit(data.train_texts, data.train.labels)
    return float((model.predict(data.test_texts) == np.asarray(data.test.labels)).mean())


def format_report(table: pd.DataFrame, machine_load: bool = True) -> str:
    """The table and the machine it ran on (with its load, unless ``machine_load=False``)."""
    attrs = table.attrs
    lines = [
        f"device: {attrs['device']}, torch threads: {attrs['threads']}",
        f"settings: {attrs['settings']}",
    ]
    if machine_load:
        lines += [
            f"uptime before: {attrs['uptime_before']}",
            f"uptime after:  {attrs['uptime_after']}",
        ]
    table_text = table.to_string(float_format=lambda x: f"{x:,.3f}")
    tfidf = attrs["tfidf_accuracy"]
    reference = f"TF-IDF + logistic regression on the same split: test accuracy {tfidf:.3f}"
    return "\n".join([*lines, "", table_text, reference])


def parse_args(argv: list[str] | None = None) -> BenchSettings:
    """Command-line options -> ``BenchSettings``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = BenchSettings()
    parser.add_argument("--dataset", default=defaults.dataset, choices=["ag_news", "bbc"])
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--max-len", type=int, default=defaults.max_len)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--hidden-size", type=int, default=defaults.hidden_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--glove", action="store_true", help="start from GloVe 6B (50-d)")
    parser.add_argument("--limit", type=int, help="at most this many train (and test) texts")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: auto)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args(argv)
    return BenchSettings(
        dataset=args.dataset,
        epochs=args.epochs,
        max_len=args.max_len,
        batch_size=args.batch_size,
        embed_dim=GLOVE_DIM if args.glove else defaults.embed_dim,
        hidden_size=args.hidden_size,
        lr=args.lr,
        glove=args.glove,
        limit=args.limit,
        device=args.device,
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    print(format_report(run_benchmark(parse_args(argv))))


if __name__ == "__main__":
    main()
