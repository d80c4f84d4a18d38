"""The book's headline results, read from the stored full runs the rendered book shows.

nbval runs the chapters in smoke mode only, and a chapter's digest covers its code, so a change
in ``companion`` that moves a result would leave the prose stale without failing anything. These
tests read the stored tables and check what the prose says about them.
"""

from __future__ import annotations

import re

import nbformat
import pandas as pd
import pytest

from companion.config import REPO_ROOT
from companion.notebooks import stored_table

NOTEBOOKS = REPO_ROOT / "notebooks"


def printed(path, marker: str) -> str:
    """What the one code cell containing ``marker`` printed (its stored stdout)."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if marker in c.source]
    assert len(cells) == 1, f"{path.name}: {len(cells)} cells contain {marker!r}"
    return "".join(o.get("text", "") for o in cells[0].outputs if o.output_type == "stream")


def articles(accuracy: float, n_test: int = 210) -> int:
    """An accuracy on BBC's test split as a count of articles (the stored tables round to 0.001)."""
    return round(accuracy * n_test)


def row_named(column: pd.Series, prefix: str) -> float:
    """The one value whose row name starts with ``prefix`` (names that carry a setting)."""
    return column[column.index.str.startswith(prefix)].item()


@pytest.fixture(scope="module")
def minilm():
    """Chapter 9's results table (strategies of MiniLM, TF-IDF and chapter 8's LSTMs)."""
    return stored_table(NOTEBOOKS / "09_transformer_fine_tuning.ipynb", "table = pd.DataFrame({")


def test_minilm_full_fine_tuning_reaches_97_percent_on_bbc(minilm) -> None:
    assert minilm.loc["MiniLM: full fine-tuning", "accuracy"] >= 0.97


def test_chapter_9_reading_of_its_table(minilm) -> None:
    """LoRA matches full fine-tuning, the pooler adds less than the encoder lacks, TF-IDF within a
    point; where the LSTMs stand."""
    acc = minilm["accuracy"]
    full, probe = acc["MiniLM: full fine-tuning"], acc["MiniLM: linear probe"]
    lora = row_named(acc, "MiniLM: LoRA")
    assert articles(lora) == articles(full)
    pooler = acc["MiniLM: linear probe + pooler"]
    assert 0 <= pooler - probe < full - pooler
    assert full - 0.01 <= acc["TF-IDF + logistic regression"] <= full
    lstm_tuned, lstm_scratch = (
        acc["LSTM (ch. 8): full fine-tuning"],
        acc["LSTM (ch. 8): from scratch (full training)"],
    )
    assert probe < lstm_tuned < lora and abs(lstm_tuned - pooler) <= 0.005  # ties with it
    assert lstm_scratch < probe


def test_chapter_9_newsgroups_beats_tf_idf_and_is_level_with_bert_base() -> None:
    news = stored_table(NOTEBOOKS / "09_transformer_fine_tuning.ipynb", "news_run = run_strategy")
    acc = news["test accuracy"]
    ours = acc["MiniLM full fine-tuning"]
    assert ours >= acc["TF-IDF + LR (published)"] + 0.015
    assert abs(ours - acc["BERT-base (published)"]) <= 0.005


def test_chapter_1_pretrained_vectors_are_far_better_on_every_benchmark() -> None:
    scores = stored_table(NOTEBOOKS / "01_glove.ipynb", "ours = result.keyed_vectors()")
    gap = scores["6B, shared items"] - scores["ours, shared items"]
    assert (gap >= 0.1).all(), gap


def test_chapter_1_training_lowers_the_loss_and_our_vectors_carry_relatedness() -> None:
    """The loss falls to well under half; WS-353 and MEN show signal, SimLex-999 little."""
    path = NOTEBOOKS / "01_glove.ipynb"
    losses = re.search(
        r"epoch 1 ([\d.]+), epoch \d+ ([\d.]+)", printed(path, "result = train_glove(cooc")
    )
    first, last = map(float, losses.groups())
    assert last < first / 2
    ours = stored_table(path, "ours = result.keyed_vectors()")["ours"]
    assert min(ours["WS-353"], ours["MEN"]) > 0.15 > 0.1 > ours["SimLex-999"]


def test_chapter_2_only_the_lstm_recalls_across_long_gaps() -> None:
    """All solve T = 5; from T = 10 on the RNNs sit near chance (1/8), the LSTM near 1."""
    text = printed(NOTEBOOKS / "02_lstm.ipynb", "accuracy[name].append")
    row = re.compile(r"^\s*(RNN|article's gated RNN|LSTM, b_f = 5)((?:\s+[\d.]+)+)$", re.MULTILINE)
    rows = {name: [float(a) for a in accs.split()] for name, accs in row.findall(text)}
    assert len(rows) == 3 and all(accs[0] == 1.0 for accs in rows.values())
    for name in ("RNN", "article's gated RNN"):
        assert max(rows[name][1:]) < 0.2, name
    assert min(rows["LSTM, b_f = 5"]) >= 0.99


