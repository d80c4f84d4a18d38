"""Which input tokens a classifier's decision rests on: gradient x input, integrated gradients,
and attention rollout, for Hugging Face sequence classifiers (chapter 11).

All three give one number per token of one text. The two gradient methods work on the word
embeddings ``e_i`` that the model adds its position embeddings to:

* gradient x input: ``a_i = e_i . dF/de_i`` (a first-order Taylor term);
* integrated gradients (Sundararajan et al. 2017): ``a_i = (e_i - e'_i) . mean_k dF/de_i`` at
  ``e' + k/m (e - e')``, k = 1..m (the right Riemann sum of the path integral), from a
  baseline text ``e'`` (every token replaced by padding, the special tokens kept). Their sum
  is ``F(e) - F(e')`` up to the sum's error: *completeness*.

``F`` is the logit of the target class. Attention rollout (Abnar & Zuidema 2020) multiplies the
layers' head-averaged attention matrices, each mixed half and half with the identity for the
residual connection, and reads the row of the first token (``[CLS]``): how much each token
flows into the representation the classifier reads. Its rows sum to 1.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from companion.checks import check_ints
from companion.train import evaluation_mode


def baseline_ids(tokenizer: Any, input_ids: torch.Tensor) -> torch.Tensor:
    """The baseline text: every token replaced by the padding id, the special tokens kept."""
    special = torch.tensor(tokenizer.all_special_ids, device=input_ids.device)
    keep = torch.isin(input_ids, special)
    return torch.where(keep, input_ids, torch.full_like(input_ids, tokenizer.pad_token_id))


def _target_logit(
    model: nn.Module, embeds: torch.Tensor, attention_mask: torch.Tensor, target: int
) -> torch.Tensor:
    """F: the target class's logit for each row of word embeddings ``embeds`` [n, T, d]."""
    mask = attention_mask.expand(len(embeds), -1)
    return model(inputs_embeds=embeds, attention_mask=mask).logits[:, target]


def gradient_x_input(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, target: int
) -> torch.Tensor:
    """``e_i . dF/de_i`` for each token of one text (``input_ids`` of shape [1, T])."""
    with evaluation_mode(model):
        embeds = model.get_input_embeddings()(input_ids).detach().requires_grad_(True)
        logit = _target_logit(model, embeds, attention_mask, target).sum()
        (grad,) = torch.autograd.grad(logit, embeds)
    return (embeds * grad).sum(-1)[0].detach()


def integrated_gradients(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    target: int,
    baseline: torch.Tensor,
    steps: int = 64,
    chunk: int = 16,
) -> tuple[torch.Tensor, float]:
    """Integrated gradients of each token of one text, and ``F(x) - F(baseline)`` to check them.

    ``baseline`` holds token ids of the same shape as ``input_ids`` (see ``baseline_ids``). The
    path integral is the right Riemann sum over ``steps`` points, ``chunk`` points per batch.
    """
    check_ints(1, steps=steps, chunk=chunk)
    with evaluation_mode(model):
        table = model.get_input_embeddings()
        x, x0 = table(input_ids).detach(), table(baseline).detach()
        total = torch.zeros_like(x)
        alphas = torch.arange(1, steps + 1, dtype=x.dtype, device=x.device) / steps
        for part in alphas.split(chunk):
            points = (x0 + part[:, None, None] * (x - x0)).requires_grad_(True)
            logits = _target_logit(model, points, attention_mask, target)
            (grad,) = torch.autograd.grad(logits.sum(), points)
            total += grad.sum(0, keepdim=True)
        with torch.no_grad():
            ends = _target_logit(model, torch.cat([x, x0]), attention_mask, target)
    attributions = ((x - x0) * total / steps).sum(-1)[0]
    return attributions.detach(), float(ends[0] - ends[1])


@torch.no_grad()
def attention_rollout(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """How much each token flows into the first token's final state (one text, rows sum to 1).

    Needs a model that returns attention weights (``attn_implementation="eager"``).
    """
    with evaluation_mode(model):
        out = model(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
    if not out.attentions:
        raise ValueError("the model returned no attention weights: load it with "
                         'attn_implementation="eager"')  # fmt: skip
    width = input_ids.shape[1]
    eye = torch.eye(width, device=input_ids.device)
    rollout = eye
    for layer in out.attentions:  # [1, heads, T, T] from the first layer up
        mixed = 0.5 * layer[0].mean(0) + 0.5 * eye
        rollout = (mixed / mixed.sum(-1, keepdim=True)) @ rollout
    return rollout[0]


def top_tokens(
    tokenizer: Any, input_ids: torch.Tensor, scores: torch.Tensor, k: int = 8
) -> list[tuple[str, float]]:
    """The ``k`` tokens with the largest scores, special tokens left out, as (token, score)."""
    check_ints(1, k=k)
    ids = input_ids[0].tolist()
    special = set(tokenizer.all_special_ids)
    order = [i for i in scores.argsort(descending=True).tolist() if ids[i] not in special]
    return [(tokenizer.convert_ids_to_tokens(ids[i]), float(scores[i])) for i in order[:k]]
