"""Cross-entropy from scratch: stable softmax and log-softmax, PyTorch's exact loss, perplexity."""

from __future__ import annotations

import math

import torch
from torch import Tensor

REDUCTIONS = ("none", "mean", "sum")
INDEX_DTYPES = (torch.int64, torch.uint8)  # the class-index dtypes torch's cross_entropy takes


def detached_max(logits: Tensor, dim: int) -> Tensor:
    """The detached max along ``dim`` (kept, size 1); 0 along an empty ``dim``, which has none."""
    if logits.size(dim) == 0:
        return logits.detach().sum(dim=dim, keepdim=True)
    return logits.amax(dim=dim, keepdim=True).detach()


def logsumexp(logits: Tensor, dim: int = -1, keepdim: bool = False) -> Tensor:
    """``log(sum(exp(x)))`` computed as ``m + log(sum(exp(x - m)))``, m the max: no overflow.

    As in ``torch.logsumexp``, an infinite max is replaced by 0 so that ``x - m`` stays defined:
    a row holding +inf gives +inf, a row of only -inf (or an empty row) gives -inf, and a row
    holding nan gives nan.
    """
    m = detached_max(logits, dim)
    m = m.masked_fill(m.isinf(), 0.0)
    out = m + (logits - m).exp().sum(dim=dim, keepdim=True).log()
    return out if keepdim else out.squeeze(dim)


def log_softmax(logits: Tensor, dim: int = -1) -> Tensor:
    """``(x - m) - log(sum(exp(x - m)))`` along ``dim``, m the max: stable log-probabilities.

    As in ``torch.log_softmax`` (and unlike ``x - logsumexp(x)``), a row holding +inf or of only
    -inf is nan throughout; a -inf entry beside finite ones gets log-probability -inf.
    """
    shifted = logits - detached_max(logits, dim)
    return shifted - shifted.exp().sum(dim=dim, keepdim=True).log()


def softmax(logits: Tensor, dim: int = -1) -> Tensor:
    """``exp(x - m) / sum(exp(x - m))`` along ``dim``, m the max: stable probabilities.

    Rows holding +inf or of only -inf are nan throughout, as in ``torch.softmax``.
    """
    e = (logits - detached_max(logits, dim)).exp()
    return e / e.sum(dim=dim, keepdim=True)


def softmax_jacobian(p: Tensor) -> Tensor:
    """The Jacobian ``d softmax / d logits = diag(p) - p p^T`` for probabilities ``p`` [..., C]."""
    return torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)


