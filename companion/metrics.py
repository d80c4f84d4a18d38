"""Classification metrics from scikit-learn: accuracy, macro P/R/F1, report, confusion."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
)

from companion.checks import check_ints


def _as_label_arrays(y_true: Sequence[int], y_pred: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert two label sequences to 1-d integer arrays of the same length."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError(
            f"labels must be 1-d, got shapes {y_true.shape} (y_true) and {y_pred.shape} (y_pred)"
        )
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    if len(y_true) == 0:
        raise ValueError("no labels: y_true and y_pred are empty")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"{name} must hold integer class ids, got dtype {y.dtype}")
    return y_true, y_pred


def _check_label_range(y_true: np.ndarray, y_pred: np.ndarray, n: int, context: str) -> None:
    """A ValueError naming the array and its value outside 0..n-1, if there is one."""
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= n:
            raise ValueError(
                f"labels must lie in 0..{n - 1} {context}, but {name} holds "
                f"{low if low < 0 else high} (its labels span {low}..{high})"
            )


def classification_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[int] | None = None
) -> dict[str, float]:
    """Accuracy and macro-averaged precision, recall and F1 (scikit-learn, zero_division=0).

    ``labels`` lists the classes the macro average runs over; by default the classes
    present in ``y_true`` or ``y_pred``. Pass ``range(n_classes)`` so that a class the
    model never predicts and the batch never contains still counts (as 0).
    """
    y_true, y_pred = _as_label_arrays(y_true, y_pred)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_precision": float(precision),
        "macro_recall": float(recall),
        "macro_f1": float(f1),
    }


def classification_report_frame(
    y_true: Sequence[int], y_pred: Sequence[int], label_names: Sequence[str]
) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support, plus macro and weighted averages."""
    y_true, y_pred = _as_label_arrays(y_true, y_pred)
    n = len(label_names)
    _check_label_range(y_true, y_pred, n, f"to match {n} label names")
    report = classification_report(
        y_true,
        y_pred,
        labels=list(range(n)),
        target_names=list(label_names),
        output_dict=True,
        zero_division=0,
    )
    report.pop("accuracy", None)
    frame = pd.DataFrame(report).T
    frame["support"] = frame["support"].astype(int)
    return frame


def confusion(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """The n_classes x n_classes confusion matrix: row = true class, column = predicted."""
    y_true, y_pred = _as_label_arrays(y_true, y_pred)
    check_ints(n_classes=n_classes)
    _check_label_range(y_true, y_pred, n_classes, f"for n_classes={n_classes}")
    return confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))
