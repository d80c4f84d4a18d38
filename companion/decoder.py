"""An LSTM decoder with attention, joined to an encoder: sequence-to-sequence models.

The pieces, smallest first::

    AdditiveAttention / DotAttention    score each source state against the decoder state
    AttentionDecoder.step               one output token: attend, update the LSTM cell, predict
    Seq2Seq                             encoder + decoder: teacher-forced training, greedy
                                        decoding and beam search, all returning attention weights
    seq2seq_step / evaluate_seq2seq     what ``companion.train.fit`` needs to train one

Batches are ``(src [B, S], src_lengths [B], tgt [B, L], tgt_lengths [B])`` with every
target written as ``<bos> y_1 ... y_n <eos>`` and right-padded with ``pad_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from companion.checks import check_ints
from companion.encoder import length_mask
from companion.train import evaluation_mode

State = tuple[torch.Tensor, torch.Tensor]


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last axis that gives exactly zero weight where ``mask`` is False."""
    if mask is None:
        return torch.softmax(scores, dim=-1)
    if mask.shape != scores.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != scores shape {tuple(scores.shape)}")
    if not mask.any(dim=-1).all():
        raise ValueError("every row of the mask needs at least one True (unmasked) position")
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


class Attention(nn.Module):
    """Attention over keys [B, T, Hk] for a query [B, Hq]; subclasses define ``scores``."""

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Unnormalised scores [B, T] of ``query`` [B, Hq] against ``keys`` [B, T, Hk]."""
        raise NotImplementedError

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Context vector [B, Hk] and attention weights [B, T] (zero where ``mask`` is False)."""
        weights = masked_softmax(self.scores(query, keys), mask)
        return torch.bmm(weights[:, None, :], keys).squeeze(1), weights


