"""One training loop for every chapter: ``fit`` with schedules, AMP, early stopping and resume.

``fit(model, train_loader, val_loader, config=TrainConfig(...))`` trains with AdamW, a
linear-warmup + constant/linear/cosine learning-rate schedule, gradient clipping and (on
CUDA) bf16 autocast; it evaluates after every epoch, keeps the best weights by the
monitored validation metric, stops early, and with a ``checkpoint_dir`` saves

* ``best.safetensors``: the best weights so far;
* ``epoch-NNN.safetensors`` + ``last_state.pt``: the weights, optimizer, scheduler, history
  and every random-number-generator state at the end of the last finished epoch.

Each file is written atomically, and ``last_state.pt`` is written after the weights it
names, so an interruption at any moment leaves a consistent checkpoint; calling ``fit``
again with the same ``checkpoint_dir`` resumes from it. On the CPU a resumed run ends with
weights bit-identical to an uninterrupted one.

Chapters with other batch formats pass their own ``step(model, batch, device) -> loss`` and
``evaluate(model, loader, device) -> dict``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from companion.checks import check_ints
from companion.config import get_device, seed_everything
from companion.io import atomic_write
from companion.metrics import classification_metrics
from companion.text import BucketBatchSampler, collate_batch

SCHEDULES = ("constant", "linear", "cosine")
BEST_FILE = "best.safetensors"
STATE_FILE = "last_state.pt"
# Settings that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = ("progress", "device", "checkpoint_dir")

Step = Callable[[nn.Module, Any, torch.device], torch.Tensor]
Evaluate = Callable[[nn.Module, DataLoader, torch.device], dict[str, float]]


@dataclass
class TrainConfig:
    """Settings of one ``fit`` run (see the module docstring).

    ``fit`` seeds Python, NumPy and torch with ``seed`` before training, so two runs of
    the same model (built after the same ``seed_everything``) repeat bit for bit on a CPU.
    """

    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 0.0
    clip_norm: float | None = 1.0
    schedule: str = "cosine"  # "constant" | "linear" | "cosine", after linear warmup
    warmup_ratio: float = 0.0
    patience: int | None = 3  # early stopping on the monitored validation metric
    monitor: str = "macro_f1"
    mode: str = "max"
    amp: bool | None = None  # None = bf16 autocast on CUDA, off elsewhere
    seed: int = 0
    checkpoint_dir: Path | None = None  # best + last checkpoint; resume if present
    device: str | None = None  # None = companion.config.get_device()
    progress: bool = True

    def __post_init__(self) -> None:
        check_ints(epochs=self.epochs)
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must lie in [0, 1), got {self.warmup_ratio}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {self.mode!r}")
        if self.patience is not None:
            check_ints(patience=self.patience)
        if self.clip_norm is not None and self.clip_norm <= 0:
            raise ValueError(f"clip_norm must be None or > 0, got {self.clip_norm}")
        if self.checkpoint_dir is not None:
            self.checkpoint_dir = Path(self.checkpoint_dir)


@dataclass
class TrainResult:
    """What ``fit`` returns; the model itself ends with the best weights loaded."""

    history: pd.DataFrame  # one row per epoch: epoch, train_loss, lr, seconds, val_<metric>...
    best_metric: float
    best_epoch: int
    best_path: Path | None
    monitor: str  # the history column that chose the best epoch
    stopped_early: bool
    resumed_from: int  # the epoch a resumed run started after (0 = fresh run)
    device: str


def lr_lambda(schedule: str, warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """The LR multiplier per optimizer step: linear warmup, then constant/linear/cosine decay."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if total_steps < 1 or not 0 <= warmup_steps < total_steps:
        raise ValueError(f"need 0 <= warmup_steps ({warmup_steps}) < total_steps ({total_steps})")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        if schedule == "linear":
            return 1.0 - progress
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    return factor


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor in a (nested) tuple/list/dict batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def autocast(device: torch.device, amp: bool | None = None) -> torch.autocast:
    """bf16 autocast when ``amp`` is True (default: on CUDA only), else a disabled context."""
    enabled = device.type == "cuda" if amp is None else amp
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def classification_step(model: nn.Module, batch: Any, device: torch.device) -> torch.Tensor:
    """Mean cross-entropy of ``model(ids, lengths)`` on a ``(ids, lengths, labels)`` batch."""
    ids, lengths, labels = batch
    if len(labels) != len(ids):
        raise ValueError(f"batch has {len(ids)} sequences but {len(labels)} labels")
    logits = model(ids.to(device, non_blocking=True), lengths)
    return nn.functional.cross_entropy(logits.float(), labels.to(device, non_blocking=True))


