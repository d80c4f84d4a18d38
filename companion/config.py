"""Settings read from the environment: smoke mode, data directories, device and seeding.

Two environment variables steer the whole book:

* ``COMPANION_SMOKE=1`` runs every notebook on tiny data in seconds (tests use it);
  unset or ``0`` is the full run that the rendered book shows.
* ``COMPANION_DATA`` names a folder holding local copies of the data sets
  (the Makefile and CI point it at ``../shared/data`` when that exists).
"""

from __future__ import annotations

import os
import platform
import random
import subprocess
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

SMOKE_ENV = "COMPANION_SMOKE"
DATA_ENV = "COMPANION_DATA"
CACHE_ENV = "COMPANION_CACHE"
REPO_ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")


def is_smoke() -> bool:
    """True when ``COMPANION_SMOKE`` asks for the tiny, seconds-long run."""
    value = os.environ.get(SMOKE_ENV, "0").strip().lower()
    if value in {"", "0", "false", "no", "off"}:
        return False
    if value in {"1", "true", "yes", "on"}:
        return True
    raise ValueError(f"{SMOKE_ENV}={value!r}: use 1 (smoke run) or 0 (full run)")


def choose(full: T, smoke: T, gpu: T | None = None) -> T:
    """Pick the full-run value, the smoke-run value in smoke mode, or ``gpu`` on CUDA.

    ``gpu`` (when given) is the full-run value for a machine with a CUDA GPU: the larger
    settings a chapter can afford there. Smoke mode wins over it.
    """
    if is_smoke():
        return smoke
    return gpu if gpu is not None and torch.cuda.is_available() else full


class DataDirError(FileNotFoundError):
    """A data-folder setting (``COMPANION_DATA`` or ``data_dir=``) names no existing folder."""


def existing_folder(path: Path, setting: str) -> Path:
    """``path`` when it is an existing folder; else a DataDirError naming ``setting``."""
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        raise DataDirError(
            f"{setting} points to {path}, which {state}. Point it at the folder that holds the "
            "data sets (e.g. ../shared/data), or leave it unset to search the default places."
        )
    return path


def data_dirs() -> list[Path]:
    """Folders searched for local data, in order: $COMPANION_DATA, ./data, ../shared/data.

    A set ``COMPANION_DATA`` that names no existing folder is an error (DataDirError); the
    two default places are only searched, so their absence is not.
    """
    dirs = []
    if value := os.environ.get(DATA_ENV):
        dirs.append(existing_folder(Path(value).expanduser(), f"{DATA_ENV}={value!r}"))
    dirs += [REPO_ROOT / "data", REPO_ROOT.parent / "shared" / "data"]
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def cache_dir() -> Path:
    """A writable folder for downloads, trained vectors and checkpoints."""
    default = Path.home() / ".cache" / "companion"
    path = Path(os.environ.get(CACHE_ENV, default)).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then Apple MPS, then CPU (or ``prefer`` if given)."""
    if prefer is not None:
        device = torch.device(prefer)
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if device.type == "cuda":
        avoid_per_shape_attention_plans()
    return device


def avoid_per_shape_attention_plans() -> None:
    """Keep PyTorch's attention off cuDNN, which builds a plan for every new tensor shape.

    The book pads each batch only to its longest row, so shapes change from batch to batch.
    On recent NVIDIA GPUs PyTorch tries cuDNN's attention first, and cuDNN builds an execution
    plan for each new (batch, length) shape, about half a second per shape (modelscope/FunASR
    issue 3704); chapter 9's first GPU run made length-grouped bf16 training slower than
    padding everything to one length. Flash and memory-efficient attention need no plan.
    """
    torch.backends.cuda.enable_cudnn_sdp(False)


def device_name(device: torch.device | None = None) -> str:
    """A human-readable name of the device: GPU model, or CPU model and core count."""
    device = device or get_device()
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    return f"{cpu_model()} ({os.cpu_count()} cores)"


def cpu_model() -> str:
    """The CPU's model name as the operating system reports it."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch so that a CPU run repeats bit for bit."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds code that uses the legacy global generator
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def machine_load() -> str:
    """The ``uptime`` line (load averages), which puts a timing in context."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
