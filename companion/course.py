"""The chapters' exercises as an nbgrader course: ``make assignments``.

Each chapter's "## Exercises" section (up to "## Summary") becomes one assignment,
``course/source/<chapter>/<chapter>.ipynb``, in nbgrader's format:

- a code cell with nbgrader ``solution`` metadata holds the model answer between
  ``### BEGIN SOLUTION`` / ``### END SOLUTION``; the student version replaces it with
  ``raise NotImplementedError()``;
- a locked code cell with ``grade`` metadata and ``points`` is an autograded test; what lies
  between ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` is removed for students;
- the chapter's cells tagged ``exercise-setup`` (its imports and settings) come first;
- each folded solution (a ```` ```{admonition} Solution ```` cell) becomes a manually graded
  answer: students see "YOUR ANSWER HERE", the teacher grades it in nbgrader's formgrader.

Then ``nbgrader generate_assignment`` writes ``course/release/<chapter>/``, the notebooks to
hand out. ``course/source`` is generated: edit the chapters, not the copies, and a copy
edited by hand is never overwritten (the run stops and names it).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat

from companion.io import atomic_write_text, bytes_digest

EXERCISES, SUMMARY = "## Exercises", "## Summary"
SOLUTION_CELL = "```{admonition} Solution"
EXERCISE_NUMBER = re.compile(r"^(\d+)\. ", re.MULTILINE)  # "3. Show that ..." opens exercise 3
SCHEMA_VERSION = 3
ANSWER_POINTS = 1  # each folded solution, graded by hand
MANIFEST = ".generated.json"  # sha256 of each source notebook as this module wrote it
SETUP_TAG = "exercise-setup"  # a chapter cell the exercises need (imports, settings): copied first
HIDE_TAGS = {"hide-input", "hide-cell", "hide-output", "remove-input", "remove-cell"}
CONFIG = """\
# Written by `make assignments` (companion.course): the course folder of the book's exercises.
c = get_config()
c.CourseDirectory.root = "."
c.CourseDirectory.course_id = "llm-sft-book"
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
"""


class CourseError(ValueError):
    """A chapter or course folder that cannot become assignments; the message names the file."""


def chapter_notebooks(folder: Path = Path("notebooks")) -> list[Path]:
    """The chapters that carry exercises: every numbered notebook except the overview (00)."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb") if not p.name.startswith("00"))


def exercise_section(nb: nbformat.NotebookNode, path: Path) -> list[nbformat.NotebookNode]:
    """The cells from the "## Exercises" heading up to the "## Summary" heading."""
    starts = [i for i, c in enumerate(nb.cells) if c.source.startswith(EXERCISES)]
    ends = [i for i, c in enumerate(nb.cells) if c.source.startswith(SUMMARY)]
    if not starts or not ends or ends[0] < starts[0]:
        raise CourseError(f"{path}: needs a '{EXERCISES}' heading followed by '{SUMMARY}'")
    return nb.cells[starts[0] : ends[0]]


def nbgrader_meta(cell: nbformat.NotebookNode) -> dict:
    """The cell's nbgrader metadata ({} for an ordinary cell)."""
    return cell.metadata.get("nbgrader", {})


def exercise_summary(path: Path) -> dict[str, float]:
    """How many exercises a chapter has, how many are autograded code, and their points."""
    nb = nbformat.read(path, as_version=4)
    section = exercise_section(nb, path)
    numbers = {
        int(n)
        for c in section
        if c.cell_type == "markdown"
        for n in EXERCISE_NUMBER.findall(c.source)
    }
    tests = [
        nbgrader_meta(c) for c in section if c.cell_type == "code" and nbgrader_meta(c).get("grade")
    ]
    return {
        "exercises": len(numbers),
        "coding": len(tests),
        "points": sum(t["points"] for t in tests),
    }


