"""Pre-training: an LSTM language model on unlabelled news, with tied input/output embeddings.

The model reads a token stream and predicts each next token: the loss is chapter 3's
cross-entropy over the vocabulary, averaged over positions, and perplexity is its
exponential. Its encoder is chapter 4's forward-only ``Encoder``, so after pre-training it
drops into ``NewsClassifier`` unchanged (chapter 8). The output layer reuses the input
embedding table (weight tying), through a projection when the LSTM is wider than the
embeddings.

``pretraining_texts`` gathers the corpus and removes every text of the downstream
validation and test splits; ``pretrain`` trains with the book's one loop ``fit`` into a
checkpoint folder, so a finished pre-training is read back instead of repeated.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from companion.checks import check_ints
from companion.config import cache_dir, is_smoke
from companion.data import DatasetNotFoundError, load_dataset
from companion.encoder import Encoder
from companion.losses import perplexity
from companion.text import Vocab, tokenize
from companion.train import TrainConfig, TrainResult, evaluation_mode, fit

EOS = "</s>"  # ends every document in the token stream
HELD_OUT = ("validation", "test")


def normalise(text: str) -> str:
    """A text as its lower-cased tokens joined by spaces: the key for duplicate checks."""
    return " ".join(tokenize(text))


def held_out_keys(downstream: pd.DataFrame) -> set[str]:
    """Normalised validation and test texts of ``downstream``: what pre-training must not see."""
    return {normalise(t) for t in downstream.loc[downstream["split"].isin(HELD_OUT), "text"]}


def pretraining_texts(
    downstream: pd.DataFrame, extra: dict[str, Sequence[str]] | None = None
) -> pd.DataFrame:
    """The pre-training corpus: downstream *training* texts plus ``extra`` sources.

    Returns one row per kept text (columns ``text``, ``source``). Every text whose
    normalised form equals a downstream validation or test text is removed, from every
    source; ``df.attrs["removed"]`` counts the removals per source.
    """
    held_out = held_out_keys(downstream)
    train = downstream.loc[downstream["split"] == "train", "text"]
    sources = {"downstream train": list(train), **(extra or {})}
    rows, removed = [], {}
    for source, texts in sources.items():
        kept = [t for t in texts if normalise(t) not in held_out]
        removed[source] = len(texts) - len(kept)
        rows += [(t, source) for t in kept]
    corpus = pd.DataFrame(rows, columns=["text", "source"])
    corpus.attrs["removed"] = removed
    return corpus


def leaked_texts(corpus: Iterable[str], downstream: pd.DataFrame) -> int:
    """How many corpus texts equal (normalised) a downstream validation or test text."""
    held_out = held_out_keys(downstream)
    return sum(normalise(t) in held_out for t in corpus)


def token_stream(texts: Iterable[str], vocab: Vocab) -> torch.Tensor:
    """All texts as one LongTensor of token ids, each document followed by ``EOS``."""
    ids: list[int] = []
    for text in texts:
        ids += vocab.encode([*tokenize(text), EOS])
    return torch.tensor(ids, dtype=torch.long)


class StreamWindows(Dataset):
    """Non-overlapping windows of a token stream: ``(input [L], target [L])``, target shifted."""

    def __init__(self, stream: torch.Tensor, seq_len: int) -> None:
        check_ints(seq_len=seq_len)
        if stream.dim() != 1 or len(stream) < seq_len + 1:
            raise ValueError(
                f"the stream must be 1-d with at least seq_len + 1 = {seq_len + 1} tokens, "
                f"got shape {tuple(stream.shape)}"
            )
        self.stream, self.seq_len = stream, seq_len

    def __len__(self) -> int:
        return (len(self.stream) - 1) // self.seq_len

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} out of range (0..{len(self) - 1})")
        start = i * self.seq_len
        window = self.stream[start : start + self.seq_len + 1]
        return window[:-1], window[1:]


def stream_loader(
    stream: torch.Tensor, seq_len: int, batch_size: int, shuffle: bool = True, seed: int = 0
) -> DataLoader:
    """A DataLoader of ``(input, target)`` window batches, shuffled by its own generator."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        StreamWindows(stream, seq_len), batch_size, shuffle=shuffle, generator=generator
    )


def _fit(encoder: Encoder) -> str:
    """What a language model needs of its encoder: embedding table, directions, output size."""
    return (
        f"embeddings {tuple(encoder.embedding.weight.shape)}, "
        f"{encoder.num_directions} direction(s), output size {encoder.output_size}"
    )


