"""Autograde students' notebooks with nbgrader, each one shut in: ``make grade SUBMISSIONS=DIR``.

``DIR`` holds ``<student>/<assignment>/<assignment>.ipynb`` (nbgrader's ``submitted`` layout).
Each submission is graded by ``nbgrader autograde`` in a fresh kernel inside its own temporary
copy of the course's gradebook, with a time limit per cell, a memory limit per process and a
minimal environment. Where bubblewrap (``bwrap``) works, everything outside that copy is
read-only and the network is off, so a submission that deletes or edits files, loops forever,
crashes its kernel or exhausts memory loses its own points and nothing else. The scores go to
``course/grades.csv`` (one row per student and assignment, one column per graded cell) and
are printed; the graded notebooks, with their feedback, to ``course/autograded/``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from companion.course import CourseError, nbgrader_command
from companion.io import atomic_write_text

MANUAL = "manual"
GRADED, FAILED = "graded", "failed"  # failed: no graded notebook (kernel died, total limit)
PASSED_ON = ("COMPANION_DATA", "COMPANION_SMOKE", "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES")


@dataclass(frozen=True)
class Limits:
    """What one submission may use."""

    cell_timeout_s: int = 300  # per cell: a cell running longer is interrupted and fails
    memory_gib: float = 8.0  # address space per process (kernel and nbgrader)
    total_timeout_s: int = 3600  # the whole submission, in case a kernel will not stop


@dataclass(frozen=True)
class Submission:
    """One student's notebook for one assignment."""

    student: str
    assignment: str
    notebook: Path


def find_submissions(folder: Path, assignments: Sequence[str]) -> list[Submission]:
    """Every ``<student>/<assignment>/<assignment>.ipynb`` under ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CourseError(f"{folder}: no such folder of submissions")
    found = [
        Submission(nb.parent.parent.name, nb.parent.name, nb)
        for nb in sorted(folder.glob("*/*/*.ipynb"))
        if nb.stem == nb.parent.name and not nb.parent.parent.name.startswith(".")
    ]
    unknown = sorted({s.assignment for s in found} - set(assignments))
    if unknown:
        raise CourseError(f"{folder}: submissions for assignments the course lacks: {unknown}")
    if not found:
        raise CourseError(f"{folder}: no <student>/<assignment>/<assignment>.ipynb inside")
    return found


def course_assignments(course: Path) -> dict[str, dict[str, float]]:
    """Each released assignment's graded cells and their points, from the course gradebook."""
    from nbgrader.api import Gradebook

    db = Path(course) / "gradebook.db"
    if not db.exists():
        raise CourseError(f"{db}: no gradebook; run `make assignments` first")
    with Gradebook(f"sqlite:///{db}") as gradebook:
        return {
            a.name: {g.name: g.max_score for nb in a.notebooks for g in nb.grade_cells}
            for a in gradebook.assignments
        }


