"""Tests of companion.distributed: sharded batches, and ``fit`` under torchrun on two CPUs.

Two gloo processes, each with half of every global batch of 8, must end with the same
weights as each other and as one process on the whole batches, and a second launch on the
same checkpoint folder must resume where the first stopped.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

from companion import checkpoints, distributed
from companion.config import seed_everything
from companion.distributed import ShardedBatchSampler
from companion.text import BucketBatchSampler
from companion.train import TrainConfig, fit

N_ITEMS = 36  # global batches 8, 8, 8, 8, 4: the short last one still splits over 2
EPOCHS = 3


class Interrupted(Exception):
    """Raised by the first launch to stop before the last epoch, as a crash would."""


def make_data() -> TensorDataset:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(N_ITEMS, 6, generator=gen)
    return TensorDataset(x, (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long())


def step(model: nn.Module, batch: tuple, device: torch.device) -> torch.Tensor:
    x, y = batch
    return nn.functional.cross_entropy(model(x.to(device)), y.to(device))


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
    losses = [float(step(model, batch, device)) for batch in loader]
    return {"loss": sum(losses) / len(losses)}


def train(folder: Path | None, shard: bool, stop_at: int | None = None) -> tuple[nn.Module, object]:
    """The run every test compares: a shuffled global batch of 8, sharded or whole."""
    data = make_data()
    batches = BatchSampler(
        RandomSampler(data, generator=torch.Generator().manual_seed(2)), 8, drop_last=False
    )
    loader = DataLoader(data, batch_sampler=ShardedBatchSampler(batches) if shard else batches)
    val = DataLoader(data, batch_size=12)
    seed_everything(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    config = TrainConfig(epochs=EPOCHS, lr=3e-2, device="cpu", progress=False, monitor="loss",
                         mode="min", patience=None, checkpoint_dir=folder)  # fmt: skip

    def epoch_start(_: nn.Module, epoch: int) -> None:
        if epoch == stop_at:
            raise Interrupted

    result = fit(model, loader, val, config=config, step=step, evaluate=evaluate,
                 epoch_start=epoch_start)  # fmt: skip
    return model, result


def worker(out: Path, folder: Path) -> None:
    """One torchrun process: train 2 epochs and stop, resume, save what it ended with.

    Every checkpoint write leaves a ``wrote-rank<r>`` file in ``out``.
    """
    assert distributed.init_distributed()
    rank, size = distributed.world()
    assert size == 2
    for name in ("save_best", "save_last"):
        original = getattr(checkpoints.Checkpoints, name)

        def noted(self, *args, _original=original, **kwargs):
            (out / f"wrote-rank{rank}").touch()
            return _original(self, *args, **kwargs)

        setattr(checkpoints.Checkpoints, name, noted)
    try:
        train(folder, shard=True, stop_at=2)
        raise AssertionError("the first run was not interrupted")
    except Interrupted:
        files = sorted(p.name for p in folder.iterdir())  # as this rank sees them
    model, result = train(folder, shard=True)
    saved = {"files": files, "resumed_from": result.resumed_from, "weights": model.state_dict(),
             "history": result.history.drop(columns="seconds").to_dict("list")}  # fmt: skip
    torch.save(saved, out / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(out: Path, folder: Path) -> list[dict]:
    """Run ``worker`` in two gloo processes with torchrun; what each rank saved."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
               "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), __file__, str(out), str(folder)]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


# ---------------------------------------------------------------- ShardedBatchSampler


def test_each_rank_gets_its_contiguous_slice() -> None:
    batches = BatchSampler(SequentialSampler(range(10)), 4, drop_last=False)  # 4, 4, 2
    parts = [list(ShardedBatchSampler(batches, rank=r, world_size=2)) for r in range(2)]
    assert parts == [[[0, 1], [4, 5], [8]], [[2, 3], [6, 7], [9]]]
    assert len(ShardedBatchSampler(batches, rank=0, world_size=2)) == 3


def test_uneven_last_batch_is_dropped_and_len_says_so() -> None:
    batches = BatchSampler(SequentialSampler(range(11)), 4, drop_last=False)  # 4, 4, 3
    sharded = ShardedBatchSampler(batches, rank=1, world_size=2)
    assert list(sharded) == [[2, 3], [6, 7]]
    assert len(sharded) == 2


def test_uneven_batch_before_the_last_raises() -> None:
    sharded = ShardedBatchSampler([[0, 1, 2], [3, 4, 5, 6]], rank=0, world_size=2)
    with pytest.raises(ValueError, match="batch of 3 indices .* over 2 processes"):
        list(sharded)


def test_batch_size_not_a_multiple_of_world_size_raises() -> None:
    with pytest.raises(ValueError, match="batch of 6 indices .* multiple of 4"):
        ShardedBatchSampler(BatchSampler(SequentialSampler(range(12)), 6, False), 0, 4)
    with pytest.raises(ValueError, match="rank"):
        ShardedBatchSampler(BatchSampler(SequentialSampler(range(12)), 6, False), 2, 2)


def test_shuffled_bucket_sampler_with_an_uneven_short_batch_is_refused() -> None:
    lengths = list(range(1, 12))  # 11 items in batches of 4: a short batch of 3, anywhere
    with pytest.raises(ValueError, match="batch of 3 indices .* anywhere"):
        ShardedBatchSampler(BucketBatchSampler(lengths, 4, shuffle=True), 0, 2)
    sharded = ShardedBatchSampler(BucketBatchSampler(lengths, 4, drop_last=True), 0, 2)
    assert len(sharded) == 2


def test_set_epoch_is_forwarded_and_ranks_split_the_same_batches() -> None:
    bucket = BucketBatchSampler(list(range(1, 17)), 4, shuffle=True, bucket_batches=1)
    shards = [ShardedBatchSampler(bucket, rank=r, world_size=2) for r in range(2)]
    shards[0].set_epoch(3)
    assert bucket.epoch == 3
    together = [a + b for a, b in zip(*(list(s) for s in shards), strict=True)]
    assert together == list(bucket)


def test_not_distributed_is_rank_0_of_1() -> None:
    assert distributed.world() == (0, 1)
    assert distributed.is_main() and not distributed.init_distributed()
    assert distributed.all_mean(2.5) == 2.5
    distributed.barrier()


# ---------------------------------------------------------------- fit under torchrun


def test_two_processes_train_like_one_and_resume(tmp_path: Path) -> None:
    reference, expected = train(None, shard=False)
    ranks = launch(tmp_path, tmp_path / "checkpoints")
    assert sorted(p.name for p in tmp_path.glob("wrote-*")) == ["wrote-rank0"]
    files = [checkpoints.BEST_FILE, "epoch-002.safetensors", checkpoints.STATE_FILE]
    want = expected.history.drop(columns="seconds").to_dict("list")
    for rank in ranks:
        assert rank["files"] == files  # each rank saw rank 0's files after the barrier
        assert rank["resumed_from"] == 2
        assert rank["history"] == ranks[0]["history"]
        assert rank["weights"].keys() == reference.state_dict().keys()  # no "module." prefix
        for key, value in rank["weights"].items():
            assert torch.equal(value, ranks[0]["weights"][key]), key
            torch.testing.assert_close(value, reference.state_dict()[key], atol=1e-6, rtol=0)
    for column, values in want.items():
        assert ranks[0]["history"][column] == pytest.approx(values, abs=1e-6), column


if __name__ == "__main__":  # a torchrun process of the test above
    worker(Path(sys.argv[1]), Path(sys.argv[2]))
