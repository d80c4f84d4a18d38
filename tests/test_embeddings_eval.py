"""Tests for companion.embeddings_eval: file parsing, Spearman rho, analogies, coverage."""

from __future__ import annotations

from pathlib import Path

import gensim
import numpy as np
import pytest
from gensim.models import KeyedVectors
from scipy.stats import spearmanr

from companion.embeddings_eval import (
    ANALOGY_FILE,
    SIMILARITY_FILES,
    agreement,
    analogy_score,
    benchmark_path,
    evaluate_word_vectors,
    nearest_neighbours,
    read_analogies,
    read_word_pairs,
    similarity_pairs,
    similarity_score,
)
from companion.glove import to_keyed_vectors


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path / "cache"))


def toy_vectors():
    words = ["king", "queen", "man", "woman", "apple", "pear"]
    vectors = np.array(
        [[1, 1, 0], [1, -1, 0], [0, 1, 0.1], [0, -1, 0.1], [0, 0, 1], [0.1, 0, 1]], dtype=float
    )
    return to_keyed_vectors(words, vectors)


def test_read_word_pairs_handles_spaces_tabs_headers_and_pos(tmp_path: Path) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text("# comment\nword1 word2 score\nSun-n sunlight-n 50.0\r\ncar\tauto\t7.5\n")
    assert read_word_pairs(path) == [("sun", "sunlight", 50.0), ("car", "auto", 7.5)]
    (tmp_path / "empty.txt").write_text("nothing here\n")
    with pytest.raises(ValueError, match="holds no 'word1 word2 score' lines"):
        read_word_pairs(tmp_path / "empty.txt")


def test_similarity_score_is_spearman_of_cosines() -> None:
    kv = toy_vectors()
    pairs = [
        ("king", "queen", 3.0),
        ("man", "woman", 4.0),
        ("apple", "pear", 9.0),
        ("king", "apple", 1.0),
        ("queen", "zebra", 5.0),
    ]
    known = pairs[:4]
    cosines = [kv.similarity(a, b) for a, b, _ in known]
    expected = spearmanr(cosines, [s for *_, s in known]).statistic
    result = similarity_score(kv, pairs, vocabulary=None)
    assert result["score"] == pytest.approx(expected)
    assert (result["coverage"], result["n"]) == (4, 5)
    # restricted to a vocabulary: only pairs with both words in it are kept
    restricted = similarity_score(kv, pairs, vocabulary={"king", "queen", "man", "woman"})
    assert (restricted["coverage"], restricted["n"]) == (2, 2)


def test_analogy_score_counts_3cosadd_hits() -> None:
    kv = toy_vectors()
    lines = [": royals", "man woman king queen", "man king woman queen", "man woman apple zebra"]
    # man:woman :: king:? -> king - man + woman = (1, -1, 0) = queen (correct)
    # man:king :: woman:? -> woman - man + king = (1, -1, 0) = queen (correct)
    result = analogy_score(kv, lines, vocabulary=None, restrict_vocab=100)
    assert result == {"score": 1.0, "coverage": 2, "n": 3}


def test_analogy_score_is_nan_when_no_question_is_covered() -> None:
    # gensim reports accuracy 0.0 when it can answer none of the questions: that is no score
    result = analogy_score(toy_vectors(), [": x", "man woman apple zebra"], None, 100)
    assert np.isnan(result["score"]) and (result["coverage"], result["n"]) == (0, 1)


