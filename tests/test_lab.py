"""``make lab`` in a real browser: a chapter opened in JupyterLab shows MyST as the book does.

Starts JupyterLab on 127.0.0.1 (no token, a throw-away settings folder), opens chapter 3 in
headless Chromium and reads what jupyterlab-myst rendered: math typeset (KaTeX), solutions
folded, no raw MyST left on the page.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from companion.config import REPO_ROOT

pytestmark = pytest.mark.browser

CHAPTER = "03_cross_entropy.ipynb"
STARTUP_S = 60


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lab_settings(folder: Path) -> Path:
    """A JupyterLab settings folder that renders every cell (no windowing), so all can be read."""
    tracker = folder / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    return folder


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """JupyterLab serving notebooks/ at a free port; its URL."""
    port, tmp = free_port(), tmp_path_factory.mktemp("lab")
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(lab_settings(tmp / "settings")),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces")}  # fmt: skip
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
               "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=",
               f"--ServerApp.root_dir={REPO_ROOT / 'notebooks'}", "--allow-root"]  # fmt: skip
    log = (tmp / "lab.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start: {(tmp / 'lab.log').read_text()}")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_chapter_in_jupyterlab_shows_math_and_folded_solutions(browser, lab: str) -> None:
    page = browser.new_page()
    try:
        page.goto(f"{lab}/lab/tree/{CHAPTER}", wait_until="domcontentloaded")
        page.wait_for_selector(".jp-Notebook .jp-MarkdownCell", timeout=STARTUP_S * 1000)
        # jupyterlab-myst typesets math with KaTeX
        page.wait_for_selector(".jp-MarkdownCell .katex", timeout=STARTUP_S * 1000)
        page.wait_for_function(  # every cell rendered, the exercises' solutions last
            "document.querySelectorAll('.jp-MarkdownCell details').length >= 3",
            timeout=STARTUP_S * 1000,
        )
        text = "\n".join(page.locator(".jp-MarkdownCell").all_inner_texts())  # what is shown
        for raw in ("```{admonition}", ":class: dropdown", "{eq}`", "{cite}`", "$$"):
            assert raw not in text, f"JupyterLab shows raw MyST: {raw!r}"
        solutions = page.locator(".jp-MarkdownCell details")
        assert solutions.count() >= 3, "the exercises' solutions are not foldable"
        assert all(s.get_attribute("open") is None for s in solutions.all()), "a solution is open"
    finally:
        page.close()