class LanguageModel(nn.Module):
    """Forward-only ``Encoder`` -> (projection) -> output layer tied to the input embeddings.

    ``forward(ids [B, T])`` returns next-token logits [B, T, V]. With ``tie=False`` the
    output layer has its own V x E weight matrix.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        tie: bool = True,
        embeddings: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.encoder = Encoder(vocab_size, embed_dim, hidden_size, num_layers, bidirectional=False,
                               dropout=dropout, embeddings=embeddings)  # fmt: skip
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear(hidden_size, embed_dim) if hidden_size != embed_dim else None
        self.output = nn.Linear(embed_dim, vocab_size)
        if tie:
            self.output.weight = self.encoder.embedding.weight

    @property
    def tied(self) -> bool:
        """Whether the output layer shares the input embedding table."""
        return self.output.weight is self.encoder.embedding.weight

    def use_encoder(self, encoder: Encoder) -> None:
        """Read ``encoder`` (shared, not copied) instead of the own one, and keep the tie.

        Assigning ``self.encoder`` alone would leave a tied output layer on the old encoder's
        table: the language model would train its own copy of the embeddings.
        """
        if _fit(encoder) != _fit(self.encoder):
            raise ValueError(f"encoder does not fit: {_fit(encoder)}; needed: {_fit(self.encoder)}")
        tied = self.tied
        self.encoder = encoder
        if tied:
            self.output.weight = encoder.embedding.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits [B, T, V] for a batch of token ids [B, T] (no padding)."""
        lengths = torch.full((ids.shape[0],), ids.shape[1], dtype=torch.long)
        states, _ = self.encoder(ids, lengths)
        states = self.dropout(states)
        if self.projection is not None:
            states = self.projection(states)
        return self.output(states)


def lm_step(model: nn.Module, batch: tuple, device: torch.device) -> torch.Tensor:
    """Mean next-token cross-entropy of a ``(input, target)`` batch."""
    inputs, targets = (t.to(device, non_blocking=True) for t in batch)
    logits = model(inputs)
    return nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten())


@torch.no_grad()
def evaluate_lm(model: nn.Module, loader: Iterable, device: torch.device) -> dict[str, float]:
    """Mean next-token cross-entropy over every position of ``loader``, and its perplexity."""
    total, count = 0.0, 0
    with evaluation_mode(model), torch.no_grad():
        for inputs, targets in loader:
            logits = model(inputs.to(device)).float()
            total += nn.functional.cross_entropy(
                logits.flatten(0, 1), targets.to(device).flatten(), reduction="sum"
            ).item()
            count += targets.numel()
    if count == 0:
        raise ValueError("evaluate_lm got an empty loader")
    return {"loss": total / count, "perplexity": perplexity(total / count)}


@torch.no_grad()
def sample(
    model: LanguageModel,
    vocab: Vocab,
    prompt: str,
    n_tokens: int = 30,
    temperature: float = 1.0,
    seed: int = 0,
    blocked: Sequence[str] = ("<unk>", "<pad>"),
) -> str:
    """Continue ``prompt`` by sampling from softmax(logits / temperature), never ``blocked``."""
    check_ints(n_tokens=n_tokens)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    ids = vocab.encode(tokenize(prompt)) or vocab.encode([EOS])
    banned = [vocab.stoi[t] for t in blocked if t in vocab]
    with evaluation_mode(model):
        for _ in range(n_tokens):
            logits = model(torch.tensor([ids], device=device))[0, -1].float().cpu()
            logits[banned] = float("-inf")
            probs = torch.softmax(logits / temperature, dim=-1)
            ids.append(int(torch.multinomial(probs, 1, generator=generator)))
    return " ".join(vocab.decode(ids))


def corpus_digest(texts: Iterable[str]) -> str:
    """sha256 of the texts in order: part of the pre-training checkpoint's name."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def pretrain(
    model: LanguageModel,
    train_stream: torch.Tensor,
    val_stream: torch.Tensor,
    *,
    seq_len: int,
    batch_size: int,
    config: TrainConfig,
) -> TrainResult:
    """Train ``model`` on ``train_stream`` with ``fit``, keeping the lowest validation loss.

    With ``config.checkpoint_dir`` a finished pre-training is read back, not repeated.
    """
    train = stream_loader(train_stream, seq_len, batch_size, shuffle=True, seed=config.seed)
    val = stream_loader(val_stream, seq_len, batch_size, shuffle=False)
    config = TrainConfig(**{**vars(config), "monitor": "loss", "mode": "min"})
    return fit(model, train, val, config=config, step=lm_step, evaluate=evaluate_lm)


def checkpoint_name(settings: dict, corpus: str) -> str:
    """A folder name unique to the model settings and the corpus digest."""
    blob = json.dumps(settings, sort_keys=True, default=str) + corpus
    return "lm-" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def nearest_words(
    table: torch.Tensor | np.ndarray, vocab: Vocab, word: str, k: int = 5
) -> list[str]:
    """The ``k`` words whose rows of ``table`` have the highest cosine with ``word``'s row."""
    if word not in vocab:
        raise KeyError(f"{word!r} is not in the vocabulary")
    vectors = torch.as_tensor(np.asarray(table), dtype=torch.float32)
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cosine = unit @ unit[vocab.stoi[word]]
    cosine[[vocab.stoi[word], 0, 1]] = float("-inf")  # the word itself, <pad>, <unk>
    return vocab.decode(cosine.topk(k).indices.tolist())


