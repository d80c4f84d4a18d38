"""Fine-tuning strategies for a pre-trained encoder, composed with the one training loop ``fit``.

* **Full** fine-tuning trains every parameter: plain ``fit``.
* **Selective** fine-tuning trains a subset: ``freeze`` the rest (``fit`` optimises only
  parameters that require gradients), e.g. the head only or the top layer only.
* **ULMFiT** (Howard & Ruder 2018): ``layer_groups`` from the embeddings up to the head,
  ``discriminative_groups`` with learning rates eta^{l-1} = eta^l / 2.6, the slanted
  triangular schedule (``TrainConfig(schedule="slanted")``) and ``GradualUnfreezing``,
  which trains the top group in the first epoch and one more group each epoch after.
* **Multi-task** fine-tuning shares one encoder between heads: ``MultiTaskLoader``
  interleaves the tasks' batches, ``MultiTaskStep`` applies each task's loss (weighted) and
  records it per task, ``multitask_evaluate`` reports every task's validation metrics.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from companion.checks import check_ints
from companion.train import set_loader_epoch

ULMFIT_FACTOR = 2.6  # eta^{l-1} = eta^l / 2.6 (Howard & Ruder 2018, section 3.2)


def freeze(module: nn.Module) -> nn.Module:
    """Stop gradients to every parameter of ``module`` (returns it)."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def count_parameters(model: nn.Module, trainable: bool = True) -> int:
    """Number of (trainable, by default) parameter entries; shared tensors count once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


def layer_groups(classifier: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    """The parameters of a ``NewsClassifier`` with an LSTM ``Encoder``, bottom to top.

    Groups: ``embedding``, ``lstm layer 0`` ... ``lstm layer L-1``, ``head``.
    """
    encoder = getattr(classifier, "encoder", None)
    if encoder is None or not hasattr(encoder, "lstm") or not hasattr(classifier, "head"):
        raise TypeError("layer_groups needs a NewsClassifier whose encoder has .embedding, .lstm")
    groups = [("embedding", list(encoder.embedding.parameters()))]
    for k in range(encoder.lstm.num_layers):
        params = [p for name, p in encoder.lstm.named_parameters() if _layer_of(name) == k]
        groups.append((f"lstm layer {k}", params))
    groups.append(("head", list(classifier.head.parameters())))
    return groups


def _layer_of(name: str) -> int:
    """The layer index of an ``nn.LSTM`` parameter name such as ``weight_ih_l1_reverse``."""
    return int(name.split("_l")[-1].split("_")[0])


def discriminative_lrs(n_groups: int, lr: float, factor: float = ULMFIT_FACTOR) -> list[float]:
    """Learning rates bottom to top: the top group gets ``lr``, each one below ``/ factor``."""
    check_ints(n_groups=n_groups)
    if lr <= 0 or factor <= 0:
        raise ValueError(f"lr and factor must be > 0, got lr={lr}, factor={factor}")
    return [lr / factor ** (n_groups - 1 - i) for i in range(n_groups)]


def discriminative_groups(
    groups: list[tuple[str, list[nn.Parameter]]], lr: float, factor: float = ULMFIT_FACTOR
) -> list[dict[str, Any]]:
    """Optimizer parameter groups (for ``fit(param_groups=...)``) with per-layer rates."""
    lrs = discriminative_lrs(len(groups), lr, factor)
    return [{"params": params, "lr": rate, "name": name}
            for (name, params), rate in zip(groups, lrs, strict=True)]  # fmt: skip


class GradualUnfreezing:
    """``fit(epoch_start=...)``: in epoch e (from 0) the top e + 1 groups train, the rest wait."""

    def __init__(self, groups: list[tuple[str, list[nn.Parameter]]]) -> None:
        if not groups:
            raise ValueError("GradualUnfreezing needs at least one parameter group")
        self.groups = groups

    def trainable(self, epoch: int) -> list[str]:
        """Names of the groups that train in ``epoch``."""
        check_ints(0, epoch=epoch)
        return [name for name, _ in self.groups[max(0, len(self.groups) - 1 - epoch) :]]

    def __call__(self, model: nn.Module, epoch: int) -> None:
        on = set(self.trainable(epoch))
        for name, params in self.groups:
            for p in params:
                p.requires_grad_(name in on)


class MultiTaskLoader:
    """Every batch of several loaders once per epoch, as ``(task, batch)``, tasks interleaved.

    The order of tasks is a permutation drawn from ``seed`` and the epoch, so it repeats.
    """

    def __init__(self, loaders: dict[str, Any], seed: int = 0) -> None:
        if not loaders:
            raise ValueError("MultiTaskLoader needs at least one loader")
        check_ints(0, seed=seed)
        self.loaders, self.seed, self.epoch = dict(loaders), seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s task order, and tell the loaders' samplers."""
        check_ints(0, epoch=epoch)
        self.epoch = epoch
        for loader in self.loaders.values():
            set_loader_epoch(loader, epoch)

    def __len__(self) -> int:
        return sum(len(loader) for loader in self.loaders.values())

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        tasks = [name for name, loader in self.loaders.items() for _ in range(len(loader))]
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(tasks))
        iterators = {name: iter(loader) for name, loader in self.loaders.items()}
        for i in order:
            yield tasks[i], next(iterators[tasks[i]])


class MultiTaskStep:
    """A ``fit`` step for ``(task, batch)``: weighted loss of that task's model and step.

    ``models`` maps each task to the module that solves it (sharing an encoder);
    ``losses`` collects every task's unweighted batch losses.
    """

    def __init__(
        self,
        models: dict[str, nn.Module],
        steps: dict[str, Callable[..., torch.Tensor]],
        weights: dict[str, float] | None = None,
    ) -> None:
        if set(models) != set(steps):
            raise ValueError(f"models {sorted(models)} and steps {sorted(steps)} differ")
        self.models, self.steps = models, steps
        self.weights = {task: 1.0 for task in models} | (weights or {})
        self.losses: dict[str, list[float]] = defaultdict(list)

    def __call__(self, model: nn.Module, batch: tuple[str, Any], device: torch.device) -> Any:
        task, inner = batch
        loss = self.steps[task](self.models[task], inner, device)
        self.losses[task].append(float(loss.detach()))
        return self.weights[task] * loss


def multitask_evaluate(
    models: dict[str, nn.Module], evaluators: dict[str, Callable[..., dict[str, float]]]
) -> Callable[[nn.Module, dict[str, Any], torch.device], dict[str, float]]:
    """A ``fit`` evaluate over ``{task: loader}``: metrics named ``<task>_<metric>``."""

    def evaluate(model: nn.Module, loaders: dict[str, Any], device: torch.device) -> dict:
        return {f"{task}_{k}": v for task, loader in loaders.items()
                for k, v in evaluators[task](models[task], loader, device).items()}  # fmt: skip

    return evaluate
