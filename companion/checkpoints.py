"""Training checkpoints that resume exactly, or refuse before anything is touched.

A checkpoint folder holds

* ``best.safetensors``: the best weights so far;
* ``epoch-NNN.safetensors``: the weights at the end of the last finished epoch;
* ``last_state.pt``: that epoch's optimizer, scheduler, progress and random-number states,
  the training settings, and the sha256 of both weights files.

Every file is written atomically, and ``last_state.pt`` after the weights it names, so an
interruption at any moment leaves a consistent checkpoint. A new best is first written to
``best.staged.safetensors``; only once ``last_state.pt`` records its sha256 is it renamed
over ``best.safetensors``. Until then the old best, which the old state records, stays in
place; a resume accepts whichever of the two files has the recorded digest, and a staged
file that no state records is dropped at the next save. ``last_state.pt`` holds only
tensors and plain Python values, so it loads with ``torch.load(weights_only=True)``: no
pickled code runs. ``Checkpoints.read`` checks everything (readable files, digests,
settings, names, shapes and dtypes of the weights, the optimizer's groups, the random
states) before ``Resume.restore`` changes anything, so a refused resume leaves the model,
the optimizer and every random-number generator exactly as they were.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from companion.io import atomic_write, removing_created_folders, sha256_file

BEST_FILE = "best.safetensors"
STAGED_BEST_FILE = "best.staged.safetensors"  # a new best until last_state.pt records it
STATE_FILE = "last_state.pt"
RNG_KEYS = ("python", "numpy", "torch", "cuda", "loader")
FORMAT = 2  # version of the last_state.pt layout
STATE_KEYS = ("format", "epoch", "config", "progress", "optimizer", "scheduler", "rng",
              "weights", "weights_sha256", "best_sha256")  # fmt: skip


class CheckpointError(ValueError):
    """A checkpoint folder or file cannot be used: the message names it and how to recover."""


def _recover_hint(folder: Path) -> str:
    return f"Delete {folder} to start afresh, or pass another checkpoint_dir."


# ---------------------------------------------------------------- weights files


def save_weights(model: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> str:
    """Write ``model.state_dict()`` to a safetensors file atomically; return its sha256.

    Each tensor is copied to the CPU first, so tensors that share storage (cuDNN's
    flattened LSTM weights, tied embeddings) are saved as plain separate tensors.
    """
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    return sha256_file(path)


def read_weights(
    path: Path, model: nn.Module, sha256: str | None = None, hint: str = ""
) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, checked against ``model``'s names, shapes and dtypes.

    With ``sha256`` the file's digest must match too. Raises CheckpointError naming the
    file; reads nothing into ``model``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found. {hint}".strip())
    if sha256 is not None and sha256_file(path) != sha256:
        raise CheckpointError(
            f"{path}: its sha256 differs from the one recorded in {STATE_FILE}: the file is "
            f"corrupt or comes from another run. {hint}".strip()
        )
    try:
        tensors = load_file(str(path))
    except Exception as err:  # safetensors raises its own error types, and OSError
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({type(err).__name__}: {first_line(err)}). "
            f"{hint}".strip()
        ) from err
    problems = state_dict_mismatches(tensors, model.state_dict())
    if problems:
        more = f" (and {len(problems) - 4} more)" if len(problems) > 4 else ""
        raise CheckpointError(
            f"{path} does not fit this model: {'; '.join(problems[:4])}{more}. {hint}".strip()
        )
    return tensors


def state_dict_mismatches(saved: Mapping[str, torch.Tensor], own: Mapping[str, Any]) -> list[str]:
    """What differs between two state dicts in names, shapes and dtypes (empty: they fit)."""
    problems = []
    missing, unexpected = sorted(own.keys() - saved.keys()), sorted(saved.keys() - own.keys())
    if missing:
        problems.append(f"missing {missing}")
    if unexpected:
        problems.append(f"unexpected {unexpected}")
    for key in sorted(own.keys() & saved.keys()):
        a, b = saved[key], own[key]
        if a.shape != b.shape or a.dtype != b.dtype:
            problems.append(
                f"{key} is {a.dtype} {tuple(a.shape)} in the file, {b.dtype} {tuple(b.shape)} here"
            )
    return problems


def load_weights(model: nn.Module, path: Path, sha256: str | None = None) -> None:
    """Load a weights file written by ``save_weights`` into ``model`` (checked first)."""
    tensors = read_weights(path, model, sha256)
    model.load_state_dict(tensors)


# ---------------------------------------------------------------- random-number states


def loader_generators(loader: Any) -> list[torch.Generator]:
    """The torch generators that drive a DataLoader's shuffling (loader's and samplers').

    A loader that combines others (a ``loaders`` dict, e.g. ``MultiTaskLoader``) has theirs.
    """
    found: list[torch.Generator] = []
    inner = getattr(loader, "loaders", None)
    objects = [
        loader,
        getattr(loader, "sampler", None),
        getattr(loader, "batch_sampler", None),
        getattr(getattr(loader, "batch_sampler", None), "sampler", None),
    ]
    for obj in objects:
        gen = getattr(obj, "generator", None)
        if isinstance(gen, torch.Generator) and all(gen is not g for g in found):
            found.append(gen)
    for part in inner.values() if isinstance(inner, dict) else ():
        found += [g for g in loader_generators(part) if all(g is not f for f in found)]
    return found


def rng_states(loader: Any) -> dict[str, Any]:
    """Every random state a training epoch draws from, as tensors and plain values."""
    numpy_state = np.random.get_state(legacy=False)  # noqa: NPY002 (the legacy global state)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    return {
        "python": random.getstate(),
        "numpy": numpy_state,
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": [g.get_state() for g in loader_generators(loader)],
    }


def _numpy_state(saved: dict[str, Any]) -> dict[str, Any]:
    """NumPy's state dict from its saved form (the key as a list of ints), for ``set_state``."""
    state = dict(saved["state"], key=np.asarray(saved["state"]["key"], dtype=np.uint32))
    return {**saved, "state": state}


