"""The smoke/full switch, data directories, device selection and seeding."""

from __future__ import annotations

import os
import re

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


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_data_dirs_reject_a_setting_that_points_nowhere(monkeypatch, tmp_path, kind) -> None:
    target = tmp_path / "no such folder"
    if kind == "file":
        target.write_text("not a folder")
    monkeypatch.setenv(config.DATA_ENV, str(target))
    state = "is not a folder" if kind == "file" else "does not exist"
    message = f"COMPANION_DATA='{target}' points to {target}, which {state}"
    with pytest.raises(config.DataDirError, match=re.escape(message)):
        config.data_dirs()


@pytest.mark.parametrize("value", [None, ""])
def test_absent_default_data_dirs_are_searched_quietly(monkeypatch, tmp_path, value) -> None:
    if value is None:
        monkeypatch.delenv(config.DATA_ENV, raising=False)
    else:
        monkeypatch.setenv(config.DATA_ENV, value)  # set but empty counts as unset
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path / "repo")
    assert config.data_dirs() == [tmp_path / "repo" / "data", tmp_path / "shared" / "data"]


def test_cache_dir_is_created(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(config.CACHE_ENV, str(tmp_path / "cache"))
    assert config.cache_dir().is_dir()


def test_device_selection_and_name(monkeypatch) -> None:
    assert config.get_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cudnn_attention = torch.backends.cuda.cudnn_sdp_enabled()
    try:
        assert config.get_device() == torch.device("cuda")
        assert not torch.backends.cuda.cudnn_sdp_enabled()  # a plan per shape: see the docstring
    finally:
        torch.backends.cuda.enable_cudnn_sdp(cudnn_attention)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert config.get_device() == torch.device("cpu")
    monkeypatch.setattr(config, "cpu_model", lambda: "Test CPU")
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert config.device_name(torch.device("cpu")) == "Test CPU (3 cores)"


def test_seed_everything_repeats_random_draws() -> None:
    config.seed_everything(3)
    first = torch.rand(4)
    config.seed_everything(3)
    assert torch.equal(first, torch.rand(4))


def test_machine_load_reports_the_load_averages(monkeypatch: pytest.MonkeyPatch) -> None:
    line = config.machine_load()
    shown = [float(x) for x in line.rpartition("load average:")[2].replace(",", " ").split()]
    assert len(shown) == 3
    assert all(abs(a - b) < 1.0 for a, b in zip(shown, os.getloadavg(), strict=True))

    def no_uptime(*args: object, **kwargs: object) -> None:
        raise OSError("uptime is not installed")

    monkeypatch.setattr(config.subprocess, "run", no_uptime)
    monkeypatch.setattr(config.os, "getloadavg", lambda: (0.5, 1.25, 2.0))
    assert config.machine_load() == "load average: 0.50, 1.25, 2.00"


def test_choose_takes_the_gpu_value_only_on_cuda_and_never_in_smoke_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for smoke, cuda, expected in ((False, False, "cpu"), (False, True, "gpu"), (True, True, "s")):
        monkeypatch.setenv("COMPANION_SMOKE", "1" if smoke else "0")
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        assert config.choose(full="cpu", smoke="s", gpu="gpu") == expected
        assert config.choose(full="cpu", smoke="s") == ("s" if smoke else "cpu")
