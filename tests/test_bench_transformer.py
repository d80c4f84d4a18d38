"""benchmarks/bench_transformer.py: naive vs tuned training throughput on a few rows."""

from __future__ import annotations

import json
import sys

import pytest

from companion.config import REPO_ROOT
from companion.data import load_dataset
from companion.transformer import EncodedTexts, load_classifier

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import bench_transformer  # noqa: E402


def test_both_paddings_give_the_same_predictions() -> None:
    rows = load_dataset("bbc").head(6)
    model, tokenizer = load_classifier(5)
    data = EncodedTexts(tokenizer, rows["text"], rows["label"], max_length=48)
    assert bench_transformer.same_predictions(model, tokenizer, data)


def test_a_short_run_writes_its_report(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    report = tmp_path / "results" / "bench.json"
    argv = ["bench_transformer.py", "--dataset", "ag_news", "--max-len", "128", "--batch", "4",
            "--steps", "2", "--rows", "24", "--json", str(report)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    bench_transformer.main()
    result = json.loads(report.read_text())
    assert set(result["rows"]) == {"naive", "tuned"} and result["same_predictions"] is True
    naive = result["rows"]["naive"]
    assert naive["padded_tokens_per_s"] > naive["tokens_per_s"] > 0  # naive pads every row
    positions = {name: row["padded_tokens_per_s"] / row["examples_per_s"]
                 for name, row in result["rows"].items()}  # fmt: skip
    assert positions["naive"] == pytest.approx(128) and positions["tuned"] < 128  # less padding
    assert result["command"].endswith(str(report)) and "ag_news, max_len 128" in result["setting"]