def test_chapter_5_lead_baseline_stays_far_ahead_of_the_decoder() -> None:
    rouge = stored_table(NOTEBOOKS / "05_decoder.ipynb", "rouge_table = pd.DataFrame(")
    assert (rouge.loc["lead 5"] >= 2 * rouge.loc[["greedy", "beam 4"]].max()).all()


def test_chapter_6_glove_lstm_meets_95_percent_within_sampling_error() -> None:
    """The target (mean of 3 seeds) within the test split's sampling error, GloVe 6B > own >
    random, TF-IDF first; the diagnosis: N(0, 1) random is the weakest start, the rescaled
    own GloVe and small random vectors reach GloVe 6B, more epochs alone do not."""
    path = NOTEBOOKS / "06_classifier.ipynb"
    table = stored_table(path, "table = pd.DataFrame(results)[[")
    acc = table["accuracy"]
    error = printed(path, "table = pd.DataFrame(results)[[")
    half_width = float(re.search(r"\(binomial, 95%\): ±([\d.]+)%", error).group(1)) / 100
    assert abs(acc["BiLSTM, GloVe 6B embeddings"] - 0.95) < half_width / 3
    assert (
        acc["BiLSTM, GloVe 6B embeddings"]
        > acc["BiLSTM, own GloVe embeddings"]
        > acc["BiLSTM, random embeddings"]
    )
    assert acc.idxmax() == "TF-IDF + logistic regression"
    assert (table.loc[table["seeds"] > 1, "seeds"] == 3).all()
    arms = stored_table(path, "def entry_std(table):")["accuracy"]
    assert arms.idxmin() == "random"
    best_other = arms.drop(["GloVe 6B", "random", "own GloVe"])
    assert (best_other > arms["random"] + 0.05).all()
    rescaled = arms[["random, own GloVe's scale", "own GloVe, random's scale"]]
    assert (arms["GloVe 6B"] - rescaled < 0.02).all()  # scale alone closes the gap
    longer = arms["own GloVe, 25 epochs"]
    assert longer - arms["own GloVe"] < 0.01 < rescaled.min() - longer  # epochs alone do not


def test_chapter_7_language_model_beats_both_baselines() -> None:
    ppl = stored_table(NOTEBOOKS / "07_pretraining.ipynb", "unigram = torch.bincount")
    ppl = ppl["held-out perplexity"]
    assert ppl["LSTM language model"] < ppl["unigram"] < ppl["uniform"]


def test_chapter_4_padding_bug_costs_the_classifier_its_task() -> None:
    """Packed far above the article's x[:, -1] (one class); the last real token recovers most."""
    runs = stored_table(NOTEBOOKS / "04_encoder.ipynb", "n_classes = len(label_names)")
    packed, article = runs.loc["packed (correct)"], runs.loc["article (pad to 128, x[:, -1])"]
    last_token = runs.loc["padded, read at the last real token"]
    assert packed["test accuracy"] >= article["test accuracy"] + 0.3
    assert article["test macro-F1"] <= 0.1 < packed["test macro-F1"]
    # reading position 128 is most of the gap; the backward half, beyond the seeds' spread, the rest
    gap = packed["test accuracy"] - last_token["test accuracy"]
    assert 2 * gap < packed["test accuracy"] - article["test accuracy"]
    assert gap > 2 * max(packed["accuracy sd"], last_token["accuracy sd"])


def test_chapter_8_strategies_read_as_the_prose_says() -> None:
    """Full and multi-task first (one test article apart), multi-task forgetting a fifth as much as
    full fine-tuning and only ULMFiT less, the probe far behind."""
    path = NOTEBOOKS / "08_supervised_fine_tuning.ipynb"
    runs = stored_table(path, "def head_only")
    acc, ppl = runs["accuracy"], runs["LM perplexity after"]
    top = acc.nlargest(2)
    assert set(top.index) == {"full fine-tuning", "multi-task: topic + language model"}
    assert articles(top.iloc[0]) - articles(top.iloc[1]) <= 1
    moved = ppl.drop(["selective: head only", "from scratch (full training)"])
    assert moved.idxmin() == "ULMFiT: discriminative + slanted + gradual"
    assert moved.drop(moved.idxmin()).idxmin() == "multi-task: topic + language model"
    assert ppl["multi-task: topic + language model"] * 5 < ppl["full fine-tuning"]
    assert acc["selective: head only"] < 0.5
    for weaker in ("selective: top layer only", "ULMFiT: discriminative + slanted + gradual"):
        assert acc[weaker] <= acc["full fine-tuning"] - 0.05


