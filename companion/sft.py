"""Instruction SFT data: chat-formatted examples whose loss covers only the response tokens.

An example is a prompt (the user's turn) and a response (the assistant's). Both are put
through the model's chat template; the labels copy the token ids of the response and set
every prompt token to ``IGNORE`` (-100), the index PyTorch's cross-entropy skips, so the
model is trained to *answer*, not to reproduce the question. Padding is ignored the same way.

On top of that: the book's two news instructions (``classify_prompt``, ``headline_prompt``),
length-bucketed loaders (``sft_loader``), the step and evaluation ``fit`` uses
(``causal_lm_step``, ``evaluate_causal_lm``), constrained scoring of fixed answers
(``score_answers``: every output maps to a class) and greedy generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from companion.llm import with_adapters
from companion.text import bucketed_loader
from companion.train import evaluation_mode

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


CLASSIFY_PROMPT = (
    "Classify this news article into one of these topics: {topics}. "
    "Answer with the topic only.\n\nArticle: {article}"
)
HEADLINE_PROMPT = "Write a headline for this news article.\n\nArticle: {article}"


def clip_tokens(tokenizer: Any, text: str, n: int) -> str:
    """The first ``n`` tokens of ``text``, decoded back to a string."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= n else tokenizer.decode(ids[:n]).strip()


def classify_prompt(article: str, label_names: Sequence[str]) -> str:
    """The instruction that asks for the topic of ``article``, naming every label."""
    return CLASSIFY_PROMPT.format(topics=", ".join(label_names), article=article)


def headline_prompt(article: str) -> str:
    """The instruction that asks for a headline for ``article``."""
    return HEADLINE_PROMPT.format(article=article)


def news_instructions(
    tokenizer: Any,
    articles: Sequence[str],
    labels: Sequence[int],
    titles: Sequence[str],
    label_names: Sequence[str],
    article_tokens: int,
) -> list[dict[str, list[int]]]:
    """Two chat examples per article, its topic then its headline (article clipped)."""
    if not len(articles) == len(labels) == len(titles):
        raise ValueError(f"{len(articles)} articles, {len(labels)} labels, {len(titles)} titles")
    texts = [clip_tokens(tokenizer, t, article_tokens) for t in articles]
    topic = [
        chat_example(tokenizer, classify_prompt(t, label_names), label_names[int(y)])
        for t, y in zip(texts, labels, strict=True)
    ]
    headline = [
        chat_example(tokenizer, headline_prompt(t), h) for t, h in zip(texts, titles, strict=True)
    ]
    return topic + headline


LLM_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")  # Llama-style attention projections


def lora_causal_lm(
    model: nn.Module,
    rank: int = 16,
    dropout: float = 0.05,
    targets: Sequence[str] = LLM_LORA_TARGETS,
) -> nn.Module:
    """``model`` with rank-``rank`` LoRA adapters (alpha = 2 rank) on ``targets``, via peft."""
    from peft import LoraConfig, TaskType

    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, lora_dropout=dropout, target_modules=list(targets),
        task_type=TaskType.CAUSAL_LM,
    )  # fmt: skip
    return with_adapters(model, config)


class SFTDataset(Dataset):
    """Chat examples (``chat_example``) with their lengths, for length-bucketed batches."""

    def __init__(self, examples: Sequence[dict[str, list[int]]]) -> None:
        if not examples:
            raise ValueError("SFTDataset got no examples")
        self.examples = list(examples)
        self.lengths = [len(e["input_ids"]) for e in self.examples]

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.examples[i]


def sft_loader(
    dataset: SFTDataset, pad_id: int, batch_size: int, shuffle: bool = True, seed: int = 0
) -> DataLoader:
    """Length-bucketed batches of ``collate_sft`` (little padding, shuffled by ``seed``)."""
    collate = partial(collate_sft, pad_id=pad_id)
    return bucketed_loader(
        dataset, dataset.lengths, collate, batch_size, shuffle=shuffle, seed=seed
    )


