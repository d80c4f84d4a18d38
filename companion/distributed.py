"""Data-parallel training with ``torchrun`` or ``accelerate launch``: one process per device.

Every process runs the same script: ``init_distributed()`` joins the process group the
launcher describes (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK), each process
builds the same model with the same seed, and its DataLoader's batch sampler is wrapped in
``ShardedBatchSampler`` so that process r gets slice r of every global batch.
``companion.train.fit`` then wraps the model in ``DistributedDataParallel``, which averages
the gradients over the processes: with equal slices, each update equals one process
training on the whole global batch. Without a launcher every function here is a no-op
(rank 0 of 1), so the same script also runs in a single process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sized
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from companion.config import avoid_per_shape_attention_plans


def init_distributed() -> bool:
    """Join the launcher's process group (nccl on CUDA, else gloo); return whether distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return world()[1] > 1


def world() -> tuple[int, int]:
    """This process's rank and the number of processes ((0, 1) when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_distributed() -> bool:
    """Whether more than one process trains together."""
    return world()[1] > 1


def is_main() -> bool:
    """Whether this is rank 0, the process that writes files and shows progress."""
    return world()[0] == 0


def barrier() -> None:
    """Wait until every process gets here (a no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def device_for_rank() -> torch.device:
    """This process's device: ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        avoid_per_shape_attention_plans()
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def _collective_device() -> torch.device:
    """Where tensors for a collective must live: the current GPU for nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_mean(x: float) -> float:
    """The mean of ``x`` over all processes (``x`` itself when not distributed)."""
    if not is_distributed():
        return x
    t = torch.tensor([x], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / world()[1]


def broadcast(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every process (a picklable value; ``obj`` when not distributed)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=_collective_device())
    return box[0]


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` when distributed, else ``model`` itself."""
    if not is_distributed():
        return model
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return nn.parallel.DistributedDataParallel(model, device_ids=[index])
    return nn.parallel.DistributedDataParallel(model)


class ShardedBatchSampler(Sampler[list[int]]):
    """Rank r's part of each global batch of ``batch_sampler``: slice r of ``world_size``.

    Every process must see the same global batches (the same sampler, seed and epoch), and
    each must split evenly: a batch that does not is dropped when it is the last one (a
    short final batch, as with ``drop_last=False``) and raises ValueError anywhere else; a
    shuffled sampler whose short batch would not split (``BucketBatchSampler``) is refused
    up front. ``rank`` and ``world_size`` default to the process group's.
    """

    def __init__(
        self,
        batch_sampler: Iterable[list[int]],
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        own_rank, own_size = world()
        self.rank = own_rank if rank is None else rank
        self.world_size = own_size if world_size is None else world_size
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"need 0 <= rank ({self.rank}) < world_size ({self.world_size})")
        self.batch_sampler = batch_sampler
        batch_size = getattr(batch_sampler, "batch_size", None)
        if isinstance(batch_size, int) and batch_size % self.world_size:
            raise ValueError(self._uneven(batch_size))
        short = self._short_batch()
        if getattr(batch_sampler, "shuffle", False) and short % self.world_size:
            raise ValueError(  # e.g. BucketBatchSampler: its short batch may come first
                f"{self._uneven(short)} (this shuffled sampler may put it anywhere)"
            )

    def _uneven(self, size: int) -> str:
        return (
            f"a global batch of {size} indices does not split evenly over {self.world_size} "
            f"processes: use a batch size that is a multiple of {self.world_size}, and "
            "drop_last=True if the last batch may be shorter"
        )

    @property
    def sampler(self) -> Any:
        """The wrapped sampler's ``sampler``, so resuming finds its generator."""
        return getattr(self.batch_sampler, "sampler", None)

    @property
    def generator(self) -> Any:
        """The wrapped sampler's ``generator`` (or None), likewise."""
        return getattr(self.batch_sampler, "generator", None)

    def set_epoch(self, epoch: int) -> None:
        """Forward the epoch to the wrapped sampler (so every process shuffles alike)."""
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(epoch)

    def __len__(self) -> int:
        n = len(self.batch_sampler)  # type: ignore[arg-type]
        return n - 1 if self._short_batch() % self.world_size else n

    def _short_batch(self) -> int:
        """The size of the wrapped sampler's short batch (0: none, or not known).

        Known for samplers with ``batch_size``, ``drop_last`` and a sized ``sampler`` (torch's
        BatchSampler) or ``lengths`` (companion's BucketBatchSampler).
        """
        size = getattr(self.batch_sampler, "batch_size", None)
        items = getattr(self.batch_sampler, "lengths", getattr(self.batch_sampler, "sampler", None))
        if not isinstance(size, int) or not isinstance(items, Sized):
            return 0
        return 0 if getattr(self.batch_sampler, "drop_last", False) else len(items) % size

    def __iter__(self) -> Iterator[list[int]]:
        batches = iter(self.batch_sampler)
        batch = next(batches, None)
        while batch is not None:
            following = next(batches, None)
            batch = list(batch)
            if len(batch) % self.world_size:
                if following is None:
                    return
                raise ValueError(self._uneven(len(batch)))
            part = len(batch) // self.world_size
            yield batch[self.rank * part : (self.rank + 1) * part]
            batch = following