def check_rng_states(states: Any, loader: Any) -> None:
    """Raise ValueError unless ``set_rng_states(states, loader)`` will succeed.

    Each state is tried on a scratch generator, so the real ones stay untouched.
    """
    if not isinstance(states, dict) or set(states) != set(RNG_KEYS):
        raise ValueError("the random-number states are incomplete")
    random.Random().setstate(states["python"])
    np.random.RandomState().set_state(_numpy_state(states["numpy"]))
    torch.Generator().set_state(states["torch"])
    gens = loader_generators(loader)
    if len(gens) != len(states["loader"]):
        raise ValueError(
            f"it saved {len(states['loader'])} DataLoader generator states but this "
            f"train_loader has {len(gens)}: resume with a loader built the same way"
        )
    for state in states["loader"]:
        torch.Generator().set_state(state)


def set_rng_states(states: dict[str, Any], loader: Any) -> None:
    """Restore the states saved by ``rng_states`` (check them first: ``check_rng_states``)."""
    random.setstate(states["python"])
    np.random.set_state(_numpy_state(states["numpy"]))  # noqa: NPY002
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    for gen, state in zip(loader_generators(loader), states["loader"], strict=True):
        gen.set_state(state)


# ---------------------------------------------------------------- optimizer state


def optimizer_mismatches(saved: Any, optimizer: torch.optim.Optimizer) -> list[str]:
    """What keeps ``optimizer.load_state_dict(saved)`` from restoring a matching state."""
    if not isinstance(saved, dict) or not {"state", "param_groups"} <= saved.keys():
        return ["not an optimizer state dict"]
    groups = optimizer.param_groups
    sizes = [len(g["params"]) for g in saved["param_groups"]]
    if sizes != [len(g["params"]) for g in groups]:
        return [f"parameter groups of sizes {sizes}, this run has "
                f"{[len(g['params']) for g in groups]}"]  # fmt: skip
    params = [p for g in groups for p in g["params"]]
    ids = [i for g in saved["param_groups"] for i in g["params"]]
    problems = []
    for index, param in zip(ids, params, strict=True):
        for name, value in saved["state"].get(index, {}).items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != param.shape:
                problems.append(f"{name} of parameter {index} has shape {tuple(value.shape)}, "
                                f"the parameter {tuple(param.shape)}")  # fmt: skip
    return problems


