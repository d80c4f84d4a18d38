"""Tests of companion.sft: the loss sees exactly the response tokens, checked by hand."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from companion import llm, sft
from companion.sft import IGNORE, chat_example, collate_sft

CPU = torch.device("cpu")

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


@pytest.fixture(scope="module")
def tiny_llama(tokenizer) -> LlamaForCausalLM:  # noqa: ANN001
    """A one-layer random Llama over SmolLM2's vocabulary."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    return LlamaForCausalLM(config).eval()


def test_our_loss_equals_trl_completion_only_loss(tokenizer, tiny_llama, tmp_path) -> None:  # noqa: ANN001
    """TRL's SFTTrainer, prompt-completion data, completion_only_loss: same tokens, same loss."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    rows = [
        {
            "prompt": [{"role": "user", "content": p}],
            "completion": [{"role": "assistant", "content": r}],
        }
        for p, r in PAIRS
    ]
    args = SFTConfig(
        output_dir=str(tmp_path),
        completion_only_loss=True,
        report_to="none",
        use_cpu=True,
        per_device_train_batch_size=len(PAIRS),
        max_length=None,
    )
    trainer = SFTTrainer(
        model=tiny_llama,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    ours = [chat_example(tokenizer, p, r) for p, r in PAIRS]
    for row, example in zip(trainer.train_dataset, ours, strict=True):
        assert row["input_ids"] == example["input_ids"] and row["labels"] == example["labels"]
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        theirs = trainer.compute_loss(tiny_llama, batch)
        loss = sft.causal_lm_step(tiny_llama, collate_sft(ours, tokenizer.pad_token_id), CPU)
    torch.testing.assert_close(loss, theirs)


def test_sft_loader_buckets_and_evaluate_counts_each_token(tokenizer, tiny_llama) -> None:  # noqa: ANN001
    examples = [chat_example(tokenizer, f"Say {'very ' * n}much", "ok " * n) for n in range(1, 9)]
    loader = sft.sft_loader(sft.SFTDataset(examples), tokenizer.pad_token_id, 4, shuffle=False)
    batches = list(loader)
    assert [len(b["input_ids"]) for b in batches] == [4, 4]
    assert batches[0]["input_ids"].shape[1] < batches[1]["input_ids"].shape[1]
    whole = collate_sft(examples, tokenizer.pad_token_id)
    with torch.no_grad():
        expected = float(tiny_llama(**whole).loss)
    tiny_llama.train()  # the caller's mode comes back
    got = sft.evaluate_causal_lm(tiny_llama, loader, CPU)["loss"]
    assert got == pytest.approx(expected, rel=1e-5) and tiny_llama.training
    tiny_llama.eval()
    with pytest.raises(ValueError, match="no response tokens"):
        sft.evaluate_causal_lm(tiny_llama, [], CPU)
    with pytest.raises(ValueError, match="no examples"):
        sft.SFTDataset([])


def test_constrained_scores_equal_full_forward_log_probabilities(tokenizer, tiny_llama) -> None:  # noqa: ANN001
    answers = ["business", "entertainment", "politics", "sport", "tech"]
    prompts = [sft.classify_prompt("Shares rose in London.", answers), "Pick one."]
    shots = [("Pick a colour.", "tech")]
    scores = sft.score_answers(tiny_llama, tokenizer, prompts, answers, shots, progress=False)
    assert scores.shape == (2, 5)
    for row, prompt in enumerate(prompts):
        prompt_ids = sft.chat_prompt_ids(tokenizer, prompt, shots)
        for col, answer in enumerate(sft.answer_ids(tokenizer, answers)):
            ids = torch.tensor([prompt_ids + answer])
            with torch.no_grad():
                logp = torch.log_softmax(tiny_llama(ids).logits[0], -1)
            n = len(prompt_ids)
            expected = sum(float(logp[n - 1 + j, t]) for j, t in enumerate(answer))
            assert scores[row, col] == pytest.approx(expected, abs=1e-4)
    assert tokenizer.decode(sft.answer_ids(tokenizer, ["sport"])[0]) == "sport<|im_end|>\n"


def test_generation_is_greedy_and_batching_does_not_change_it(tokenizer, tiny_llama) -> None:  # noqa: ANN001
    prompts = [sft.headline_prompt("Shares rose."), sft.headline_prompt("The long match ended.")]
    batched = sft.generate_responses(
        tiny_llama, tokenizer, prompts, 5, batch_size=2, progress=False
    )
    tiny_llama.train()  # the caller's mode comes back
    alone = [
        sft.generate_responses(tiny_llama, tokenizer, [p], 5, progress=False)[0] for p in prompts
    ]
    assert batched == alone and tiny_llama.training
    tiny_llama.eval()
    for prompt, answer in zip(prompts, batched, strict=True):  # greedy, step by step by hand
        ids = sft.chat_prompt_ids(tokenizer, prompt)
        start = len(ids)
        with torch.no_grad():
            for _ in range(5):
                ids.append(int(tiny_llama(torch.tensor([ids])).logits[0, -1].argmax()))
                if ids[-1] == tiny_llama.generation_config.eos_token_id:
                    break
        assert answer == tokenizer.decode(ids[start:], skip_special_tokens=True).strip()


def test_clip_tokens_keeps_the_first_tokens(tokenizer) -> None:  # noqa: ANN001
    text = "One two three four five six seven eight."
    clipped = sft.clip_tokens(tokenizer, text, 3)
    assert text.startswith(clipped) and len(tokenizer(clipped).input_ids) == 3
    assert sft.clip_tokens(tokenizer, "Short.", 50) == "Short."
