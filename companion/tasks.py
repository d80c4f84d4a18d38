"""A memory task for recurrent networks: recall the first token of a sequence after T steps."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from companion.checks import check_ints
from companion.lstm import LSTM, RNN, ArticleGatedRNN, Recurrent

RECURRENT_KINDS: dict[str, type[Recurrent]] = {
    "rnn": RNN,
    "lstm": LSTM,
    "article": ArticleGatedRNN,
}


def first_token_recall(
    batch_size: int,
    seq_len: int,
    num_symbols: int = 8,
    num_distractors: int = 8,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Token ids [B, seq_len] whose first token (a symbol) is the target [B]; the rest are noise.

    Symbols are ids ``0 .. num_symbols-1``, distractors the next ``num_distractors`` ids.
    """
    check_ints(
        batch_size=batch_size,
        seq_len=seq_len,
        num_symbols=num_symbols,
        num_distractors=num_distractors,
    )
    target = torch.randint(num_symbols, (batch_size,), generator=generator)
    noise = torch.randint(num_distractors, (batch_size, seq_len - 1), generator=generator)
    return torch.cat([target[:, None], num_symbols + noise], dim=1), target


class RecallClassifier(nn.Module):
    """Embedding -> one-layer recurrent network -> linear read-out of the last hidden state."""

    def __init__(
        self,
        kind: str,
        vocab_size: int,
        num_classes: int,
        hidden_size: int = 32,
        forget_bias: float = 1.0,
    ):
        super().__init__()
        if kind not in RECURRENT_KINDS:
            raise ValueError(f"unknown kind {kind!r}: use one of {sorted(RECURRENT_KINDS)}")
        options = {"forget_bias": forget_bias} if kind == "lstm" else {}
        self.embed = nn.Embedding(vocab_size, hidden_size)
        self.rnn = RECURRENT_KINDS[kind](hidden_size, hidden_size, **options)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, ids: Tensor) -> Tensor:
        """Class logits [B, num_classes] from token ids [B, T]."""
        out, _ = self.rnn(self.embed(ids))
        return self.head(out[:, -1])


def train_recall(
    kind: str,
    seq_len: int,
    steps: int = 500,
    batch_size: int = 64,
    hidden_size: int = 32,
    lr: float = 3e-3,
    num_symbols: int = 8,
    num_distractors: int = 8,
    forget_bias: float = 1.0,
    seed: int = 0,
    eval_size: int = 1000,
    stop_loss: float = 0.01,
    progress: bool = False,
) -> dict[str, float | list[float]]:
    """Train a ``RecallClassifier`` with Adam on fresh batches; return test accuracy and losses.

    Stops early once the last 20 batch losses average below ``stop_loss``. The one loop of the
    book that is not ``fit`` (chapter 4): every step draws a new batch, so there are no epochs,
    and the stop is checked after each step.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    vocab_size = num_symbols + num_distractors
    model = RecallClassifier(kind, vocab_size, num_symbols, hidden_size, forget_bias)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in tqdm(range(steps), desc=f"{kind} T={seq_len}", disable=not progress, leave=False):
        ids, target = first_token_recall(batch_size, seq_len, num_symbols, num_distractors, gen)
        loss = nn.functional.cross_entropy(model(ids), target)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if len(losses) >= 20 and sum(losses[-20:]) / 20 < stop_loss:
            break
    ids, target = first_token_recall(eval_size, seq_len, num_symbols, num_distractors, gen)
    with torch.no_grad():
        accuracy = (model(ids).argmax(dim=1) == target).float().mean().item()
    return {"accuracy": accuracy, "losses": losses}
