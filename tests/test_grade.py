"""The shut-in autograder (companion.grade): right, wrong and hostile submissions of a toy
assignment, and every chapter of the book solved and blank."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from course_helpers import FAST, RIGHT, ROOT, TOY, answered, released, scores, submit, toy_chapter

from companion import course, grade
from companion.course import CourseError


def test_right_blank_and_wrong_answers_score_what_they_should(
    toy_course: Path, tmp_path: Path
) -> None:
    subs = tmp_path / "subs"
    submit(subs, "right", answered(toy_course, **RIGHT))
    submit(subs, "blank", released(toy_course))
    submit(
        subs,
        "wrong",
        answered(
            toy_course, double="def double(x):\n    return 4 if x == 2 else 0", halve=RIGHT["halve"]
        ),
    )
    table = grade.grade_all(toy_course, subs, FAST)
    assert scores(table, "right") == {
        "assignment": TOY,
        "double-test": 2,
        "halve-test": 3,
        "answer-3": 0,
        "total": 5,
        "max": 6,
        "status": grade.GRADED,
    }
    assert scores(table, "blank")["total"] == 0 and scores(table, "blank")["answer-3"] == 0
    wrong = scores(table, "wrong")  # passes the visible test, fails the hidden one
    assert (wrong["double-test"], wrong["halve-test"], wrong["total"]) == (0, 3, 3)
    assert (toy_course / "autograded" / "wrong" / TOY / f"{TOY}.ipynb").exists()


def test_a_written_answer_waits_for_the_teacher(toy_course: Path, tmp_path: Path) -> None:
    nb = answered(toy_course, **RIGHT)
    nb.cells[-1].source = "Because multiplication distributes over addition."
    submit(tmp_path, "writer", nb)
    table = grade.grade_all(toy_course, tmp_path, FAST)
    assert (
        scores(table, "writer")["answer-3"] == grade.MANUAL
        and scores(table, "writer")["total"] == 5
    )


def test_loops_crashes_and_memory_hogs_cost_only_their_own_points(
    toy_course: Path, tmp_path: Path
) -> None:
    submit(
        tmp_path,
        "looper",
        answered(toy_course, double="while True:\n    pass", halve=RIGHT["halve"]),
    )
    submit(
        tmp_path,
        "hog",
        answered(toy_course, double="hoard = bytearray(8 * 2**30)", halve=RIGHT["halve"]),
    )
    submit(
        tmp_path,
        "crasher",
        answered(toy_course, double="import os\nos._exit(1)", halve=RIGHT["halve"]),
    )
    submit(tmp_path, "zz_honest", answered(toy_course, **RIGHT))
    table = grade.grade_all(toy_course, tmp_path, grade.Limits(cell_timeout_s=5, memory_gib=2.0))
    for student in ("looper", "hog"):
        assert (scores(table, student)["double-test"], scores(table, student)["halve-test"]) == (
            0,
            3,
        ), student
    crasher = scores(table, "crasher")  # the kernel died: nbgrader wrote no graded notebook
    assert (crasher["double-test"], crasher["halve-test"], crasher["status"]) == (
        0,
        0,
        grade.FAILED,
    )
    assert (toy_course / "autograded" / "crasher" / TOY / "autograde.log").stat().st_size > 0
    assert scores(table, "zz_honest")["total"] == 5


def test_a_submission_cannot_touch_the_course_or_the_repository(
    toy_course: Path, tmp_path: Path
) -> None:
    assert grade.sandbox_prefix() is not None, "bubblewrap (bwrap) is missing or refused here"
    before = sorted(
        p.relative_to(toy_course) for p in toy_course.rglob("*") if "autograded" not in p.parts
    )
    attack = (
        f"import shutil\nshutil.rmtree({str(toy_course)!r}, ignore_errors=True)\n"
        f"open({str(ROOT / 'pwned.txt')!r}, 'w').write('x')"
    )
    submit(tmp_path, "vandal", answered(toy_course, double=attack, halve=RIGHT["halve"]))
    submit(tmp_path, "zz_honest", answered(toy_course, **RIGHT))
    table = grade.grade_all(toy_course, tmp_path, FAST)
    after = sorted(
        p.relative_to(toy_course) for p in toy_course.rglob("*") if "autograded" not in p.parts
    )
    assert after == before and not (ROOT / "pwned.txt").exists()
    assert scores(table, "vandal")["double-test"] == 0 and scores(table, "zz_honest")["total"] == 5


def test_submissions_that_cannot_be_graded_are_named(toy_course: Path, tmp_path: Path) -> None:
    with pytest.raises(CourseError, match="no such folder"):
        grade.grade_all(toy_course, tmp_path / "missing")
    with pytest.raises(CourseError, match="no <student>"):
        grade.grade_all(toy_course, tmp_path)
    submit(tmp_path, "lost", released(toy_course), assignment="99_unknown")
    with pytest.raises(CourseError, match="99_unknown"):
        grade.grade_all(toy_course, tmp_path)
    with pytest.raises(CourseError, match="make assignments"):
        grade.course_assignments(tmp_path)


def graded_chapters() -> list[str]:
    """Chapters with at least one autograded code cell."""
    return [
        path.stem
        for path in course.chapter_notebooks(ROOT / "notebooks")
        if any(
            c.cell_type == "code" and course.nbgrader_meta(c).get("grade")
            for c in nbformat.read(path, as_version=4).cells
        )
    ]


@pytest.mark.parametrize("chapter", graded_chapters())
def test_each_chapter_scores_full_marks_solved_and_zero_blank(
    chapter: str, book_course: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("COMPANION_SMOKE", "1")  # the exercises' experiments on tiny data
    source = nbformat.read(book_course / "source" / chapter / f"{chapter}.ipynb", as_version=4)
    submit(tmp_path, "solved", source, chapter)
    submit(tmp_path, "blank", released(book_course, chapter), chapter)
    table = grade.grade_all(book_course, tmp_path, grade.Limits(cell_timeout_s=600))
    coding = {
        g: p
        for g, p in grade.course_assignments(book_course)[chapter].items()
        if not g.startswith("answer-")
    }
    assert coding, chapter
    assert {g: scores(table, "solved")[g] for g in coding} == coding
    assert all(scores(table, "blank")[g] == 0 for g in coding)


def test_grade_command_line_writes_and_prints_the_table(
    toy_course: Path, tmp_path: Path, capsys
) -> None:
    submit(tmp_path, "right", answered(toy_course, **RIGHT))
    assert grade.main([str(tmp_path), "--course", str(toy_course), "--timeout", "20"]) == 0
    printed = capsys.readouterr().out
    assert "right" in printed and str(toy_course / "grades.csv") in printed
    table = pd.read_csv(toy_course / "grades.csv")
    assert table.loc[0, "total"] == 5 and table.loc[0, "status"] == grade.GRADED
    assert grade.main([str(tmp_path / "nowhere"), "--course", str(toy_course)]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_a_submission_cannot_read_the_hidden_tests(tmp_path: Path) -> None:
    folder = ROOT / ".cache" / f"course-test-{uuid.uuid4().hex[:8]}"  # outside /tmp, as in a course
    try:
        course.build_course([toy_chapter(tmp_path)], folder)
        source = folder / "source" / TOY / f"{TOY}.ipynb"
        peek = (
            f"try:\n    open({str(source)!r}).read()\n    leaked = True\nexcept OSError:\n"
            "    leaked = False\ndef double(x):\n    return 0 if leaked else 2 * x"
        )
        submit(tmp_path / "subs", "peeker", answered(folder, double=peek, halve=RIGHT["halve"]))
        table = grade.grade_all(folder, tmp_path / "subs", FAST)
        assert scores(table, "peeker")["double-test"] == 2, "the course folder was readable"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
