"""Tests of companion.checkpoints: a resume that does not fit is refused before anything changes.

Every refusal below is checked the same way: the caller's model, the global Python, NumPy
and torch random states, the DataLoader's generator and the checkpoint files themselves
are bit-identical before and after the failed ``fit`` call, and the error names the file.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train import assert_same_weights, config, loaders, toy_dataset, toy_model, weights

from companion import checkpoints
from companion.checkpoints import (
    BEST_FILE,
    STATE_FILE,
    CheckpointError,
    load_weights,
    read_weights,
    save_weights,
)
from companion.classifier import NewsClassifier
from companion.config import seed_everything
from companion.encoder import Encoder
from companion.train import fit, text_loader

EPOCH_FILE = "epoch-002.safetensors"


def finished_run(folder: Path, **changes: object) -> None:
    """One epoch with a validation loader, so best, epoch and state files all exist."""
    loader, vocab = loaders("generator")
    fit(toy_model(vocab), loader, loader, config=config(folder, epochs=2, **changes))


def snapshot(model: torch.nn.Module, loader: object, folder: Path) -> dict[str, object]:
    """Everything a refused resume must leave as it was."""
    return {
        "weights": weights(model),
        "python": random.getstate(),
        "numpy": np.random.get_state()[1].copy(),  # noqa: NPY002
        "torch": torch.get_rng_state(),
        "loader": loader.generator.get_state(),
        "files": {p.name: p.read_bytes() for p in sorted(folder.iterdir())},
    }


def assert_unchanged(before: dict, after: dict) -> None:
    assert_same_weights(before["weights"], after["weights"])
    assert before["python"] == after["python"]
    np.testing.assert_array_equal(before["numpy"], after["numpy"])
    assert torch.equal(before["torch"], after["torch"])
    assert torch.equal(before["loader"], after["loader"])
    assert before["files"] == after["files"]


def resume_is_refused(folder: Path, model: torch.nn.Module, match: str, **changes: object) -> None:
    """Resume into ``model``; expect a CheckpointError matching ``match`` and no change."""
    loader, _ = loaders("generator")
    torch.manual_seed(7)  # a process state of its own, distinct from the checkpoint's
    before = snapshot(model, loader, folder)
    with pytest.raises(CheckpointError, match=match):
        fit(model, loader, loader, config=config(folder, epochs=2, **changes))
    assert_unchanged(before, snapshot(model, loader, folder))


def other_model(hidden: int = 8, layers: int = 1) -> NewsClassifier:
    """A classifier of the toy vocabulary with another seed and, optionally, another shape."""
    _, vocab = toy_dataset()
    seed_everything(11)
    return NewsClassifier(Encoder(len(vocab), 8, hidden, num_layers=layers, pooling="max"), 2)


def test_other_settings_are_refused_untouched(tmp_path: Path) -> None:
    finished_run(tmp_path)
    resume_is_refused(tmp_path, other_model(), "written with other settings", lr=0.5)


@pytest.mark.parametrize(
    ("saved", "resumed", "match"),
    [
        ({"hidden": 8}, {"hidden": 16}, r"epoch-002.safetensors does not fit this model: .*shape"),
        ({"layers": 2}, {"layers": 1}, r"epoch-002.safetensors does not fit .*unexpected"),
        ({"layers": 1}, {"layers": 2}, r"epoch-002.safetensors does not fit .*missing"),
    ],
)
def test_a_model_of_another_shape_is_refused_untouched(
    tmp_path: Path, saved: dict, resumed: dict, match: str
) -> None:
    loader, _ = loaders("generator")
    fit(other_model(**saved), loader, loader, config=config(tmp_path, epochs=2))
    resume_is_refused(tmp_path, other_model(**resumed), match)


def flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 16):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def pickled_code(path: Path) -> None:
    """A state file whose unpickling would construct an arbitrary object."""
    torch.save({"format": 2, "payload": Path("anything")}, path)


CORRUPTIONS: list[tuple[str, Callable[[Path], None], str]] = [
    (STATE_FILE, flip_bytes, "cannot be read"),
    (STATE_FILE, truncate, "cannot be read"),
    (STATE_FILE, empty, "cannot be read"),
    (STATE_FILE, pickled_code, "cannot be read"),
    (EPOCH_FILE, flip_bytes, "sha256 differs"),
    (EPOCH_FILE, truncate, "sha256 differs"),
    (EPOCH_FILE, empty, "sha256 differs"),
    (BEST_FILE, truncate, "sha256 differs"),
    (BEST_FILE, Path.unlink, "weights file not found"),
    (EPOCH_FILE, Path.unlink, "weights file not found"),
]


@pytest.mark.parametrize(("name", "corrupt", "match"), CORRUPTIONS)
def test_a_corrupt_file_is_named_and_nothing_changes(
    tmp_path: Path, name: str, corrupt: Callable[[Path], None], match: str
) -> None:
    finished_run(tmp_path)
    corrupt(tmp_path / name)
    resume_is_refused(tmp_path, other_model(), f"{name}.*{match}.*Delete .* to start afresh")


def test_a_weights_file_of_another_run_is_caught_by_its_digest(tmp_path: Path) -> None:
    finished_run(tmp_path / "a")
    finished_run(tmp_path / "b", lr=0.05)
    (tmp_path / "a" / EPOCH_FILE).write_bytes((tmp_path / "b" / EPOCH_FILE).read_bytes())
    resume_is_refused(tmp_path / "a", other_model(), f"{EPOCH_FILE}.*another run")


def test_a_state_of_an_older_layout_is_refused(tmp_path: Path) -> None:
    finished_run(tmp_path)
    state = torch.load(tmp_path / STATE_FILE, weights_only=True)
    del state["format"]
    torch.save(state, tmp_path / STATE_FILE)
    resume_is_refused(tmp_path, other_model(), "not a checkpoint of format 2")


def test_a_loader_built_another_way_is_refused_untouched(tmp_path: Path) -> None:
    loader, vocab = loaders("generator")
    fit(toy_model(vocab), loader, config=config(tmp_path, epochs=2))
    data, _ = toy_dataset()
    model, plain = other_model(), text_loader(data, 8)  # no torch.Generator in this loader
    before = weights(model)
    with pytest.raises(CheckpointError, match=f"{STATE_FILE}: random-number states"):
        fit(model, plain, config=config(tmp_path, epochs=2))
    assert_same_weights(before, weights(model))


def test_the_state_file_loads_without_pickled_code(tmp_path: Path) -> None:
    finished_run(tmp_path)
    state = torch.load(tmp_path / STATE_FILE, weights_only=True)
    assert state["weights"] == EPOCH_FILE
    assert state["weights_sha256"] == checkpoints.sha256_file(tmp_path / EPOCH_FILE)
    assert state["best_sha256"] == checkpoints.sha256_file(tmp_path / BEST_FILE)


def never_called(model, batch, device):  # noqa: ANN001, ANN201
    raise AssertionError("training started before the checkpoint folder was checked")


def test_a_file_as_checkpoint_dir_fails_before_the_first_step(tmp_path: Path) -> None:
    loader, vocab = loaders("generator")
    (tmp_path / "file").write_text("not a folder")
    for folder, match in ((tmp_path / "file", "is a file"), (tmp_path / "file" / "sub", "")):
        with pytest.raises(CheckpointError, match=f"checkpoint_dir {folder} {match}"):
            fit(toy_model(vocab), loader, config=config(folder), step=never_called)
    assert (tmp_path / "file").read_text() == "not a folder"


def refuse_writes(*args: object, **kwargs: object) -> None:
    """Stands in for tempfile.mkstemp where writing is refused."""
    raise PermissionError(13, "Permission denied")


def test_an_unwritable_checkpoint_dir_fails_before_the_first_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root may write into a read-only folder, so the refusal of the write is simulated."""

    monkeypatch.setattr(checkpoints.tempfile, "mkstemp", refuse_writes)
    loader, vocab = loaders("generator")
    with pytest.raises(CheckpointError, match="cannot be written to .*Permission denied"):
        fit(toy_model(vocab), loader, config=config(tmp_path / "ro"), step=never_called)


