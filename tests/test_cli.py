"""Tests of the command line: configs are checked, runs resume, and two processes agree."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from companion import cli

CONFIG = """
task = "classify"
dataset = "bbc"
model = "{model}"
strategy = "full"
epochs = 2
batch_size = 4
lr = 1e-3
max_length = 32
rows_per_class = 2
output_dir = "{out}"
"""


def write_config(folder: Path, model: Path, out: Path, **extra: object) -> Path:
    """A tiny run's TOML file in ``folder``."""
    text = CONFIG.format(model=model, out=out)
    text += "".join(f"{k} = {json.dumps(v)}\n" for k, v in extra.items())
    path = folder / f"{out.name}.toml"
    path.write_text(text)
    return path


def weights(out: Path) -> dict[str, torch.Tensor]:
    """The trained model a run saved."""
    return load_file(out / "model" / "model.safetensors")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('output_dir = "x"\nepoch = 3\n', "unknown keys \\['epoch'\\]"),
        ('output_dir = "x"\nepochs = "3"\n', "epochs must be a int, got '3'"),
        ('output_dir = "x"\nstrategy = "probe"\ntask = "sft"\n', "strategy must be one of"),
        ('output_dir = "x"\nlr = 0\n', "lr must be > 0"),
        ('output_dir = "x"\ndataset = "imdb"\n', "dataset must be one of \\['20newsgroups'"),
        ('output_dir = "x"\nwarmup_ratio = 1.0\n', "warmup_ratio must be >= 0 and < 1"),
        ('output_dir = "x"\nwarmup_ratio = -0.1\n', "warmup_ratio must be >= 0 and < 1"),
        ('output_dir = "x"\nweight_decay = -0.01\n', "weight_decay must be >= 0"),
        ('output_dir = "x"\nseed = -1\n', "seed must be >= 0"),
        ("epochs = 3\n", "output_dir is required"),
        ("epochs = = 3\n", "not valid TOML"),
    ],
)
def test_bad_configs_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "run.toml"
    path.write_text(text)
    with pytest.raises(cli.ConfigError, match=message) as err:
        cli.read_config(path)
    assert str(path) in str(err.value)


def test_a_bad_value_stops_the_run_before_any_data_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("data were loaded before the configuration was checked")

    monkeypatch.setattr(cli, "load_dataset", no_loading)
    path = tmp_path / "run.toml"
    path.write_text('output_dir = "x"\nseed = -3\n')
    with pytest.raises(SystemExit) as stop:
        cli.main(["finetune", "--config", str(path)])
    assert stop.value.code == 2 and f"{path}: seed must be >= 0" in capsys.readouterr().err


class Saves:
    """Stands for a model or tokenizer; ``fail`` makes its save stop half-way."""

    def __init__(self, name: str, fail: bool = False) -> None:
        self.name, self.fail = name, fail

    def save_pretrained(self, folder: Path) -> None:
        (Path(folder) / f"{self.name}.json").write_text("{}")
        if self.fail:
            raise OSError("disk full")


def test_outputs_are_the_model_then_metrics(tmp_path: Path) -> None:
    import pandas as pd

    history, metrics = pd.DataFrame({"epoch": [1]}), {"test": {"accuracy": 1.0}}
    run = {"model": Saves("model", fail=True), "tokenizer": Saves("tokenizer")}
    with pytest.raises(OSError, match="disk full"):
        cli._write_outputs(tmp_path / "out", run, history, metrics)
    assert not (tmp_path / "out").exists()  # no metrics.json, no half-written model
    (tmp_path / "out").mkdir()
    with pytest.raises(OSError, match="disk full"):
        cli._write_outputs(tmp_path / "out", run, history, metrics)
    assert list((tmp_path / "out").iterdir()) == []
    run["model"].fail = False
    cli._write_outputs(tmp_path / "out", run, history, metrics)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "history.csv", "metrics.json", "model",
    ]  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "out" / "model").iterdir()) == [
        "model.json", "tokenizer.json",
    ]  # fmt: skip


def test_missing_config_file_is_a_clear_error(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit) as stop:
        cli.main(["finetune", "--config", str(tmp_path / "none.toml")])
    assert (
        stop.value.code == 2 and "none.toml: no such configuration file" in capsys.readouterr().err
    )


