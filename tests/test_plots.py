"""Tests of companion.plots: the figures show exactly the data they are given."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from companion.plots import (  # noqa: E402
    MAX_FIGURE_WIDTH,
    plot_attention,
    plot_confusion,
    plot_history,
)

HISTORY = pd.DataFrame(
    {"epoch": [1, 2, 3], "train_loss": [1.0, 0.5, 0.2], "val_macro_f1": [0.3, 0.6, 0.7]}
)


def test_history_lines_hold_the_data() -> None:
    other = HISTORY.assign(train_loss=[0.9, 0.8, 0.7])
    fig = plot_history({"a": HISTORY, "b": other}, metrics=("train_loss", "val_macro_f1"))
    loss_ax, f1_ax = fig.axes
    np.testing.assert_array_equal(loss_ax.lines[1].get_ydata(), [0.9, 0.8, 0.7])
    np.testing.assert_array_equal(f1_ax.lines[0].get_ydata(), HISTORY["val_macro_f1"])
    np.testing.assert_array_equal(f1_ax.lines[0].get_xdata(), [1, 2, 3])
    (legend,) = fig.legends  # one legend for the figure, outside the panels
    assert [t.get_text() for t in legend.get_texts()] == ["a", "b"]
    assert loss_ax.get_legend() is None and f1_ax.get_legend() is None
    plt.close(fig)
    assert plot_history(HISTORY, metrics=("train_loss",)).legends == []  # one run: no legend


def test_history_missing_metric_raises() -> None:
    with pytest.raises(ValueError, match=r"lacks \['val_loss'\]"):
        plot_history(HISTORY, metrics=("val_loss",))


def test_confusion_cells() -> None:
    cm = np.array([[3, 1], [0, 4]])
    fig = plot_confusion(cm, ["a", "b"])
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), cm)
    assert [t.get_text() for t in ax.texts] == ["3", "1", "0", "4"]
    plt.close(fig)
    fig = plot_confusion(cm, ["a", "b"], normalize=True)
    assert [t.get_text() for t in fig.axes[0].texts] == ["0.75", "0.25", "0.00", "1.00"]
    plt.close(fig)
    with pytest.raises(ValueError, match="must be 3 x 3"):
        plot_confusion(cm, ["a", "b", "c"])


def test_attention_map() -> None:
    weights = torch.softmax(torch.randn(2, 3), dim=-1)
    fig = plot_attention(weights, ["x", "y", "z"], ["p", "q"])
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), weights.numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["p", "q"]
    plt.close(fig)
    with pytest.raises(ValueError, match=r"= \(2, 2\), got \(2, 3\)"):
        plot_attention(weights, ["x", "y"], ["p", "q"])


def test_attention_map_of_a_long_source_fits_the_page() -> None:
    source = [f"w{i}" for i in range(60)]
    fig = plot_attention(np.full((4, 60), 1 / 60), source, list("abcd"))
    assert fig.get_figwidth() == MAX_FIGURE_WIDTH
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == source  # every label kept
    plt.close(fig)
