"""Tests of companion.transformer: MiniLM offline, dynamic padding, strategies, Trainer parity."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from companion import transformer as tf
from companion.data import ChecksumError
from companion.train import TrainConfig, evaluate_classifier, fit

TEXTS = [
    "Stocks rose in London.",
    "The striker scored twice in the second half of a rain-soaked cup final at Wembley.",
    "Parliament passed the bill.",
    "A new phone with a folding screen went on sale in Tokyo and Seoul this week.",
    "Shares fell sharply after the bank warned that profits would miss forecasts again.",
    "The film won three awards.",
]
LABELS = [0, 1, 2, 0, 0, 1]
CPU = torch.device("cpu")


@pytest.fixture()
def tiny(tiny_bert_dir: Path) -> tuple:
    """A fresh tiny BERT classifier (3 classes) and its tokenizer."""
    return tf.load_classifier(3, tiny_bert_dir)


def test_minilm_weights_are_checked_against_their_digest(monkeypatch) -> None:  # noqa: ANN001
    assert (tf.minilm_path() / "model.safetensors").is_file()
    monkeypatch.setattr(tf, "MINILM_SHA256", "0" * 64)
    with pytest.raises(ChecksumError, match="model.safetensors"):
        tf.minilm_path()


def test_minilm_loads_offline_quietly(capsys: pytest.CaptureFixture) -> None:
    model, tokenizer = tf.load_classifier(5)
    out = capsys.readouterr()
    assert out.out == "" and "Loading" not in out.err
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    encoder = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("classifier"))
    assert encoder == 22_713_216  # 22.7 M, as the model card says
    assert tokenizer("Hello world")["input_ids"][0] == tokenizer.cls_token_id


def test_encoded_texts_truncate_and_keep_labels(tiny: tuple) -> None:
    _, tokenizer = tiny
    ds = tf.EncodedTexts(tokenizer, TEXTS, LABELS, max_length=8)
    assert len(ds) == 6 and max(ds.lengths) == 8 and ds[2]["labels"] == 2
    assert ds.lengths[2] == len(tokenizer(TEXTS[2])["input_ids"])
    with pytest.raises(ValueError, match="6 texts but 5 labels"):
        tf.EncodedTexts(tokenizer, TEXTS, LABELS[:5], max_length=8)
    with pytest.raises(TypeError, match="strings"):
        tf.EncodedTexts(tokenizer, [1, 2], [0, 1], max_length=8)


def test_dynamic_padding_pads_to_the_longest_row_only(tiny: tuple) -> None:
    _, tokenizer = tiny
    ds = tf.EncodedTexts(tokenizer, TEXTS, LABELS, max_length=32)
    for batch in tf.encoded_loader(ds, tokenizer, 2, shuffle=False, group_by_length=False):
        widths = batch["attention_mask"].sum(1)
        assert batch["input_ids"].shape[1] == int(widths.max())
    naive = next(iter(tf.encoded_loader(ds, tokenizer, 2, pad_to_max=True, group_by_length=False)))
    assert naive["input_ids"].shape[1] == 32


def test_length_grouping_wastes_less_padding(tiny: tuple) -> None:
    _, tokenizer = tiny
    texts = [" ".join(["word"] * n) for n in range(1, 61)]
    ds = tf.EncodedTexts(tokenizer, texts, [0] * 60, max_length=64)

    def padding(loader: torch.utils.data.DataLoader) -> float:
        batches = list(loader)
        return 1 - sum(int(b["attention_mask"].sum()) for b in batches) / sum(
            b["attention_mask"].numel() for b in batches
        )

    grouped = padding(tf.encoded_loader(ds, tokenizer, 6, group_by_length=True))
    shuffled = padding(tf.encoded_loader(ds, tokenizer, 6, group_by_length=False))
    assert grouped < 0.1 < 0.2 < shuffled


def test_padding_does_not_change_the_logits(tiny: tuple) -> None:
    model, tokenizer = tiny
    ds = tf.EncodedTexts(tokenizer, TEXTS, LABELS, max_length=32)
    model.eval()
    with torch.no_grad():
        outs = []
        for pad_to_max in (False, True):
            loader = tf.encoded_loader(ds, tokenizer, 6, shuffle=False, group_by_length=False,
                                       pad_to_max=pad_to_max)  # fmt: skip
            batch = next(iter(loader))
            outs.append(tf.classifier_logits(model, batch, CPU)[0])
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)


def test_one_step_equals_the_trainers(tiny: tuple, tmp_path: Path) -> None:
    """Our step and Hugging Face Trainer's training_step: same loss, same gradients."""
    model, tokenizer = tiny
    ds = tf.EncodedTexts(tokenizer, TEXTS, LABELS, max_length=32)
    batch = DataCollatorWithPadding(tokenizer)([ds[i] for i in range(len(ds))])
    ours, theirs = model, copy.deepcopy(model)
    ours.train()
    loss = tf.sequence_classification_step(ours, batch, CPU)
    loss.backward()
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = Trainer(model=theirs, args=args, data_collator=DataCollatorWithPadding(tokenizer))
    trainer.current_gradient_accumulation_steps = 1  # what Trainer.train sets before each step
    their_loss = trainer.training_step(theirs, dict(batch))
    assert torch.allclose(loss.detach(), their_loss, atol=1e-6)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        assert p.grad is not None and q.grad is not None, name
        torch.testing.assert_close(p.grad, q.grad, atol=1e-6, rtol=1e-5, msg=name)


