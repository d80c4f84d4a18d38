"""GloVe speed and quality: co-occurrence build time, seconds per epoch, pairs per second.

Counts the co-occurrence matrix of the news corpus (window 10, minimum count 5), trains
100-dimensional vectors with AdaGrad (learning rate 0.05) and prints, with the machine's
``uptime`` load, the build time, each epoch's time and mean ½·f·r², pairs per second and,
with ``--eval``, the WS-353 Spearman rho. Run from the repository root::

    python benchmarks/bench_glove.py                           # BBC, 3 epochs, auto device
    python benchmarks/bench_glove.py --corpus full --epochs 25 --eval
    python benchmarks/bench_glove.py --corpus bbc --epochs 25 --device cpu --eval

Reference C implementation (GloVe, 2 threads): about 2.9 s per epoch on the BBC matrix and
18.8 s on the full corpus, loss about 0.0066 after 25 epochs on BBC.
"""

from __future__ import annotations

import argparse
import time

import torch

from companion.config import device_name, get_device, machine_load
from companion.embeddings_eval import similarity_pairs, similarity_score
from companion.glove import count_cooccurrences, news_texts, train_glove
from companion.text import tokenize


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
    parser.add_argument("--eval", action="store_true", help="also print WS-353 Spearman rho")
    args = parser.parse_args(argv)
    device = get_device(args.device)
    print(f"device: {device_name(device)}; torch threads: {torch.get_num_threads()}")
    print(f"before: {machine_load()}")

    start = time.perf_counter()
    docs = [tokenize(t) for t in news_texts(args.corpus)]
    print(
        f"corpus {args.corpus}: {len(docs):,} documents, {sum(map(len, docs)):,} tokens, "
        f"loaded and tokenised in {time.perf_counter() - start:.1f} s"
    )
    start = time.perf_counter()
    cooc = count_cooccurrences(docs, window=args.window, min_count=args.min_count)
    build = time.perf_counter() - start
    print(
        f"co-occurrence build: {build:.2f} s; {len(cooc.itos):,} words, "
        f"{cooc.matrix.nnz:,} non-zero pairs"
    )

    result = train_glove(
        cooc,
        dim=args.dim,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        device=device,
    )
    for epoch, (loss, sec) in enumerate(zip(result.losses, result.epoch_seconds, strict=True), 1):
        print(f"epoch {epoch:3d}: {sec:6.2f} s, mean 1/2 f r^2 = {loss:.5f}")
    mean_epoch = sum(result.epoch_seconds) / len(result.epoch_seconds)
    print(f"mean time per epoch: {mean_epoch:.2f} s; {result.pairs_per_second / 1e6:.2f} M pairs/s")
    print(f"after: {machine_load()}")
    if args.eval:
        ws = similarity_score(result.keyed_vectors(), similarity_pairs("WS-353"), vocabulary=None)
        print(f"WS-353 Spearman rho: {ws['score']:.3f} ({ws['coverage']}/{ws['n']} pairs covered)")


if __name__ == "__main__":
    main()