@torch.no_grad()
def predict(
    model: nn.Module, loader: Iterable, device: torch.device | str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True labels, predicted labels and class probabilities over a classification loader."""
    device = get_device() if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    y_true, probs = [], []
    try:
        for ids, lengths, labels in loader:
            with autocast(device):
                logits = model(ids.to(device, non_blocking=True), lengths)
            probs.append(torch.softmax(logits.float(), dim=-1).cpu())
            y_true.append(labels)
    finally:
        model.train(was_training)
    if not probs:
        raise ValueError("predict got an empty loader")
    p = torch.cat(probs).numpy()
    return torch.cat(y_true).numpy(), p.argmax(axis=1), p


def evaluate_classifier(
    model: nn.Module, loader: Iterable, device: torch.device
) -> dict[str, float]:
    """Cross-entropy loss, accuracy and macro precision/recall/F1 over ``loader``."""
    y_true, y_pred, probs = predict(model, loader, device)
    true_probs = probs[np.arange(len(y_true)), y_true]
    loss = float(-np.log(np.clip(true_probs, 1e-12, None)).mean())
    labels = range(probs.shape[1])
    return {"loss": loss, **classification_metrics(y_true, y_pred, labels=labels)}


def text_loader(
    dataset: Dataset, batch_size: int, shuffle: bool = True, seed: int = 0, pad_id: int = 0
) -> DataLoader:
    """A DataLoader of length-bucketed, right-padded ``(ids, lengths, labels)`` batches.

    ``dataset`` needs a ``lengths`` attribute (e.g. ``TextClassificationDataset``); the
    order depends only on ``seed`` and the epoch, which ``fit`` sets each epoch.
    """
    lengths = getattr(dataset, "lengths", None)
    if lengths is None:
        raise TypeError(f"dataset must have a .lengths attribute, got {type(dataset).__name__}")
    sampler = BucketBatchSampler(lengths, batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(
        dataset, batch_sampler=sampler, collate_fn=partial(collate_batch, pad_id=pad_id)
    )


def _loader_generators(loader: Any) -> list[torch.Generator]:
    """The torch generators that drive a DataLoader's shuffling (loader's and samplers')."""
    found: list[torch.Generator] = []
    for obj in (
        loader,
        getattr(loader, "sampler", None),
        getattr(loader, "batch_sampler", None),
        getattr(getattr(loader, "batch_sampler", None), "sampler", None),
    ):
        gen = getattr(obj, "generator", None)
        if isinstance(gen, torch.Generator) and all(gen is not g for g in found):
            found.append(gen)
    return found


def _set_epoch(loader: Any, epoch: int) -> None:
    """Tell epoch-aware samplers (``set_epoch``) which epoch's order to use."""
    seen: list[Any] = []
    for obj in (getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        if hasattr(obj, "set_epoch") and all(obj is not s for s in seen):
            obj.set_epoch(epoch)
            seen.append(obj)


def _rng_states(loader: Any) -> dict[str, Any]:
    """Every random state a training epoch draws from."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (the legacy global state is what we save)
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": [g.get_state() for g in _loader_generators(loader)],
    }


def _set_rng_states(states: dict[str, Any], loader: Any) -> None:
    """Restore the states saved by ``_rng_states``."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])  # noqa: NPY002
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    gens = _loader_generators(loader)
    if len(gens) != len(states["loader"]):
        raise ValueError(
            f"the checkpoint saved {len(states['loader'])} DataLoader generator states but "
            f"this train_loader has {len(gens)}: resume with a loader built the same way"
        )
    for gen, state in zip(gens, states["loader"], strict=True):
        gen.set_state(state)


def _comparable(config: TrainConfig) -> dict[str, Any]:
    """The settings that must not change between an interrupted run and its resumption."""
    return {k: v for k, v in asdict(config).items() if k not in RESUMABLE_CHANGES}


def _is_better(value: float, best: float, mode: str) -> bool:
    """Whether ``value`` improves on ``best`` (NaN never does)."""
    if math.isnan(value):
        return False
    if math.isnan(best):
        return True
    return value > best if mode == "max" else value < best


def save_weights(model: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``model.state_dict()`` to a safetensors file, atomically.

    Each tensor is copied to the CPU first, so tensors that share storage (cuDNN's
    flattened LSTM weights, tied embeddings) are saved as plain separate tensors.
    """
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_weights(model: nn.Module, path: Path) -> None:
    """Load weights written by ``save_weights`` into ``model`` (strict: same names, shapes)."""
    model.load_state_dict(load_file(str(path)))


class _Checkpoints:
    """The files in ``checkpoint_dir``; every write is atomic."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.best = folder / BEST_FILE
        self.state = folder / STATE_FILE

    def save_best(self, model: nn.Module, epoch: int) -> None:
        save_weights(model, self.best, {"epoch": str(epoch)})

    def save_last(self, model: nn.Module, state: dict[str, Any]) -> None:
        weights = self.folder / f"epoch-{state['epoch']:03d}.safetensors"
        save_weights(model, weights)
        state = {**state, "weights": weights.name}
        atomic_write(self.state, lambda tmp: torch.save(state, tmp))
        for old in self.folder.glob("epoch-*.safetensors"):
            if old.name != weights.name:
                old.unlink(missing_ok=True)

    def load_last(self, model: nn.Module) -> dict[str, Any] | None:
        if not self.state.exists():
            return None
        # weights_only=False: the file holds NumPy/Python RNG states, and fit wrote it itself.
        state = torch.load(self.state, map_location="cpu", weights_only=False)
        load_weights(model, self.folder / state["weights"])
        return state


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader | None = None,
    *,
    config: TrainConfig,
    step: Step = classification_step,
    evaluate: Evaluate = evaluate_classifier,
) -> TrainResult:
    """Train ``model``; return the history and the best epoch, leaving the best weights loaded.

    Without ``val_loader`` the loop keeps the epoch with the lowest training loss and does
    not stop early. With ``config.checkpoint_dir`` holding a checkpoint, training resumes
    after its last finished epoch (the other settings must be the same).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    try:
        steps_per_epoch = len(train_loader)
    except TypeError as err:
        raise TypeError("train_loader must have a length (a map-style DataLoader)") from err
    if steps_per_epoch == 0:
        raise ValueError("train_loader yields no batches")
    device = get_device(config.device)
    monitor, mode = (f"val_{config.monitor}", config.mode) if val_loader else ("train_loss", "min")
    seed_everything(config.seed)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    total = config.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(config.schedule, int(config.warmup_ratio * total), total)
    )
    ckpt = _Checkpoints(config.checkpoint_dir) if config.checkpoint_dir else None
    rows: list[dict[str, float]] = []
    best, best_epoch, bad_epochs, stopped, start = float("nan"), 0, 0, False, 0
    best_weights: dict[str, torch.Tensor] | None = None
    saved = ckpt.load_last(model) if ckpt else None
    if saved is not None:
        if saved["config"] != _comparable(config):
            raise ValueError(
                f"{ckpt.state} was written with other settings {saved['config']}; resume with "
                "the same TrainConfig or use a new checkpoint_dir"
            )
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        rows, start, stopped = saved["history"], saved["epoch"], saved["stopped"]
        best, best_epoch, bad_epochs = saved["best"], saved["best_epoch"], saved["bad_epochs"]
        _set_rng_states(saved["rng"], train_loader)

    epochs = range(start, config.epochs) if not stopped else range(0)
    bar = tqdm(
        epochs, desc="epochs", disable=not config.progress, initial=start, total=config.epochs
    )
    for epoch in bar:
        tic = time.perf_counter()
        train_loss, lr = _train_epoch(
            model, train_loader, optimizer, scheduler, step, device, config, epoch
        )
        row = {"epoch": epoch + 1, "train_loss": train_loss, "lr": lr}
        if val_loader is not None:
            row |= {f"val_{k}": float(v) for k, v in evaluate(model, val_loader, device).items()}
        row["seconds"] = time.perf_counter() - tic
        rows.append(row)
        if monitor not in row:
            raise ValueError(f"monitor {config.monitor!r}: no column {monitor!r} in {list(row)}")
        if _is_better(row[monitor], best, mode):
            best, best_epoch, bad_epochs = row[monitor], epoch + 1, 0
            if ckpt:
                ckpt.save_best(model, epoch + 1)
            else:
                best_weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        stopped = (
            val_loader is not None
            and config.patience is not None
            and (bad_epochs >= config.patience)
        )
        bar.set_postfix({"loss": f"{train_loss:.4f}", monitor: f"{row[monitor]:.4f}"})
        if ckpt:
            ckpt.save_last(model, {
                "epoch": epoch + 1, "config": _comparable(config), "history": rows,
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "best": best, "best_epoch": best_epoch, "bad_epochs": bad_epochs,
                "stopped": stopped, "rng": _rng_states(train_loader),
            })  # fmt: skip
        if stopped:
            break
    bar.close()

    if ckpt and ckpt.best.exists():
        load_weights(model, ckpt.best)
    elif best_weights is not None:
        model.load_state_dict(best_weights)
    return TrainResult(
        history=pd.DataFrame(rows),
        best_metric=best,
        best_epoch=best_epoch,
        best_path=ckpt.best if ckpt else None,
        monitor=monitor,
        stopped_early=stopped,
        resumed_from=start,
        device=str(device),
    )


def _train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    step: Step,
    device: torch.device,
    config: TrainConfig,
    epoch: int,
) -> tuple[float, float]:
    """One pass over ``loader``; returns the mean batch loss and the last step's LR."""
    _set_epoch(loader, epoch)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    total, n, lr = torch.zeros((), device=device), 0, optimizer.param_groups[0]["lr"]
    bar = tqdm(loader, desc=f"epoch {epoch + 1}", leave=False, disable=not config.progress)
    for batch in bar:
        with autocast(device, config.amp):
            loss = step(model, batch, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.clip_norm is not None:
            nn.utils.clip_grad_norm_(params, config.clip_norm)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        total += loss.detach().float()
        n += 1
        if n % 20 == 0:
            bar.set_postfix(loss=f"{float(total) / n:.4f}")
    mean = float(total) / max(n, 1)
    if not math.isfinite(mean):
        raise FloatingPointError(f"training loss became {mean} in epoch {epoch + 1}")
    return mean, lr
