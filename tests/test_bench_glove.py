"""benchmarks/bench_glove.py: the side-by-side run with glove.c, on a tiny corpus."""

from __future__ import annotations

import sys

import pytest

from companion.config import REPO_ROOT
from companion.glove_reference import build_glove_c

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from bench_glove import GloveBench, build_matrix, compare_with_glove_c  # noqa: E402


def test_comparison_with_glove_c_reports_every_run(tmp_path) -> None:
    settings = GloveBench(epochs=2, dim=8, min_count=2, threads=1, agreement_words=60,
                          batch_size=512, device="cpu")  # fmt: skip
    cooc, seconds = build_matrix(settings, limit=20)
    table = compare_with_glove_c(cooc, settings, build_glove_c(tmp_path))
    assert list(table.index) == ["companion", "glove.c", "companion, bias rate 1",
                                 "glove.c, other initial vectors"]  # fmt: skip
    assert seconds > 0 and {"WS-353", "SimLex-999", "MEN"} <= set(table.columns)
    loss = table["loss, epoch 2"]  # with glove.c's bias rate, the same start, the same loss
    assert loss["companion, bias rate 1"] == pytest.approx(loss["glove.c"], rel=0.01)
    agree = table["cosine_spearman"]  # the same start agrees with glove.c; another one does not
    assert agree["companion, bias rate 1"] > 0.9 > 0.5 > agree["glove.c, other initial vectors"]
