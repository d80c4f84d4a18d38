"""The rendered book in a real browser: math typeset, diagrams drawn, nothing fetched from outside.

Needs ``_build/html`` (``make book``) and Debian's Chromium; ``make test`` builds the book first.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

from companion.config import REPO_ROOT

pytestmark = pytest.mark.browser

HTML = REPO_ROOT / "_build" / "html"


def book_pages() -> list[Path]:
    """Every content page of the built book (not Sphinx's search or index pages)."""
    if not HTML.is_dir():
        raise FileNotFoundError(f"{HTML} does not exist: run `make book` first")
    skip = {"genindex.html", "search.html", "index.html"}
    return sorted(
        p
        for p in HTML.rglob("*.html")
        if p.name not in skip and not p.relative_to(HTML).parts[0].startswith("_")
    )


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves the book and keeps the test output clean."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Drop the per-request log line."""


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The built book served on 127.0.0.1 at a free port."""
    handler = functools.partial(QuietHandler, directory=str(HTML))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def visit(browser, url: str) -> tuple[object, list[str]]:
    """Open ``url``; return the page and the list of failed or external requests."""
    problems: list[str] = []
    page = browser.new_page()

    def on_request(request) -> None:
        host = urlparse(request.url).hostname
        if request.url.startswith("http") and host != "127.0.0.1":
            problems.append(f"external request: {request.url}")

    def on_response(response) -> None:
        if response.status >= 400:
            problems.append(f"HTTP {response.status}: {response.url}")

    page.on("request", on_request)
    page.on("response", on_response)
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} ({r.failure})"))
    page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
    page.goto(url, wait_until="networkidle")
    return page, problems


def test_book_has_every_chapter() -> None:
    """Every notebook and prose page listed in _toc.yml was rendered."""
    names = {p.relative_to(HTML).as_posix() for p in book_pages()}
    notebooks = {f"notebooks/{p.stem}.html" for p in (REPO_ROOT / "notebooks").glob("*.ipynb")}
    assert notebooks <= names, f"missing pages: {sorted(notebooks - names)}"
    assert {"book/intro.html", "book/glossary.html"} <= names


def pages_to_check() -> list[Path]:
    """The pages to parametrize over; a missing build becomes one failing case, not an error."""
    return book_pages() if HTML.is_dir() else [HTML]


@pytest.mark.parametrize("path", pages_to_check(), ids=lambda p: p.relative_to(HTML).as_posix())
def test_page_renders_offline(browser, server: str, path: Path) -> None:
    """No failed or external request; math typeset; diagrams drawn; notebook figures shown."""
    if path == HTML:
        pytest.fail(f"{HTML} does not exist: run `make book` first")
    source = path.read_text(encoding="utf-8")
    page, problems = visit(browser, f"{server}/{path.relative_to(HTML).as_posix()}")
    try:
        if 'class="math' in source:
            page.wait_for_selector("mjx-container", state="attached", timeout=15_000)
        if 'class="mermaid' in source:
            page.wait_for_selector(
                ".mermaid svg[aria-roledescription]", state="attached", timeout=15_000
            )
        if path.parent.name == "notebooks":
            assert "Outputs on this page come from a" in page.inner_text(".admonition.note")
            if "image/png" in (REPO_ROOT / "notebooks" / f"{path.stem}.ipynb").read_text():
                shown = page.eval_on_selector_all(
                    ".cell_output img", "imgs => imgs.filter(i => i.naturalWidth > 0).length"
                )
                assert shown > 0, "the notebook's stored figures are not shown"
        assert problems == []
    finally:
        page.close()


def test_chinese_terms_render_in_the_vendored_font(browser, server: str) -> None:
    """The glossary's Chinese terms get Noto Sans SC from the book itself: glyphs, not boxes."""
    page, problems = visit(browser, f"{server}/book/glossary.html")
    try:
        assert re.search(r"[\u4e00-\u9fff]", page.inner_text("main")), "no Chinese on the page"
        page.evaluate("document.fonts.ready.then(() => true)")
        loaded = page.evaluate(
            """[...document.fonts].filter(f => f.family.replace(/["']/g, "") === "Noto Sans SC"
                                      && f.status === "loaded").length"""
        )
        assert loaded > 0, "Noto Sans SC was not loaded for the glossary's Chinese terms"
        assert problems == []
    finally:
        page.close()


def test_map_labels_are_drawn_in_the_vendored_font(browser, server: str) -> None:
    """The introduction's diagram: Chinese labels in Noto Sans SC, which was loaded before
    mermaid sized the boxes, so no label is wider than its box."""
    page, problems = visit(browser, f"{server}/book/intro.html")
    try:
        page.wait_for_selector(".mermaid svg[aria-roledescription]", state="attached")
        labels = page.eval_on_selector_all(
            ".mermaid svg .node foreignObject",
            """objects => objects.map(o => {
                const box = o.firstElementChild;
                return {text: box.textContent, font: getComputedStyle(box).fontFamily,
                        need: box.scrollWidth, have: o.width.baseVal.value};
            })""",
        )
        chinese = [label for label in labels if re.search(r"[\u4e00-\u9fff]", label["text"])]
        assert chinese, f"no Chinese label among {[label['text'] for label in labels]}"
        for label in chinese:
            assert "Noto Sans SC" in label["font"], label
            assert label["need"] <= label["have"] + 1, f"label wider than its box: {label}"
        text = "".join(re.findall(r"[\u4e00-\u9fff]", "".join(c["text"] for c in chinese)))
        assert page.evaluate("t => document.fonts.check('16px \"Noto Sans SC\"', t)", text)
        assert problems == []
    finally:
        page.close()


@pytest.mark.parametrize("chapter", ["03_cross_entropy", "06_classifier"])
def test_solutions_are_folded_on_the_page(browser, server: str, chapter: str) -> None:
    """Code solutions sit in closed toggles (the test cells stay visible); one click opens one."""
    page, problems = visit(browser, f"{server}/notebooks/{chapter}.html")
    try:
        solutions = page.locator(".cell", has_text="### BEGIN SOLUTION")
        assert solutions.count() >= 1, "no code solution on the page"
        code = solutions.first.locator("pre", has_text="### BEGIN SOLUTION")
        assert not code.is_visible(), "a code solution is open"
        tests = page.locator(".cell", has_text="### BEGIN HIDDEN TESTS")
        assert tests.first.locator("pre").first.is_visible(), "the test cell is hidden"
        solutions.first.locator("summary").first.click()
        assert code.is_visible(), "the toggle does not open the solution"
        written = page.locator(".admonition.dropdown")  # sphinx-togglebutton hides their bodies
        assert written.count() >= 3, "the written solutions are not dropdowns"
        bodies = written.locator("p:not(.admonition-title)")
        assert not any(p.is_visible() for p in bodies.all()), "a written solution is open"
        assert problems == []
    finally:
        page.close()
