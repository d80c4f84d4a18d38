"""A strong classic baseline for text classification: TF-IDF features + logistic regression.

Any neural classifier in the book has to beat (or at least match) this one, which
trains in seconds on a CPU::

    baseline = TfidfLogReg().fit(train_texts, train_labels)
    y_pred = baseline.predict(test_texts)
    probs = baseline.predict_proba(test_texts)      # [n_texts, n_classes]

It uses the same tokenizer as the neural models (:func:`companion.text.tokenize`), so
both see exactly the same words.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from companion.checks import check_ints
from companion.text import tokenize


class TfidfLogReg:
    """TF-IDF (uni- and bigrams, sublinear tf) followed by multinomial logistic regression."""

    def __init__(
        self,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 2,
        max_features: int | None = None,
        C: float = 10.0,
        max_iter: int = 1000,
        seed: int = 0,
    ) -> None:
        if len(ngram_range) != 2 or not 1 <= ngram_range[0] <= ngram_range[1]:
            raise ValueError(
                f"ngram_range must be (low, high) with 1 <= low <= high, got {ngram_range}"
            )
        if not C > 0:  # also refuses nan
            raise ValueError(f"C (inverse regularisation strength) must be > 0, got {C}")
        self.pipeline = Pipeline(
            [
                (
                    "tfidf",
                    TfidfVectorizer(
                        tokenizer=tokenize,
                        lowercase=False,
                        token_pattern=None,
                        ngram_range=tuple(ngram_range),
                        min_df=min_df,
                        max_features=max_features,
                        sublinear_tf=True,
                    ),
                ),
                ("logreg", LogisticRegression(C=C, max_iter=max_iter, random_state=seed)),
            ]
        )
        self.train_seconds: float | None = None

    def fit(self, texts: Sequence[str], labels: Sequence[int]) -> TfidfLogReg:
        """Learn the vocabulary, the idf weights and the classifier; records ``train_seconds``."""
        texts = _check_texts(texts)
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) != len(texts):
            raise ValueError(f"{len(texts)} texts but labels of shape {labels.shape}")
        if len(np.unique(labels)) < 2:
            raise ValueError(f"need at least 2 classes to train, got labels {np.unique(labels)}")
        start = time.perf_counter()
        self.pipeline.fit(texts, labels)
        self.train_seconds = time.perf_counter() - start
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape [n_texts, n_classes] (columns in ``classes`` order)."""
        self._check_fitted()
        return self.pipeline.predict_proba(_check_texts(texts))

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """The most probable class of each text."""
        self._check_fitted()
        return self.pipeline.predict(_check_texts(texts))

    @property
    def classes(self) -> np.ndarray:
        """The class labels seen in ``fit``, in column order of ``predict_proba``."""
        self._check_fitted()
        return self.pipeline.named_steps["logreg"].classes_

    def top_features(self, k: int = 10) -> dict[object, list[str]]:
        """The ``k`` n-grams with the largest weight for each class (what the model looks at)."""
        self._check_fitted()
        check_ints(k=k)
        names = self.pipeline.named_steps["tfidf"].get_feature_names_out()
        coef = self.pipeline.named_steps["logreg"].coef_
        if coef.shape[0] == 1:  # binary: one row of weights, for the second class
            coef = np.vstack([-coef[0], coef[0]])
        return {
            c: names[np.argsort(-w)[:k]].tolist() for c, w in zip(self.classes, coef, strict=True)
        }

    def _check_fitted(self) -> None:
        if self.train_seconds is None:
            raise ValueError("this TfidfLogReg is not trained yet: call fit(texts, labels) first")


def _check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list of strings, or a clear error."""
    if isinstance(texts, str):
        raise TypeError("expected a sequence of texts, got a single str; wrap it in a list")
    texts = list(texts)
    if not texts:
        raise ValueError("expected at least one text, got an empty sequence")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"text {bad} is a {type(texts[bad]).__name__}, expected str")
    return texts
