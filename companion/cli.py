"""The big runs from the command line: ``python -m companion finetune --config FILE``.

A TOML file says what to train (the same code the notebooks of chapters 9 and 10 run)::

    task = "classify"          # "classify": a classifier (ch. 9); "sft": a causal LLM (ch. 10)
    dataset = "bbc"            # bbc | 20newsgroups | ag_news
    model = ""                 # "" = MiniLM (classify) or SmolLM2 (sft); or a Hub name/folder
    strategy = "full"          # full | probe | lora   (sft: full | lora)
    epochs = 3
    batch_size = 32            # the global batch, split over the processes
    lr = 1e-4
    max_length = 128           # tokens per article
    precision = "auto"         # auto (bf16 on CUDA) | fp32 | bf16
    rows_per_class = 0         # 0 = every row; else that many per class and split
    output_dir = "runs/bbc-minilm-full"

It shows progress, writes ``metrics.json`` and ``history.csv`` into ``output_dir``, keeps
resumable checkpoints in ``output_dir/checkpoints`` (run the same command again to continue
after an interruption; ``--stop-after N`` ends a run after N epochs on purpose) and saves
the final model with ``save_pretrained`` in ``output_dir/model``. Unchanged, it runs on many
devices: ``torchrun --nproc_per_node 8 -m companion finetune --config FILE`` (or
``accelerate launch -m companion finetune ...``) trains with DistributedDataParallel, and
the run checks at the end that every process holds the same weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from companion.config import device_name, seed_everything
from companion.data import REGISTRY, load_dataset
from companion.distributed import (
    ShardedBatchSampler,
    barrier,
    broadcast,
    device_for_rank,
    init_distributed,
    is_main,
    world,
)
from companion.io import atomic_write_folder, atomic_write_text
from companion.train import TrainConfig, evaluate_classifier, fit

TASKS = {"classify": ("full", "probe", "lora"), "sft": ("full", "lora")}
PRECISIONS = {"auto": None, "fp32": False, "bf16": True}


class ConfigError(ValueError):
    """A run configuration that cannot be used; the message names the file and the key."""


class StopRun(Exception):
    """Raised between epochs to end a run that ``--stop-after`` limits."""


@dataclass
class RunConfig:
    """One fine-tuning run (see the module docstring for every key)."""

    output_dir: str
    task: str = "classify"
    dataset: str = "bbc"
    model: str = ""
    strategy: str = "full"
    epochs: int = 3
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 128
    precision: str = "auto"
    rows_per_class: int = 0
    lora_rank: int = 8
    seed: int = 0


def read_config(path: Path) -> RunConfig:
    """The run configuration in the TOML file ``path``, checked key by key."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    known = {f.name: f for f in fields(RunConfig)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{path}: unknown keys {unknown}; known keys are {sorted(known)}")
    if "output_dir" not in raw:
        raise ConfigError(f"{path}: output_dir is required (where metrics and checkpoints go)")
    for key, value in raw.items():
        kind = {"str": str, "int": int, "float": (int, float)}[known[key].type]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ConfigError(f"{path}: {key} must be a {known[key].type}, got {value!r}")
    config = RunConfig(**raw)
    _check_values(path, config)
    return config


def _check_values(path: Path, c: RunConfig) -> None:
    """ConfigError naming ``path`` and the key for a value out of range."""
    checks = [
        ("task", c.task in TASKS, f"one of {sorted(TASKS)}"),
        ("dataset", c.dataset in REGISTRY, f"one of {sorted(REGISTRY)}"),
        ("strategy", c.strategy in TASKS.get(c.task, ()), f"one of {TASKS.get(c.task)}"),
        ("precision", c.precision in PRECISIONS, f"one of {sorted(PRECISIONS)}"),
        ("epochs", c.epochs >= 1, ">= 1"),
        ("batch_size", c.batch_size >= 1, ">= 1"),
        ("lr", c.lr > 0, "> 0"),
        ("weight_decay", c.weight_decay >= 0, ">= 0"),
        ("warmup_ratio", 0 <= c.warmup_ratio < 1, ">= 0 and < 1"),
        ("seed", c.seed >= 0, ">= 0"),
        ("max_length", c.max_length >= 8, ">= 8"),
        ("rows_per_class", c.rows_per_class >= 0, ">= 0 (0 = every row)"),
        ("lora_rank", c.lora_rank >= 1, ">= 1"),
    ]
    for key, ok, wanted in checks:
        if not ok:
            raise ConfigError(f"{path}: {key} must be {wanted}, got {getattr(c, key)!r}")


