"""Tests for companion.baselines: the TF-IDF + logistic-regression baseline."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from companion.baselines import TfidfLogReg

TOPICS = {
    0: ["goal", "match", "striker", "league", "coach", "penalty"],
    1: ["shares", "profit", "market", "bank", "investor", "growth"],
    2: ["film", "actor", "award", "director", "festival", "album"],
}
COMMON = ["the", "a", "said", "on", "new", "year", "people", "it"]


def toy_corpus(n_per_class: int, seed: int) -> tuple[list[str], list[int]]:
    """Short texts of 3 topics: 3 topic words hidden among 8 common words."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for label, words in TOPICS.items():
        for _ in range(n_per_class):
            tokens = list(rng.choice(words, 3)) + list(rng.choice(COMMON, 8))
            rng.shuffle(tokens)
            texts.append(" ".join(tokens).capitalize() + ".")
            labels.append(label)
    return texts, labels


def test_trains_and_beats_chance_on_held_out_toy_texts() -> None:
    train_x, train_y = toy_corpus(20, seed=0)
    test_x, test_y = toy_corpus(10, seed=1)
    start = time.perf_counter()
    model = TfidfLogReg().fit(train_x, train_y)
    elapsed = time.perf_counter() - start
    accuracy = float(np.mean(model.predict(test_x) == np.asarray(test_y)))
    assert accuracy >= 0.9 > 1 / 3
    assert 0 < model.train_seconds <= elapsed  # the fit itself, timed inside the call


def test_probabilities_match_plain_logistic_regression_on_the_same_features() -> None:
    texts, labels = toy_corpus(10, seed=2)
    model = TfidfLogReg(C=3.0).fit(texts, labels)
    features = model.pipeline.named_steps["tfidf"].transform(texts)
    reference = LogisticRegression(C=3.0, max_iter=1000, random_state=0).fit(features, labels)
    probs = model.predict_proba(texts)
    np.testing.assert_allclose(probs, reference.predict_proba(features), atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert model.classes.tolist() == [0, 1, 2]
    assert (model.predict(texts) == model.classes[probs.argmax(axis=1)]).all()


def test_tfidf_features_match_a_hand_computed_example() -> None:
    model = TfidfLogReg(ngram_range=(1, 1), min_df=1).fit(["A a, B!", "b c"], [0, 1])
    tfidf = model.pipeline.named_steps["tfidf"]
    assert tfidf.get_feature_names_out().tolist() == ["a", "b", "c"]
    # smooth idf = ln((1 + n) / (1 + df)) + 1 with n = 2; sublinear tf = 1 + ln(count)
    idf_rare, idf_both = math.log(3 / 2) + 1, 1.0
    row = np.array([(1 + math.log(2)) * idf_rare, idf_both, 0.0])
    np.testing.assert_allclose(tfidf.transform(["A a, B!"]).toarray()[0], row / np.linalg.norm(row))


def test_bigrams_use_the_companion_tokenizer() -> None:
    model = TfidfLogReg(min_df=1).fit(["Hello, World!", "GPT-4o wins"], [0, 1])
    names = model.pipeline.named_steps["tfidf"].get_feature_names_out().tolist()
    assert "hello world" in names and "gpt 4o" in names and "," not in names


def test_top_features_are_the_topic_words() -> None:
    texts, labels = toy_corpus(30, seed=3)
    top = TfidfLogReg(ngram_range=(1, 1)).fit(texts, labels).top_features(k=3)
    assert sorted(top) == [0, 1, 2]
    for label, words in top.items():
        assert set(words) <= set(TOPICS[label]), (label, words)


def test_top_features_binary_case_gives_both_classes() -> None:
    texts, labels = toy_corpus(20, seed=4)
    keep = [i for i, y in enumerate(labels) if y < 2]
    model = TfidfLogReg(ngram_range=(1, 1)).fit([texts[i] for i in keep], [labels[i] for i in keep])
    top = model.top_features(k=2)
    assert set(top[0]) <= set(TOPICS[0]) and set(top[1]) <= set(TOPICS[1])


@pytest.mark.parametrize(
    ("texts", "labels", "error", "match"),
    [
        ("one text", [0], TypeError, "single str"),
        (["ok", 3], [0, 1], TypeError, "text 1 is a int"),
        ([], [], ValueError, "at least one text"),
        (["a b", "c d"], [0], ValueError, "2 texts but labels"),
        (["a b", "c d"], [1, 1], ValueError, "at least 2 classes"),
    ],
)
def test_fit_rejects_bad_input(texts, labels, error, match) -> None:
    with pytest.raises(error, match=match):
        TfidfLogReg(min_df=1).fit(texts, labels)


def test_use_before_fit_and_bad_settings_are_errors() -> None:
    with pytest.raises(ValueError, match="not trained yet"):
        TfidfLogReg().predict(["a text"])
    for bad_c in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="C .* must be > 0"):
            TfidfLogReg(C=bad_c)
    with pytest.raises(ValueError, match="ngram_range"):
        TfidfLogReg(ngram_range=(2, 1))
    model = TfidfLogReg(min_df=1).fit(["a b", "c d"], [0, 1])
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        model.top_features(k=0)
    with pytest.raises(TypeError, match="single str"):
        model.predict("a b")
