"""Matplotlib figures used across chapters: learning curves, confusion matrices, attention maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

History = pd.DataFrame | Mapping[str, pd.DataFrame]
MAX_FIGURE_WIDTH = 11.0  # inches: about the width of a page of the rendered book


def plot_history(
    history: History, metrics: Sequence[str] = ("train_loss", "val_loss", "val_macro_f1")
) -> Figure:
    """Learning curves: one panel per metric, one line per run, against the epoch.

    ``history`` is a ``fit`` history or a mapping ``{run name: history}`` to compare runs.
    """
    runs = {"": history} if isinstance(history, pd.DataFrame) else dict(history)
    if not runs or not metrics:
        raise ValueError("plot_history needs at least one history and one metric")
    for name, frame in runs.items():
        missing = [m for m in (*metrics, "epoch") if m not in frame.columns]
        if missing:
            raise ValueError(f"history {name!r} lacks {missing}; it has {list(frame.columns)}")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False,
                             layout="constrained")  # fmt: skip
    for ax, metric in zip(axes[0], metrics, strict=True):
        for name, frame in runs.items():
            ax.plot(frame["epoch"], frame[metric], marker="o", markersize=3, label=name or None)
        ax.set(title=metric.replace("_", " "), xlabel="epoch", ylabel=metric)
        ax.grid(alpha=0.3)
    if len(runs) > 1:  # one legend for all panels, below them, where it covers no curve
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center",
                   ncols=min(len(runs), 4), frameon=False)  # fmt: skip
    return fig


def plot_confusion(
    cm: np.ndarray, label_names: Sequence[str], normalize: bool = False, title: str = ""
) -> Figure:
    """A confusion matrix as a heat map with counts (or row shares) written in each cell."""
    cm = np.asarray(cm)
    n = len(label_names)
    if cm.shape != (n, n):
        raise ValueError(f"cm must be {n} x {n} to match the label names, got {cm.shape}")
    values = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    fig, ax = plt.subplots(figsize=(1.0 * n + 2.5, 0.9 * n + 1.8))
    image = ax.imshow(values, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046)
    title = title or ("confusion matrix (row shares)" if normalize else "confusion matrix")
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels(label_names, rotation=45, ha="right")
    ax.set_yticklabels(label_names)
    threshold = values.max() / 2 if values.size else 0
    for i in range(n):
        for j in range(n):
            text = f"{values[i, j]:.2f}" if normalize else f"{int(values[i, j])}"
            color = "white" if values[i, j] > threshold else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=9)
    fig.tight_layout()
    return fig


def plot_attention(
    weights: np.ndarray, src_tokens: Sequence[str], tgt_tokens: Sequence[str], title: str = ""
) -> Figure:
    """Attention weights [target, source] as a heat map: row i = where output token i looked."""
    if hasattr(weights, "detach"):  # a torch tensor
        weights = weights.detach().float().cpu().numpy()
    weights = np.asarray(weights, dtype=float)
    expected = (len(tgt_tokens), len(src_tokens))
    if weights.shape != expected:
        raise ValueError(
            f"weights must have shape (len(tgt_tokens), len(src_tokens)) = {expected}, "
            f"got {weights.shape}"
        )
    # At most MAX_FIGURE_WIDTH inches (a page's width): long sources get narrower columns and
    # smaller labels instead of a figure the page shrinks until nothing can be read.
    width = min(0.45 * len(src_tokens) + 2.5, MAX_FIGURE_WIDTH)
    label_size = float(np.clip(72 * (width - 2.5) / len(src_tokens) * 0.9, 6, 10))
    fig, ax = plt.subplots(figsize=(width, 0.4 * len(tgt_tokens) + 1.8))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, aspect="auto")
    fig.colorbar(image, ax=ax, fraction=0.046, label="attention weight")
    ax.set(xticks=range(len(src_tokens)), yticks=range(len(tgt_tokens)),
           xlabel="source token", ylabel="output token", title=title or "attention")  # fmt: skip
    ax.set_xticklabels(src_tokens, rotation=70 if label_size < 9 else 60, ha="right",
                       fontsize=label_size)  # fmt: skip
    ax.set_yticklabels(tgt_tokens)
    fig.tight_layout()
    return fig
