"""The chapters' exercises as nbgrader assignments (companion.course), on a toy chapter and on
the book's own chapters."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from course_helpers import ROOT, TOY, released, toy_chapter
from nbformat.v4 import new_markdown_cell, new_notebook

from companion import course, grade
from companion.course import CourseError
from companion.notebooks import format_duration


def test_assignment_holds_the_exercises_with_written_answers_graded_by_hand(tmp_path: Path) -> None:
    nb = course.assignment_notebook(toy_chapter(tmp_path))
    text = "\n".join(c.source for c in nb.cells)
    assert "HIDDEN_STATE" not in text and "## Summary" not in text
    assert nb.cells[0].source.startswith("# Exercises: 1. A toy chapter")
    assert nb.cells[1].source.startswith("SCALE = 2")  # the chapter's setup cell comes first
    answer = nb.cells[-1].metadata["nbgrader"]
    assert answer["grade_id"] == "answer-3" and answer["points"] == 1 and answer["solution"]
    for cell in nb.cells:  # students see every cell: the book's folding is gone
        assert "source_hidden" not in cell.metadata.get("jupyter", {})
        assert "hide-input" not in cell.metadata.get("tags", [])


def test_an_exercise_answered_in_two_parts_gets_two_grade_ids(tmp_path: Path) -> None:
    path = toy_chapter(tmp_path)
    chapter = nbformat.read(path, as_version=4)
    second = "```{admonition} Solution\n:class: dropdown\nMeasured: 2 * 3 = 6.\n```"
    chapter.cells.insert(-1, nbformat.v4.new_markdown_cell(second))
    nbformat.write(chapter, path)
    ids = [
        c.metadata["nbgrader"]["grade_id"]
        for c in course.assignment_notebook(path).cells
        if "nbgrader" in c.metadata and c.cell_type == "markdown"
    ]
    assert ids == ["answer-3", "answer-3b"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda cells: cells[9].metadata["nbgrader"].update(grade_id="double-test"),
            "repeated grade_id",
        ),
        (lambda cells: cells[6].metadata["nbgrader"].update(points=0), "has no points"),
        (
            lambda cells: setattr(cells[5], "source", "def double(x):\n    return 2 * x"),
            "BEGIN/END SOLUTION",
        ),
        (lambda cells: cells.pop(-1), "followed by '## Summary'"),
    ],
)
def test_a_chapter_that_breaks_nbgrader_rules_is_named(tmp_path: Path, edit, message: str) -> None:
    path = toy_chapter(tmp_path)
    nb = nbformat.read(path, as_version=4)
    edit(nb.cells)
    nbformat.write(nb, path)
    with pytest.raises(CourseError, match=message) as error:
        course.assignment_notebook(path)
    assert str(path) in str(error.value)


def test_a_failed_build_writes_nothing(tmp_path: Path) -> None:
    good, bad = toy_chapter(tmp_path), toy_chapter(tmp_path, "02_bad")
    nb = nbformat.read(bad, as_version=4)
    nb.cells = nb.cells[:3]
    nbformat.write(nb, bad)
    with pytest.raises(CourseError, match="02_bad"):
        course.build_course([good, bad], tmp_path / "course")
    assert not (tmp_path / "course").exists()


def test_a_source_notebook_edited_by_hand_is_not_overwritten(
    toy_course: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "course"
    shutil.copytree(toy_course, copy)
    source = copy / "source" / TOY / f"{TOY}.ipynb"
    course.write_sources([toy_chapter(tmp_path)], copy)  # unchanged: rewritten quietly
    source.write_text(source.read_text().replace("Try them.", "Try them, class."))
    edited = source.read_text()
    with pytest.raises(CourseError, match="edited since"):
        course.write_sources([toy_chapter(tmp_path)], copy)
    assert source.read_text() == edited


@pytest.mark.parametrize("content", ['{"01_toy": ', "[1, 2]"])
def test_a_corrupt_manifest_is_named(tmp_path: Path, content: str) -> None:
    folder = tmp_path / "course"
    folder.mkdir()
    (folder / course.MANIFEST).write_text(content)
    with pytest.raises(CourseError, match=r"\.generated\.json: not") as error:
        course.write_sources([toy_chapter(tmp_path)], folder)
    assert str(folder / course.MANIFEST) in str(error.value)


def test_an_interrupted_write_is_taken_up_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut after the first notebook: the next run regenerates, it does not refuse."""
    chapters = [toy_chapter(tmp_path), toy_chapter(tmp_path, "02_toy")]
    folder, write, calls = tmp_path / "course", course.atomic_write_text, []

    def dies_at_the_second_notebook(path: Path, text: str) -> None:
        calls.append(path)
        if len([p for p in calls if p.suffix == ".ipynb"]) == 2:
            raise KeyboardInterrupt
        write(path, text)

    monkeypatch.setattr(course, "atomic_write_text", dies_at_the_second_notebook)
    with pytest.raises(KeyboardInterrupt):
        course.write_sources(chapters, folder)
    monkeypatch.undo()
    assert course.write_sources(chapters, folder) == [TOY, "02_toy"]
    manifest = course._read_manifest(folder)
    for name in (TOY, "02_toy"):
        source = folder / "source" / name / f"{name}.ipynb"
        assert manifest[name] == course.bytes_digest(source.read_bytes())