def test_benchmark_files_and_gensim_fallback(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("companion.embeddings_eval.data_dirs", lambda: [tmp_path])
    path = benchmark_path("questions-words.txt")
    assert path.parent == Path(gensim.__file__).parent / "test" / "test_data"
    (tmp_path / "word_similarity").mkdir()
    local = tmp_path / "word_similarity" / "questions-words.txt"
    local.write_text(": s\na b c d\n")
    assert benchmark_path("questions-words.txt") == local  # a data folder wins over gensim
    lines = read_analogies(path)
    assert lines[0] == ": capital-common-countries"
    assert lines[1] == "athens greece baghdad iraq"
    with pytest.raises(FileNotFoundError, match="no-such-benchmark.txt not found"):
        benchmark_path("no-such-benchmark.txt")


def benchmark_vectors(analogies: list[str]) -> KeyedVectors:
    """Random vectors for the words of the first 40 pairs of each benchmark and of
    ``analogies``; each country is its capital's vector plus a shared offset and noise."""
    rng = np.random.default_rng(0)
    words = {
        w for name in SIMILARITY_FILES for a, b, _ in similarity_pairs(name)[:40] for w in (a, b)
    }
    vectors = {w: rng.normal(size=8) for w in sorted(words)}
    offset = rng.normal(size=8)
    questions = [ln.split() for ln in analogies if not ln.startswith(":")]
    for capital, country in (q[k : k + 2] for q in questions for k in (0, 2)):
        vectors.setdefault(capital, rng.normal(size=8))
        vectors[country] = vectors[capital] + offset + 0.5 * rng.normal(size=8)
    return to_keyed_vectors(list(vectors), np.array(list(vectors.values())))


def cosine(u: np.ndarray, v: np.ndarray) -> float:
    """Cosine similarity in float64, symmetric to the last bit (so (a, b) and (b, a) tie)."""
    u, v = u.astype(np.float64), v.astype(np.float64)
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def three_cos_add(kv: KeyedVectors, question: str) -> bool:
    """Whether d is the nearest word by cosine to b - a + c (unit vectors), a, b, c excluded."""
    unit = kv.vectors / np.linalg.norm(kv.vectors, axis=1, keepdims=True)
    a, b, c, d = (kv.key_to_index[w] for w in question.split())
    cosines = unit @ (unit[b] - unit[a] + unit[c])
    cosines[[a, b, c]] = -np.inf
    return int(np.argmax(cosines)) == d


def test_evaluate_word_vectors_scores_match_scipy_and_numpy(shared_file) -> None:
    shared_file("word_similarity/EN-MEN-TR-3k.txt")  # MEN has no copy in gensim: fail without
    lines = read_analogies(benchmark_path(ANALOGY_FILE))[:50]
    kv = benchmark_vectors(lines)
    table = evaluate_word_vectors(kv, max_analogies=50).set_index("benchmark")
    assert table.index.tolist() == ["WS-353", "SimLex-999", "MEN", "Google analogy"]
    for name, items in (("WS-353", 353), ("SimLex-999", 999), ("MEN", 3000)):
        pairs = similarity_pairs(name)
        known = [(a, b, s) for a, b, s in pairs if a in kv.key_to_index and b in kv.key_to_index]
        cosines = [cosine(kv[a], kv[b]) for a, b, _ in known]
        expected = spearmanr(cosines, [s for *_, s in known]).statistic
        assert len(pairs) == items and table.loc[name, "covered"] == len(known) >= 40
        assert table.loc[name, "score"] == pytest.approx(expected, abs=1e-6)
        assert table.loc[name, "coverage"] == pytest.approx(len(known) / items)
    hits = [three_cos_add(kv, q) for q in lines[1:]]
    assert 0 < sum(hits) < len(hits) == table.loc["Google analogy", "items"] == 49
    assert table.loc["Google analogy", "score"] == pytest.approx(np.mean(hits))
    assert table.loc["Google analogy", "coverage"] == 1.0


def test_nearest_neighbours() -> None:
    kv = toy_vectors()
    table = nearest_neighbours(kv, ["king", "apple", "zebra"], topn=2)
    # king (1, 1, 0): man (0, 1, 0.1) at 1 / sqrt(2 * 1.01), then pear (0.1, 0, 1) at
    # 0.1 / sqrt(2 * 1.01); queen and apple are orthogonal to it, woman opposite
    expected = [f"man ({1 / 2.02**0.5:.2f})", f"pear ({0.1 / 2.02**0.5:.2f})"]
    assert table.loc["king"].tolist() == expected
    assert table.loc["apple", "#1"] == f"pear ({cosine(kv['apple'], kv['pear']):.2f})"
    assert table.loc["zebra"].tolist() == ["(not in vocabulary)", ""]


def test_similarity_pairs_reads_the_named_benchmark() -> None:
    # the data folder's copy and gensim's fallback hold the same pairs in the same order
    ws353, simlex = similarity_pairs("WS-353"), similarity_pairs("SimLex-999")
    assert len(ws353) == 353 and ws353[:2] == [("love", "sex", 6.77), ("tiger", "cat", 7.35)]
    assert len(simlex) == 999 and simlex[0] == ("old", "new", 1.58)
    with pytest.raises(ValueError, match="unknown similarity benchmark 'WS-999'"):
        similarity_pairs("WS-999")


def test_agreement_is_one_for_a_rotation_and_low_for_unrelated_vectors() -> None:
    """Neighbours and cosines survive any rotation; independent random vectors share little."""
    rng = np.random.default_rng(0)
    words = [f"w{k}" for k in range(300)]
    vectors = rng.normal(size=(300, 20))
    rotation, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    a, rotated = to_keyed_vectors(words, vectors), to_keyed_vectors(words, vectors @ rotation)
    same = agreement(a, rotated, words)
    assert same == pytest.approx({"neighbour_overlap": 1.0, "cosine_spearman": 1.0}, abs=1e-6)
    other = agreement(a, to_keyed_vectors(words, rng.normal(size=(300, 20))), words)
    assert other["neighbour_overlap"] < 0.15 and abs(other["cosine_spearman"]) < 0.05
    # a noisy copy: the overlap equals a brute-force count with a full sort
    noisy = vectors + 0.5 * rng.normal(size=(300, 20))
    found = agreement(a, to_keyed_vectors(words, noisy), words, topn=5)
    neighbours = []
    for v in (vectors, noisy):
        x = v / np.linalg.norm(v, axis=1, keepdims=True)
        neighbours.append(
            [[k for k in np.argsort(-row) if k != n][:5] for n, row in enumerate(x @ x.T)]
        )
    expected = np.mean([len(set(p) & set(q)) / 5 for p, q in zip(*neighbours, strict=True)])
    assert found["neighbour_overlap"] == pytest.approx(expected)
    assert 0.3 < found["cosine_spearman"] < 0.99
    with pytest.raises(ValueError, match="1 missing"):
        agreement(a, rotated, [*words[:20], "unknown"])