def test_read_weights_checks_names_shapes_dtypes_and_digest(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    model = other_model()
    digest = save_weights(model, path)
    assert digest == checkpoints.sha256_file(path)
    tensors = read_weights(path, model, digest)
    assert_same_weights(tensors, weights(model))
    with pytest.raises(CheckpointError, match="sha256 differs"):
        read_weights(path, model, "0" * 64)
    with pytest.raises(CheckpointError, match=r"does not fit this model: .*float64"):
        read_weights(path, other_model().double())
    target = other_model(layers=2)
    before = weights(target)
    with pytest.raises(CheckpointError, match="missing"):
        load_weights(target, path)
    assert_same_weights(before, weights(target))


class Interrupted(Exception):
    """Stands in for a kill at one moment of a checkpoint save."""


def test_an_interruption_after_a_new_best_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut between the new best's write and the state that records it: the old pair holds."""
    loader, vocab = loaders("generator")
    save_last = checkpoints.Checkpoints.save_last

    def dies_in_epoch_2(self: checkpoints.Checkpoints, model: object, state: dict) -> None:
        if state["epoch"] == 2:
            raise Interrupted
        save_last(self, model, state)

    monkeypatch.setattr(checkpoints.Checkpoints, "save_last", dies_in_epoch_2)
    with pytest.raises(Interrupted):
        fit(toy_model(vocab), loader, config=config(tmp_path, epochs=3))
    assert (tmp_path / checkpoints.STAGED_BEST_FILE).is_file()  # epoch 2 was a new best
    monkeypatch.undo()
    loader, _ = loaders("generator")
    resumed = fit(toy_model(vocab), loader, config=config(tmp_path, epochs=3))
    assert resumed.resumed_from == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        BEST_FILE, "epoch-003.safetensors", STATE_FILE,
    ]  # fmt: skip


