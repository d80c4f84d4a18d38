"""Tests of companion.train: schedules, the loop, early stopping, checkpoints and resume."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from sklearn.metrics import accuracy_score, f1_score, log_loss
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import DataLoader

from companion.checkpoints import load_weights
from companion.classifier import NewsClassifier
from companion.config import seed_everything
from companion.encoder import Encoder
from companion.text import TextClassificationDataset, Vocab, collate_batch
from companion.train import (
    TrainConfig,
    class_weighted_step,
    classification_step,
    evaluate_classifier,
    evaluation_mode,
    fit,
    lr_lambda,
    predict,
    text_loader,
)

WORDS = ["good", "bad", "the", "a", "movie", "plot", "was", "very", "and", "it"]


def toy_dataset(n: int = 48, seed: int = 0) -> tuple[TextClassificationDataset, Vocab]:
    """Texts of 2-8 filler words plus one cue word ('good' -> 1, 'bad' -> 0): linearly separable."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = list(rng.choice(WORDS[2:], size=rng.integers(2, 9)))
        words.insert(int(rng.integers(0, len(words) + 1)), "good" if label else "bad")
        texts.append(" ".join(words))
        labels.append(label)
    vocab = Vocab.build([t.split() for t in texts])
    return TextClassificationDataset(texts, labels, vocab), vocab


def toy_model(vocab: Vocab, dropout: float = 0.0) -> NewsClassifier:
    """A small biLSTM classifier (seeded)."""
    seed_everything(0)
    return NewsClassifier(Encoder(len(vocab), 8, 8, pooling="max"), 2, dropout=dropout)


def config(tmp: Path | None = None, **changes) -> TrainConfig:
    """A fast CPU configuration."""
    settings = {"epochs": 3, "lr": 1e-2, "device": "cpu", "progress": False}
    return TrainConfig(**(settings | changes), checkpoint_dir=tmp)


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


def test_lr_schedules_match_torch() -> None:
    total = 10
    params = [torch.nn.Parameter(torch.zeros(1))]
    for schedule, make in (
        ("cosine", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total)),
        ("linear", lambda o: torch.optim.lr_scheduler.LinearLR(o, 1.0, 0.0, total_iters=total)),
    ):
        opt = torch.optim.SGD(params, lr=1.0)
        reference = make(opt)
        factor = lr_lambda(schedule, 0, total)
        for step in range(total):
            assert factor(step) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12)
            opt.step()
            reference.step()


def test_lr_warmup_by_hand() -> None:
    factor = lr_lambda("constant", 3, 10)
    assert [factor(s) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert lr_lambda("cosine", 2, 10)(2) == 1.0
    assert lr_lambda("cosine", 2, 10)(6) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="schedule must be one of"):
        lr_lambda("step", 0, 10)


def test_fit_learns_a_separable_toy_problem() -> None:
    data, vocab = toy_dataset()
    model = toy_model(vocab)
    loader = text_loader(data, batch_size=8, seed=0)
    result = fit(model, loader, text_loader(data, 16, shuffle=False),
                 config=config(epochs=12, lr=2e-2, patience=None))  # fmt: skip
    assert result.history["train_loss"].iloc[-1] < 0.05
    assert result.history["val_accuracy"].max() == 1.0
    assert list(result.history.columns[:3]) == ["epoch", "train_loss", "lr"]
    assert result.history["lr"].is_monotonic_decreasing  # cosine decay


def test_two_cpu_runs_are_bit_identical() -> None:
    data, vocab = toy_dataset()
    runs = []
    for _ in range(2):
        model = toy_model(vocab, dropout=0.3)
        fit(model, text_loader(data, 8, seed=0), config=config(epochs=2))
        runs.append(weights(model))
    assert_same_weights(*runs)


def loaders(kind: str) -> tuple[DataLoader, Vocab]:
    """A bucketed loader (``set_epoch``) or a plain shuffled loader with its own generator."""
    data, vocab = toy_dataset()
    if kind == "bucket":
        return text_loader(data, 8, seed=0), vocab
    gen = torch.Generator().manual_seed(5)
    return DataLoader(data, 8, shuffle=True, generator=gen, collate_fn=collate_batch), vocab


class Interrupted(Exception):
    """Stands for a kill in the middle of an epoch."""