def check_options(reduction: str, label_smoothing: float) -> None:
    """Raise ValueError on an unknown reduction or a label smoothing outside [0, 1]."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")


def check_weight(weight: Tensor | None, num_classes: int) -> None:
    """Raise ValueError unless ``weight`` is None or a 1-D tensor with one entry per class."""
    if weight is not None and (not isinstance(weight, Tensor) or weight.shape != (num_classes,)):
        shape = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
        raise ValueError(f"weight must be a 1-D tensor of {num_classes} class weights, got {shape}")


def check_target_dtype(target: Tensor) -> None:
    """Raise TypeError unless ``target`` has a dtype torch's cross_entropy takes.

    That is int64 or uint8 class indices, or class probabilities of any floating dtype;
    int32, int16, int8 and bool are refused, as PyTorch refuses them.
    """
    if isinstance(target, Tensor) and (target.is_floating_point() or target.dtype in INDEX_DTYPES):
        return
    got = target.dtype if isinstance(target, Tensor) else type(target).__name__
    raise TypeError(
        "target must be a tensor of class indices (torch.int64 or torch.uint8, as in PyTorch; "
        f"convert with .long()) or of floating-point class probabilities, got {got}"
    )


def check_class_target(target: Tensor, logits: Tensor, class_dim: int, ignore_index: int) -> None:
    """Raise unless ``target`` holds class indices in [0, C) (or ignore_index), one per position."""
    expected = logits.shape[:class_dim] + logits.shape[class_dim + 1 :]
    if target.shape != expected:
        raise ValueError(
            f"class-index target must have shape {tuple(expected)} (logits shape without the "
            f"class dimension {class_dim}), got {tuple(target.shape)}"
        )
    num_classes = logits.size(class_dim)
    kept = target[target != ignore_index]
    if kept.numel() and (kept.min() < 0 or kept.max() >= num_classes):
        raise ValueError(
            f"target out of range: class indices must be in [0, {num_classes}) or equal "
            f"ignore_index={ignore_index}, got values in [{kept.min().item()}, {kept.max().item()}]"
        )


def class_weights_view(weight: Tensor, ndim: int, class_dim: int) -> Tensor:
    """``weight`` reshaped to broadcast along the class dimension of an ``ndim``-D tensor."""
    shape = [1] * ndim
    shape[class_dim] = weight.numel()
    return weight.view(shape)


def reduce(loss: Tensor, reduction: str, denominator: Tensor | int) -> Tensor:
    """Apply ``reduction`` to per-position losses; "mean" divides the sum by ``denominator``."""
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / denominator


def cross_entropy(
    logits: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """``torch.nn.functional.cross_entropy`` from scratch, with the same semantics.

    ``logits`` [C], [N, C] or [N, C, d1, ...]; ``target`` class indices (logits' shape without
    C) or class probabilities (logits' shape). With class indices and ``weight``, "mean"
    divides by the summed weights of the non-ignored targets; label smoothing mixes
    ``(1 - eps) * nll`` with ``eps / C`` times the (weighted) sum of ``-log p`` over classes.
    """
    check_options(reduction, label_smoothing)
    if not isinstance(logits, Tensor) or not logits.is_floating_point() or logits.dim() == 0:
        raise TypeError(
            "logits must be a floating-point tensor of shape [C], [N, C] or [N, C, ...]"
        )
    check_target_dtype(target)
    class_dim = 0 if logits.dim() == 1 else 1
    num_classes = logits.size(class_dim)
    check_weight(weight, num_classes)
    logp = log_softmax(logits, dim=class_dim)
    if target.is_floating_point():
        if ignore_index >= 0:
            raise ValueError("ignore_index applies to class-index targets, not to probabilities")
        return probability_cross_entropy(logp, target, weight, reduction, label_smoothing)
    check_class_target(target, logits, class_dim, ignore_index)
    ignored = target == ignore_index
    safe = target.masked_fill(ignored, 0).long()
    logp_y = logp.gather(class_dim, safe.unsqueeze(class_dim)).squeeze(class_dim)
    w_y = torch.ones_like(logp_y) if weight is None else weight.to(logp.dtype)[safe]
    w_y = w_y.masked_fill(ignored, 0.0)
    loss = torch.where(ignored, 0.0, -w_y * logp_y)
    if label_smoothing > 0:
        weighted = (
            logp if weight is None else logp * class_weights_view(weight, logp.dim(), class_dim)
        )
        smooth = torch.where(ignored, 0.0, -weighted.sum(class_dim))
        loss = (1 - label_smoothing) * loss + label_smoothing / num_classes * smooth
    return reduce(loss, reduction, w_y.sum())


def probability_cross_entropy(
    logp: Tensor, target: Tensor, weight: Tensor | None, reduction: str, label_smoothing: float
) -> Tensor:
    """Cross-entropy ``-sum_c w_c q_c log p_c`` against class probabilities ``q`` (soft targets).

    As in PyTorch, "mean" divides by the number of positions, weighted or not.
    """
    if target.shape != logp.shape:
        raise ValueError(
            f"probability target must have the logits' shape {tuple(logp.shape)}, "
            f"got {tuple(target.shape)}"
        )
    class_dim = 0 if logp.dim() == 1 else 1
    num_classes = logp.size(class_dim)
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / num_classes
    if weight is not None:
        target = target * class_weights_view(weight, logp.dim(), class_dim)
    loss = -(logp * target).sum(class_dim)
    return reduce(loss, reduction, logp.numel() // num_classes)


def perplexity(mean_token_ce: float | Tensor) -> float | Tensor:
    """``exp`` of the mean per-token cross-entropy (in nats): the effective branching factor."""
    if isinstance(mean_token_ce, Tensor):
        bad = bool(torch.isnan(mean_token_ce).any() or (mean_token_ce < 0).any())
    else:
        bad = math.isnan(mean_token_ce) or mean_token_ce < 0
    if bad:
        raise ValueError(f"mean token cross-entropy must be >= 0, got {mean_token_ce!r}")
    if isinstance(mean_token_ce, Tensor):
        return mean_token_ce.exp()
    try:
        return math.exp(mean_token_ce)
    except OverflowError:  # above ~709.8 nats; a tensor gives inf there too
        return math.inf
