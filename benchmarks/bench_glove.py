"""GloVe speed and quality: companion.glove alone, or side by side with the reference glove.c.

Counts the co-occurrence matrix of the news corpus (window 10, minimum count 5) and trains
100-dimensional vectors with AdaGrad (learning rate 0.05). Run from the repository root::

    python benchmarks/bench_glove.py                           # BBC, 3 epochs, auto device
    python benchmarks/bench_glove.py --corpus full --epochs 25 --eval
    python benchmarks/bench_glove.py --corpus bbc --epochs 25 --glove-c

Alone, it prints the build time, each epoch's time and mean ½·f·r², pairs per second, the
machine's load and, with ``--eval``, WS-353. With ``--glove-c`` it also trains the authors'
glove.c (``third_party/glove``, compiled here with gcc, or ``--glove-c PATH`` for a build of
https://github.com/stanfordnlp/GloVe you made with its ``make``) on the same matrix, pair
order and initial vectors, alternating the runs, and prints for each: seconds per epoch, the
ratio to glove.c's, the final loss, WS-353 / SimLex-999 / MEN and how far its vectors agree
with glove.c's (neighbour overlap and rank correlation of cosines on the 1,000 most frequent
words). A second glove.c run from other initial vectors says how far glove.c agrees with
itself; a companion run with the biases' rate set to 1 (what glove.c does since 2019, see
``companion.glove_reference``) tests whether that rate explains the difference.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from companion.config import device_name, get_device, machine_load
from companion.embeddings_eval import (
    SIMILARITY_FILES,
    agreement,
    similarity_pairs,
    similarity_score,
)
from companion.glove import (
    Cooccurrence,
    GloveParams,
    count_cooccurrences,
    news_texts,
    to_keyed_vectors,
    train_glove,
)
from companion.glove_reference import build_glove_c, run_glove_c
from companion.text import tokenize


@dataclass(frozen=True)
class GloveBench:
    """The settings both implementations get."""

    corpus: str = "bbc"
    epochs: int = 25
    dim: int = 100
    window: int = 10
    min_count: int = 5
    lr: float = 0.05
    batch_size: int = 16384
    threads: int = 2
    seed: int = 0
    agreement_words: int = 1000
    device: str | None = None


def build_matrix(settings: GloveBench, limit: int | None = None) -> tuple[Cooccurrence, float]:
    """The co-occurrence matrix of the corpus (its first ``limit`` texts), and its build time."""
    docs = [tokenize(t) for t in news_texts(settings.corpus)[:limit]]
    start = time.perf_counter()
    cooc = count_cooccurrences(docs, window=settings.window, min_count=settings.min_count)
    return cooc, time.perf_counter() - start


def similarity_scores(kv) -> dict[str, float]:
    """Spearman's rho of cosine against human scores on WS-353, SimLex-999 and MEN."""
    return {
        name: similarity_score(kv, similarity_pairs(name), None)["score"]
        for name in SIMILARITY_FILES
    }