def _rows(config: RunConfig) -> dict[str, Any]:
    """The train/validation/test frames of the configured data set (optionally per class)."""
    frame = load_dataset(config.dataset, seed=config.seed)
    if config.rows_per_class:
        frame = frame.groupby(["split", "label"], group_keys=False).head(config.rows_per_class)
    splits = {s: frame[frame["split"] == s] for s in ("train", "validation", "test")}
    return {"splits": splits, "label_names": frame.attrs["label_names"]}


def _shard(loader: DataLoader, batch_size: int) -> DataLoader:
    """The loader whose global batches of ``batch_size`` are split over the processes."""
    _, size = world()
    if size == 1:
        return loader
    if batch_size % size:
        raise ConfigError(f"batch_size {batch_size} must be a multiple of the {size} processes")
    sampler = ShardedBatchSampler(loader.batch_sampler)
    return DataLoader(loader.dataset, batch_sampler=sampler, collate_fn=loader.collate_fn)


def _classify_run(config: RunConfig, data: dict[str, Any]) -> dict[str, Any]:
    """Model, loaders, step and evaluation of a sequence-classification run (chapter 9)."""
    from companion import transformer as tf

    names = data["label_names"]
    model, tokenizer = tf.load_classifier(len(names), config.model or None)
    model = tf.apply_strategy(model, config.strategy, lora_rank=config.lora_rank)
    sets = {
        s: tf.EncodedTexts(tokenizer, d["text"], d["label"], config.max_length)
        for s, d in data["splits"].items()
    }
    train = tf.encoded_loader(sets["train"], tokenizer, config.batch_size, seed=config.seed)
    evals = {s: tf.encoded_loader(sets[s], tokenizer, 64, shuffle=False) for s in sets}
    return {"model": model, "tokenizer": tokenizer, "train": _shard(train, config.batch_size),
            "validation": evals["validation"], "test": evals["test"],
            "step": tf.sequence_classification_step, "evaluate": evaluate_classifier,
            "monitor": ("macro_f1", "max")}  # fmt: skip