def test_release_removes_solutions_hidden_tests_and_answers(toy_course: Path) -> None:
    text = "\n".join(c.source for c in released(toy_course).cells)
    assert "raise NotImplementedError" in text and "YOUR ANSWER HERE" in text
    for secret in ("return 2 * x", "double(5)", "HIDDEN TESTS", "2(x + y)"):
        assert secret not in text
    assert "assert double(2) == 4" in text  # the visible test stays


def test_course_command_line_reports_errors_in_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "03_bad.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("# 3. Bad")]), bad)
    assert course.main([str(bad), "--course", str(tmp_path / "c")]) == 1
    assert f"error: {bad}" in capsys.readouterr().err


def test_every_chapter_becomes_an_assignment(book_course: Path) -> None:
    names = [p.stem for p in course.chapter_notebooks(ROOT / "notebooks")]
    assert sorted(p.name for p in (book_course / "release").iterdir()) == names
    assert set(grade.course_assignments(book_course)) == set(names)


def test_every_chapter_has_three_to_six_exercises() -> None:
    counts = {
        p.stem: course.exercise_summary(p)["exercises"]
        for p in course.chapter_notebooks(ROOT / "notebooks")
    }
    assert all(3 <= n <= 6 for n in counts.values()), counts


def test_the_instructors_table_shows_each_chapters_stored_time_and_exercises() -> None:
    page = (ROOT / "book" / "instructors.md").read_text()
    for path in course.chapter_notebooks(ROOT / "notebooks"):
        summary = course.exercise_summary(path)
        duration = format_duration(
            nbformat.read(path, as_version=4).metadata["companion_run"]["duration_s"]
        )
        row = (
            f"(../notebooks/{path.name}) | {duration} | {summary['exercises']} | "
            f"{summary['coding']} ({summary['points']}) |"
        )
        assert row in page, f"book/instructors.md: no row {row!r}"


def test_code_solutions_are_folded_in_the_book_and_in_jupyterlab() -> None:
    for path in course.chapter_notebooks(ROOT / "notebooks"):
        for cell in nbformat.read(path, as_version=4).cells:
            meta = course.nbgrader_meta(cell)
            if cell.cell_type == "code" and meta.get("solution"):
                where = f"{path.name}, {meta['grade_id']}"
                assert "hide-input" in cell.metadata.get("tags", []), (
                    f"{where}: not folded in the book"
                )
                assert cell.metadata.get("jupyter", {}).get("source_hidden"), (
                    f"{where}: open in JupyterLab"
                )
            if meta.get("grade") and cell.cell_type == "code":
                assert meta.get("locked"), (
                    f"{path.name}, {meta['grade_id']}: a test cell students can edit"
                )
