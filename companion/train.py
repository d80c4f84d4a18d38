"""One training loop for every chapter: ``fit`` with schedules, AMP, early stopping and resume.

``fit(model, train_loader, val_loader, config=TrainConfig(...))`` trains with AdamW, a
linear-warmup + constant/linear/cosine learning-rate schedule, gradient clipping and (on
CUDA) bf16 autocast; it evaluates after every epoch, keeps the best weights by the
monitored validation metric and stops early. With a ``checkpoint_dir`` it saves the best
weights and, after every epoch, everything needed to resume (``companion.checkpoints``);
calling ``fit`` again with the same ``checkpoint_dir`` resumes after the last finished
epoch, and on a CPU ends with weights bit-identical to an uninterrupted run. A checkpoint
that does not fit is refused before the model, the optimizer or any random state changes.
Launched with ``torchrun`` (see ``companion.distributed``), ``fit`` trains the model in
DistributedDataParallel, averages the training loss over the processes and writes
checkpoints and progress bars from rank 0 only.

Chapters with other batch formats pass their own ``step(model, batch, device) -> loss`` and
``evaluate(model, loader, device) -> dict``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from companion.checkpoints import CheckpointError, Checkpoints, load_weights, rng_states
from companion.checks import check_ints
from companion.config import get_device, seed_everything
from companion.distributed import all_mean, barrier, broadcast, is_main, wrap_model
from companion.metrics import classification_metrics
from companion.text import bucketed_loader, collate_batch

SCHEDULES = ("constant", "linear", "cosine", "slanted")
OPTIMIZERS = ("adamw", "adam", "sgd")
SLANT_RATIO = 32  # ULMFiT: the slanted triangle starts and ends at 1/32 of the peak rate
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
    optimizer: str = "adamw"  # "adamw" | "adam" (L2 penalty in the gradient) | "sgd" (momentum)
    momentum: float = 0.9  # for "sgd"
    schedule: str = "cosine"  # "constant" | "linear" | "cosine" after warmup, or "slanted"
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
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
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
    """The LR multiplier per optimizer step: linear warmup, then constant/linear/cosine decay.

    ``"slanted"`` is ULMFiT's slanted triangular rate (Howard & Ruder 2018, eq. 3): with
    ``cut = warmup_steps``, p = t / cut while t < cut, then 1 - (t - cut) / (T - cut), and the
    multiplier (1 + p (ratio - 1)) / ratio with ratio = 32.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if total_steps < 1 or not 0 <= warmup_steps < total_steps:
        raise ValueError(f"need 0 <= warmup_steps ({warmup_steps}) < total_steps ({total_steps})")

    def slanted(step: int) -> float:
        if step < warmup_steps:
            p = step / warmup_steps
        else:
            p = 1.0 - min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
        return (1.0 + p * (SLANT_RATIO - 1)) / SLANT_RATIO

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        if schedule == "linear":
            return 1.0 - progress
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    return slanted if schedule == "slanted" else factor


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the block; each submodule's own mode back after it."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def autocast(device: torch.device, amp: bool | None = None) -> torch.autocast:
    """bf16 autocast when ``amp`` is True (default: on CUDA only), else a disabled context."""
    enabled = device.type == "cuda" if amp is None else amp
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def classification_step(
    model: nn.Module, batch: Any, device: torch.device, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean cross-entropy of ``model(ids, lengths)`` on a ``(ids, lengths, labels)`` batch.

    ``weight`` (one entry per class) weights each example's loss by its class.
    """
    ids, lengths, labels = batch
    if len(labels) != len(ids):
        raise ValueError(f"batch has {len(ids)} sequences but {len(labels)} labels")
    logits = model(ids.to(device, non_blocking=True), lengths)
    weight = weight.to(device) if weight is not None else None
    return nn.functional.cross_entropy(
        logits.float(), labels.to(device, non_blocking=True), weight=weight
    )


def class_weighted_step(weight: torch.Tensor) -> Step:
    """A ``classification_step`` whose cross-entropy weights class c by ``weight[c]``."""
    return partial(classification_step, weight=weight)


@torch.no_grad()
def predict(
    model: nn.Module, loader: Iterable, device: torch.device | str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True labels, predicted labels and class probabilities over a classification loader.

    Batches are ``(ids, lengths, labels)`` tuples, or dicts of a Hugging Face classifier's
    inputs with ``labels``.
    """
    device = get_device() if device is None else torch.device(device)
    y_true, probs = [], []
    with evaluation_mode(model):
        for batch in loader:
            with autocast(device):
                logits, labels = classifier_logits(model, batch, device)
            probs.append(torch.softmax(logits.float(), dim=-1).cpu())
            y_true.append(labels)
    if not probs:
        raise ValueError("predict got an empty loader")
    p = torch.cat(probs).numpy()
    return torch.cat(y_true).numpy(), p.argmax(axis=1), p


def classifier_logits(
    model: nn.Module, batch: Any, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """A classifier's logits and the labels of an ``(ids, lengths, labels)`` or dict batch."""
    if isinstance(batch, Mapping):  # Hugging Face models: keyword inputs, ``.logits`` output
        inputs = {k: v.to(device, non_blocking=True) for k, v in batch.items() if k != "labels"}
        return model(**inputs).logits, batch["labels"]
    ids, lengths, labels = batch
    return model(ids.to(device, non_blocking=True), lengths), labels


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
    collate = partial(collate_batch, pad_id=pad_id)
    return bucketed_loader(dataset, lengths, collate, batch_size, shuffle=shuffle, seed=seed)


def set_loader_epoch(loader: Any, epoch: int) -> None:
    """Tell epoch-aware samplers (``set_epoch``) which epoch's order to use."""
    seen: list[Any] = []
    for obj in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        if hasattr(obj, "set_epoch") and all(obj is not s for s in seen):
            obj.set_epoch(epoch)
            seen.append(obj)


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


@dataclass
class Progress:
    """Where a run stands: one history row per finished epoch, the best epoch, the patience used."""

    rows: list[dict[str, float]] = field(default_factory=list)
    best: float = float("nan")
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped: bool = False

    def record(self, row: dict[str, float], monitor: str, mode: str, patience: int | None) -> bool:
        """Add one epoch's row; return whether it is the best so far (early stopping counts)."""
        if monitor not in row:
            raise ValueError(f"monitor {monitor!r}: no column {monitor!r} in {list(row)}")
        self.rows.append(row)
        improved = _is_better(row[monitor], self.best, mode)
        if improved:
            self.best, self.best_epoch, self.bad_epochs = row[monitor], int(row["epoch"]), 0
        else:
            self.bad_epochs += 1
        self.stopped = patience is not None and self.bad_epochs >= patience
        return improved

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any], path: Path) -> Progress:
        """The progress saved in a checkpoint state, checked (CheckpointError names ``path``)."""
        saved = state["progress"]
        types = {"rows": list, "best": float, "best_epoch": int, "bad_epochs": int, "stopped": bool}
        if (
            not isinstance(saved, dict)
            or saved.keys() != types.keys()
            or not all(isinstance(saved[k], t) for k, t in types.items())
            or len(saved["rows"]) != state["epoch"]
        ):
            raise CheckpointError(
                f"{path}: the saved progress is malformed. Delete {path.parent} to start "
                "afresh, or pass another checkpoint_dir."
            )
        return cls(**saved)


