"""Tests of companion.attribution against Captum, the reference implementation of the methods."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from captum.attr import InputXGradient, LayerIntegratedGradients

from companion import attribution as at
from companion.transformer import load_classifier

TEXT = "Shares in the bank rose sharply after profits beat forecasts."


@pytest.fixture()
def tiny(tiny_bert_dir: Path) -> tuple:
    """A tiny random BERT classifier (3 classes), its tokenizer, and one encoded text."""
    torch.manual_seed(0)
    model, tokenizer = load_classifier(3, tiny_bert_dir)
    encoded = tokenizer([TEXT], return_tensors="pt")
    return model.eval(), tokenizer, encoded["input_ids"], encoded["attention_mask"]


def test_baseline_keeps_special_tokens_and_pads_the_rest(tiny: tuple) -> None:
    _, tokenizer, ids, _ = tiny
    base = at.baseline_ids(tokenizer, ids)
    assert base[0, 0] == tokenizer.cls_token_id and base[0, -1] == tokenizer.sep_token_id
    assert (base[0, 1:-1] == tokenizer.pad_token_id).all() and ids.shape == base.shape


def test_integrated_gradients_equal_captums(tiny: tuple) -> None:
    model, tokenizer, ids, mask = tiny
    base = at.baseline_ids(tokenizer, ids)
    model.train()  # attributions are of the eval-mode model; the caller's mode comes back
    ours, gap = at.integrated_gradients(model, ids, mask, 1, base, steps=32, chunk=7)
    assert model.training
    model.eval()

    def logits(batch_ids: torch.Tensor) -> torch.Tensor:
        return model(input_ids=batch_ids, attention_mask=mask.expand(len(batch_ids), -1)).logits

    captum = LayerIntegratedGradients(logits, model.get_input_embeddings())
    theirs, delta = captum.attribute(
        ids, baselines=base, target=1, n_steps=32, method="riemann_right",
        return_convergence_delta=True,
    )  # fmt: skip
    assert torch.allclose(ours, theirs.sum(-1)[0], atol=1e-6)
    assert ours.sum().item() - gap == pytest.approx(delta.item(), abs=1e-6)


def test_integrated_gradients_are_complete_in_the_limit(tiny: tuple) -> None:
    """The sum of the attributions approaches F(x) - F(baseline) as the Riemann sum refines."""
    model, tokenizer, ids, mask = tiny
    base = at.baseline_ids(tokenizer, ids)
    errors = []
    for steps in (2, 16, 128):
        attributions, gap = at.integrated_gradients(model, ids, mask, 0, base, steps=steps)
        errors.append(abs(attributions.sum().item() - gap))
    assert errors[2] < errors[0] and errors[2] < 1e-3 * max(abs(gap), 1e-3)


def test_gradient_x_input_equals_captums(tiny: tuple) -> None:
    model, _, ids, mask = tiny
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    captum = InputXGradient(lambda e: model(inputs_embeds=e, attention_mask=mask).logits)
    theirs = captum.attribute(embeds, target=2).sum(-1)[0]
    model.train()  # the caller's mode comes back after the (eval-mode) attribution
    assert torch.allclose(at.gradient_x_input(model, ids, mask, 2), theirs, atol=1e-7)
    assert model.training


def test_attention_rollout_is_a_distribution_over_tokens(tiny: tuple) -> None:
    model, _, ids, mask = tiny
    with pytest.raises(ValueError, match="eager"):
        at.attention_rollout(model, ids, mask)  # sdpa returns no attention weights
    model.set_attn_implementation("eager")
    model.train()
    flow = at.attention_rollout(model, ids, mask)
    assert model.training  # the caller's mode comes back
    model.eval()
    assert flow.shape == (ids.shape[1],) and (flow >= 0).all()
    assert flow.sum().item() == pytest.approx(1.0, abs=1e-6)
    out = model(input_ids=ids, attention_mask=mask, output_attentions=True)
    eye = torch.eye(ids.shape[1])
    by_hand = eye
    for layer in out.attentions:
        by_hand = (0.5 * layer[0].mean(0) + 0.5 * eye) @ by_hand  # rows already sum to 1
    assert torch.allclose(flow, by_hand[0], atol=1e-6)


def test_attention_rollout_of_two_fixed_layers_worked_by_hand() -> None:
    """Abnar & Zuidema's rollout, (I + A2)/2 @ (I + A1)/2, row 0, on two 2x2 attention maps."""

    class FixedAttention(torch.nn.Module):
        def forward(self, **inputs: torch.Tensor) -> SimpleNamespace:
            first = torch.tensor([[0.5, 0.5], [0.2, 0.8]])
            second = torch.tensor([[0.2, 0.8], [0.4, 0.6]])
            return SimpleNamespace(attentions=(first[None, None], second[None, None]))

    ids, mask = torch.tensor([[101, 102]]), torch.ones(1, 2, dtype=torch.long)
    flow = at.attention_rollout(FixedAttention(), ids, mask)
    # (I + A1)/2 = [[.75, .25], [.1, .9]]; (I + A2)/2 = [[.6, .4], [.2, .8]]; row 0 of their
    # product, later layer on the left: [.6*.75 + .4*.1, .6*.25 + .4*.9] = [.49, .51]
    torch.testing.assert_close(flow, torch.tensor([0.49, 0.51]))


def test_top_tokens_skip_special_tokens(tiny: tuple) -> None:
    _, tokenizer, ids, _ = tiny
    scores = torch.zeros(ids.shape[1])
    scores[0], scores[3] = 10.0, 5.0  # position 0 is [CLS]
    top = at.top_tokens(tokenizer, ids, scores, k=2)
    assert top[0] == (tokenizer.convert_ids_to_tokens(int(ids[0, 3])), 5.0) and len(top) == 2
