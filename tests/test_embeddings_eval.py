"""Tests for companion.embeddings_eval: file parsing, Spearman rho, analogies, coverage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from companion.embeddings_eval import (
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


def test_benchmark_files_and_gensim_fallback(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COMPANION_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    path = benchmark_path("questions-words.txt")
    assert path.is_file()
    lines = read_analogies(path)
    assert lines[0] == ": capital-common-countries"
    assert lines[1] == "athens greece baghdad iraq"
    with pytest.raises(FileNotFoundError, match="no-such-benchmark.txt not found"):
        benchmark_path("no-such-benchmark.txt")


def test_evaluate_word_vectors_table() -> None:
    table = evaluate_word_vectors(toy_vectors(), max_analogies=50)
    assert table["benchmark"].tolist() == ["WS-353", "SimLex-999", "MEN", "Google analogy"]
    assert (table["covered"] <= table["items"]).all()
    assert ((table["coverage"] >= 0) & (table["coverage"] <= 1)).all()


def test_nearest_neighbours() -> None:
    table = nearest_neighbours(toy_vectors(), ["apple", "zebra"], topn=2)
    assert table.loc["apple", "#1"].startswith("pear ")
    assert table.loc["zebra", "#1"] == "(not in vocabulary)"


def test_similarity_pairs_reads_the_named_benchmark() -> None:
    assert similarity_pairs("WS-353") == read_word_pairs(benchmark_path("EN-WS-353-ALL.txt"))
    with pytest.raises(ValueError, match="unknown similarity benchmark 'WS-999'"):
        similarity_pairs("WS-999")