def scheduler_mismatches(saved: Any, optimizer: torch.optim.Optimizer) -> list[str]:
    """What keeps a learning-rate scheduler's saved state from fitting ``optimizer``."""
    if not isinstance(saved, dict) or not isinstance(saved.get("last_epoch"), int):
        return ["the scheduler state has no step count"]
    if len(saved.get("base_lrs", ())) != len(optimizer.param_groups):
        return [f"the scheduler state has {len(saved.get('base_lrs', ()))} learning rates for "
                f"{len(optimizer.param_groups)} parameter groups"]  # fmt: skip
    return []


# ---------------------------------------------------------------- the folder


@dataclass
class Resume:
    """A checkpoint that passed every check; ``restore`` applies it."""

    state: dict[str, Any]
    weights: dict[str, torch.Tensor]

    def restore(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        loader: Any,
    ) -> None:
        """Load the weights, optimizer, scheduler and random states into the run's objects."""
        model.load_state_dict(self.weights)
        optimizer.load_state_dict(self.state["optimizer"])
        scheduler.load_state_dict(self.state["scheduler"])
        set_rng_states(self.state["rng"], loader)


class Checkpoints:
    """The checkpoint files in one folder, which must be a writable directory."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.staged = self.folder / STAGED_BEST_FILE
        self.state = self.folder / STATE_FILE
        self.best_sha256: str | None = None  # the best weights that last_state.pt records
        self._staged_sha256: str | None = None  # a new best that no state records yet
        self._best_is_staged = False  # read found the recorded best still staged
        self._check_writable()

    @property
    def best(self) -> Path:
        """The file of the recorded best weights (the staged one if its rename was cut short)."""
        if self._best_is_staged and self.staged.exists():
            return self.staged
        return self.folder / BEST_FILE

    def _check_writable(self) -> None:
        """Create the folder if needed and prove a file can be written there.

        If the probe fails, the folders this call created are removed again.
        """
        if self.folder.exists() and not self.folder.is_dir():
            raise CheckpointError(f"checkpoint_dir {self.folder} is a file, not a folder")
        try:
            with removing_created_folders(self.folder):
                self.folder.mkdir(parents=True, exist_ok=True)
                fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=self.folder)
                os.close(fd)
                os.unlink(probe)
        except OSError as err:
            raise CheckpointError(
                f"checkpoint_dir {self.folder} cannot be written to ({err.strerror or err}); "
                "pass a folder you can write to"
            ) from err

    def save_best(self, model: nn.Module, epoch: int) -> None:
        """Stage the best weights so far; the next ``save_last`` records and promotes them."""
        self._promote_staged()  # the recorded best may still be the staged file: keep it
        self._staged_sha256 = save_weights(model, self.staged, {"epoch": str(epoch)})

    def save_last(self, model: nn.Module, state: dict[str, Any]) -> None:
        """Write the epoch's weights, then the state that names them and their digests.

        A best staged since the last call is recorded, then renamed to ``best.safetensors``.
        """
        weights = self.folder / f"epoch-{state['epoch']:03d}.safetensors"
        digest = save_weights(model, weights)
        best_sha256 = self._staged_sha256 or self.best_sha256
        state = {**state, "format": FORMAT, "weights": weights.name, "weights_sha256": digest,
                 "best_sha256": best_sha256}  # fmt: skip
        atomic_write(self.state, lambda tmp: torch.save(state, tmp))
        if self._staged_sha256:
            self._best_is_staged = True  # recorded now, so it can take best.safetensors' place
        self.best_sha256, self._staged_sha256 = best_sha256, None
        self._promote_staged()
        self.staged.unlink(missing_ok=True)  # a best staged by an epoch cut short
        for old in self.folder.glob("epoch-*.safetensors"):
            if old.name != weights.name:
                old.unlink(missing_ok=True)

    def _promote_staged(self) -> None:
        """Rename the staged file over ``best.safetensors`` if it holds the recorded best."""
        if self._best_is_staged:
            os.replace(self.staged, self.folder / BEST_FILE)
            self._best_is_staged = False

    def read(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        config: dict[str, Any],
        loader: Any,
    ) -> Resume | None:
        """The checkpoint to resume from, fully checked, or None when there is none.

        Raises CheckpointError naming the file when anything does not fit ``model``,
        ``optimizer`` (a fresh one, for its groups), ``config`` or ``loader``.
        """
        if not self.state.exists():
            return None
        hint = _recover_hint(self.folder)
        state = self._read_state(hint)
        if state["config"] != config:
            raise CheckpointError(
                f"{self.state} was written with other settings {state['config']}; resume with "
                f"the same TrainConfig or use a new checkpoint_dir"
            )
        name = state["weights"]
        if not isinstance(name, str) or Path(name).name != name:
            raise CheckpointError(f"{self.state}: bad weights file name {name!r}. {hint}")
        weights = read_weights(self.folder / name, model, state["weights_sha256"], hint)
        if state["best_sha256"] is not None:
            self._best_is_staged = self._read_best(model, state["best_sha256"], hint)
        self.best_sha256, self._staged_sha256 = state["best_sha256"], None
        problems = optimizer_mismatches(state["optimizer"], optimizer)
        problems += scheduler_mismatches(state["scheduler"], optimizer)
        if problems:
            raise CheckpointError(f"{self.state}: optimizer state: {'; '.join(problems)}. {hint}")
        try:
            check_rng_states(state["rng"], loader)
        except (TypeError, ValueError, KeyError, RuntimeError) as err:
            raise CheckpointError(f"{self.state}: random-number states: {err}. {hint}") from err
        return Resume(state, weights)

    def _read_best(self, model: nn.Module, sha256: str, hint: str) -> bool:
        """Check the recorded best weights; whether they are still the staged file.

        They are there when an interruption fell between writing ``last_state.pt`` and
        renaming the staged best into place.
        """
        try:
            read_weights(self.folder / BEST_FILE, model, sha256, hint)
        except CheckpointError:
            if not self.staged.is_file() or sha256_file(self.staged) != sha256:
                raise
            read_weights(self.staged, model, sha256, hint)
            return True
        return False

    def _read_state(self, hint: str) -> dict[str, Any]:
        """``last_state.pt`` checked (zip CRCs) and loaded without running pickled code."""
        try:
            with zipfile.ZipFile(self.state) as archive:
                bad = archive.testzip()
            if bad is not None:
                raise ValueError(f"the stored checksum of {bad!r} does not match its bytes")
            state = torch.load(self.state, map_location="cpu", weights_only=True)
        except Exception as err:  # truncated, flipped bytes, empty, not a torch file, ...
            raise CheckpointError(
                f"{self.state}: cannot be read ({type(err).__name__}: {first_line(err)}). It is "
                f"corrupt or was not written by companion.train.fit. {hint}"
            ) from err
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            found = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise CheckpointError(
                f"{self.state}: not a checkpoint of format {FORMAT} (found {found!r}). {hint}"
            )
        missing = [k for k in STATE_KEYS if k not in state]
        if missing:
            raise CheckpointError(f"{self.state}: incomplete, missing {missing}. {hint}")
        return state


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an error message, without terminal colour codes, at most ``limit``."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."