def make_optimizer(
    model: nn.Module,
    config: TrainConfig,
    steps_per_epoch: int,
    param_groups: list[dict[str, Any]] | None = None,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """The optimizer (AdamW by default) and its schedule, over ``param_groups`` or the
    trainable parameters.

    Each group may set its own ``lr`` (the schedule scales every group alike); frozen
    parameters in a group are skipped until they receive gradients.
    """
    params = param_groups or [p for p in model.parameters() if p.requires_grad]
    kinds = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                                    weight_decay=config.weight_decay)  # fmt: skip
    else:
        optimizer = kinds[config.optimizer](params, lr=config.lr, weight_decay=config.weight_decay)
    total = config.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(config.schedule, int(config.warmup_ratio * total), total)
    )
    return optimizer, scheduler


def _check_inputs(model: nn.Module, train_loader: DataLoader, config: TrainConfig) -> int:
    """Raise on unusable arguments to ``fit``; return the number of steps per epoch."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    try:
        steps_per_epoch = len(train_loader)
    except TypeError as err:
        raise TypeError("train_loader must have a length (a map-style DataLoader)") from err
    if steps_per_epoch == 0:
        raise ValueError("train_loader yields no batches")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("the model has no trainable parameters")
    return steps_per_epoch


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader | None = None,
    *,
    config: TrainConfig,
    step: Step = classification_step,
    evaluate: Evaluate = evaluate_classifier,
    param_groups: list[dict[str, Any]] | None = None,
    epoch_start: Callable[[nn.Module, int], None] | None = None,
) -> TrainResult:
    """Train ``model``; return the history and the best epoch, leaving the best weights loaded.

    Without ``val_loader`` the loop keeps the epoch with the lowest training loss and does
    not stop early. With ``config.checkpoint_dir`` holding a checkpoint, training resumes
    after its last finished epoch (the other settings must be the same); a checkpoint that
    does not fit raises ``CheckpointError`` before the model is touched. ``param_groups``
    gives the optimizer groups (e.g. per-layer learning rates, ``companion.finetune``);
    ``epoch_start(model, epoch)`` runs before each epoch (e.g. gradual unfreezing).
    """
    steps_per_epoch = _check_inputs(model, train_loader, config)
    device = get_device(config.device)
    ckpt = Checkpoints(config.checkpoint_dir) if config.checkpoint_dir else None
    optimizer, scheduler = make_optimizer(model, config, steps_per_epoch, param_groups)
    progress = _start(model, optimizer, scheduler, train_loader, config, ckpt, device)
    trainer = wrap_model(model, device)  # DistributedDataParallel under torchrun
    monitor, mode = (f"val_{config.monitor}", config.mode) if val_loader else ("train_loss", "min")
    patience = config.patience if val_loader is not None else None
    best, start = BestWeights(ckpt), len(progress.rows)
    epochs = range(0) if progress.stopped else range(start, config.epochs)
    bar = tqdm(epochs, desc="epochs", disable=not (config.progress and is_main()), initial=start,
               total=config.epochs)  # fmt: skip
    for epoch in bar:
        if epoch_start is not None:
            epoch_start(model, epoch)
        tic = time.perf_counter()
        loss, lr = train_epoch(trainer, train_loader, optimizer, scheduler, step, device, config,
                               epoch)  # fmt: skip
        row = {"epoch": epoch + 1, "train_loss": loss, "lr": lr}
        if val_loader is not None:
            row |= {f"val_{k}": float(v) for k, v in evaluate(model, val_loader, device).items()}
        row["seconds"] = time.perf_counter() - tic
        if progress.record(row, monitor, mode, patience):
            best.keep(model, epoch + 1)
        bar.set_postfix({"loss": f"{loss:.4f}", monitor: f"{row[monitor]:.4f}"})
        if ckpt:
            _save_last(ckpt, model, progress, config, optimizer, scheduler, train_loader)
        if progress.stopped:
            break
    bar.close()
    return TrainResult(
        history=pd.DataFrame(progress.rows),
        best_metric=progress.best,
        best_epoch=progress.best_epoch,
        best_path=best.restore(model),
        monitor=monitor,
        stopped_early=progress.stopped,
        resumed_from=start,
        device=str(device),
    )


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    step: Step,
    device: torch.device,
    config: TrainConfig,
    epoch: int,
) -> tuple[float, float]:
    """One pass over ``loader``; the mean batch loss (over all processes) and the last LR."""
    set_loader_epoch(loader, epoch)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    total, n, lr = torch.zeros((), device=device), 0, optimizer.param_groups[0]["lr"]
    show = config.progress and is_main()
    bar = tqdm(loader, desc=f"epoch {epoch + 1}", leave=False, disable=not show)
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
    mean = all_mean(float(total) / max(n, 1))
    if not math.isfinite(mean):
        raise FloatingPointError(f"training loss became {mean} in epoch {epoch + 1}")
    return mean, lr


def _start(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    train_loader: DataLoader,
    config: TrainConfig,
    ckpt: Checkpoints | None,
    device: torch.device,
) -> Progress:
    """Seed, move ``model`` to ``device`` and resume from ``ckpt`` if it holds a checkpoint.

    The checkpoint is read and checked in full before the model or any random state changes.
    """
    resume = ckpt.read(model, optimizer, _comparable(config), train_loader) if ckpt else None
    progress = Progress.from_checkpoint(resume.state, ckpt.state) if resume else Progress()
    seed_everything(config.seed)
    model.to(device)
    if resume:
        resume.restore(model, optimizer, scheduler, train_loader)
    return progress


def _save_last(
    ckpt: Checkpoints,
    model: nn.Module,
    progress: Progress,
    config: TrainConfig,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    train_loader: DataLoader,
) -> None:
    """Write everything needed to resume after this epoch (rank 0 writes, the others wait)."""
    if is_main():
        ckpt.save_last(model, {
            "epoch": len(progress.rows), "config": _comparable(config),
            "progress": asdict(progress), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "rng": rng_states(train_loader),
        })  # fmt: skip
    barrier()


class BestWeights:
    """The best epoch's weights: in the checkpoint folder when there is one, else in memory."""

    def __init__(self, ckpt: Checkpoints | None) -> None:
        self.ckpt = ckpt
        self.weights: dict[str, torch.Tensor] | None = None

    def keep(self, model: nn.Module, epoch: int) -> None:
        """Remember ``model``'s weights as the best (rank 0 writes the file)."""
        if self.ckpt is None:
            self.weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        elif is_main():
            self.ckpt.save_best(model, epoch)

    def restore(self, model: nn.Module) -> Path | None:
        """Load the best weights into ``model``; return their file, if they were written."""
        if self.ckpt is None:
            if self.weights is not None:
                model.load_state_dict(self.weights)
            return None
        self.ckpt.best_sha256 = broadcast(self.ckpt.best_sha256)  # only rank 0 wrote the file
        if not self.ckpt.best_sha256:
            return None
        load_weights(model, self.ckpt.best, self.ckpt.best_sha256)
        return self.ckpt.best