@pytest.mark.parametrize("kind", ["bucket", "generator"])
def test_resume_after_interruption_matches_uninterrupted_run(tmp_path: Path, kind: str) -> None:
    loader, vocab = loaders(kind)
    steps_per_epoch = len(loader)
    straight = toy_model(vocab, dropout=0.3)
    full = fit(straight, loader, config=config(tmp_path / "a", schedule="linear", warmup_ratio=0.2))

    calls = 0

    def dies_in_epoch_2(model, batch, device):  # noqa: ANN001, ANN202
        nonlocal calls
        calls += 1
        if calls == steps_per_epoch + 2:
            raise Interrupted
        return classification_step(model, batch, device)

    loader, _ = loaders(kind)  # a fresh "process": new model, new loader
    cfg = config(tmp_path / "b", schedule="linear", warmup_ratio=0.2)
    with pytest.raises(Interrupted):
        fit(toy_model(vocab, dropout=0.3), loader, config=cfg, step=dies_in_epoch_2)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "best.safetensors", "epoch-001.safetensors", "last_state.pt",
    ]  # fmt: skip

    torch.manual_seed(123)  # a different process state, and a differently initialised model
    loader, _ = loaders(kind)
    resumed_model = NewsClassifier(Encoder(len(vocab), 8, 8, pooling="max"), 2, dropout=0.3)
    resumed = fit(resumed_model, loader, config=cfg)
    assert resumed.resumed_from == 1
    assert_same_weights(weights(resumed_model), weights(straight))
    cols = ["epoch", "train_loss", "lr"]
    assert resumed.history[cols].equals(full.history[cols])


def test_resume_of_a_finished_run_trains_nothing(tmp_path: Path) -> None:
    data, vocab = toy_dataset()
    model = toy_model(vocab)
    first = fit(model, text_loader(data, 8), config=config(tmp_path))
    again = toy_model(vocab)
    second = fit(again, text_loader(data, 8), config=config(tmp_path, progress=True))
    assert second.resumed_from == 3 and len(second.history) == 3
    assert_same_weights(weights(again), weights(model))
    assert second.history.equals(first.history)


def test_resume_with_other_settings_raises(tmp_path: Path) -> None:
    data, vocab = toy_dataset()
    fit(toy_model(vocab), text_loader(data, 8), config=config(tmp_path, epochs=1))
    with pytest.raises(ValueError, match="written with other settings"):
        fit(toy_model(vocab), text_loader(data, 8), config=config(tmp_path, epochs=1, lr=0.5))


def scripted(values: list[float], snapshots: list[dict]):  # noqa: ANN201
    """An evaluate that returns the next scripted macro-F1 and records the weights."""

    def evaluate(model, loader, device):  # noqa: ANN001, ANN202
        snapshots.append(weights(model))
        return {"macro_f1": values[len(snapshots) - 1]}

    return evaluate


@pytest.mark.parametrize("with_dir", [False, True])
def test_early_stopping_keeps_the_best_weights(tmp_path: Path, with_dir: bool) -> None:
    data, vocab = toy_dataset()
    model, snaps = toy_model(vocab), []
    cfg = config(tmp_path if with_dir else None, epochs=10, patience=2)
    result = fit(model, text_loader(data, 8), text_loader(data, 8), config=cfg,
                 evaluate=scripted([0.5, 0.7, 0.6, 0.7, 0.9], snaps))  # fmt: skip
    assert result.stopped_early and len(result.history) == 4
    assert (result.best_epoch, result.best_metric, result.monitor) == (2, 0.7, "val_macro_f1")
    assert_same_weights(weights(model), snaps[1])
    if with_dir:
        with safe_open(str(result.best_path), "pt") as f:
            assert f.metadata()["epoch"] == "2"
        reloaded = toy_model(vocab)
        load_weights(reloaded, result.best_path)
        assert_same_weights(weights(reloaded), snaps[1])


def test_monitor_mode_min(tmp_path: Path) -> None:
    data, vocab = toy_dataset()
    result = fit(toy_model(vocab), text_loader(data, 8), text_loader(data, 8),
                 config=config(epochs=3, monitor="macro_f1", mode="min", patience=None),
                 evaluate=scripted([0.5, 0.3, 0.4], []))  # fmt: skip
    assert result.best_epoch == 2


def test_evaluation_mode_gives_each_submodule_its_own_mode_back_even_after_an_error() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Sequential(nn.Dropout(0.5)))
    model[2].eval()  # a mixed model: the last block was in eval mode before
    before = [m.training for m in model.modules()]
    with evaluation_mode(model):
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == before
    with pytest.raises(RuntimeError, match="boom"), evaluation_mode(model):
        raise RuntimeError("boom")
    assert [m.training for m in model.modules()] == before