@functools.cache
def sandbox_prefix() -> tuple[str, ...] | None:
    """The bubblewrap command that shuts a process in (None where bwrap is missing or refused)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None
    # Everything read-only (also /tmp: the repository and its .venv may live there); the one
    # writable folder, the submission's own copy, is bound over it by _run_shut_in.
    prefix = (bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc")
    prefix += ("--unshare-pid", "--unshare-net", "--die-with-parent", "--new-session")
    works = subprocess.run([*prefix, "true"], capture_output=True).returncode == 0
    return prefix if works else None


def _environment(home: Path) -> dict[str, str]:
    """A minimal environment: this Python's tools, a private home, the book's switches."""
    env = {k: os.environ[k] for k in PASSED_ON if k in os.environ}
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        HOME=str(home),
        TMPDIR=str(home),  # the only writable folder inside the sandbox
        LANG="C.UTF-8",
        HF_HUB_OFFLINE="1",
        JUPYTER_RUNTIME_DIR=str(home / ".jupyter-runtime"),
        IPYTHONDIR=str(home / ".ipython"),
        MPLCONFIGDIR=str(home / ".matplotlib"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    return env


def _limit_memory(gib: float) -> None:
    """In the child, before exec: cap the address space of it and of what it starts."""
    limit = int(gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _scores(work: Path, sub: Submission, cells: dict[str, float]) -> dict[str, float | str]:
    """Each graded cell's autograded score: 0 where none was recorded, "manual" for a written
    answer that a teacher has to read (an answer left blank scores 0 at once)."""
    from nbgrader.api import Gradebook, MissingEntry

    scores: dict[str, float | str] = dict.fromkeys(cells, 0.0)
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}") as gradebook:
        try:
            notebook = gradebook.find_submission_notebook(
                sub.assignment, sub.assignment, sub.student
            )
        except MissingEntry:
            return scores
        for grade in notebook.grades:
            if grade.name in scores:
                scores[grade.name] = MANUAL if grade.needs_manual_grade else float(grade.score or 0)
    return scores


def grade_submission(
    course: Path, sub: Submission, cells: dict[str, float], limits: Limits
) -> tuple[dict[str, float | str], str]:
    """Autograde one submission in a temporary copy: its score per graded cell, and a status.

    The graded notebook (with feedback) and nbgrader's log go to
    ``course/autograded/<student>/<assignment>/``; a submission whose kernel died or that ran
    past the total limit has no graded notebook and scores 0 everywhere ("failed").
    """
    course = Path(course).resolve()
    with tempfile.TemporaryDirectory(prefix=f"grade-{sub.student}-") as tmp:
        work = Path(tmp).resolve()
        for name in ("nbgrader_config.py", "gradebook.db"):
            shutil.copy2(course / name, work / name)
        submitted = work / "submitted" / sub.student / sub.assignment
        submitted.mkdir(parents=True)
        shutil.copy2(sub.notebook, submitted / sub.notebook.name)
        args = ["autograde", sub.assignment, f"--student={sub.student}", "--force"]
        args.append(f"--Execute.timeout={limits.cell_timeout_s}")
        log = course / "autograded" / sub.student / sub.assignment / "autograde.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        _run_shut_in(args, work, limits, log, hidden=course)
        graded = work / "autograded" / sub.student / sub.assignment / sub.notebook.name
        if not graded.is_file() or graded.is_symlink():
            return dict.fromkeys(cells, 0.0), FAILED
        shutil.copyfile(graded, log.parent / sub.notebook.name)
        return _scores(work, sub, cells), GRADED


def _run_shut_in(args: list[str], work: Path, limits: Limits, log: Path, hidden: Path) -> None:
    """``nbgrader ARGS`` in ``work``, shut in where bubblewrap works (``hidden``, the course
    folder with its hidden tests, shows up empty); killed at the total limit."""
    prefix = sandbox_prefix()
    command = nbgrader_command(*args)
    if prefix is not None:
        mask = ["--tmpfs", str(hidden)]
        command = [*prefix, *mask, "--bind", str(work), str(work), "--chdir", str(work), *command]
    with open(log, "w") as out:
        process = subprocess.Popen(
            command,
            cwd=work,
            env=_environment(work),
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=functools.partial(_limit_memory, limits.memory_gib),
            start_new_session=True,
        )
        try:
            process.wait(timeout=limits.total_timeout_s)
        except subprocess.TimeoutExpired:
            out.write(f"\nstopped: the submission ran past {limits.total_timeout_s} s\n")
        finally:  # the whole session: also whatever the submission left running
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def grade_all(course: Path, submissions: Path, limits: Limits = Limits()) -> pd.DataFrame:
    """Grade every submission; one row per student and assignment, one column per graded cell."""
    assignments = course_assignments(course)
    found = find_submissions(submissions, list(assignments))
    if sandbox_prefix() is None:
        print(
            "warning: bubblewrap (bwrap) is missing or refused here, so submissions run "
            "without a read-only file system (apt-get install bubblewrap)",
            file=sys.stderr,
        )
    rows = []
    for sub in tqdm(found, desc="grading", unit="notebook", file=sys.stderr):
        cells = assignments[sub.assignment]
        scores, status = grade_submission(course, sub, cells, limits)
        auto = sum(s for s in scores.values() if s != MANUAL)
        total = {"total": auto, "max": sum(cells.values()), "status": status}
        rows.append({"student": sub.student, "assignment": sub.assignment, **scores, **total})
    return pd.DataFrame(rows).fillna("")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m companion.grade SUBMISSIONS [--course DIR] [--timeout S] [--memory-gib G]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "submissions", type=Path, help="folder of <student>/<assignment>/<assignment>.ipynb"
    )
    parser.add_argument(
        "--course", type=Path, default=Path("course"), help="course folder (make assignments)"
    )
    parser.add_argument(
        "--timeout", type=int, default=Limits.cell_timeout_s, help="seconds per cell"
    )
    parser.add_argument(
        "--memory-gib", type=float, default=Limits.memory_gib, help="memory per process"
    )
    args = parser.parse_args(argv)
    limits = Limits(cell_timeout_s=args.timeout, memory_gib=args.memory_gib)
    try:
        table = grade_all(args.course, args.submissions, limits)
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    atomic_write_text(args.course / "grades.csv", table.to_csv(index=False))
    print(table.to_string(index=False))
    print(f"\nwritten: {args.course / 'grades.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
