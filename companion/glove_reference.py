"""The reference implementation, glove.c (stanfordnlp/GloVe), run on companion's own data.

``third_party/glove`` holds glove.c as published (Apache 2.0; the commit is in its README).
:func:`build_glove_c` compiles it with the system's C compiler, or takes a build the reader
made; :func:`run_glove_c` trains it on the pairs of a co-occurrence matrix in a given order,
from given initial parameters, and reads back what it wrote. That makes it an independent
check of ``companion.glove``: the authors' code, not a transcription of it.

One difference is known and measured in chapter 1: since 2019 (commit 5b4e03c, "Add
gradient components clipping") glove.c multiplies the learning rate into the vector steps
only, so the biases are stepped with rate 1 (stanfordnlp/GloVe pull request #209).
``train_glove(..., bias_lr=1.0)`` reproduces that; the default follows the paper and
GloVe 1.2. glove.c also clips each vector-gradient component to ±100 (``-grad-clip``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from companion.checks import check_ints
from companion.config import REPO_ROOT
from companion.glove import ALPHA, X_MAX, GloveParams

SOURCE = REPO_ROOT / "third_party" / "glove"
SOURCES = ("glove.c", "common.c")
CREC = np.dtype([("word1", "<i4"), ("word2", "<i4"), ("val", "<f8")])  # glove.c's record
COST = re.compile(r"iter: (\d+), cost: ([-+0-9.eE]+|nan|-?inf)")


def build_glove_c(directory: Path | None = None, compiler: str = "gcc") -> Path:
    """Compile ``third_party/glove`` once (``-O3``) and return the path of the ``glove`` binary."""
    directory = Path(directory) if directory else REPO_ROOT / ".cache" / "glove-c"
    binary = directory / "glove"
    newest = max((SOURCE / name).stat().st_mtime for name in (*SOURCES, "common.h"))
    if binary.exists() and binary.stat().st_mtime >= newest:
        return binary
    if shutil.which(compiler) is None:
        raise RuntimeError(
            f"building glove.c needs a C compiler: {compiler!r} was not found on PATH "
            "(install gcc, or pass the path of a glove binary you built from "
            "https://github.com/stanfordnlp/GloVe)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f"glove.{os.getpid()}.partial"
    command = [compiler, "-O3", "-o", str(partial), *(str(SOURCE / n) for n in SOURCES)]
    done = subprocess.run([*command, "-lm", "-pthread"], capture_output=True, text=True)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"compiling glove.c failed:\n{done.stderr.strip()}")
    partial.replace(binary)
    return binary


@dataclass
class ReferenceRun:
    """What glove.c wrote: its parameters and accumulators (float64), per-epoch cost, time."""

    params: GloveParams
    losses: list[float]
    seconds: float


def write_inputs(
    folder: Path, i: np.ndarray, j: np.ndarray, x: np.ndarray, init: GloveParams
) -> None:
    """glove.c's input files in ``folder``: vocabulary, records (1-based ids), parameters."""
    vocab_size = init.w.shape[0]
    (folder / "vocab.txt").write_text("".join(f"w{k} 1\n" for k in range(vocab_size)))
    records = np.empty(len(i), dtype=CREC)
    records["word1"], records["word2"], records["val"] = i + 1, j + 1, x
    records.tofile(folder / "cooccurrence.bin")
    for name, (word, context) in {
        "init": (init.w, init.w_ctx),
        "init_gradsq": (init.accum_w, init.accum_w_ctx),
    }.items():
        table = torch.cat([word, context]).detach().cpu().double().numpy()
        table.tofile(folder / f"{name}.bin")


def read_table(path: Path, vocab_size: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A [2V, dim + 1] float64 table written by glove.c, split into word and context rows."""
    table = torch.from_numpy(np.fromfile(path, dtype="<f8").reshape(2 * vocab_size, dim + 1))
    return table[:vocab_size], table[vocab_size:]


def run_glove_c(
    binary: Path,
    i: np.ndarray,
    j: np.ndarray,
    x: np.ndarray,
    init: GloveParams,
    *,
    epochs: int,
    lr: float = 0.05,
    threads: int = 1,
    x_max: float = X_MAX,
    alpha: float = ALPHA,
) -> ReferenceRun:
    """Train glove.c on the pairs (i, j, X_ij), read in this order, starting from ``init``.

    With one thread glove.c visits the records in file order, one pair at a time; with more,
    each thread takes its own stretch of the file (lock-free "Hogwild").
    """
    check_ints(epochs=epochs, threads=threads)
    if not (len(i) == len(j) == len(x)) or len(i) == 0:
        raise ValueError(
            f"i, j and x must be non-empty and equally long, got {len(i)}, {len(j)}, {len(x)}"
        )
    vocab_size, dim = init.w.shape[0], init.w.shape[1] - 1
    with tempfile.TemporaryDirectory(prefix="glove-c-") as name:
        folder = Path(name)
        write_inputs(folder, np.asarray(i), np.asarray(j), np.asarray(x, dtype=np.float64), init)
        options = {
            "input-file": folder / "cooccurrence.bin", "vocab-file": folder / "vocab.txt",
            "save-file": folder / "vectors", "gradsq-file": folder / "gradsq",
            "init-param-file": folder / "init.bin", "init-gradsq-file": folder / "init_gradsq.bin",
            "load-init-param": 1, "load-init-gradsq": 1, "save-gradsq": 1, "binary": 1,
            "vector-size": dim, "threads": threads, "iter": epochs, "eta": lr,
            "x-max": x_max, "alpha": alpha, "verbose": 0,
        }  # fmt: skip
        command = [str(binary), *(str(a) for k, v in options.items() for a in (f"-{k}", v))]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(
                f"glove.c exited with {done.returncode}:\n{done.stderr.strip()[-2000:]}"
            )
        w, w_ctx = read_table(folder / "vectors.bin", vocab_size, dim)
        accum_w, accum_w_ctx = read_table(folder / "gradsq.bin", vocab_size, dim)
    losses = [float(cost) for _, cost in COST.findall(done.stderr)]
    return ReferenceRun(GloveParams(w, w_ctx, accum_w, accum_w_ctx), losses, seconds)
