"""Tests of companion.budgets: exact per-class samples from train only, and a grid that resumes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from companion.budgets import ALL, BudgetGrid, sample_per_class


def frame() -> pd.DataFrame:
    """30 rows: labels 0/1/2, ten each; the last two of every label are validation/test."""
    rows = []
    for label in range(3):
        for i in range(10):
            split = "validation" if i == 8 else "test" if i == 9 else "train"
            rows.append({"text": f"doc {label}-{i}", "label": label, "split": split})
    return pd.DataFrame(rows)


def test_exactly_k_per_class_from_train_only_and_repeatable() -> None:
    data = frame()
    for k in (1, 3, 8):
        picked = sample_per_class(data, k, seed=4)
        assert picked["label"].value_counts().to_dict() == {0: k, 1: k, 2: k}
        assert set(picked["split"]) == {"train"}
        assert picked.equals(sample_per_class(data, k, seed=4))
    assert not sample_per_class(data, 3, seed=1).equals(sample_per_class(data, 3, seed=2))
    assert len(sample_per_class(data, ALL, seed=0)) == 24
    with pytest.raises(ValueError, match="exceeds the training rows"):
        sample_per_class(data, 9, seed=0)
    with pytest.raises(ValueError, match="k must be an integer"):
        sample_per_class(data, 0, seed=0)


class Recorder:
    """A training function that records its calls and can fail on one cell."""

    def __init__(self, fail_on: tuple | None = None) -> None:
        self.calls: list[tuple] = []
        self.fail_on = fail_on

    def __call__(self, model: str, rows: pd.DataFrame, seed: int) -> dict[str, float]:
        cell = (model, len(rows), seed)
        if cell == self.fail_on:
            raise KeyboardInterrupt
        self.calls.append(cell)
        return {"accuracy": len(rows) / 100 + seed / 1000}


def test_a_half_finished_grid_recomputes_nothing_finished(tmp_path: Path) -> None:
    path, data, settings = tmp_path / "grid.csv", frame(), {"epochs": 3}
    grid = {"models": ["a", "b"], "budgets": [1, 2, ALL], "seeds": [0, 1]}
    first = Recorder(fail_on=("b", 6, 0))  # interrupted in model b, budget 2, seed 0
    with pytest.raises(KeyboardInterrupt):
        BudgetGrid(path, settings).run(first, data, **grid, progress=False)
    assert len(first.calls) == 8  # all six cells of a, then b's budget 1
    second = Recorder()
    table = BudgetGrid(path, settings).run(second, data, **grid, progress=False)
    assert second.calls == [("b", 6, 0), ("b", 6, 1), ("b", 24, 0), ("b", 24, 1)]
    assert len(table) == 12 and not table.duplicated(["model", "budget", "seed"]).any()
    everything = (table["model"] == "a") & (table["budget"] == ALL)
    assert table.loc[everything, "n_train"].tolist() == [24, 24]
    third = Recorder()
    again = BudgetGrid(path, settings).run(third, data, **grid, progress=False)
    assert third.calls == [] and again.equals(table)


def test_other_settings_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "grid.csv"
    BudgetGrid(path, {"epochs": 3}).run(Recorder(), frame(), ["a"], [1], [0], progress=False)
    with pytest.raises(ValueError, match="holds results of other settings"):
        BudgetGrid(path, {"epochs": 4})


def test_a_broken_results_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "grid.csv"
    path.write_text("nothing,useful\n1,2\n")
    with pytest.raises(ValueError, match="lacks the columns"):
        BudgetGrid(path, {}).results()


@pytest.mark.parametrize("content", [b'{"epochs": 3', b"\xff\xfe not text"])
def test_a_corrupt_settings_file_is_named(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "grid.csv"
    path.with_suffix(".settings.json").write_bytes(content)
    with pytest.raises(ValueError, match=r"grid\.settings\.json is not valid JSON") as err:
        BudgetGrid(path, {"epochs": 3})
    assert str(tmp_path / "grid.settings.json") in str(err.value)