@dataclass(frozen=True)
class PretrainSettings:
    """Everything that shapes the pre-trained model; chapters 7 and 8 share one instance."""

    vocab_size: int = 10_000  # capped vocabulary: the softmax runs over these words
    embed_dim: int = 50  # as GloVe 6B, so chapter 8 compares like with like
    hidden_size: int = 128
    seq_len: int = 64  # tokens per training window (truncated backpropagation through time)
    batch_size: int = 32
    epochs: int = 3
    lr: float = 3e-3
    dropout: float = 0.1
    max_tokens: int | None = 1_500_000  # cap on training tokens (the CPU budget)
    newsgroups_posts: int | None = 3_000  # posts of 20 Newsgroups added, when present
    val_share: float = 0.05  # documents held out to measure perplexity
    seed: int = 0
    name: str = "cpu"


def pretrain_settings() -> PretrainSettings:
    """This run's settings, chosen in one place: smoke test, CPU, or a CUDA GPU."""
    if is_smoke():
        return PretrainSettings(vocab_size=400, hidden_size=16, seq_len=16, epochs=1,
                                max_tokens=12_000, newsgroups_posts=40, name="smoke")  # fmt: skip
    if torch.cuda.is_available():
        return PretrainSettings(vocab_size=30_000, hidden_size=512, batch_size=64, epochs=5,
                                max_tokens=None, newsgroups_posts=None, name="gpu")  # fmt: skip
    return PretrainSettings()


def extra_news(settings: PretrainSettings) -> tuple[dict[str, list[str]], list[str]]:
    """Unlabelled text of 20 Newsgroups and AG News when present, and notes on what is missing."""
    sources, notes = {}, []
    for name in ("ag_news", "20newsgroups"):
        try:
            with warnings.catch_warnings():  # AG News offline: only its test file, fine here
                warnings.simplefilter("ignore", UserWarning)
                frame = load_dataset(name, seed=settings.seed)
        except DatasetNotFoundError as err:
            notes.append(f"{name}: not found, left out ({str(err).splitlines()[0]})")
            continue
        texts = frame["text"].tolist()
        if name == "20newsgroups" and settings.newsgroups_posts is not None:
            rng = np.random.default_rng(settings.seed)
            keep = rng.choice(len(texts), min(settings.newsgroups_posts, len(texts)), replace=False)
            texts = [texts[i] for i in sorted(keep)]
        sources[name] = texts
    return sources, notes


@dataclass
class PretrainingData:
    """The corpus, its split into LM-train and LM-validation documents, vocabulary, streams."""

    corpus: pd.DataFrame
    vocab: Vocab
    train_stream: torch.Tensor
    val_stream: torch.Tensor
    notes: list[str]


def pretraining_data(downstream: pd.DataFrame, settings: PretrainSettings) -> PretrainingData:
    """Build the pre-training corpus (no downstream validation/test text) and its streams."""
    extra, notes = extra_news(settings)
    corpus = pretraining_texts(downstream, extra)
    rng = np.random.default_rng(settings.seed)
    corpus["lm_split"] = np.where(rng.random(len(corpus)) < settings.val_share, "val", "train")
    train_texts = corpus.loc[corpus["lm_split"] == "train", "text"]
    vocab = Vocab.build(
        [[*tokenize(t), EOS] for t in train_texts], min_freq=2, max_size=settings.vocab_size
    )
    train_stream = token_stream(train_texts, vocab)[: settings.max_tokens]
    val_stream = token_stream(corpus.loc[corpus["lm_split"] == "val", "text"], vocab)
    return PretrainingData(corpus, vocab, train_stream, val_stream, notes)


def new_language_model(data: PretrainingData, settings: PretrainSettings) -> LanguageModel:
    """A freshly initialised (seeded) tied LSTM language model for ``data``'s vocabulary."""
    torch.manual_seed(settings.seed)
    return LanguageModel(len(data.vocab), settings.embed_dim, settings.hidden_size,
                         dropout=settings.dropout)  # fmt: skip


def pretrained_language_model(
    data: PretrainingData, settings: PretrainSettings, progress: bool = True
) -> tuple[LanguageModel, TrainResult]:
    """Pre-train (or read back the finished checkpoint of) the model for ``settings``."""
    digest = corpus_digest(data.corpus["text"])
    folder = cache_dir() / "pretraining" / checkpoint_name(asdict(settings), digest)
    model = new_language_model(data, settings)
    config = TrainConfig(epochs=settings.epochs, lr=settings.lr, weight_decay=0.01,
                         patience=None, seed=settings.seed, checkpoint_dir=folder,
                         progress=progress)  # fmt: skip
    result = pretrain(model, data.train_stream, data.val_stream, seq_len=settings.seq_len,
                      batch_size=settings.batch_size, config=config)  # fmt: skip
    return model, result
