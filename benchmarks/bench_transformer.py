"""Transformer fine-tuning throughput: naive settings vs tuned, on the same rows and model.

* ``naive``: every article padded to ``--max-len``, rows in random order, fp32, batch ``--batch``.
* ``tuned``: dynamic padding (``DataCollatorWithPadding``), length-grouped batches
  (``BucketBatchSampler``), twice the batch, and bf16 autocast on a GPU.

Both compute the same function — padding is masked out of attention — so they reach the
same accuracy; the script checks that the two paddings give the same predictions on a batch.
It reports examples/s and tokens/s (real tokens) and, on a GPU, the model FLOPs utilisation
(MFU, ``companion.transformer.model_flops_utilisation``: 6 FLOPs per linear-layer weight and
position, 12 d per attention pair and layer, PaLM's accounting) against the device's dense
bf16 data-sheet peak (``--peak-tflops``; by default looked up from the GPU's name). Run from
the repository root, alone on the machine::

    python benchmarks/bench_transformer.py                    # MiniLM, BBC, auto device
    python benchmarks/bench_transformer.py --max-len 256 --steps 50 --batch 32
    python benchmarks/bench_transformer.py --dataset ag_news --json results.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import torch
from transformers import DataCollatorWithPadding

from companion.config import device_name, get_device, machine_load, seed_everything
from companion.data import load_dataset
from companion.io import atomic_write_text
from companion.transformer import (
    EncodedTexts,
    bf16_peak_tflops,
    encoded_loader,
    load_classifier,
    model_flops_utilisation,
    training_throughput,
)


def same_predictions(model: torch.nn.Module, tokenizer: object, data: EncodedTexts) -> bool:
    """Whether padding to the longest row and to max length give the same predicted classes."""
    rows = [data[i] for i in range(min(16, len(data)))]
    model.eval()
    outs = []
    with torch.no_grad():
        for padding in ("longest", "max_length"):
            batch = DataCollatorWithPadding(tokenizer, padding=padding, max_length=data.max_length)(
                rows
            )
            batch = {k: v for k, v in batch.items() if k != "labels"}
            outs.append(model(**batch).logits.argmax(-1))
    return bool(torch.equal(*outs))


def main() -> None:
    """Measure both settings and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default=None, help="Hugging Face name or folder (default MiniLM)"
    )
    parser.add_argument("--dataset", default="bbc")
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rows", type=int, default=4000, help="training rows tokenized")
    parser.add_argument("--peak-tflops", type=float, default=None, help="default: by GPU name")
    parser.add_argument("--json", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()

    device = get_device()
    with warnings.catch_warnings():  # AG News offline: a re-split of the test file, said once
        warnings.simplefilter("ignore", UserWarning)
        frame = load_dataset(args.dataset)
    train = frame[frame["split"] == "train"].head(args.rows)
    seed_everything(0)
    model, tokenizer = load_classifier(frame["label"].nunique(), args.model)
    data = EncodedTexts(tokenizer, train["text"], train["label"], args.max_len)
    settings = {
        "naive": dict(batch=args.batch, group=False, pad=True, amp=False),
        "tuned": dict(batch=2 * args.batch, group=True, pad=False, amp=None),
    }
    rows = {}
    for name, s in settings.items():
        loader = encoded_loader(
            data, tokenizer, s["batch"], group_by_length=s["group"], pad_to_max=s["pad"]
        )
        rows[name] = training_throughput(
            copy.deepcopy(model), loader, device, steps=args.steps, amp=s["amp"]
        )
    table = pd.DataFrame(rows).T
    peak = args.peak_tflops or bf16_peak_tflops(device)
    if peak is not None:
        table["MFU"] = [model_flops_utilisation(model, rows[name], peak) for name in table.index]
    header = (
        f"{device_name(device)} | {args.dataset}, max_len {args.max_len}, batch {args.batch}, "
        f"{args.steps} steps" + (f", bf16 peak {peak:.0f} TFLOP/s" if peak else "")
    )
    load = machine_load()
    print(f"{header} | load: {load}")
    print(table.round(3).to_string())
    speedup = table.loc["tuned", "examples_per_s"] / table.loc["naive", "examples_per_s"]
    same = same_predictions(model, tokenizer, data)
    print(f"tuned / naive: {speedup:.2f}x examples/s; same predictions either padding: {same}")
    if args.json is not None:
        report = {
            "command": " ".join(["python", *sys.argv]),
            "setting": header,
            "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "load": load,
            "speedup": speedup,
            "same_predictions": same,
            "rows": table.to_dict("index"),
        }
        atomic_write_text(args.json, json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