def test_an_interruption_before_the_best_is_renamed_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut after the state recorded the staged best, before its rename: it is read from there."""
    loader, vocab = loaders("generator")
    replace = checkpoints.os.replace

    def dies_renaming_the_best(src: object, dst: object) -> None:
        if Path(src).name == checkpoints.STAGED_BEST_FILE:
            raise Interrupted
        replace(src, dst)

    monkeypatch.setattr(checkpoints.os, "replace", dies_renaming_the_best)
    with pytest.raises(Interrupted):
        fit(toy_model(vocab), loader, config=config(tmp_path, epochs=3))
    monkeypatch.undo()
    state = torch.load(tmp_path / STATE_FILE, weights_only=True)
    staged = tmp_path / checkpoints.STAGED_BEST_FILE
    assert state["best_sha256"] == checkpoints.sha256_file(staged)
    assert not (tmp_path / BEST_FILE).exists()
    loader, _ = loaders("generator")
    resumed = fit(toy_model(vocab), loader, config=config(tmp_path, epochs=3))
    assert resumed.resumed_from == 1
    assert resumed.best_path == tmp_path / BEST_FILE
    assert not staged.exists()
    state = torch.load(tmp_path / STATE_FILE, weights_only=True)
    assert state["best_sha256"] == checkpoints.sha256_file(tmp_path / BEST_FILE)


def test_a_failed_write_probe_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints.tempfile, "mkstemp", refuse_writes)
    with pytest.raises(CheckpointError, match="cannot be written to"):
        checkpoints.Checkpoints(tmp_path / "new" / "ckpt")
    assert list(tmp_path.iterdir()) == []
