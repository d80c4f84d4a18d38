"""Tests of companion.finetune: freezing, per-layer rates, the ULMFiT schedule, multi-task."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_train import config, toy_dataset

from companion.classifier import NewsClassifier
from companion.config import seed_everything
from companion.encoder import Encoder
from companion.finetune import (
    GradualUnfreezing,
    MultiTaskLoader,
    MultiTaskStep,
    count_parameters,
    discriminative_groups,
    discriminative_lrs,
    freeze,
    layer_groups,
    multitask_evaluate,
)
from companion.language_model import LanguageModel, evaluate_lm, lm_step, stream_loader
from companion.train import classification_step, evaluate_classifier, fit, lr_lambda, text_loader


def classifier(vocab_size: int, layers: int = 2) -> NewsClassifier:
    seed_everything(0)
    encoder = Encoder(vocab_size, 6, 5, num_layers=layers, bidirectional=False, pooling="mean")
    return NewsClassifier(encoder, 2, dropout=0.0)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_head_only_training_leaves_the_encoder_untouched(tmp_path: Path) -> None:
    data, vocab = toy_dataset()
    model = classifier(len(vocab))
    freeze(model.encoder)
    before = snapshot(model)
    fit(model, text_loader(data, 8), config=config(tmp_path, epochs=2))
    after = snapshot(model)
    for name, value in before.items():
        same = torch.equal(value, after[name])
        assert same == name.startswith("encoder."), name
    assert all(p.grad is None for p in model.encoder.parameters())
    state = torch.load(tmp_path / "last_state.pt", weights_only=True)["optimizer"]
    assert [len(g["params"]) for g in state["param_groups"]] == [2]  # head weight and bias
    assert count_parameters(model) == 5 * 2 + 2


def test_layer_groups_cover_every_parameter_once_bottom_to_top() -> None:
    _, vocab = toy_dataset()
    model = classifier(len(vocab), layers=2)
    groups = layer_groups(model)
    assert [name for name, _ in groups] == ["embedding", "lstm layer 0", "lstm layer 1", "head"]
    ids = [id(p) for _, params in groups for p in params]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    lstm = dict(model.encoder.lstm.named_parameters())
    assert {id(p) for p in groups[2][1]} == {
        id(lstm[f"{k}_l1"]) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    }


def test_discriminative_rates_land_in_the_optimizer_groups(tmp_path: Path) -> None:
    data, vocab = toy_dataset()
    model = classifier(len(vocab))
    groups = discriminative_groups(layer_groups(model), lr=0.01)
    expected = [0.01 / 2.6**3, 0.01 / 2.6**2, 0.01 / 2.6, 0.01]
    assert discriminative_lrs(4, 0.01) == pytest.approx(expected)
    fit(model, text_loader(data, 8), config=config(tmp_path, epochs=1, schedule="constant"),
        param_groups=groups)  # fmt: skip
    state = torch.load(tmp_path / "last_state.pt", weights_only=True)
    saved = state["optimizer"]["param_groups"]
    assert [g["lr"] for g in saved] == pytest.approx(expected)
    assert [g["name"] for g in saved] == ["embedding", "lstm layer 0", "lstm layer 1", "head"]


def test_slanted_triangular_schedule_matches_ulmfit_formula() -> None:
    """Howard & Ruder (2018), eq. 3, with T = 100, cut_frac = 0.1, ratio = 32."""
    total, cut = 100, 10
    factor = lr_lambda("slanted", cut, total)
    for t in range(total):
        p = t / cut if t < cut else 1 - (t - cut) / (cut * (1 / 0.1 - 1))
        assert factor(t) == pytest.approx((1 + p * 31) / 32, abs=1e-12), t
    assert factor(cut) == 1.0 and factor(0) == pytest.approx(1 / 32)


def test_gradual_unfreezing_adds_one_group_per_epoch() -> None:
    data, vocab = toy_dataset()
    model = classifier(len(vocab))
    groups = layer_groups(model)
    unfreeze = GradualUnfreezing(groups)
    assert unfreeze.trainable(0) == ["head"]
    assert unfreeze.trainable(1) == ["lstm layer 1", "head"]
    assert unfreeze.trainable(9) == [name for name, _ in groups]
    changed_per_epoch = []

    def record(model, epoch):  # noqa: ANN001, ANN202
        unfreeze(model, epoch)
        changed_per_epoch.append(snapshot(model))

    fit(model, text_loader(data, 8), config=config(epochs=3), epoch_start=record,
        param_groups=discriminative_groups(groups, lr=0.01))  # fmt: skip
    changed_per_epoch.append(snapshot(model))
    expected = [["head"], ["lstm layer 1", "head"], ["lstm layer 0", "lstm layer 1", "head"]]
    for epoch in range(3):
        before, after = changed_per_epoch[epoch], changed_per_epoch[epoch + 1]
        moved = {n for n in before if not torch.equal(before[n], after[n])}
        names = {n for name, params in groups if name in expected[epoch]
                 for n, p in model.named_parameters() if any(p is q for q in params)}  # fmt: skip
        assert moved == names, (epoch, moved ^ names)


def test_multitask_shares_the_encoder_and_reports_each_task() -> None:
    data, vocab = toy_dataset()
    clf = classifier(len(vocab), layers=1)
    lm = LanguageModel(len(vocab), 6, 5)
    lm.use_encoder(clf.encoder)  # one encoder, two heads
    stream = torch.randint(2, len(vocab), (200,))
    loaders = {"topic": text_loader(data, 8), "lm": stream_loader(stream, 10, 4)}
    train = MultiTaskLoader(loaders, seed=0)
    assert len(train) == len(loaders["topic"]) + len(loaders["lm"])
    tasks = [task for task, _ in train]
    assert sorted(tasks) == sorted(["topic"] * len(loaders["topic"]) + ["lm"] * len(loaders["lm"]))
    train.set_epoch(1)
    assert [task for task, _ in train] != tasks  # another epoch, another interleaving
    models = {"topic": clf, "lm": lm}
    step = MultiTaskStep(models, {"topic": classification_step, "lm": lm_step}, {"lm": 0.5})
    evaluate = multitask_evaluate(models, {"topic": evaluate_classifier, "lm": evaluate_lm})
    both = torch.nn.ModuleDict(models)
    result = fit(both, train, loaders, config=config(epochs=2, monitor="topic_macro_f1"),
                 step=step, evaluate=evaluate)  # fmt: skip
    assert {"val_topic_accuracy", "val_lm_perplexity"} <= set(result.history.columns)
    assert len(step.losses["topic"]) == 2 * len(loaders["topic"])
    assert len(step.losses["lm"]) == 2 * len(loaders["lm"])
    lm_own = count_parameters(lm.projection) + lm.output.bias.numel()  # the table is shared
    assert count_parameters(both) == count_parameters(clf) + lm_own


def test_multitask_step_weights_the_loss() -> None:
    model = torch.nn.Linear(1, 1)
    step = MultiTaskStep({"a": model}, {"a": lambda m, b, d: torch.tensor(2.0)}, {"a": 0.25})
    assert float(step(model, ("a", None), torch.device("cpu"))) == 0.5
    assert step.losses["a"] == [2.0]
    with pytest.raises(ValueError, match="differ"):
        MultiTaskStep({"a": model}, {"b": lambda m, b, d: 0})