def response_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of next-token predictions over the positions whose label is kept."""
    return nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE
    )


def causal_lm_step(
    model: nn.Module, batch: dict[str, torch.Tensor], device: torch.device
) -> torch.Tensor:
    """The response-only loss of a causal LM on a ``collate_sft`` batch (for ``fit``)."""
    ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    return response_token_loss(
        model(input_ids=ids, attention_mask=mask).logits, batch["labels"].to(device)
    )


@torch.no_grad()
def evaluate_causal_lm(
    model: nn.Module, loader: DataLoader, device: torch.device
) -> dict[str, float]:
    """Mean response-token loss over ``loader`` (each token counts once)."""
    total, count = 0.0, 0
    with evaluation_mode(model):
        for batch in loader:
            n = int((batch["labels"][:, 1:] != IGNORE).sum())
            total += float(causal_lm_step(model, batch, device)) * n
            count += n
    if count == 0:
        raise ValueError("evaluate_causal_lm got no response tokens (an empty loader?)")
    return {"loss": total / count}


def chat_prompt_ids(
    tokenizer: Any, prompt: str, shots: Sequence[tuple[str, str]] = ()
) -> list[int]:
    """Token ids of a chat up to the assistant's turn: ``shots`` (prompt, answer) pairs first."""
    chat = []
    for shot_prompt, answer in shots:
        chat += [{"role": "user", "content": shot_prompt}, {"role": "assistant", "content": answer}]
    chat.append({"role": "user", "content": prompt})
    return _as_ids(tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True))


def answer_ids(tokenizer: Any, answers: Sequence[str]) -> list[list[int]]:
    """Each answer's tokens as the assistant writes it, ending with the end-of-turn token(s)."""
    marker = chat_prompt_ids(tokenizer, "x")
    ids = []
    for answer in answers:
        chat = [{"role": "user", "content": "x"}, {"role": "assistant", "content": answer}]
        full = _as_ids(tokenizer.apply_chat_template(chat, tokenize=True))
        ids.append(full[len(marker) :])
    return ids


@torch.no_grad()
def score_answers(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    answers: Sequence[str],
    shots: Sequence[tuple[str, str]] = (),
    progress: bool = True,
) -> np.ndarray:
    """log p(answer | prompt) for every prompt and answer: an ``[n_prompts, n_answers]`` array.

    Constrained scoring: the model reads each prompt once; each candidate answer (with its
    end-of-turn token) is then scored on a copy of the cached prompt, so argmax over the
    answers always names one of them, and no free-text output has to be parsed.
    """
    device = next(model.parameters()).device
    candidates = answer_ids(tokenizer, answers)
    width = max(len(c) for c in candidates)
    cand = torch.full((len(candidates), width), tokenizer.pad_token_id, dtype=torch.long)
    keep = torch.zeros((len(candidates), width), dtype=torch.bool)
    for i, c in enumerate(candidates):
        cand[i, : len(c)], keep[i, : len(c)] = torch.tensor(c), True
    cand, keep = cand.to(device), keep.to(device)
    model.eval()
    scores = np.zeros((len(prompts), len(candidates)))
    for row, prompt in enumerate(tqdm(prompts, desc="scoring", disable=not progress, leave=False)):
        ids = torch.tensor([chat_prompt_ids(tokenizer, prompt, shots)], device=device)
        out = model(input_ids=ids, use_cache=True)
        cache = out.cache  # transformers 5.24 names it so (was past_key_values)
        cache.batch_repeat_interleave(len(candidates))
        mask = torch.ones((len(candidates), ids.shape[1] + width), dtype=torch.long, device=device)
        logits = model(input_ids=cand, attention_mask=mask, cache=cache).logits
        logp = torch.cat([out.logits[:, -1:].expand(len(candidates), -1, -1), logits[:, :-1]], 1)
        logp = torch.log_softmax(logp.float(), dim=-1).gather(2, cand[..., None])[..., 0]
        scores[row] = (logp * keep).sum(1).cpu().numpy()
    return scores


@torch.no_grad()
def generate_responses(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    max_new_tokens: int = 24,
    batch_size: int = 8,
    progress: bool = True,
) -> list[str]:
    """Greedy answers to ``prompts`` (left-padded batches), without the chat markup."""
    device = next(model.parameters()).device
    answers = []
    batches = range(0, len(prompts), batch_size)
    with evaluation_mode(model):
        for start in tqdm(batches, desc="generating", disable=not progress, leave=False):
            answers += _greedy_answers(model, tokenizer, prompts[start : start + batch_size],
                                       max_new_tokens, device)  # fmt: skip
    return answers


def _greedy_answers(
    model: nn.Module, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int,
    device: torch.device,
) -> list[str]:  # fmt: skip
    """One left-padded batch of greedy answers, without the chat markup."""
    rows = [chat_prompt_ids(tokenizer, p) for p in prompts]
    width = max(len(r) for r in rows)
    ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    out = model.generate(
        input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new_tokens,
        do_sample=False, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    return [s.strip() for s in tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)]
