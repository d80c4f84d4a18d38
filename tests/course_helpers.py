"""A toy chapter and submissions for the course-kit tests (tests/test_course.py, test_grade.py)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from companion import grade

ROOT = Path(__file__).resolve().parents[1]
TOY = "01_toy"
FAST = grade.Limits(cell_timeout_s=20, memory_gib=2.0, total_timeout_s=300)


def nbgrader_meta(**fields) -> dict:
    return {"nbgrader": {"schema_version": 3, "task": False, **fields}}


def solution_cell(source: str, grade_id: str) -> nbformat.NotebookNode:
    meta = nbgrader_meta(solution=True, grade=False, locked=False, grade_id=grade_id)
    meta.update(tags=["hide-input"], jupyter={"source_hidden": True})
    return new_code_cell(source, metadata=meta)


def graded_cell(source: str, grade_id: str, points: int) -> nbformat.NotebookNode:
    meta = nbgrader_meta(solution=False, grade=True, locked=True, grade_id=grade_id, points=points)
    return new_code_cell(source, metadata=meta)


def toy_chapter(folder: Path, name: str = TOY) -> Path:
    """A chapter with two coding exercises (2 and 3 points) and one written answer."""
    cells = [
        new_markdown_cell("# 1. A toy chapter"),
        new_code_cell("HIDDEN_STATE = 42  # before the exercises: not part of the assignment"),
        new_code_cell("SCALE = 2  # a setting", metadata={"tags": ["exercise-setup"]}),
        new_markdown_cell("## Exercises\n\nTry them."),
        new_markdown_cell("1. Write `double(x)`."),
        solution_cell(
            "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
            "double",
        ),
        graded_cell(
            "assert double(2) == 4\n### BEGIN HIDDEN TESTS\n"
            "assert double(5) == 10\n### END HIDDEN TESTS",
            "double-test",
            2,
        ),
        new_markdown_cell("2. Write `halve(x)`."),
        solution_cell(
            "def halve(x):\n    ### BEGIN SOLUTION\n    return x / 2\n    ### END SOLUTION", "halve"
        ),
        graded_cell(
            "assert halve(4) == 2\n### BEGIN HIDDEN TESTS\n"
            "assert halve(1) == 0.5\n### END HIDDEN TESTS",
            "halve-test",
            3,
        ),
        new_markdown_cell("3. Why is doubling linear?"),
        new_markdown_cell(
            "```{admonition} Solution\n:class: dropdown\nBecause 2(x + y) = 2x + 2y.\n```"
        ),
        new_markdown_cell("## Summary\n\nDone."),
    ]
    path = folder / f"{name}.ipynb"
    nbformat.write(
        new_notebook(
            cells=cells,
            metadata={
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            },
        ),
        path,
    )
    return path


def submit(folder: Path, student: str, nb: nbformat.NotebookNode, assignment: str = TOY) -> None:
    target = folder / student / assignment / f"{assignment}.ipynb"
    target.parent.mkdir(parents=True)
    nbformat.write(nb, target)


def released(course_dir: Path, assignment: str = TOY) -> nbformat.NotebookNode:
    return nbformat.read(course_dir / "release" / assignment / f"{assignment}.ipynb", as_version=4)


def answered(course_dir: Path, **bodies: str) -> nbformat.NotebookNode:
    """The released notebook with the students' code in the solution cells named."""
    nb = released(course_dir)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in bodies:
            cell.source = bodies[grade_id]
    return nb


RIGHT = {"double": "def double(x):\n    return x + x", "halve": "def halve(x):\n    return x * 0.5"}


def scores(table, student: str) -> dict:
    return table.set_index("student").loc[student].to_dict()
