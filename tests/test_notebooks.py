"""The notebook executor, and the committed notebooks: executed in full mode, not stale."""

from __future__ import annotations

import functools
import hashlib
import inspect
import pydoc
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from companion import notebooks
from companion.config import REPO_ROOT, SMOKE_ENV

CHAPTERS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOURCE_HEADER = re.compile(r"^# (companion\.[\w.]+)$", re.MULTILINE)  # see show_source
SKELETON = ["## Goals", "## Derivation", "## Implementation", "## Exercises", "## Summary"]


def tiny_notebook(path: Path, code: str = "print(6 * 7)") -> Path:
    """A two-cell notebook with a run-info cell, written to ``path``."""
    info = nbformat.v4.new_markdown_cell("placeholder", metadata={"tags": ["run-info"]})
    nb = nbformat.v4.new_notebook(cells=[info, nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize(
    ("seconds", "text"), [(4.4, "4 s"), (65, "1 min 05 s"), (3725, "1 h 02 min")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert notebooks.format_duration(seconds) == text


def test_execute_records_run_metadata(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(SMOKE_ENV, raising=False)
    path = tiny_notebook(tmp_path / "t.ipynb")
    run = notebooks.execute_notebook(path)
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[1].outputs[0]["text"] == "42\n"
    assert nb.metadata[notebooks.RUN_KEY] == run
    assert run["mode"] == "full" and run["duration_s"] > 0
    assert run["source_sha256"] == notebooks.source_digest(nb)
    assert nb.cells[0].source == notebooks.run_info_markdown(run)


def test_the_source_digest_follows_the_code_cells_only() -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"),
                                         nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("print(x)")])  # fmt: skip
    expected = hashlib.sha256(b"x = 1\0print(x)\0").hexdigest()  # written out independently
    assert notebooks.source_digest(nb) == expected
    nb.cells[0].source = "# Another title"  # prose may change without a re-run
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    assert notebooks.source_digest(nb) == expected
    nb.cells[2].source = "print(x + 1)"  # code may not
    assert notebooks.source_digest(nb) != expected


def test_progress_widgets_are_not_stored(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(SMOKE_ENV, raising=False)
    code = "from tqdm.notebook import tqdm\nfor _ in tqdm(range(3)):\n    pass\nprint('done')"
    path = tiny_notebook(tmp_path / "t.ipynb", code=code)
    notebooks.execute_notebook(path)
    outputs = nbformat.read(path, as_version=4).cells[1].outputs
    assert [o.get("text") for o in outputs] == ["done\n"]


def test_memory_addresses_are_not_stored(tmp_path, monkeypatch) -> None:
    """A Styler's text is ``<... Styler at 0x7f...>``: the page keeps its HTML table only."""
    monkeypatch.delenv(SMOKE_ENV, raising=False)
    code = "import pandas as pd\npd.DataFrame({'a': [1.5]}).style.format('{:.2f}')"
    path = tiny_notebook(tmp_path / "t.ipynb", code=code)
    notebooks.execute_notebook(path)
    (output,) = nbformat.read(path, as_version=4).cells[1].outputs
    assert list(output["data"]) == ["text/html"] and "1.50" in output["data"]["text/html"]


def test_failing_notebook_leaves_the_file_untouched(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(SMOKE_ENV, raising=False)
    path = tiny_notebook(tmp_path / "t.ipynb", code="raise RuntimeError('boom')")
    before = path.read_text()
    with pytest.raises(Exception, match="boom"):
        notebooks.execute_notebook(path)
    assert path.read_text() == before


def test_execute_refuses_smoke_mode(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(SMOKE_ENV, "1")
    with pytest.raises(RuntimeError, match="full run"):
        notebooks.execute_notebook(tiny_notebook(tmp_path / "t.ipynb"))


def test_run_info_cell_must_be_unique(tmp_path) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    with pytest.raises(ValueError, match="exactly one cell tagged 'run-info', found 0"):
        notebooks.run_info_cell(nb)


def test_a_missing_run_info_cell_names_the_notebook(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(SMOKE_ENV, raising=False)
    path = tmp_path / "untagged.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), path)
    before = path.read_text()
    with pytest.raises(ValueError, match="found 0") as err:
        notebooks.execute_notebook(path)
    assert str(err.value).startswith(f"{path}: expected exactly one cell tagged 'run-info'")
    assert path.read_text() == before


def test_there_are_chapters() -> None:
    assert CHAPTERS and CHAPTERS[0].name == "00_overview.ipynb"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_is_executed_in_full_mode_and_current(path: Path) -> None:
    """Stored outputs come from a full run of exactly the code now in the notebook."""
    nb = nbformat.read(path, as_version=4)
    run = nb.metadata.get(notebooks.RUN_KEY)
    assert run, f"{path.name} was never executed with `make execute`"
    assert run["mode"] == "full"
    assert run["source_sha256"] == notebooks.source_digest(nb), (
        f"{path.name} changed since it was executed: run `make execute`"
    )
    assert nb.cells[1].source == notebooks.run_info_markdown(run)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.execution_count is not None, f"unexecuted cell: {cell.source[:60]}"
            assert all(o.get("output_type") != "error" for o in cell.outputs)
            assert all(notebooks.WIDGET_MIME not in o.get("data", {}) for o in cell.outputs)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_follows_the_skeleton(path: Path) -> None:
    """Title, run-info line, then goals … summary, in order; chapter 0 has no derivation."""
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "run-info" in nb.cells[1].metadata.get("tags", [])
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    wanted = [h for h in SKELETON if path.name != "00_overview.ipynb" or h != "## Derivation"]
    positions = [text.find(f"\n{h}") for h in wanted]
    assert all(p >= 0 for p in positions), f"missing sections: {wanted}"
    assert positions == sorted(positions), "sections out of order"


MACHINE_TRACES = re.compile(
    r"/tmp/|/work/|/home/|/root/|/Users/|[A-Z]:\\|ipykernel_|site-packages| at 0x[0-9a-f]{6,}"
    r"|load average|\bload (?:before|after)\b|\buptime\b"
)


def stored_text(cell: nbformat.NotebookNode) -> str:
    """Every stored text output of a code cell (streams, tracebacks, text and HTML)."""
    parts = []
    for output in cell.get("outputs", []):
        parts += [output.get("text", ""), "\n".join(output.get("traceback", []))]
        parts += [v for k, v in output.get("data", {}).items() if k.startswith("text/")]
    return "\n".join(parts)


def test_machine_traces_are_caught() -> None:
    cell = nbformat.v4.new_code_cell("load()")
    warning = "/tmp/ipykernel_5959/98.py:1: UserWarning: only the test split is in /work/data"
    load = "2 CPU cores, load before 2.0 | uptime: 14:02 up 3:41, load average: 1.16"
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=warning),
                    nbformat.v4.new_output("stream", name="stdout", text=load)]  # fmt: skip
    assert MACHINE_TRACES.findall(stored_text(cell)) == [
        "/tmp/", "ipykernel_", "/work/", "load before", "uptime", "load average"
    ]  # fmt: skip


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_stored_outputs_show_nothing_of_the_machine(path: Path) -> None:
    """No local paths, kernel file names or install folders in what the rendered book shows."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            found = MACHINE_TRACES.findall(stored_text(cell))
            assert not found, f"{path.name}: output of `{cell.source[:60]}` shows {found}"


# Numbers that read like results: decimals, counts with thousands separators, and anything with
# a unit of scale (12 %, 2.8×, 22.7 M, 1.5 million, 148 k); not parts of names (SmolLM2-135M).
# Small plain integers (chapter numbers, epochs) pass.
PROSE_NUMBER = re.compile(
    r"(?<![\w.,-])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?:\s?(%|×|M\b|million\b|k\b))?"
)
OUTPUT_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:e[-+]?\d+)?")
# Math, inline code, link targets and equation labels; a fence line (```{admonition}) is not code.
NOT_PROSE = re.compile(
    r"^(?:```|:::)[^\n]*$|\$\$.*?\$\$|\$[^$\n]*\$|`[^`\n]*`|\]\([^)]*\)|\(eq-[\w-]+\)",
    re.DOTALL | re.MULTILINE,
)
SCALE = {None: 1.0, "%": 0.01, "×": 1.0, "M": 1e6, "million": 1e6, "k": 1e3}
# Numbers in the prose that are settings, facts of a data set or a model, or published results
# (cited there), not measurements of this book: each with the reason it needs no stored cell.
PROSE_CONSTANTS = {
    "01_glove": {"30,000": "evaluation setting",
                 "1,000": "the comparison's setting (GloveBench.agreement_words)"},
    "04_encoder": {"2,092": "the data set's size, printed by chapter 0"},
    "06_classifier": {"2,225": "the data set's raw file count, printed by chapter 0"},
    "08_supervised_fine_tuning": {"1,150": "AWD-LSTM's width (cited)",
                                  "20×": "ULMFiT's published label ratio (cited)",
                                  "20%": "the imbalance experiment's share of tech articles",
                                  "0.05": "exercise 3's grading tolerance for macro-F1",
                                  "103 million": "WikiText-103's size (cited)"},
    "09_transformer_fine_tuning": {"110 M": "BERT-base's size (cited)",
                                   "5.24": "the pinned transformers version",
                                   "2.11": "the PyTorch version of the cited compile report",
                                   "11,314": "20 Newsgroups' by-date training split",
                                   "1.5 %": "exercise 2's arithmetic, derived in its solution",
                                   "148 k": "the pooler's size, 384 x 384 + 384 (exercise 3)"},
}  # fmt: skip


def numbers_in(markdown: str) -> list[str]:
    """Result-like numbers in one markdown text, outside math, code and link targets."""
    found = []
    for match in PROSE_NUMBER.finditer(NOT_PROSE.sub(" ", markdown)):
        number, unit = match.groups()
        if unit or "." in number or "," in number:
            found.append(match.group(0))
    return found


def prose_numbers(nb: nbformat.NotebookNode) -> list[str]:
    """Result-like numbers in the markdown cells, the run-info cell left out."""
    return [number for cell in nb.cells if cell.cell_type == "markdown"
            and notebooks.RUN_INFO_TAG not in cell.metadata.get("tags", [])
            for number in numbers_in(cell.source)]  # fmt: skip


def shown_by(text: str, outputs: str) -> bool:
    """Whether an output shows ``text`` (e.g. ``97.6 %``) as printed or rounded from more digits."""
    number, unit = PROSE_NUMBER.fullmatch(text).groups()
    decimals = len(number.partition(".")[2])
    value = float(number.replace(",", ""))
    wanted = {f"{value:.{decimals}f}"}
    if unit == "%":  # 97.6 % may be printed as 97.6% or as the fraction 0.976
        wanted.add(f"{value / 100:.{decimals + 2}f}")
    scale = 1.0 if unit == "%" else SCALE[unit]
    for shown in OUTPUT_NUMBER.findall(outputs):
        x = float(shown.replace(",", "")) / scale
        if f"{x:.{decimals}f}" in wanted or f"{x * scale:.{decimals + 2}f}" in wanted:
            return True
    return False


def test_shown_by_reads_rounding_units_and_separators() -> None:
    outputs = "accuracy 0.976 | 22,715,141 trainable | tuned / naive = 2.84x | 1,458.3"
    for text in ["0.98", "97.6 %", "97.6%", "22.7 M", "2.8×", "1,458", "1458.3"]:
        assert shown_by(text, outputs), text
    for text in ["0.97", "96.7 %", "23.7 M", "3.1×", "1,459"]:
        assert not shown_by(text, outputs), text


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_number_in_the_prose_is_printed_by_a_stored_cell(path: Path) -> None:
    """A result quoted in the text is one the stored run printed, not a memory of an older run."""
    nb = nbformat.read(path, as_version=4)
    outputs = "\n".join(stored_text(c) for c in nb.cells if c.cell_type == "code")
    constants, quoted = PROSE_CONSTANTS.get(path.stem, {}), prose_numbers(nb)
    unbacked = [n for n in quoted if n not in constants and not shown_by(n, outputs)]
    assert unbacked == [], f"{path.name}: no stored output prints {unbacked}"
    # A constant is stale once the prose drops it; an output that happens to round to it (a
    # timing of 19.6 s "shows" 20) does not make it a measurement.
    needless = [n for n in constants if n not in quoted]
    assert needless == [], f"{path.name}: PROSE_CONSTANTS lists {needless}: drop them"


# Book pages quote chapters' results: each such number must be printed by a chapter linked in
# the same section. Published figures (cited on the page) are listed with their reason.
PAGE_CONSTANTS = {
    "concepts.md": {"30,522": "BERT's WordPiece vocabulary (cited)"},
    "outlook.md": {"1.4": "Chinchilla's 1.4 trillion training tokens (cited)"},
}
LINKED_CHAPTER = re.compile(r"\]\((?:\.\./)?notebooks/(\d\d_\w+)\.ipynb")
NOT_RESULTS = re.compile(r"arXiv:\S+|\b(?:19|20)\d\d\b")  # identifiers and years


@functools.cache
def chapter_outputs() -> dict[str, str]:
    """Each chapter's stored code-cell outputs as one text, read once for all pages."""
    return {p.stem: "\n".join(stored_text(c) for c in nbformat.read(p, as_version=4).cells
                               if c.cell_type == "code") for p in CHAPTERS}  # fmt: skip


@pytest.mark.parametrize("page", sorted((REPO_ROOT / "book").glob("*.md")), ids=lambda p: p.name)
def test_every_number_in_a_book_page_is_printed_by_a_chapter_it_links(page: Path) -> None:
    """A result quoted on a page (FAQ, applications, ...) is one a linked chapter's run printed."""
    outputs = chapter_outputs()
    constants, unbacked = PAGE_CONSTANTS.get(page.name, {}), []
    for section in re.split(r"^#+ ", page.read_text(), flags=re.MULTILINE):
        linked = [outputs[name] for name in LINKED_CHAPTER.findall(section) if name in outputs]
        for number in numbers_in(NOT_RESULTS.sub(" ", section)):
            if number not in constants and not any(shown_by(number, out) for out in linked):
                unbacked.append(number)
    assert unbacked == [], f"{page.name}: no chapter linked in the section prints {unbacked}"


# "chapter 4" in the prose must be a link ([chapter 4](04_encoder.ipynb)), so that the -W build
# fails while the chapter it points to does not exist; a page may name itself plainly.
CHAPTER_NAMED = re.compile(r"\b[Cc]hapter (\d{1,2})\b(?![\d–-])")
CHAPTER_RANGE = re.compile(r"\b[Cc]hapters (\d{1,2})(?:–|-| and )(\d{1,2})\b")
LINK = re.compile(r"\[[^\]]*\]\([^)]*\)")


def unlinked_chapters(text: str, own: int | None) -> list[str]:
    """Chapter numbers named in ``text`` outside links, except ``own``."""
    prose = NOT_PROSE.sub(" ", LINK.sub(" ", text))
    return [m.group(0) for m in CHAPTER_NAMED.finditer(prose) if int(m.group(1)) != own]


def test_unlinked_chapters_finds_plain_mentions_only() -> None:
    text = "[chapter 4](04_encoder.ipynb) and chapter 7 show; chapter 2's `chapter 3` (chapter 5)"
    assert unlinked_chapters(text, own=5) == ["chapter 7", "chapter 2"]


def prose_pages() -> list[tuple[str, int | None, str]]:
    """(name, own chapter number, markdown) of every chapter's markdown cells and book page."""
    pages = [(p.name, None, p.read_text()) for p in sorted((REPO_ROOT / "book").glob("*.md"))]
    for path in CHAPTERS:
        cells = nbformat.read(path, as_version=4).cells
        text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
        pages.append((path.name, int(path.name[:2]), text))
    return pages


def test_chapters_named_in_the_prose_are_checked_links() -> None:
    """Another chapter is named by a link the build checks, or in a range of chapters that exist."""
    numbers = {int(p.name[:2]) for p in CHAPTERS}
    for name, own, text in prose_pages():
        assert unlinked_chapters(text, own) == [], f"{name}: make these links"
        for match in CHAPTER_RANGE.finditer(NOT_PROSE.sub(" ", LINK.sub(" ", text))):
            missing = {int(n) for n in match.groups()} - numbers
            assert not missing, f"{name}: '{match.group(0)}' names a chapter that does not exist"


def shown_sources(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """(dotted name, source) of each object shown by a stored ``show_source`` output."""
    shown = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "show_source(" not in cell.source:
            continue
        for output in cell.outputs:
            parts = SOURCE_HEADER.split(output.get("data", {}).get("text/plain", ""))
            shown += zip(parts[1::2], parts[2::2], strict=True)
    return shown


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_shown_source_is_the_current_code(path: Path) -> None:
    """Source listings stored in a page are what ``companion`` holds now, not an older version."""
    nb = nbformat.read(path, as_version=4)
    calls = sum(c.source.count("show_source(") for c in nb.cells if c.cell_type == "code")
    shown = shown_sources(nb)
    assert len(shown) >= calls
    for name, source in shown:
        obj = pydoc.locate(name)
        assert obj is not None, f"{path.name} shows {name}, which no longer exists"
        assert source.strip("\n") == inspect.getsource(obj).strip("\n"), (
            f"{path.name} shows an old {name}: run `make execute`"
        )


def notebook_showing(tmp_path: Path, source: str, frame: pd.DataFrame) -> Path:
    """A one-cell notebook whose code ``source`` shows ``frame`` as Jupyter stores it."""
    cell = nbformat.v4.new_code_cell(source)
    shown = {"text/html": frame.to_html(), "text/plain": str(frame)}
    cell.outputs = [nbformat.v4.new_output("execute_result", shown)]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    return path


def test_stored_table_reads_back_a_shown_dataframe(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"accuracy": [0.938, 0.5], "sd": [0.01, float("nan")], "name": ["a & b", "c"]},
        index=pd.Index(["full fine-tuning", "head only"], name="strategy"),
    )
    path = notebook_showing(tmp_path, "results = run()  # the results table\nresults", frame)
    pd.testing.assert_frame_equal(notebooks.stored_table(path, "the results table"), frame)
    with pytest.raises(ValueError, match="0 code cells contain 'missing'"):
        notebooks.stored_table(path, "missing")


def test_stored_table_reads_back_columns_in_two_levels(tmp_path: Path) -> None:
    runs = pd.DataFrame(
        {
            "model": ["scratch", "GloVe", "scratch", "GloVe"],
            "budget": ["5", "5", "all", "all"],
            "accuracy": [0.357, 0.71, 0.902, 0.975],
        }
    )
    summary = runs.groupby(["model", "budget"], sort=False)[["accuracy"]].agg(["mean", "std"])
    frame = summary.unstack("model")["accuracy"]  # columns: (mean | std) x model
    path = notebook_showing(tmp_path, "summary.unstack('model')  # the grid", frame)
    pd.testing.assert_frame_equal(notebooks.stored_table(path, "the grid"), frame)


def test_nbval_masks_only_the_processor_dependent_digits_of_chapter_1() -> None:
    """The sanitize file `make notebooks` passes to nbval changes the two rank-correlation lines
    of chapter 1's stored toy fit, and nothing else that the cell printed."""
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns((REPO_ROOT / "tests" / "nbval_sanitize.cfg").read_text())
    cells = nbformat.read(REPO_ROOT / "notebooks" / "01_glove.ipynb", as_version=4).cells
    (cell,) = [c for c in cells if "def article(w, _unused)" in c.source]
    lines = stored_text(cell).splitlines()
    masked = lines
    for regex, replace in patterns:
        masked = [re.sub(regex, replace, line) for line in masked]
    changed = [new for old, new in zip(lines, masked, strict=True) if old != new]
    assert len(changed) == 2
    assert all(line.startswith("rank correlation") and "(masked)" in line for line in changed)
