"""Word-vector evaluation: similarity benchmarks (Spearman rho) and Google analogies (3CosAdd).

The scores come from gensim's ``KeyedVectors.evaluate_word_pairs`` and
``evaluate_word_analogies``. Benchmark files are read from ``<data dir>/word_similarity/``
(``companion.config.data_dirs()``); WS-353, SimLex-999 and the analogies fall back to the
copies inside the gensim wheel. Each file is first normalised to the tab-separated
``word1<TAB>word2<TAB>score`` that gensim expects (some copies are space separated, and MEN
words may carry part-of-speech suffixes such as ``-n``), and can be restricted to a vocabulary
so that two models are compared on exactly the same pairs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from pathlib import Path

import gensim
import numpy as np
import pandas as pd
from gensim.models import KeyedVectors
from scipy.stats import spearmanr

from companion.config import cache_dir, data_dirs
from companion.io import atomic_write_text

SIMILARITY_FILES = {
    "WS-353": "EN-WS-353-ALL.txt",
    "SimLex-999": "EN-SIMLEX-999.txt",
    "MEN": "EN-MEN-TR-3k.txt",
}
ANALOGY_FILE = "questions-words.txt"
GENSIM_COPIES = {
    "EN-WS-353-ALL.txt": "wordsim353.tsv",
    "EN-SIMLEX-999.txt": "simlex999.txt",
    "questions-words.txt": "questions-words.txt",
}
POS_SUFFIX = re.compile(r"-[nvajr]$")


def benchmark_path(filename: str) -> Path:
    """The benchmark file in the first data directory holding it, else gensim's copy."""
    for folder in data_dirs():
        path = folder / "word_similarity" / filename
        if path.is_file():
            return path
    if filename in GENSIM_COPIES:
        return Path(gensim.__file__).parent / "test" / "test_data" / GENSIM_COPIES[filename]
    searched = ", ".join(str(d / "word_similarity") for d in data_dirs())
    raise FileNotFoundError(f"{filename} not found in {searched}; set COMPANION_DATA")


def read_word_pairs(path: str | Path) -> list[tuple[str, str, float]]:
    """(word1, word2, score) from a tab- or space-separated file; comments and headers skipped.

    Words are lower-cased and a part-of-speech suffix (``sun-n``) is removed.
    """
    pairs = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) != 3 or line.startswith("#"):
            continue
        try:
            score = float(fields[2])
        except ValueError:
            continue  # a header line such as "word1 word2 score"
        a, b = (POS_SUFFIX.sub("", w.lower()) for w in fields[:2])
        pairs.append((a, b, score))
    if not pairs:
        raise ValueError(f"{path} holds no 'word1 word2 score' lines")
    return pairs


def similarity_pairs(name: str) -> list[tuple[str, str, float]]:
    """The (word1, word2, human score) pairs of a benchmark named in ``SIMILARITY_FILES``."""
    if name not in SIMILARITY_FILES:
        choices = list(SIMILARITY_FILES)
        raise ValueError(f"unknown similarity benchmark {name!r}; choose from {choices}")
    return read_word_pairs(benchmark_path(SIMILARITY_FILES[name]))


def read_analogies(path: str | Path) -> list[str]:
    """The lines of an analogy file: ``: section`` headers and lower-cased ``a b c d`` questions."""
    lines = [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines()]
    return [ln if ln.startswith(":") else ln.lower() for ln in lines if ln]