class AdditiveAttention(Attention):
    """Bahdanau's additive score ``v^T tanh(W_q q + W_k k_j + b)``, softmax-normalised over j."""

    def __init__(self, query_size: int, key_size: int, attn_size: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_size, attn_size, bias=False)
        self.key_proj = nn.Linear(key_size, attn_size, bias=True)
        self.v = nn.Linear(attn_size, 1, bias=False)

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Unnormalised scores [B, T] of ``query`` [B, Hq] against ``keys`` [B, T, Hk]."""
        hidden = torch.tanh(self.query_proj(query)[:, None, :] + self.key_proj(keys))
        return self.v(hidden).squeeze(-1)


class DotAttention(Attention):
    """Luong's multiplicative scores: ``q^T W k_j`` (``general``) or plain ``q^T k_j`` (dot)."""

    def __init__(self, query_size: int, key_size: int, general: bool = True) -> None:
        super().__init__()
        if not general and query_size != key_size:
            raise ValueError(
                f"dot attention needs query_size == key_size, got {query_size} and {key_size}; "
                "use general=True to learn a projection between them"
            )
        self.proj = nn.Linear(key_size, query_size, bias=False) if general else nn.Identity()

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Unnormalised scores [B, T] of ``query`` [B, Hq] against ``keys`` [B, T, Hk]."""
        return torch.bmm(self.proj(keys), query[:, :, None]).squeeze(-1)


def make_attention(kind: str, query_size: int, key_size: int, attn_size: int) -> Attention:
    """An attention module by name: ``"additive"``, ``"general"`` or ``"dot"``."""
    if kind == "additive":
        return AdditiveAttention(query_size, key_size, attn_size)
    if kind in ("general", "dot"):
        return DotAttention(query_size, key_size, general=kind == "general")
    raise ValueError(f"unknown attention {kind!r}: use 'additive', 'general' or 'dot'")


class AttentionDecoder(nn.Module):
    """An LSTM cell that reads the previous token and an attention context at every step.

    Step ``t`` (see the chapter's equations): attend with the previous hidden state
    ``s_{t-1}`` over the encoder states to get the context ``c_t``; update the cell with
    ``[embed(y_{t-1}); c_t]``; predict ``y_t`` from ``tanh(W_c [s_t; c_t])``.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_size: int,
        enc_size: int,
        attention: str = "additive",
        attn_size: int | None = None,
        dropout: float = 0.0,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        check_ints(vocab_size=vocab_size, embed_dim=embed_dim, hidden_size=hidden_size,
                   enc_size=enc_size)  # fmt: skip
        check_ints(0, pad_id=pad_id)
        if pad_id >= vocab_size:
            raise ValueError(f"pad_id must be < vocab_size = {vocab_size}, got {pad_id}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.attention = make_attention(attention, hidden_size, enc_size, attn_size or hidden_size)
        self.init_hidden = nn.Linear(enc_size, hidden_size)
        self.cell = nn.LSTMCell(embed_dim + enc_size, hidden_size)
        self.combine = nn.Linear(hidden_size + enc_size, hidden_size)
        self.out = nn.Linear(hidden_size, vocab_size)
        self.dropout = nn.Dropout(dropout)

    def init_state(self, sentence: torch.Tensor) -> State:
        """Initial ``(h, c)``: ``h_0 = tanh(W sentence)``, ``c_0 = 0``."""
        h = torch.tanh(self.init_hidden(sentence))
        return h, torch.zeros_like(h)

    def step(
        self, prev_ids: torch.Tensor, state: State, enc_states: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, State, torch.Tensor]:
        """One token: logits [B, V], the new ``(h, c)`` and attention weights [B, T]."""
        embedded = self.dropout(self.embedding(prev_ids))
        context, weights = self.attention(state[0], enc_states, mask)
        h, c = self.cell(torch.cat([embedded, context], dim=-1), state)
        attended = torch.tanh(self.combine(torch.cat([h, context], dim=-1)))
        return self.out(self.dropout(attended)), (h, c), weights


@dataclass
class Hypothesis:
    """One beam-search result: tokens without ``<bos>``/``<eos>``, scores and attention."""

    tokens: list[int]
    log_prob: float  # sum of the token log-probabilities, <eos> included when generated
    score: float  # log_prob / (number of generated tokens) ** length_penalty
    weights: torch.Tensor  # [generated tokens, source length]
    finished: bool  # True when the hypothesis ended with <eos>


class Seq2Seq(nn.Module):
    """An encoder and an :class:`AttentionDecoder`, with training and decoding loops.

    ``encoder(ids, lengths)`` must check its input and return ``(states [B, T, H],
    sentence [B, H])`` with ``H`` the decoder's ``enc_size``, as
    :class:`companion.encoder.Encoder` does.
    ``teacher_forcing`` is the default probability of feeding the gold previous token
    (rather than the model's own prediction) during training.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: AttentionDecoder,
        *,
        bos_id: int,
        eos_id: int,
        pad_id: int = 0,
        teacher_forcing: float = 1.0,
    ) -> None:
        super().__init__()
        check_ratio(teacher_forcing)
        self.encoder = encoder
        self.decoder = decoder
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id
        self.teacher_forcing = teacher_forcing

    def encode(self, src: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Encoder states [B, T, H], their mask [B, T] and the decoder's initial (h, c)."""
        states, sentence = self.encoder(src, lengths)
        mask = length_mask(lengths.to(states.device), states.shape[1])
        return states, mask, *self.decoder.init_state(sentence)

    def forward(
        self,
        src: torch.Tensor,
        lengths: torch.Tensor,
        tgt_in: torch.Tensor,
        teacher_forcing: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits [B, L, V] and attention [B, L, T] for ``tgt_in`` = ``<bos> y_1 .. y_{L-1}``.

        At each step the next input is the gold token with probability ``teacher_forcing``
        (per example), else the model's own arg-max prediction.
        """
        ratio = self.teacher_forcing if teacher_forcing is None else check_ratio(teacher_forcing)
        states, mask, h, c = self.encode(src, lengths)
        check_ids(tgt_in, self.decoder.vocab_size, "tgt_in")
        if tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"src has {src.shape[0]} rows but tgt_in has {tgt_in.shape[0]}")
        prev, state = tgt_in[:, 0], (h, c)
        all_logits, all_weights = [], []
        for t in range(tgt_in.shape[1]):
            logits, state, weights = self.decoder.step(prev, state, states, mask)
            all_logits.append(logits)
            all_weights.append(weights)
            if t + 1 < tgt_in.shape[1]:
                prev = self._next_input(tgt_in[:, t + 1], logits, ratio)
        return torch.stack(all_logits, dim=1), torch.stack(all_weights, dim=1)

    @staticmethod
    def _next_input(gold: torch.Tensor, logits: torch.Tensor, ratio: float) -> torch.Tensor:
        """The gold token with probability ``ratio``, else the arg-max prediction."""
        if ratio >= 1.0:
            return gold
        predicted = logits.detach().argmax(dim=-1)
        if ratio <= 0.0:
            return predicted
        use_gold = torch.rand(gold.shape, device=gold.device) < ratio
        return torch.where(use_gold, gold, predicted)

    @torch.no_grad()
    def greedy_decode(
        self, src: torch.Tensor, lengths: torch.Tensor, max_len: int, blocked: Sequence[int] = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Arg-max decoding: tokens [B, L<=max_len] (``<eos>`` then padding) and attention.

        Token ids in ``blocked`` (e.g. ``<unk>``) are never generated.
        """
        check_ints(max_len=max_len)
        states, mask, h, c = self.encode(src, lengths)
        prev = torch.full((src.shape[0],), self.bos_id, dtype=torch.long, device=states.device)
        done = torch.zeros_like(prev, dtype=torch.bool)
        state, tokens, all_weights = (h, c), [], []
        for _ in range(max_len):
            logits, state, weights = self.decoder.step(prev, state, states, mask)
            prev = block(logits, blocked).argmax(dim=-1).masked_fill(done, self.pad_id)
            tokens.append(prev)
            all_weights.append(weights.masked_fill(done[:, None], 0.0))
            done = done | (prev == self.eos_id)
            if done.all():
                break
        return torch.stack(tokens, dim=1), torch.stack(all_weights, dim=1)

    @torch.no_grad()
    def beam_search(
        self,
        src: torch.Tensor,
        lengths: torch.Tensor,
        beam_size: int,
        max_len: int,
        length_penalty: float = 1.0,
        blocked: Sequence[int] = (),
    ) -> list[Hypothesis]:
        """Beam search for one source sentence; hypotheses best first (``beam_size`` of them).

        Scores are length-normalised: ``log_prob / n ** length_penalty`` with ``n`` the
        number of generated tokens (``<eos>`` included). A hypothesis that emits ``<eos>``
        is finished; the search keeps ``beam_size`` unfinished ones and stops when
        ``beam_size`` hypotheses have finished or after ``max_len`` steps. Token ids in
        ``blocked`` are never generated.
        """
        check_ints(beam_size=beam_size, max_len=max_len)
        if src.shape[0] != 1:
            raise ValueError(
                f"beam_search decodes one sentence at a time, got a batch of {src.shape[0]}"
            )
        states, mask, h, c = self.encode(src, lengths)
        alive = [([], 0.0, [])]  # (tokens, log_prob, attention rows)
        state, finished = (h, c), []
        for _ in range(max_len):
            prev = [hyp[0][-1] if hyp[0] else self.bos_id for hyp in alive]
            n = len(alive)
            logits, state, weights = self.decoder.step(
                torch.tensor(prev, device=states.device),
                state,
                states.expand(n, -1, -1),
                mask.expand(n, -1),
            )
            totals = torch.tensor([hyp[1] for hyp in alive], device=logits.device)
            log_probs = block(torch.log_softmax(logits.float(), dim=-1), blocked)
            cand = (totals[:, None] + log_probs).flatten()
            top = cand.topk(min(2 * beam_size, cand.numel()))
            keep = []
            for value, index in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                row, token = divmod(index, self.decoder.vocab_size)
                hyp = (alive[row][0] + [token], value, alive[row][2] + [weights[row]])
                if token == self.eos_id:
                    finished.append(self._hypothesis(hyp, length_penalty, True))
                else:
                    keep.append((row, hyp))
                if len(keep) == beam_size:
                    break
            if len(finished) >= beam_size or not keep:
                break
            rows = torch.tensor([row for row, _ in keep], device=states.device)
            state = (state[0][rows], state[1][rows])
            alive = [hyp for _, hyp in keep]
        else:
            finished += [self._hypothesis(hyp, length_penalty, False) for hyp in alive]
        return sorted(finished, key=lambda hyp: -hyp.score)[:beam_size]

    def _hypothesis(self, hyp: tuple, length_penalty: float, finished: bool) -> Hypothesis:
        """A :class:`Hypothesis` from ``(tokens, log_prob, attention rows)``."""
        tokens, log_prob, rows = hyp
        return Hypothesis(
            tokens=tokens[:-1] if finished else tokens,
            log_prob=log_prob,
            score=log_prob / len(tokens) ** length_penalty,
            weights=torch.stack(rows).cpu(),
            finished=finished,
        )


def block(scores: torch.Tensor, blocked: Sequence[int]) -> torch.Tensor:
    """``scores`` [B, V] with the columns ``blocked`` set to minus infinity."""
    if not blocked:
        return scores
    return scores.index_fill(-1, torch.tensor(list(blocked), device=scores.device), float("-inf"))


def check_ratio(ratio: float) -> float:
    """``ratio`` if it is a probability, else a ValueError."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"teacher_forcing must be a probability in [0, 1], got {ratio}")
    return ratio


def check_ids(ids: torch.Tensor, vocab_size: int, name: str) -> None:
    """Raise a clear error unless ``ids`` is a non-empty [B, T] tensor of ids < ``vocab_size``."""
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long or ids.dim() != 2:
        raise TypeError(f"{name} must be a LongTensor of shape [batch, time], got {ids!r:.60}")
    if ids.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(ids.shape)}): need at least one token")
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab_size:
        raise ValueError(f"{name} ids must lie in 0..{vocab_size - 1}, found {low}..{high}")


def strip_special(tokens: torch.Tensor, eos_id: int) -> list[list[int]]:
    """Rows of decoded ``tokens`` cut before their first ``<eos>``, as Python lists."""
    out = []
    for row in tokens.tolist():
        out.append(row[: row.index(eos_id)] if eos_id in row else row)
    return out


def _to(batch: Any, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Move a ``(src, src_lengths, tgt, tgt_lengths)`` batch to ``device``."""
    if len(batch) != 4:
        raise ValueError(
            f"a seq2seq batch is (src, src_lengths, tgt, tgt_lengths), got {len(batch)} items"
        )
    return tuple(x.to(device) for x in batch)


def seq2seq_step(model: Seq2Seq, batch: Any, device: torch.device) -> torch.Tensor:
    """Training loss of one batch: token cross-entropy under (partial) teacher forcing."""
    src, src_lengths, tgt, _ = _to(batch, device)
    logits, _ = model(src, src_lengths, tgt[:, :-1])
    return F.cross_entropy(
        logits.flatten(0, 1).float(), tgt[:, 1:].flatten(), ignore_index=model.pad_id
    )


@torch.no_grad()
def evaluate_seq2seq(model: Seq2Seq, loader: DataLoader, device: torch.device) -> dict[str, float]:
    """Teacher-forced ``loss``; ``token_accuracy`` and ``exact_match`` of greedy decoding.

    Token accuracy is the share of gold target tokens (``<eos>`` included) that greedy
    decoding reproduces at the same position; exact match the share of targets it
    reproduces completely, ``<eos>`` at the right place included.
    """
    loss_sum = tokens = correct = exact = rows = 0.0
    with evaluation_mode(model):
        for batch in loader:
            src, src_lengths, tgt, _ = _to(batch, device)
            gold = tgt[:, 1:]
            logits, _ = model(src, src_lengths, tgt[:, :-1], teacher_forcing=1.0)
            loss_sum += float(
                F.cross_entropy(
                    logits.flatten(0, 1).float(),
                    gold.flatten(),
                    ignore_index=model.pad_id,
                    reduction="sum",
                )
            )
            predicted, _ = model.greedy_decode(src, src_lengths, max_len=gold.shape[1])
            predicted = F.pad(
                predicted, (0, gold.shape[1] - predicted.shape[1]), value=model.pad_id
            )
            real = gold != model.pad_id
            tokens += float(real.sum())
            correct += float(((predicted == gold) & real).sum())
            exact += float((predicted == gold).all(dim=1).sum())
            rows += gold.shape[0]
    if rows == 0:
        raise ValueError("evaluate_seq2seq got an empty loader")
    return {
        "loss": loss_sum / tokens,
        "token_accuracy": correct / tokens,
        "exact_match": exact / rows,
    }