def test_python_dash_m_companion_is_the_command_line(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "companion", "finetune", "--config", str(tmp_path / "none.toml")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 2 and "none.toml: no such configuration file" in run.stderr


def test_a_run_writes_metrics_and_resumes_after_a_stop(tiny_bert_dir: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    assert (
        cli.main(["finetune", "--config", str(write_config(tmp_path, tiny_bert_dir, whole))]) == 0
    )
    metrics = json.loads((whole / "metrics.json").read_text())
    assert (
        metrics["processes"] == 1 and metrics["ranks_agree"] and metrics["resumed_from_epoch"] == 0
    )
    assert (whole / "history.csv").read_text().count("\n") == 3  # header + 2 epochs
    assert_test_metrics_of_the_saved_model(whole, tiny_bert_dir, metrics["test"])

    split = tmp_path / "split"
    config = write_config(tmp_path, tiny_bert_dir, split)
    cli.main(["finetune", "--config", str(config), "--stop-after", "1"])
    assert not (split / "metrics.json").exists() and (split / "checkpoints").is_dir()
    cli.main(["finetune", "--config", str(config)])
    assert json.loads((split / "metrics.json").read_text())["resumed_from_epoch"] == 1
    for name, tensor in weights(whole).items():  # bit-identical to the uninterrupted run
        assert torch.equal(tensor, weights(split)[name]), name


def assert_test_metrics_of_the_saved_model(out: Path, base: Path, test: dict) -> None:
    """The saved model, run one test article at a time, scores what metrics.json says."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from companion.data import load_dataset

    frame = load_dataset("bbc", seed=0)  # the config's data set, rows_per_class 2
    rows = frame.groupby(["split", "label"], group_keys=False).head(2)
    rows = rows[rows["split"] == "test"]
    model = AutoModelForSequenceClassification.from_pretrained(out / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(base)
    with torch.no_grad():
        probs = [torch.softmax(model(**tokenizer(text, truncation=True, max_length=32,
                                                 return_tensors="pt")).logits[0], -1)
                 for text in rows["text"]]  # fmt: skip
    probs = torch.stack(probs).numpy()
    labels, predicted = rows["label"].to_numpy(), probs.argmax(1)
    assert test["accuracy"] == pytest.approx(accuracy_score(labels, predicted))
    assert test["macro_f1"] == pytest.approx(f1_score(labels, predicted, average="macro"))
    assert test["loss"] == pytest.approx(log_loss(labels, probs, labels=range(5)), rel=1e-4)


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_with_the_same_global_batch(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """torchrun, 2 CPU processes (gloo): identical weights on both, equal to 1 process."""
    single, double = tmp_path / "single", tmp_path / "double"
    cli.main(["finetune", "--config", str(write_config(tmp_path, tiny_bert_dir, single))])
    env = os.environ | {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(free_port()), "-m", "companion", "finetune",
               "--config", str(write_config(tmp_path, tiny_bert_dir, double))]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((double / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["ranks_agree"]  # checked across ranks at the end
    one, two = weights(single), weights(double)
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-5, rtol=1e-4, msg=name)
    assert any(not torch.equal(one[n], load_file(tiny_bert_dir / "model.safetensors")[n])
               for n in one)  # fmt: skip


def test_an_sft_run_with_lora_saves_the_adapter(tmp_path: Path) -> None:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from companion import llm

    tokenizer = AutoTokenizer.from_pretrained(llm.smollm2_gguf().parent, gguf_file=llm.SMOLLM2_FILE)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    folder = tmp_path / "tiny-llama"
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    out = tmp_path / "sft"
    path = write_config(tmp_path, folder, out, lora_rank=4)
    path.write_text(path.read_text().replace('"classify"', '"sft"').replace('"full"', '"lora"'))
    assert cli.main(["finetune", "--config", str(path)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["task"] == "sft" and metrics["test"]["loss"] > 0
    assert (out / "model" / "adapter_config.json").is_file()
    adapter = load_file(out / "model" / "adapter_model.safetensors")
    assert adapter and all("lora_" in name for name in adapter)  # the adapter alone is saved
    lora_b = [t for name, t in adapter.items() if "lora_B" in name]
    assert lora_b and any(t.abs().max() > 0 for t in lora_b)  # B starts at zero: it trained