def test_predict_and_evaluate_agree_with_sklearn() -> None:
    data, vocab = toy_dataset()
    model = toy_model(vocab, dropout=0.5)  # a missing eval() would make the outputs random
    loader = text_loader(data, 8, shuffle=False)
    y_true, y_pred, probs = predict(model, loader, "cpu")
    assert model.training, "predict restores the training mode"
    labels, reference = [], []
    with torch.no_grad():
        model.eval()
        for ids, lengths, batch_labels in loader:  # the same batches, in order, by hand
            reference.append(torch.softmax(model(ids, lengths), dim=-1))
            labels.append(batch_labels)
        model.train()
    np.testing.assert_array_equal(y_true, torch.cat(labels).numpy())  # labels stay paired
    np.testing.assert_allclose(probs, torch.cat(reference).numpy(), atol=1e-6)
    np.testing.assert_array_equal(y_pred, probs.argmax(axis=1))
    metrics = evaluate_classifier(model, loader, torch.device("cpu"))
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert metrics["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert metrics["loss"] == pytest.approx(log_loss(y_true, probs, labels=[0, 1]), rel=1e-5)
    np.testing.assert_array_equal(np.sort(y_true), np.sort(data.labels))


def test_bad_input_raises() -> None:
    data, vocab = toy_dataset()
    model = toy_model(vocab)
    ids, lengths, labels = collate_batch([data[0], data[1]])
    with pytest.raises(ValueError, match="2 sequences but 1 labels"):
        classification_step(model, (ids, lengths, labels[:1]), torch.device("cpu"))
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        fit(model, text_loader(data, 8), config={"epochs": 1})
    with pytest.raises(ValueError, match="train_loader yields no batches"):
        fit(model, [], config=config())
    with pytest.raises(ValueError, match="schedule must be one of"):
        TrainConfig(schedule="step")
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="no column 'val_recall'"):
        fit(model, text_loader(data, 8), text_loader(data, 8), config=config(monitor="recall"))
    with pytest.raises(ValueError, match="empty loader"):
        predict(model, [], "cpu")


KILLED_CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from test_train import classification_step, config, fit, loaders, toy_model

loader, vocab = loaders("bucket")
ckpt = Path({ckpt!r})

def step(model, batch, device):
    if (ckpt / "last_state.pt").exists():  # epoch 1 is saved: wait here to be killed
        print("ready", flush=True)
        time.sleep(600)
    return classification_step(model, batch, device)

fit(toy_model(vocab, dropout=0.3), loader, config=config(ckpt), step=step)
"""


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path: Path) -> None:
    """A real process, killed with SIGKILL in epoch 2; a new fit resumes it exactly."""
    script = KILLED_CHILD.format(tests=str(Path(__file__).parent), ckpt=str(tmp_path / "b"))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    loader, vocab = loaders("bucket")
    straight = toy_model(vocab, dropout=0.3)
    fit(straight, loader, config=config(tmp_path / "a"))
    loader, _ = loaders("bucket")
    resumed_model = toy_model(vocab, dropout=0.3)
    resumed = fit(resumed_model, loader, config=config(tmp_path / "b"))
    assert resumed.resumed_from == 1
    assert_same_weights(weights(resumed_model), weights(straight))


class Scalar(torch.nn.Module):
    """One trainable number: with loss = w the gradient is exactly 1 at every step."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))


def trajectory(schedule: str, warmup_ratio: float, epochs: int = 3, steps: int = 5) -> list[float]:
    """The value of w seen at every step of ``fit`` (plus the final one), loss = w."""
    seen: list[float] = []

    def step(model, batch, device):  # noqa: ANN001, ANN202
        seen.append(float(model.w.detach()))
        return model.w * 1.0

    model = Scalar()
    cfg = config(epochs=epochs, lr=0.1, schedule=schedule, warmup_ratio=warmup_ratio,
                 clip_norm=None)  # fmt: skip
    fit(model, [None] * steps, config=cfg, step=step)
    return [*seen, float(model.w)]


@pytest.mark.parametrize("schedule", ["linear", "cosine", "constant"])
def test_each_update_follows_the_warmup_and_schedule(schedule: str) -> None:
    """Adam's first moments are exact here (m/sqrt(v) = 1), so each step moves w by -lr_t."""
    w = trajectory(schedule, warmup_ratio=0.2)  # 15 steps, 3 of warmup
    decay = {
        "linear": lambda s: 1 - (s - 3) / 12,
        "cosine": lambda s: 0.5 * (1 + math.cos(math.pi * (s - 3) / 12)),
        "constant": lambda s: 1.0,
    }[schedule]
    expected = [0.1 * ((s + 1) / 4 if s < 3 else decay(s)) for s in range(15)]
    steps = [a - b for a, b in zip(w, w[1:], strict=False)]
    np.testing.assert_allclose(steps, expected, rtol=1e-5, atol=2e-7)  # float32 w