def _answer_cell(cell: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    """A folded solution as a manually graded markdown answer."""
    cell = copy.deepcopy(cell)
    cell.metadata["nbgrader"] = {
        "grade": True,
        "solution": True,
        "locked": False,
        "task": False,
        "points": ANSWER_POINTS,
        "grade_id": grade_id,
        "schema_version": SCHEMA_VERSION,
    }
    return cell


def _student_cell(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy without outputs and without the book's folding, so students see every cell."""
    cell = copy.deepcopy(cell)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    cell.metadata.pop("execution", None)
    cell.metadata.get("jupyter", {}).pop("source_hidden", None)
    if not cell.metadata.get("jupyter", True):
        del cell.metadata["jupyter"]
    tags = [t for t in cell.metadata.get("tags", []) if t not in HIDE_TAGS]
    if tags:
        cell.metadata["tags"] = tags
    else:
        cell.metadata.pop("tags", None)
    return cell


def _check_cells(cells: list[nbformat.NotebookNode], path: Path) -> None:
    """nbgrader's rules, checked here so that the error names the chapter and the cell."""
    seen: set[str] = set()
    for cell in cells:
        meta = nbgrader_meta(cell)
        if not meta:
            continue
        grade_id = meta.get("grade_id")
        if not grade_id or grade_id in seen:
            raise CourseError(
                f"{path}: nbgrader cell with a missing or repeated grade_id {grade_id!r}"
            )
        seen.add(grade_id)
        if meta.get("grade") and not meta.get("points", 0) > 0:
            raise CourseError(f"{path}: graded cell {grade_id!r} has no points")
        markers = "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
        if cell.cell_type == "code" and meta.get("solution") and not markers:
            raise CourseError(f"{path}: solution cell {grade_id!r} lacks BEGIN/END SOLUTION")
        if (
            meta.get("grade")
            and cell.cell_type == "code"
            and "raise NotImplementedError" in cell.source
        ):
            raise CourseError(f"{path}: test cell {grade_id!r} raises NotImplementedError")


def assignment_notebook(path: Path) -> nbformat.NotebookNode:
    """The source (teacher's) version of one chapter's exercises, ready for nbgrader."""
    chapter = nbformat.read(path, as_version=4)
    title = chapter.cells[0].source.lstrip("# ").strip() if chapter.cells else path.stem
    setup = [c for c in chapter.cells if SETUP_TAG in c.metadata.get("tags", [])]
    cells, number, answers = [], 0, 0
    for cell in [*setup, *exercise_section(chapter, path)]:
        if cell.cell_type == "markdown" and (numbers := EXERCISE_NUMBER.findall(cell.source)):
            number, answers = int(numbers[-1]), 0
        if (
            cell.cell_type == "markdown"
            and cell.source.startswith(SOLUTION_CELL)
            and not nbgrader_meta(cell)
        ):
            # an exercise answered in two parts (derive, then measure) gets answer-2, answer-2b
            cell = _answer_cell(cell, f"answer-{number}" + "abcdefgh"[answers].strip("a"))
            answers += 1
        cells.append(_student_cell(cell))
    _check_cells(cells, path)
    intro = nbformat.v4.new_markdown_cell(
        f"# Exercises: {title}\n\nFrom the chapter `{path.name}` of the book. Run the cells in "
        "order; write your code where it says `YOUR CODE HERE` and your answers where it says "
        "`YOUR ANSWER HERE`. The test cells check your code (more tests run when it is graded)."
    )
    nb = nbformat.v4.new_notebook(cells=[intro, *cells])
    nb.metadata = {
        k: chapter.metadata[k] for k in ("kernelspec", "language_info") if k in chapter.metadata
    }
    return nb


_MANIFEST_FIX = "delete it and the source/ folder beside it to regenerate the assignments"


def _read_manifest(course: Path) -> dict[str, str]:
    """The digests of the source notebooks this module wrote last time."""
    path = course / MANIFEST
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CourseError(f"{path}: not valid JSON ({err}); {_MANIFEST_FIX}") from err
    if not isinstance(manifest, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in manifest.items()
    ):
        raise CourseError(f"{path}: not a mapping of names to digests; {_MANIFEST_FIX}")
    return manifest


def write_sources(chapters: Sequence[Path], course: Path) -> list[str]:
    """Write ``source/<chapter>/<chapter>.ipynb`` for each chapter; return the assignment names.

    Stops before writing anything if a source notebook was edited since it was written here.
    Each notebook's digest is recorded as soon as it is written, so an interrupted run
    leaves nothing that the next run takes for a copy edited by hand.
    """
    manifest = _read_manifest(course)
    texts = {}
    for path in chapters:
        name = Path(path).stem
        target = course / "source" / name / f"{name}.ipynb"
        text = nbformat.writes(assignment_notebook(Path(path))) + "\n"
        written = {manifest.get(name), bytes_digest(text.encode())}  # by this module
        if target.exists() and bytes_digest(target.read_bytes()) not in written:
            raise CourseError(
                f"{target}: edited since `make assignments` wrote it; move it away (or delete it) "
                "to regenerate it from the chapter"
            )
        texts[name] = (target, text)
    for name, (target, text) in texts.items():
        atomic_write_text(target, text)
        manifest[name] = bytes_digest(text.encode())
        atomic_write_text(course / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    config = course / "nbgrader_config.py"
    if not config.exists():
        atomic_write_text(config, CONFIG)
    return list(texts)


def nbgrader_command(*args: str) -> list[str]:
    """The command line of this Python's ``nbgrader`` with ``args``."""
    return [str(Path(sys.executable).parent / "nbgrader"), *args]


def release(course: Path) -> None:
    """``nbgrader generate_assignment`` for every assignment in ``source/``: writes ``release/``."""
    bin_dir = str(Path(sys.executable).parent)  # nbgrader calls alembic from PATH
    env = {**os.environ, "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}
    command = nbgrader_command("generate_assignment", "*", "--force")
    done = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True)
    if done.returncode != 0 or "[GenerateAssignmentApp | ERROR]" in done.stderr:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise CourseError(f"{course / 'source'}: nbgrader generate_assignment failed:\n{tail}")


def build_course(chapters: Sequence[Path], course: Path) -> list[str]:
    """Source and release versions of the chapters' exercises in the course folder ``course``."""
    course = Path(course).resolve()
    names = write_sources(chapters, course)
    release(course)
    return names


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m companion.course [--course DIR] [CHAPTER ...]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", type=Path, help="chapter notebooks (default: 01-10)")
    parser.add_argument("--course", type=Path, default=Path("course"), help="course folder")
    args = parser.parse_args(argv)
    try:
        names = build_course(args.chapters or chapter_notebooks(), args.course)
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{len(names)} assignments in {args.course}/source and /release: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
