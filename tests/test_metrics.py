"""Tests of companion.metrics against a hand-worked example."""

from __future__ import annotations

import numpy as np
import pytest

from companion.metrics import classification_metrics, classification_report_frame, confusion

# Hand-worked: class 0 predicted twice (1 right), class 1 three times (2 right), class 2 never.
Y_TRUE = [0, 0, 1, 1, 2]
Y_PRED = [0, 1, 1, 1, 0]
PRECISION = [1 / 2, 2 / 3, 0.0]
RECALL = [1 / 2, 2 / 2, 0 / 1]
F1 = [2 * p * r / (p + r) if p + r else 0.0 for p, r in zip(PRECISION, RECALL, strict=True)]


def test_metrics_by_hand() -> None:
    m = classification_metrics(Y_TRUE, Y_PRED)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["macro_precision"] == pytest.approx(np.mean(PRECISION))
    assert m["macro_recall"] == pytest.approx(np.mean(RECALL))
    assert m["macro_f1"] == pytest.approx(np.mean(F1))


def test_labels_count_absent_classes() -> None:
    m = classification_metrics(Y_TRUE, Y_PRED, labels=range(4))  # class 3 absent: F1 0
    assert m["macro_f1"] == pytest.approx(sum(F1) / 4)


def test_report_frame_by_hand() -> None:
    frame = classification_report_frame(Y_TRUE, Y_PRED, ["a", "b", "c"])
    assert list(frame.index[:3]) == ["a", "b", "c"]
    np.testing.assert_allclose(frame.loc[["a", "b", "c"], "precision"], PRECISION)
    np.testing.assert_allclose(frame.loc[["a", "b", "c"], "recall"], RECALL)
    assert frame.loc[["a", "b", "c"], "support"].tolist() == [2, 2, 1]
    assert frame.loc["macro avg", "f1-score"] == pytest.approx(np.mean(F1))
    weighted = (2 * F1[0] + 2 * F1[1] + 1 * F1[2]) / 5  # each class weighted by its support
    assert frame.loc["weighted avg", "f1-score"] == pytest.approx(weighted)
    assert frame.loc["weighted avg", "support"] == 5


def test_confusion_by_hand() -> None:
    expected = np.array([[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(confusion(Y_TRUE, Y_PRED, 4), expected)


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="5 true labels but 4 predictions"):
        classification_metrics(Y_TRUE, Y_PRED[:4])
    with pytest.raises(ValueError, match="empty"):
        classification_metrics([], [])
    with pytest.raises(TypeError, match="integer class ids"):
        classification_metrics([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.1"):
        confusion(Y_TRUE, Y_PRED, 2)
    with pytest.raises(ValueError, match="match 2 label names"):
        classification_report_frame(Y_TRUE, Y_PRED, ["a", "b"])
    with pytest.raises(ValueError, match="must be 1-d"):
        classification_metrics([[0, 1]], [[0, 1]])


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        ([0, 1, 2], [0, 1, 1], r"y_true holds 2 \(its labels span 0\.\.2\)"),
        ([0, 1, 1], [0, -1, 1], r"y_pred holds -1 \(its labels span -1\.\.1\)"),
    ],
)
def test_out_of_range_labels_are_shown(y_true: list, y_pred: list, match: str) -> None:
    with pytest.raises(
        ValueError, match=r"labels must lie in 0\.\.1 for n_classes=2, but " + match
    ):
        confusion(y_true, y_pred, 2)
    with pytest.raises(ValueError, match=r"0\.\.1 to match 2 label names, but " + match):
        classification_report_frame(y_true, y_pred, ["a", "b"])