def _sft_run(config: RunConfig, data: dict[str, Any]) -> dict[str, Any]:
    """Model, loaders, step and evaluation of an instruction-SFT run (chapter 10)."""
    from companion import sft
    from companion.llm import load_causal_lm

    model, tokenizer = load_causal_lm(config.model or None)
    if config.strategy == "lora":
        model = sft.lora_causal_lm(model, config.lora_rank)
    sets = {
        s: sft.SFTDataset(sft.news_instructions(tokenizer, d["text"], d["label"], d["title"],
                                                data["label_names"], config.max_length))
        for s, d in data["splits"].items()
    }  # fmt: skip
    pad = tokenizer.pad_token_id
    train = sft.sft_loader(sets["train"], pad, config.batch_size, seed=config.seed)
    evals = {s: sft.sft_loader(sets[s], pad, 8, shuffle=False) for s in sets}
    return {"model": model, "tokenizer": tokenizer, "train": _shard(train, config.batch_size),
            "validation": evals["validation"], "test": evals["test"],
            "step": sft.causal_lm_step, "evaluate": sft.evaluate_causal_lm,
            "monitor": ("loss", "min")}  # fmt: skip


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over the model's parameters (names, shapes, bytes): equal weights, equal digest."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode() + str(tuple(tensor.shape)).encode())
        flat = tensor.detach().cpu().reshape(-1).contiguous()
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def finetune(config: RunConfig, stop_after: int | None = None) -> dict[str, Any]:
    """Run ``config`` (resuming from its checkpoints); the metrics written to metrics.json."""
    init_distributed()
    rank, size = world()
    out = Path(config.output_dir)
    seed_everything(config.seed)
    run = (_classify_run if config.task == "classify" else _sft_run)(config, _rows(config))
    device = device_for_rank()
    monitor, mode = run["monitor"]
    train_config = TrainConfig(
        epochs=config.epochs, lr=config.lr, weight_decay=config.weight_decay, schedule="linear",
        warmup_ratio=config.warmup_ratio, monitor=monitor, mode=mode, patience=None,
        amp=PRECISIONS[config.precision], seed=config.seed, checkpoint_dir=out / "checkpoints",
        device=str(device), progress=is_main(),
    )  # fmt: skip
    epoch_start = None
    if stop_after is not None:

        def epoch_start(model: torch.nn.Module, epoch: int) -> None:
            if epoch >= stop_after:
                raise StopRun(epoch)

    tic = time.perf_counter()
    try:
        result = fit(run["model"], run["train"], run["validation"], config=train_config,
                     step=run["step"], evaluate=run["evaluate"],
                     epoch_start=epoch_start)  # fmt: skip
    except StopRun as stop:
        barrier()
        return {"stopped_after_epoch": stop.args[0], "output_dir": str(out)}
    test = run["evaluate"](run["model"], run["test"], device)
    digests = _all_gather(weights_digest(run["model"]))
    metrics = {
        "config": asdict(config), "processes": size, "device": device_name(device),
        "seconds": time.perf_counter() - tic, "resumed_from_epoch": result.resumed_from,
        "best_epoch": result.best_epoch, "test": test, "weights_sha256": digests[0],
        "ranks_agree": len(set(digests)) == 1,
    }  # fmt: skip
    if not metrics["ranks_agree"]:
        raise RuntimeError(f"the {size} processes ended with different weights: {digests}")
    if rank == 0:
        _write_outputs(out, run, result.history, metrics)
    barrier()
    return metrics


def _all_gather(value: str) -> list[str]:
    """Every process's ``value``, in rank order."""
    _, size = world()
    return [broadcast(value, src=r) for r in range(size)] if size > 1 else [value]


def _write_outputs(out: Path, run: dict[str, Any], history: Any, metrics: dict) -> None:
    """The trained model (save_pretrained), history.csv and metrics.json in ``out``.

    The model folder is written whole or not at all, and metrics.json comes last, so a
    metrics.json that exists describes a complete model.
    """

    def save_model(folder: Path) -> None:
        run["model"].save_pretrained(folder)
        run["tokenizer"].save_pretrained(folder)

    atomic_write_folder(out / "model", save_model)
    atomic_write_text(out / "history.csv", history.to_csv(index=False))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``finetune --config FILE [--stop-after N]``."""
    parser = argparse.ArgumentParser(prog="python -m companion")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("finetune", help="fine-tune a model from a TOML configuration")
    run.add_argument("--config", type=Path, required=True, help="the run's TOML file")
    run.add_argument("--stop-after", type=int, default=None, metavar="N",
                     help="end after N epochs in total (run again to resume)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        config = read_config(args.config)
    except ConfigError as err:
        parser.exit(2, f"error: {err}\n")
    metrics = finetune(config, args.stop_after)
    if is_main():
        if "stopped_after_epoch" in metrics:
            print(f"stopped after epoch {metrics['stopped_after_epoch']}: run the same command "
                  f"to resume from {config.output_dir}/checkpoints")  # fmt: skip
        else:
            scores = ", ".join(f"{k} {v:.4f}" for k, v in metrics["test"].items())
            print(f"test: {scores}\nwrote {config.output_dir}/metrics.json")
    return 0