def changed_parameters(model: torch.nn.Module, tokenizer: object) -> set[str]:
    """Names of the parameters one ``fit`` epoch changes."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ds = tf.EncodedTexts(tokenizer, TEXTS, LABELS, max_length=16)
    loader = tf.encoded_loader(ds, tokenizer, 3)
    fit(model, loader, config=TrainConfig(epochs=1, lr=1e-2, progress=False, device="cpu"),
        step=tf.sequence_classification_step)  # fmt: skip
    return {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}


def test_lora_trains_only_the_adapters_and_the_head(tiny: tuple) -> None:
    model, tokenizer = tiny
    lora = tf.apply_strategy(model, "lora", lora_rank=4)
    trainable = set(tf.trainable_parameters(lora))
    assert trainable and all("lora_" in n or ".classifier." in n for n in trainable)
    assert any("query.lora_A" in n for n in trainable)
    assert any("value.lora_B" in n for n in trainable)
    assert not any("key" in n or "pooler" in n for n in trainable)
    changed = changed_parameters(lora, tokenizer)
    assert changed <= trainable and any("lora_B" in n for n in changed)
    assert any("classifier" in n for n in changed)


def test_lora_with_pooler_also_trains_the_pooler(tiny: tuple) -> None:
    model, _ = tiny
    trainable = tf.trainable_parameters(tf.apply_strategy(model, "lora", train_pooler=True))
    assert any("pooler" in n for n in trainable)


def test_probe_trains_only_the_head(tiny: tuple) -> None:
    model, tokenizer = tiny
    probe = tf.apply_strategy(model, "probe")
    assert set(tf.trainable_parameters(probe)) == {"classifier.weight", "classifier.bias"}
    assert changed_parameters(probe, tokenizer) == {"classifier.weight", "classifier.bias"}
    with_pooler = tf.apply_strategy(copy.deepcopy(model), "probe", train_pooler=True)
    pooler_too = set(tf.trainable_parameters(with_pooler))
    assert {"bert.pooler.dense.weight", "classifier.bias"} <= pooler_too


def test_bad_strategy_is_refused(tiny: tuple) -> None:
    model, _ = tiny
    with pytest.raises(ValueError, match="strategy must be one of"):
        tf.apply_strategy(model, "adapters")
    with pytest.raises(ValueError, match="no classification head"):
        tf.apply_strategy(torch.nn.Linear(2, 2), "probe")


def test_fit_trains_a_transformer_and_evaluates_it(tiny: tuple) -> None:
    model, tokenizer = tiny
    ds = tf.EncodedTexts(tokenizer, TEXTS * 4, LABELS * 4, max_length=32)
    loader = tf.encoded_loader(ds, tokenizer, 4, seed=1)
    val = tf.encoded_loader(ds, tokenizer, 8, shuffle=False)
    config = TrainConfig(epochs=20, lr=3e-3, monitor="accuracy", patience=None, progress=False,
                         device="cpu")  # fmt: skip
    result = fit(model, loader, val, step=tf.sequence_classification_step, config=config)
    history = result.history
    assert history["train_loss"].iloc[-1] < 0.7 * history["train_loss"].iloc[0]
    scores = evaluate_classifier(model, val, CPU)  # the best epoch's weights are loaded
    assert scores["accuracy"] == result.best_metric > 0.5  # the majority class is 0.5


def test_throughput_counts_real_and_padded_tokens(tiny: tuple) -> None:
    model, tokenizer = tiny
    ds = tf.EncodedTexts(tokenizer, TEXTS, LABELS, max_length=32)
    naive = tf.encoded_loader(ds, tokenizer, 3, shuffle=False, pad_to_max=True,
                              group_by_length=False)  # fmt: skip
    speed = tf.training_throughput(model, naive, CPU, steps=2)  # timed: rows 3-5, then 0-2
    assert speed["examples_per_s"] > 0
    assert speed["padded_tokens_per_s"] == pytest.approx(32 * speed["examples_per_s"])
    real_per_row = sum(ds.lengths) / len(ds)  # every row once, its real tokens only
    assert speed["tokens_per_s"] == pytest.approx(real_per_row * speed["examples_per_s"])


def test_model_flops_equal_pytorchs_flop_counter(tiny: tuple) -> None:
    """The MFU formula's FLOPs per step against torch.utils.flop_counter on one training step."""
    from torch.utils.flop_counter import FlopCounterMode

    model, tokenizer = tiny
    model.set_attn_implementation("eager")  # the counter does not see fused attention kernels
    ds = tf.EncodedTexts(tokenizer, TEXTS, LABELS, max_length=16)
    batch = next(iter(tf.encoded_loader(ds, tokenizer, 6, pad_to_max=True, group_by_length=False)))
    model.train()
    with FlopCounterMode(display=False) as counter:
        tf.sequence_classification_step(model, batch, CPU).backward()
    rows, width = batch["attention_mask"].shape
    per_step = {"padded_tokens_per_s": rows * width, "examples_per_s": rows,
                "attention_pairs_per_s": rows * width**2}  # fmt: skip
    ours = tf.model_flops_utilisation(model, per_step, peak_tflops=1e-12)  # = FLOPs per step
    assert ours == pytest.approx(counter.get_total_flops(), rel=1e-3)


def test_bf16_peak_is_known_for_listed_gpus_only() -> None:
    assert tf.bf16_peak_tflops(CPU) is None
    assert tf.BF16_PEAK_TFLOPS["H200"] == 989.0