def test_chapter_8_lambda_sweep_trades_accuracy_for_remembering() -> None:
    """The exercise's expected answer: a larger LM weight lowers the perplexity after fine-tuning
    and the topic accuracy; at 2 the accuracy is no better than from scratch."""
    path = NOTEBOOKS / "08_supervised_fine_tuning.ipynb"
    sweep = stored_table(path, "for lm_weight in (0.1, 2.0):")
    scratch = stored_table(path, "def head_only").loc["from scratch (full training)", "accuracy"]
    assert sweep["LM perplexity after"].is_monotonic_decreasing
    assert sweep["accuracy"].is_monotonic_decreasing
    assert articles(sweep["accuracy"].iloc[-1]) <= articles(scratch)


def test_chapter_8_label_budgets_glove_6b_transfers_our_pre_training_does_not() -> None:
    """Pre-trained and scratch level at 5 and 10 labels per class (within a seed sd), scratch
    ahead at 25 and 50, level with every label (within a test article); GloVe 6B matches
    scratch-with-every-label at 50 labels per class and beats it at 100."""
    grid = stored_table(NOTEBOOKS / "08_supervised_fine_tuning.ipynb", "def budget_cell")
    mean, sd = grid["mean"], grid["std"]
    ours = ["pre-trained", "scratch"]
    for k in ("5", "10"):
        assert abs(mean.loc[k, "pre-trained"] - mean.loc[k, "scratch"]) <= sd.loc[k, ours].max()
    for k in ("25", "50"):
        assert mean.loc[k, "scratch"] > mean.loc[k, "pre-trained"]
    assert abs(mean.loc["all", "pre-trained"] - mean.loc["all", "scratch"]) <= 1 / 210
    assert mean.loc["50", "GloVe 6B"] >= mean.loc["all", "scratch"] - 1 / 210
    assert mean.loc["100", "GloVe 6B"] >= mean.loc["all", "scratch"] + 5 / 210


def test_chapter_10_fine_tuning_beats_prompting_and_the_lead_and_is_level_with_minilm(
    minilm,
) -> None:
    """Zero-shot < few-shot < LoRA, full; fine-tuned headlines beat the lead; on the GPU budget the
    fine-tuned LLM is level with MiniLM (within two test articles)."""
    path = NOTEBOOKS / "10_llm_supervised_fine_tuning.ipynb"
    acc = stored_table(path, 'table.index.name = f"SmolLM2-135M')["accuracy"]
    lora = row_named(acc, "LoRA")
    assert acc["zero-shot"] < acc["few-shot (5 examples)"] < min(lora, acc["full fine-tuning"])
    assert abs(acc["full fine-tuning"] - minilm.loc["MiniLM: full fine-tuning", "accuracy"]) <= 0.01
    rouge = stored_table(path, "rouge = pd.DataFrame(")
    lead = row_named(rouge["rouge1"], "lead")
    assert (
        rouge.loc["SmolLM2 full fine-tuning", "rouge1"]
        > lead
        > rouge.loc["SmolLM2 zero-shot", "rouge1"]
    )


def test_chapter_1_glove_c_side_by_side_reads_as_the_prose_says() -> None:
    """Faster than glove.c; agreement like glove.c's with itself; the bias rate explains MEN."""
    runs = stored_table(NOTEBOOKS / "01_glove.ipynb", "side_by_side = compare_with_glove_c(")
    ours, bias_one = runs.loc["companion"], runs.loc["companion, bias rate 1"]
    theirs, again = runs.loc["glove.c"], runs.loc["glove.c, other initial vectors"]
    assert ours["time / glove.c"] < 0.8
    assert ours["neighbour_overlap"] >= again["neighbour_overlap"] - 0.01
    assert min(ours["cosine_spearman"], again["cosine_spearman"]) > 0.99
    assert abs(ours["WS-353"] - theirs["WS-353"]) <= 0.02
    assert theirs["MEN"] - ours["MEN"] >= 0.03 > abs(bias_one["MEN"] - theirs["MEN"])
    for measure in ("neighbour_overlap", "cosine_spearman"):
        assert bias_one[measure] > again[measure]


def test_chapter_11_integrated_gradients_are_complete_and_the_most_faithful() -> None:
    """Completeness closes with the steps; deleting IG's tokens costs far more than the others'."""
    path = NOTEBOOKS / "11_interpretability.ipynb"
    gaps = stored_table(path, "completeness = pd.DataFrame(rows)")["relative gap"]
    assert gaps.iloc[-1] < 0.001 and gaps.iloc[-1] < gaps.iloc[0] / 100
    deletion = stored_table(path, "deletion = pd.DataFrame(").iloc[-1]  # the most tokens deleted
    ig, gxi, rollout = deletion[["integrated gradients", "gradient x input", "attention rollout"]]
    assert 0.2 < gxi / ig < 0.3 and 0.15 < rollout / ig < 0.25  # "a quarter", "a fifth"
    assert min(gxi, rollout) > 8 * deletion["random"]  # "eight to eleven times over"
    assert abs(deletion["random"]) < 0.02  # random deletions barely move the prediction