def cached_file(kind: str, text: str) -> Path:
    """Write ``text`` once to a content-addressed file in the cache folder and return its path."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = cache_dir() / "word_benchmarks" / f"{kind}-{digest}.txt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    return path


def similarity_score(
    kv: KeyedVectors, pairs: Sequence[tuple[str, str, float]], vocabulary: Collection[str] | None
) -> dict[str, float]:
    """Spearman rho of cosine similarity vs human scores, and the share of pairs covered."""
    if vocabulary is not None:
        pairs = [p for p in pairs if p[0] in vocabulary and p[1] in vocabulary]
    covered = sum(a in kv.key_to_index and b in kv.key_to_index for a, b, _ in pairs)
    if covered < 3:  # too few pairs for a rank correlation
        return {"score": float("nan"), "coverage": covered, "n": len(pairs)}
    text = "".join(f"{a}\t{b}\t{s}\n" for a, b, s in pairs)
    _, spearman, _ = kv.evaluate_word_pairs(
        cached_file("pairs", text), restrict_vocab=len(kv), case_insensitive=False
    )
    return {"score": float(spearman.statistic), "coverage": covered, "n": len(pairs)}


def analogy_score(
    kv: KeyedVectors,
    lines: Sequence[str],
    vocabulary: Collection[str] | None,
    restrict_vocab: int,
) -> dict[str, float]:
    """3CosAdd accuracy on the analogy questions whose four words are known, and their count.

    With no question covered the accuracy is nan (gensim itself reports 0.0 there).
    """
    if vocabulary is not None:
        vocabulary = set(vocabulary)
        lines = [ln for ln in lines if ln.startswith(":") or set(ln.split()) <= vocabulary]
    n = sum(not ln.startswith(":") for ln in lines)
    if n == 0:
        return {"score": float("nan"), "coverage": 0, "n": 0}
    accuracy, sections = kv.evaluate_word_analogies(
        cached_file("analogies", "\n".join(lines) + "\n"),
        restrict_vocab=restrict_vocab,
        case_insensitive=False,
    )
    covered = len(sections[-1]["correct"]) + len(sections[-1]["incorrect"])
    return {"score": float(accuracy) if covered else float("nan"), "coverage": covered, "n": n}


def evaluate_word_vectors(
    kv: KeyedVectors,
    *,
    vocabulary: Collection[str] | None = None,
    restrict_vocab: int = 300_000,
    max_analogies: int | None = None,
) -> pd.DataFrame:
    """WS-353, SimLex-999, MEN (Spearman rho) and Google analogies (accuracy) with coverage.

    ``vocabulary`` keeps only the items whose words all lie in it (compare two models on the
    same items); ``max_analogies`` evaluates the first that many question lines (for quick runs).
    """
    if vocabulary is not None:
        vocabulary = set(vocabulary)
    rows = []
    for name in SIMILARITY_FILES:
        pairs = similarity_pairs(name)
        rows.append(
            {"benchmark": name, "metric": "Spearman rho", **similarity_score(kv, pairs, vocabulary)}
        )
    lines = read_analogies(benchmark_path(ANALOGY_FILE))[:max_analogies]
    rows.append(
        {
            "benchmark": "Google analogy",
            "metric": "accuracy (3CosAdd)",
            **analogy_score(kv, lines, vocabulary, restrict_vocab),
        }
    )
    table = pd.DataFrame(rows).rename(columns={"coverage": "covered", "n": "items"})
    table["coverage"] = table["covered"] / table["items"].where(table["items"] > 0)
    return table


def nearest_neighbours(kv: KeyedVectors, words: Sequence[str], topn: int = 5) -> pd.DataFrame:
    """The ``topn`` most cosine-similar words for each query word (missing words say so)."""
    rows = {}
    for word in words:
        if word in kv.key_to_index:
            rows[word] = [f"{w} ({s:.2f})" for w, s in kv.most_similar(word, topn=topn)]
        else:
            rows[word] = ["(not in vocabulary)"] + [""] * (topn - 1)
    return pd.DataFrame.from_dict(rows, orient="index", columns=[f"#{k + 1}" for k in range(topn)])


def agreement(a: KeyedVectors, b: KeyedVectors, words: Sequence[str], topn: int = 10) -> dict:
    """How alike two models' geometries are on ``words``: the mean share of each word's
    ``topn`` nearest neighbours (among ``words``) they share, and Spearman's rho between
    their cosine similarities over all pairs of ``words``. Both are 1 for the same vectors
    and for any rotation of them."""
    missing = [w for w in words if w not in a.key_to_index or w not in b.key_to_index]
    if missing or len(set(words)) != len(words) or len(words) <= topn:
        raise ValueError(
            f"words must be more than topn={topn} distinct words known to both models; "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(words)} given"
        )
    cosines = []
    for kv in (a, b):
        x = np.stack([kv[w] for w in words]).astype(np.float64)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        cosines.append(x @ x.T)
    for c in cosines:
        np.fill_diagonal(c, -np.inf)
    near = [np.argpartition(-c, topn, axis=1)[:, :topn] for c in cosines]
    shared = [len(set(p) & set(q)) / topn for p, q in zip(*near, strict=True)]
    upper = np.triu_indices(len(words), k=1)
    rho = spearmanr(cosines[0][upper], cosines[1][upper]).statistic
    return {"neighbour_overlap": float(np.mean(shared)), "cosine_spearman": float(rho)}
