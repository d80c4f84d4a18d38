"""Tests of companion.sft: the loss sees exactly the response tokens, checked by hand."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from companion import llm
from companion.sft import IGNORE, chat_example, collate_sft

PAIRS = [
    ("Classify this news article: shares rose.", "business"),
    ("Write a headline for: the match ended 2-1 after extra time.", "Late winner"),
]


@pytest.fixture(scope="module")
def tokenizer():  # noqa: ANN201
    """SmolLM2's tokenizer and chat template, read from its GGUF file."""
    return AutoTokenizer.from_pretrained(llm.smollm2_gguf().parent, gguf_file=llm.SMOLLM2_FILE)


def test_labels_keep_exactly_the_response_tokens(tokenizer) -> None:  # noqa: ANN001
    for prompt, response in PAIRS:
        example = chat_example(tokenizer, prompt, response)
        kept = [t for t in example["labels"] if t != IGNORE]
        assert tokenizer.decode(kept) == f"{response}<|im_end|>\n"
        first = example["labels"].index(kept[0])
        assert all(t == IGNORE for t in example["labels"][:first])
        assert example["labels"][first:] == example["input_ids"][first:]
        assert tokenizer.decode(example["input_ids"][:first]).endswith("<|im_start|>assistant\n")


def test_loss_is_the_mean_cross_entropy_over_response_tokens_only(tokenizer) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    model = LlamaForCausalLM(config).eval()
    batch = collate_sft([chat_example(tokenizer, p, r) for p, r in PAIRS], tokenizer.pad_token_id)
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE).all()
    with torch.no_grad():
        loss = model(**batch).loss
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    terms = []
    for row in range(len(PAIRS)):
        for t in range(1, batch["input_ids"].shape[1]):
            target = int(batch["labels"][row, t])
            if target != IGNORE:  # position t is predicted from the logits at t - 1
                terms.append(-torch.log_softmax(logits[row, t - 1], dim=-1)[target])
    n_response = sum(len(tokenizer(f"{r}<|im_end|>\n").input_ids) for _, r in PAIRS)
    assert len(terms) == n_response
    torch.testing.assert_close(loss, torch.stack(terms).mean())


def test_bad_batches_are_refused() -> None:
    with pytest.raises(ValueError, match="no examples"):
        collate_sft([], 0)
    with pytest.raises(ValueError, match="3 input ids but 2 labels"):
        collate_sft([{"input_ids": [1, 2, 3], "labels": [1, 2]}], 0)
