"""Text classifiers: an encoder + dropout + linear head, and the source article's flawed variant."""

from __future__ import annotations

import torch
from torch import nn

from companion.checks import check_ints
from companion.encoder import check_batch, length_mask


class NewsClassifier(nn.Module):
    """Any sentence encoder + dropout + a linear layer to class logits.

    ``encoder`` is any module with ``forward(ids, lengths) -> (states, sentence)`` and an
    ``output_size`` attribute (the width of ``sentence``): the recurrent
    :class:`companion.encoder.Encoder` here, pre-trained encoders in later chapters.
    """

    def __init__(self, encoder: nn.Module, n_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        width = getattr(encoder, "output_size", None)
        if not isinstance(width, int) or width < 1:
            raise TypeError(
                "encoder must expose a positive integer output_size (the sentence-vector "
                f"width), got {width!r} on {type(encoder).__name__}"
            )
        check_ints(2, n_classes=n_classes)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, n_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Class logits [B, n_classes] for right-padded ids [B, T] with true lengths [B]."""
        _, sentence = self.encoder(ids, lengths)
        return self.head(self.dropout(sentence))


class ArticleStyleClassifier(nn.Module):
    """THE WRONG WAY, kept to measure it: the source article's LSTM classifier.

    It pads (or cuts) every text to ``max_len`` = 128 tokens, multiplies the embeddings by
    the attention mask, runs a plain (unpacked) LSTM over all 128 positions and classifies
    ``output[:, -1, :]``. Zeroing the padding embeddings does not stop the LSTM from
    reading them: the forward state keeps being updated (by the biases and the recurrent
    weights) through every padding step, so a short text's vector is its state after many
    steps of padding. In a bidirectional LSTM, the backward half of ``output[:, -1, :]``
    has read one (padding) token only. Use :class:`NewsClassifier` instead.

    ``read_at="last_token"`` keeps everything else but reads the output at each text's last
    real token: the forward half is then the true last state (the backward half has still
    read the padding first), which separates the two halves of the bug.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_size: int,
        n_classes: int,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.5,
        max_len: int = 128,
        pad_id: int = 0,
        read_at: str = "end",
    ) -> None:
        super().__init__()
        if read_at not in ("end", "last_token"):
            raise ValueError(f"read_at must be 'end' or 'last_token', got {read_at!r}")
        self.read_at = read_at
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.lstm = nn.LSTM(
            embed_dim,
            hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=True,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), n_classes)
        self.vocab_size = vocab_size
        self.max_len = max_len
        self.pad_id = pad_id

    def pad_to_max_len(
        self, ids: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-pad or cut ids to exactly ``max_len`` columns, as the article's tokenizer did."""
        ids = ids[:, : self.max_len]
        extra = self.max_len - ids.shape[1]
        if extra > 0:
            ids = nn.functional.pad(ids, (0, extra), value=self.pad_id)
        return ids, lengths.clamp(max=self.max_len)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Class logits from the LSTM output at the last of ``max_len`` positions (or at the
        last real token)."""
        lengths = check_batch(ids, lengths, self.vocab_size)
        ids, lengths = self.pad_to_max_len(ids, lengths)
        attention_mask = length_mask(lengths.to(ids.device), self.max_len)
        embedded = self.embedding(ids) * attention_mask.unsqueeze(-1)
        output, _ = self.lstm(embedded)
        if self.read_at == "end":
            return self.head(self.dropout(output[:, -1, :]))
        last = (lengths.to(ids.device) - 1).view(-1, 1, 1).expand(-1, 1, output.shape[-1])
        return self.head(self.dropout(output.gather(1, last).squeeze(1)))
