"""The smoke/full switch, data directories, device selection and seeding."""

from __future__ import annotations

import pytest
import torch

from companion import config


@pytest.mark.parametrize(
    ("value", "smoke"), [("1", True), ("true", True), ("0", False), ("", False)]
)
def test_smoke_switch(monkeypatch: pytest.MonkeyPatch, value: str, smoke: bool) -> None:
    monkeypatch.setenv(config.SMOKE_ENV, value)
    assert config.is_smoke() is smoke
    assert config.choose(full="full", smoke="smoke") == ("smoke" if smoke else "full")


def test_full_mode_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.SMOKE_ENV, raising=False)
    assert config.choose(full=25, smoke=1) == 25


def test_bad_smoke_value_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.SMOKE_ENV, "maybe")
    with pytest.raises(ValueError, match="COMPANION_SMOKE='maybe'"):
        config.is_smoke()


def test_data_dirs_put_the_environment_variable_first(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path))
    dirs = config.data_dirs()
    assert dirs[0] == tmp_path
    assert config.REPO_ROOT.parent / "shared" / "data" in dirs
    assert len({d.resolve() for d in dirs}) == len(dirs)


def test_cache_dir_is_created(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(config.CACHE_ENV, str(tmp_path / "cache"))
    assert config.cache_dir().is_dir()


def test_device_selection_and_name() -> None:
    assert config.get_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else None
    assert config.get_device().type in {expected, "mps", "cpu"}
    assert "cores" in config.device_name(torch.device("cpu"))


def test_seed_everything_repeats_random_draws() -> None:
    config.seed_everything(3)
    first = torch.rand(4)
    config.seed_everything(3)
    assert torch.equal(first, torch.rand(4))


def test_machine_load_reports_load_averages() -> None:
    assert "load average" in config.machine_load()
