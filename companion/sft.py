"""Instruction SFT data: chat-formatted examples whose loss covers only the response tokens.

An example is a prompt (the user's turn) and a response (the assistant's). Both are put
through the model's chat template; the labels copy the token ids of the response and set
every prompt token to ``IGNORE`` (-100), the index PyTorch's cross-entropy skips, so the
model is trained to *answer*, not to reproduce the question. Padding is ignored the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

IGNORE = -100  # torch.nn.functional.cross_entropy's default ignore_index


def chat_example(tokenizer: Any, prompt: str, response: str) -> dict[str, list[int]]:
    """``input_ids`` of the whole chat and ``labels`` with the prompt part set to ``IGNORE``."""
    user = [{"role": "user", "content": prompt}]
    prompt_ids = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=True)
    full = user + [{"role": "assistant", "content": response}]
    ids = tokenizer.apply_chat_template(full, tokenize=True)
    prompt_ids, ids = _as_ids(prompt_ids), _as_ids(ids)
    if ids[: len(prompt_ids)] != prompt_ids or len(ids) == len(prompt_ids):
        raise ValueError(
            "the chat template does not render the prompt as a prefix of the whole chat; "
            "response-only masking needs that (check the tokenizer's chat_template)"
        )
    return {"input_ids": ids, "labels": [IGNORE] * len(prompt_ids) + ids[len(prompt_ids) :]}


def _as_ids(encoded: Any) -> list[int]:
    """Token ids from ``apply_chat_template`` (a list, or a mapping with ``input_ids``)."""
    ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
    return [int(i) for i in ids]


def collate_sft(examples: Sequence[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch: ``input_ids`` with ``pad_id``, ``labels`` with ``IGNORE``, and a mask."""
    if not examples:
        raise ValueError("collate_sft got no examples")
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example["input_ids"])
        if len(example["labels"]) != n:
            raise ValueError(f"example {row}: {n} input ids but {len(example['labels'])} labels")
        ids[row, :n] = torch.tensor(example["input_ids"])
        labels[row, :n] = torch.tensor(example["labels"])
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