def test_gradients_are_clipped_before_the_optimizer_steps() -> None:
    """An optimizer pre-step hook (outside fit) sees the gradient norm the update uses."""
    norms: list[float] = []

    def record(optimizer, args, kwargs):  # noqa: ANN001, ANN202
        grads = [p.grad for g in optimizer.param_groups for p in g["params"]]
        norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

    handle = register_optimizer_step_pre_hook(record)
    try:
        for clip in (0.5, None):
            fit(Scalar(), [None] * 3, config=config(epochs=1, clip_norm=clip),
                step=lambda model, batch, device: 100.0 * model.w)  # fmt: skip
    finally:
        handle.remove()
    np.testing.assert_allclose(norms, [0.5] * 3 + [100.0] * 3, rtol=1e-5)


def scripted_from(values: list[float], start: int, calls: list[int]):  # noqa: ANN201
    """An evaluate returning ``values[start], values[start + 1], ...``; counts its calls."""

    def evaluate(model, loader, device):  # noqa: ANN001, ANN202
        calls.append(start + len(calls))
        return {"macro_f1": values[calls[-1]]}

    return evaluate


# Best at epoch 2; patience 3 stops after epoch 5. A resume that forgot the best (0.7 at
# epoch 4 would win) or the patience count (0.95 at epoch 6 would be reached) ends elsewhere.
F1 = [0.5, 0.9, 0.6, 0.7, 0.65, 0.95, 0.99, 0.99, 0.99, 0.99]


def test_resume_keeps_best_epoch_and_patience_and_never_restarts(tmp_path: Path) -> None:
    loader, vocab = loaders("bucket")
    cfg = {"epochs": 10, "patience": 3}
    straight = toy_model(vocab)
    full = fit(straight, loader, loader, config=config(tmp_path / "a", **cfg),
               evaluate=scripted_from(F1, 0, []))  # fmt: skip
    assert (full.best_epoch, full.stopped_early, len(full.history)) == (2, True, 5)

    calls = 0

    def dies_in_epoch_4(model, batch, device):  # noqa: ANN001, ANN202
        nonlocal calls
        calls += 1
        if calls == 3 * len(loader) + 1:
            raise Interrupted
        return classification_step(model, batch, device)

    with pytest.raises(Interrupted):
        fit(toy_model(vocab), loader, loader, config=config(tmp_path / "b", **cfg),
            step=dies_in_epoch_4, evaluate=scripted_from(F1, 0, []))  # fmt: skip
    model, evaluated = toy_model(vocab), []
    resumed = fit(model, loader, loader, config=config(tmp_path / "b", **cfg),
                  evaluate=scripted_from(F1, 3, evaluated))  # fmt: skip
    assert resumed.resumed_from == 3 and evaluated == [3, 4]
    assert (resumed.best_epoch, resumed.best_metric, resumed.stopped_early) == (2, 0.9, True)
    assert len(resumed.history) == 5
    assert_same_weights(weights(model), weights(straight))

    again, evaluated = toy_model(vocab), []
    stopped = fit(again, loader, loader, config=config(tmp_path / "b", **cfg),
                  evaluate=scripted_from(F1, 5, evaluated))  # fmt: skip
    assert evaluated == [] and stopped.stopped_early and len(stopped.history) == 5
    assert_same_weights(weights(again), weights(straight))


@pytest.mark.parametrize(
    ("name", "reference"),
    [("sgd", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01)),
     ("adam", lambda p: torch.optim.Adam(p, lr=0.1, weight_decay=0.01)),
     ("adamw", lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.01))],
)  # fmt: skip
def test_each_optimizer_follows_torchs_own(name: str, reference) -> None:  # noqa: ANN001
    """Three constant-rate steps of loss = (w - 3)^2 through fit and through torch directly."""
    model = Scalar()
    fit(model, [None] * 3, config=config(epochs=1, optimizer=name, lr=0.1, weight_decay=0.01,
        schedule="constant", clip_norm=None), step=lambda m, b, d: (m.w - 3.0) ** 2)  # fmt: skip
    w = torch.nn.Parameter(torch.zeros(()))
    optimizer = reference([w])
    for _ in range(3):
        optimizer.zero_grad()
        ((w - 3.0) ** 2).backward()
        optimizer.step()
    assert float(model.w) == pytest.approx(float(w), abs=1e-7)


def test_class_weighted_step_matches_torch_weighted_cross_entropy() -> None:
    data, vocab = toy_dataset()
    model = toy_model(vocab)
    batch = collate_batch([data[i] for i in range(6)])
    weight = torch.tensor([0.3, 1.7])
    logits = model(batch[0], batch[1])
    expected = torch.nn.functional.cross_entropy(logits, batch[2], weight=weight)
    got = class_weighted_step(weight)(model, batch, torch.device("cpu"))
    torch.testing.assert_close(got, expected)
    plain = classification_step(model, batch, torch.device("cpu"))
    assert not torch.isclose(got, plain)  # the weights matter on this batch
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig(optimizer="rmsprop")