def compare_with_glove_c(cooc: Cooccurrence, settings: GloveBench, binary: Path) -> pd.DataFrame:
    """companion and glove.c, alternated on the same matrix, pair order and initial vectors.

    glove.c reads the pairs in one shuffled order every epoch; companion reshuffles each
    epoch. glove.c's seconds per epoch are its wall time (reading the files included) / epochs.
    """
    coo = cooc.matrix.tocoo()
    order = np.random.default_rng(settings.seed).permutation(coo.nnz)
    i, j, x = coo.row[order], coo.col[order], coo.data[order]
    vocab_size = len(cooc.itos)

    def ours(bias_lr: float | None):
        result = train_glove(cooc, dim=settings.dim, epochs=settings.epochs, lr=settings.lr,
                             batch_size=settings.batch_size, seed=settings.seed,
                             device=settings.device, progress=False, bias_lr=bias_lr)  # fmt: skip
        return result.keyed_vectors(), float(np.mean(result.epoch_seconds)), result.losses[-1]

    def theirs(seed: int):
        init = GloveParams.init(vocab_size, settings.dim, seed=seed)
        run = run_glove_c(binary, i, j, x, init, epochs=settings.epochs, lr=settings.lr,
                          threads=settings.threads)  # fmt: skip
        kv = to_keyed_vectors(cooc.itos, run.params.vectors())
        return kv, run.seconds / settings.epochs, run.losses[-1]

    runs = {  # alternating: ours, theirs, ours, theirs
        "companion": lambda: ours(None),
        "glove.c": lambda: theirs(settings.seed),
        "companion, bias rate 1": lambda: ours(1.0),
        "glove.c, other initial vectors": lambda: theirs(settings.seed + 1),
    }
    results = {name: run() for name, run in runs.items()}
    reference_kv, reference_seconds, _ = results["glove.c"]
    words = list(cooc.itos[: settings.agreement_words])
    rows = {}
    for name, (kv, seconds, loss) in results.items():
        row = {"s / epoch": seconds, "time / glove.c": seconds / reference_seconds,
               f"loss, epoch {settings.epochs}": loss, **similarity_scores(kv)}  # fmt: skip
        if name != "glove.c":
            row.update(agreement(kv, reference_kv, words))
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = f"{settings.corpus}, {settings.epochs} epochs"
    return table


def report_alone(cooc: Cooccurrence, settings: GloveBench, evaluate: bool) -> None:
    """Train companion.glove and print each epoch's time and loss."""
    result = train_glove(cooc, dim=settings.dim, epochs=settings.epochs, lr=settings.lr,
                         batch_size=settings.batch_size, device=settings.device)  # fmt: skip
    for epoch, (loss, sec) in enumerate(zip(result.losses, result.epoch_seconds, strict=True), 1):
        print(f"epoch {epoch:3d}: {sec:6.2f} s, mean 1/2 f r^2 = {loss:.5f}")
    mean_epoch = sum(result.epoch_seconds) / len(result.epoch_seconds)
    print(f"mean time per epoch: {mean_epoch:.2f} s; {result.pairs_per_second / 1e6:.2f} M pairs/s")
    if evaluate:
        ws = similarity_score(result.keyed_vectors(), similarity_pairs("WS-353"), vocabulary=None)
        print(f"WS-353 Spearman rho: {ws['score']:.3f} ({ws['coverage']}/{ws['n']} pairs covered)")


def main(argv: list[str] | None = None) -> None:
    """Parse the options, build the matrix, train, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=("bbc", "full"), default="bbc")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: auto)")
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=16384)
    parser.add_argument("--threads", type=int, default=2, help="glove.c's threads")
    parser.add_argument("--eval", action="store_true", help="also print WS-353 Spearman rho")
    parser.add_argument(
        "--glove-c", nargs="?", const="build", default=None, metavar="PATH",
        help="compare with glove.c: the binary at PATH, or (no PATH) third_party/glove built here",
    )  # fmt: skip
    args = parser.parse_args(argv)
    settings = GloveBench(corpus=args.corpus, epochs=args.epochs, dim=args.dim,
                          window=args.window, min_count=args.min_count, lr=args.lr,
                          batch_size=args.batch_size, threads=args.threads,
                          device=args.device)  # fmt: skip
    device = get_device(args.device)
    print(f"device: {device_name(device)}; torch threads: {torch.get_num_threads()}")
    print(f"before: {machine_load()}")
    cooc, build = build_matrix(settings)
    print(f"corpus {args.corpus}: co-occurrence build {build:.2f} s; {len(cooc.itos):,} words, "
          f"{cooc.matrix.nnz:,} non-zero pairs")  # fmt: skip
    if args.glove_c is None:
        report_alone(cooc, settings, args.eval)
    else:
        binary = build_glove_c() if args.glove_c == "build" else Path(args.glove_c)
        with pd.option_context("display.width", 200, "display.precision", 4):
            print(compare_with_glove_c(cooc, settings, binary))
    print(f"after: {machine_load()}")


if __name__ == "__main__":
    main()
