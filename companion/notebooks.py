"""Execute the book's notebooks in full mode and record when, where and how long they ran.

``python -m companion.notebooks execute notebooks/*.ipynb`` (what ``make execute`` calls)
runs each notebook top to bottom in a fresh kernel, stores its outputs, writes a
``companion_run`` entry into the notebook metadata and rewrites the notebook's
run-information cell (the markdown cell tagged ``run-info``) from that entry, so the
rendered page says on which device and how long its numbers took.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
from nbclient import NotebookClient

from companion import __version__
from companion.config import SMOKE_ENV, device_name, get_device, is_smoke
from companion.io import atomic_write_text

RUN_KEY = "companion_run"
RUN_INFO_TAG = "run-info"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
ADDRESS_REPR = re.compile(r"^<[\w.]+ (object )?at 0x[0-9a-f]+>$")  # a pandas Styler's text/plain


def source_digest(nb: nbformat.NotebookNode) -> str:
    """sha256 over the notebook's code-cell sources: changes when the code changes."""
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode() + b"\0")
    return digest.hexdigest()


def format_duration(seconds: float) -> str:
    """Seconds as a short human string: '42 s', '3 min 05 s', '1 h 02 min'."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def run_info_markdown(run: dict) -> str:
    """The line shown at the top of a rendered notebook page."""
    return (
        f"```{{note}}\nOutputs on this page come from a **{run['mode']}** run on "
        f"**{run['device']}**, finished {run['executed_at']} in "
        f"{format_duration(run['duration_s'])} (companion {run['companion_version']}, "
        f"Python {run['python']}).\n```"
    )


def clean_outputs(nb: nbformat.NotebookNode) -> None:
    """Drop what a static page cannot show: live widgets (progress bars), and the
    ``<... at 0x...>`` text beside a richer output (a pandas Styler's HTML table)."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = [o for o in cell.outputs if WIDGET_MIME not in o.get("data", {})]
        for output in cell.outputs:
            data = output.get("data", {})
            if len(data) > 1 and ADDRESS_REPR.match(data.get("text/plain", "").strip()):
                del data["text/plain"]
    nb.metadata.pop("widgets", None)


def run_info_cell(nb: nbformat.NotebookNode, path: Path | None = None) -> nbformat.NotebookNode:
    """The notebook's single markdown cell tagged ``run-info`` (errors name ``path``)."""
    cells = [c for c in nb.cells if RUN_INFO_TAG in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        where = f"{path}: " if path is not None else ""
        raise ValueError(
            f"{where}expected exactly one cell tagged {RUN_INFO_TAG!r}, found {len(cells)}"
        )
    return cells[0]


def execute_notebook(path: Path, timeout: int | None = None) -> dict:
    """Run one notebook in full mode, store outputs and run metadata, and return the metadata."""
    if is_smoke():
        raise RuntimeError(f"{SMOKE_ENV} is set: stored outputs must come from a full run")
    nb = nbformat.read(path, as_version=4)
    cell = run_info_cell(nb, path)
    start = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    clean_outputs(nb)
    run = {
        "mode": "full",
        "device": device_name(get_device()),
        "executed_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": round(time.perf_counter() - start, 1),
        "companion_version": __version__,
        "python": sys.version.split()[0],
        "source_sha256": source_digest(nb),
    }
    nb.metadata[RUN_KEY] = run
    cell.source = run_info_markdown(run)
    atomic_write_text(path, nbformat.writes(nb) + "\n")
    return run


class _HTMLTable(HTMLParser):
    """The cell texts of an HTML table, row by row (what ``DataFrame.to_html`` writes).

    A cell spanning several columns (a header over a group of columns) is repeated in each.
    """

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.head_rows, self._in_head, self._cell, self._span = 0, False, None, 1

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self.rows.append([])
            self.head_rows += self._in_head
        elif tag in ("th", "td"):
            self._cell, self._span = "", int(dict(attrs).get("colspan") or 1)

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._in_head = False
        elif tag in ("th", "td") and self._cell is not None:
            self.rows[-1] += [self._cell.strip()] * self._span
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell += data


def stored_table(path: Path, marker: str) -> pd.DataFrame:
    """The first DataFrame shown by the stored outputs of the code cell containing ``marker``.

    It reads what an executed chapter printed, so a later chapter can set its measured
    results beside new ones without running it again. Numbers come back as floats, and
    columns under several header rows (``mean``/``std`` over models, say) as a MultiIndex.
    """
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
    if len(cells) != 1:
        raise ValueError(f"{path}: {len(cells)} code cells contain {marker!r}; need exactly 1")
    html = [o["data"]["text/html"] for o in cells[0].outputs if "text/html" in o.get("data", {})]
    if not html:
        raise ValueError(f"{path}: the cell containing {marker!r} shows no table (run it first)")
    table = _HTMLTable()
    table.feed(html[0])
    head, body = table.rows[: table.head_rows], table.rows[table.head_rows :]
    index_name = None
    if len(head) > 1 and not any(head[-1][1:]):  # the row naming the index
        index_name = head.pop()[0] or None
    if len(head) == 1:
        columns = pd.Index(head[0][1:])
    else:  # one header row per column level, the level's name first
        names = [r[0] or None for r in head]
        columns = pd.MultiIndex.from_arrays([r[1:] for r in head], names=names)
    frame = pd.DataFrame([r[1:] for r in body], columns=columns,
                         index=pd.Index([r[0] for r in body], name=index_name))  # fmt: skip
    return frame.apply(_numbers_if_all_are)


def _numbers_if_all_are(column: pd.Series) -> pd.Series:
    """The column as numbers when every entry parses as one (``NaN`` included), else unchanged."""
    numbers = pd.to_numeric(column, errors="coerce")
    return column if (numbers.isna() & (column.str.strip() != "NaN")).any() else numbers


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``execute NOTEBOOK...``."""
    parser = argparse.ArgumentParser(prog="python -m companion.notebooks")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("execute", help="execute notebooks in full mode, storing outputs")
    run.add_argument("notebooks", nargs="+", type=Path)
    run.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: none)")
    args = parser.parse_args(argv)
    os.environ.setdefault(SMOKE_ENV, "0")
    for i, path in enumerate(sorted(args.notebooks), 1):
        print(f"[{i}/{len(args.notebooks)}] {path} ...", flush=True)
        info = execute_notebook(path, args.timeout)
        print(f"    done in {format_duration(info['duration_s'])} on {info['device']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
