"""Label budgets: how accuracy grows with the number of labelled examples per class.

``sample_per_class`` draws exactly k training rows per class, by seed, never from the
validation or test splits. ``BudgetGrid`` runs a training function over every
model x budget x seed cell and stores one row per finished cell in a CSV file, written
atomically after each cell: calling ``run`` again reads the finished cells back and
computes only the missing ones, and an interrupted cell simply runs again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from companion.checks import check_ints
from companion.io import atomic_write_text

ALL = "all"  # the budget that keeps every training row
KEY = ["model", "budget", "seed"]

TrainFn = Callable[[str, pd.DataFrame, int], dict[str, float]]


def sample_per_class(frame: pd.DataFrame, k: int | str, seed: int) -> pd.DataFrame:
    """``k`` random training rows of each label (every training row for ``k="all"``).

    Only rows with ``split == "train"`` are drawn; the same ``seed`` gives the same rows,
    and a smaller budget's rows are not required to be a subset of a larger one's.
    """
    train = frame[frame["split"] == "train"]
    if k == ALL:
        return train.copy()
    check_ints(k=k)
    check_ints(0, seed=seed)
    counts = train["label"].value_counts()
    if counts.min() < k:
        raise ValueError(
            f"budget {k} per class exceeds the training rows of label {counts.idxmin()} "
            f"({counts.min()})"
        )
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(train["label"].to_numpy() == label), k, replace=False)
              for label in sorted(counts.index)]  # fmt: skip
    return train.iloc[np.sort(np.concatenate(picked))].copy()


class BudgetGrid:
    """Results of a model x budget x seed grid in ``path`` (CSV) with its ``settings`` (JSON)."""

    def __init__(self, path: Path, settings: dict) -> None:
        self.path = Path(path)
        self.settings_path = self.path.with_suffix(".settings.json")
        self.settings = json.loads(json.dumps(settings, sort_keys=True, default=str))
        if self.settings_path.exists():
            stored = self._stored_settings()
            if stored != self.settings:
                raise ValueError(
                    f"{self.path} holds results of other settings ({self.settings_path}: "
                    f"{stored}); use another path or delete both files to start afresh"
                )

    def _stored_settings(self) -> object:
        """The settings stored beside the results; a ValueError naming the file if unreadable."""
        try:
            return json.loads(self.settings_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(
                f"{self.settings_path} is not valid JSON ({err}); delete it and {self.path} "
                "to start afresh"
            ) from err

    def results(self) -> pd.DataFrame:
        """The finished cells (an empty frame before the first)."""
        if not self.path.exists():
            return pd.DataFrame(columns=KEY)
        try:
            frame = pd.read_csv(self.path, dtype={"model": str, "budget": str})
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
            raise ValueError(f"{self.path} is not a results table: {err}") from err
        missing = [c for c in KEY if c not in frame.columns]
        if missing:
            raise ValueError(f"{self.path} lacks the columns {missing}; delete it to start afresh")
        return frame

    def run(
        self,
        train: TrainFn,
        frame: pd.DataFrame,
        models: Sequence[str],
        budgets: Sequence[int | str],
        seeds: Sequence[int],
        progress: bool = True,
    ) -> pd.DataFrame:
        """Fill the grid: ``train(model, sample_per_class(frame, budget, seed), seed)`` per cell.

        ``train`` returns a dict of metrics; the tidy result has one row per cell.
        """
        done = self.results()
        finished = {(m, b, int(s)) for m, b, s in done[KEY].itertuples(index=False)}
        cells = [(m, str(b), s) for m in models for b in budgets for s in seeds]
        todo = [c for c in cells if c not in finished]
        if todo and not self.settings_path.exists():
            atomic_write_text(self.settings_path, json.dumps(self.settings, indent=1))
        rows = done.to_dict("records")
        for model, budget, seed in tqdm(todo, desc="grid", disable=not progress):
            k = budget if budget == ALL else int(budget)
            subset = sample_per_class(frame, k, seed)
            metrics = train(model, subset, seed)
            rows.append({"model": model, "budget": budget, "seed": seed,
                         "n_train": len(subset), **metrics})  # fmt: skip
            atomic_write_text(self.path, pd.DataFrame(rows).to_csv(index=False))
        table = pd.DataFrame(rows)
        wanted = table[[tuple(r) in set(cells) for r in table[KEY].itertuples(index=False)]]
        return wanted.reset_index(drop=True)
