"""The from-scratch cross-entropy against torch.nn.functional, by property-based tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from companion.losses import (
    cross_entropy,
    log_softmax,
    logsumexp,
    perplexity,
    softmax,
    softmax_jacobian,
)

EXTREME = st.floats(-1e4, 1e4, allow_nan=False, width=64)
INF = float("inf")
WITH_INF = EXTREME | st.sampled_from([INF, -INF])  # about half the entries infinite
CLOSE = {"rtol": 1e-10, "atol": 1e-10, "equal_nan": True}


@st.composite
def logits_arrays(draw, min_dims: int = 1, max_dims: int = 4, elements=EXTREME) -> torch.Tensor:
    """float64 logits [C], [N, C] or [N, C, d1, ...] with entries anywhere in [-1e4, 1e4]."""
    shape = draw(st.lists(st.integers(1, 4), min_size=min_dims, max_size=max_dims))
    return torch.from_numpy(draw(arrays(np.float64, shape, elements=elements)))


@st.composite
def class_problems(draw, elements=EXTREME):
    """Logits, class-index targets (some ignored) and all loss options."""
    logits = draw(logits_arrays(elements=elements))
    class_dim = 0 if logits.dim() == 1 else 1
    num_classes = logits.size(class_dim)
    ignore_index = draw(st.sampled_from([-100, -1, *range(num_classes)]))
    target_shape = logits.shape[:class_dim] + logits.shape[class_dim + 1 :]
    choices = st.sampled_from([*range(num_classes), ignore_index])
    target = torch.tensor(draw(arrays(np.int64, target_shape, elements=choices)))
    weight = draw(st.none() | arrays(np.float64, num_classes, elements=st.floats(0.01, 10)))
    options = {
        "weight": None if weight is None else torch.from_numpy(weight),
        "ignore_index": ignore_index,
        "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
        "label_smoothing": draw(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0)),
    }
    return logits, target, options


def assert_same_loss_and_grad(logits: torch.Tensor, target: torch.Tensor, options: dict) -> None:
    """Loss and logits-gradient equal to PyTorch's, nan where PyTorch gives nan."""
    ours_in = logits.clone().requires_grad_()
    ref_in = logits.clone().requires_grad_()
    ours = cross_entropy(ours_in, target, **options)
    ref = F.cross_entropy(ref_in, target, **options)
    finite = ref.detach()[ref.detach().isfinite()]
    scale = max(1.0, finite.abs().max().item()) if finite.numel() else 1.0
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10 * scale, equal_nan=True)
    upstream = torch.linspace(0.5, 1.5, ref.numel(), dtype=ref.dtype).view_as(ref)
    (ours * upstream).sum().backward()
    (ref * upstream).sum().backward()
    torch.testing.assert_close(ours_in.grad, ref_in.grad, **CLOSE)


@settings(max_examples=120, deadline=None)
@given(class_problems())
def test_class_targets_match_torch(problem):
    assert_same_loss_and_grad(*problem)


@settings(max_examples=60, deadline=None)
@given(class_problems(elements=WITH_INF))
def test_class_targets_with_infinite_logits_match_torch(problem):
    assert_same_loss_and_grad(*problem)


@st.composite
def probability_problems(draw):
    """Logits, soft targets (rows summing to 1) and the options valid for them."""
    logits = draw(logits_arrays())
    class_dim = 0 if logits.dim() == 1 else 1
    raw = draw(arrays(np.float64, tuple(logits.shape), elements=st.floats(0.0, 1.0)))
    target = torch.from_numpy(raw) + 1e-3
    target = target / target.sum(dim=class_dim, keepdim=True)
    num_classes = logits.size(class_dim)
    weight = draw(st.none() | arrays(np.float64, num_classes, elements=st.floats(0.01, 10)))
    options = {
        "weight": None if weight is None else torch.from_numpy(weight),
        "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
        "label_smoothing": draw(st.floats(0.0, 1.0)),
    }
    return logits, target, options


@settings(max_examples=60, deadline=None)
@given(probability_problems())
def test_probability_targets_match_torch(problem):
    assert_same_loss_and_grad(*problem)


@settings(max_examples=40, deadline=None)
@given(logits_arrays(), st.integers(-1, 0))
def test_log_softmax_softmax_logsumexp_match_torch(logits, dim):
    torch.testing.assert_close(log_softmax(logits, dim), torch.log_softmax(logits, dim), **CLOSE)
    torch.testing.assert_close(softmax(logits, dim), torch.softmax(logits, dim), **CLOSE)
    torch.testing.assert_close(logsumexp(logits, dim), torch.logsumexp(logits, dim), **CLOSE)


@settings(max_examples=60, deadline=None)
@given(logits_arrays(elements=WITH_INF), st.integers(-1, 0))
def test_infinite_logits_match_torch(logits, dim):
    torch.testing.assert_close(log_softmax(logits, dim), torch.log_softmax(logits, dim), **CLOSE)
    torch.testing.assert_close(softmax(logits, dim), torch.softmax(logits, dim), **CLOSE)
    torch.testing.assert_close(logsumexp(logits, dim), torch.logsumexp(logits, dim), **CLOSE)


# What torch gives on such rows: logsumexp -inf for only -inf (and for an empty row), +inf as
# soon as +inf is present, nan with nan; log_softmax and softmax nan throughout a row holding
# +inf or only -inf, and -inf / 0 for a -inf entry beside finite ones.
SPECIAL_ROWS = [
    [-INF, -INF, -INF],
    [INF, 0.0, 1.0],
    [INF, INF, -2.0],
    [INF, -INF, 0.0],
    [-INF, 0.0, 1.0],
    [-INF, -INF, 2.0],
    [float("nan"), INF, 0.0],
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_special_rows_match_torch_values_and_gradients(dtype):
    rows = torch.tensor(SPECIAL_ROWS, dtype=dtype)
    expected = [-INF, INF, INF, INF]
    torch.testing.assert_close(logsumexp(rows)[:4], torch.tensor(expected, dtype=dtype))
    target = torch.tensor([0, 1, 2, 0, 1, 2, 1])
    functions = [
        (logsumexp, torch.logsumexp),
        (log_softmax, torch.log_softmax),
        (softmax, torch.softmax),
        (
            lambda x, dim: cross_entropy(x, target, reduction="none", label_smoothing=0.1),
            lambda x, dim: F.cross_entropy(x, target, reduction="none", label_smoothing=0.1),
        ),
    ]
    for ours_fn, torch_fn in functions:
        ours_in, ref_in = rows.clone().requires_grad_(), rows.clone().requires_grad_()
        ours, ref = ours_fn(ours_in, 1), torch_fn(ref_in, 1)
        torch.testing.assert_close(ours, ref, equal_nan=True)
        ours.sum().backward()
        ref.sum().backward()
        torch.testing.assert_close(ours_in.grad, ref_in.grad, equal_nan=True)


def test_empty_rows_match_torch():
    empty = torch.empty(2, 0, dtype=torch.float64)
    torch.testing.assert_close(logsumexp(empty), torch.full((2,), -INF, dtype=torch.float64))
    torch.testing.assert_close(log_softmax(empty), torch.log_softmax(empty, dim=-1))
    torch.testing.assert_close(softmax(empty), torch.softmax(empty, dim=-1))


def test_stable_formulas_survive_huge_logits():
    x = torch.tensor([[1e4, 0.0, -1e4], [1000.0, 1000.0, 1000.0]], dtype=torch.float32)
    naive = torch.log(torch.exp(x) / torch.exp(x).sum(dim=1, keepdim=True))
    assert torch.isnan(naive).any()  # the naive formula overflows: inf / inf
    assert torch.isfinite(log_softmax(x)).all()
    torch.testing.assert_close(log_softmax(x), torch.log_softmax(x, dim=1))
    torch.testing.assert_close(softmax(x)[1], torch.full((3,), 1 / 3))


def test_gradient_is_p_minus_y():
    torch.manual_seed(0)
    logits = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 3, 6, 2, 2])
    cross_entropy(logits, target, reduction="sum").backward()
    expected = torch.softmax(logits.detach(), dim=1) - F.one_hot(target, 7).double()
    torch.testing.assert_close(logits.grad, expected)


def test_softmax_jacobian_matches_autograd():
    torch.manual_seed(1)
    z = torch.randn(6, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: softmax(v), z)
    torch.testing.assert_close(softmax_jacobian(softmax(z)), jac)


def test_hand_worked_weighted_mean_with_smoothing():
    # logits 0 everywhere: log p = -log 3 for every class of both rows
    logits = torch.zeros(2, 3)
    target = torch.tensor([0, 2])
    weight = torch.tensor([1.0, 2.0, 3.0])
    eps = 0.3
    nll = (1 + 3) * math.log(3)  # w_y summed over the two rows
    smooth = 2 * (1 + 2 + 3) * math.log(3)  # each row: sum_c w_c * log 3
    expected = ((1 - eps) * nll + eps / 3 * smooth) / (1 + 3)
    loss = cross_entropy(logits, target, weight=weight, label_smoothing=eps)
    assert abs(loss.item() - expected) < 1e-6


def test_all_targets_ignored_gives_nan_mean_like_torch():
    logits = torch.randn(3, 4)
    target = torch.full((3,), -100)
    assert torch.isnan(cross_entropy(logits, target)).item()
    assert torch.isnan(F.cross_entropy(logits, target)).item()
    assert cross_entropy(logits, target, reduction="sum").item() == 0.0


def test_perplexity():
    assert perplexity(0.0) == 1.0
    assert abs(perplexity(math.log(50.0)) - 50.0) < 1e-9
    logits = torch.zeros(4, 10)  # uniform over 10 classes: perplexity 10
    ce = cross_entropy(logits, torch.tensor([1, 2, 3, 4]))
    assert isinstance(perplexity(ce), torch.Tensor)
    assert abs(perplexity(ce).item() - 10.0) < 1e-5
    assert perplexity(1000.0) == math.inf == perplexity(torch.tensor(1000.0)).item()
    with pytest.raises(ValueError, match=">= 0"):
        perplexity(-0.5)
    with pytest.raises(ValueError, match=">= 0"):
        perplexity(float("nan"))


@pytest.mark.parametrize(
    ("logits", "target", "options", "error", "match"),
    [
        (torch.randn(2, 3), torch.tensor([0, 3]), {}, ValueError, r"out of range.*\[0, 3\)"),
        (torch.randn(2, 3), torch.tensor([-1, 0]), {}, ValueError, "out of range"),
        (torch.randn(2, 3), torch.tensor([0, 1, 2]), {}, ValueError, r"shape \(2,\)"),
        (torch.randn(2, 3, 4), torch.tensor([0, 1]), {}, ValueError, r"shape \(2, 4\)"),
        (torch.randn(2, 3), torch.rand(2, 4), {}, ValueError, r"logits' shape \(2, 3\)"),
        (torch.randn(2, 3), torch.tensor([0, 1]), {"reduction": "avg"}, ValueError, "reduction"),
        (
            torch.randn(2, 3),
            torch.tensor([0, 1]),
            {"label_smoothing": 1.5},
            ValueError,
            r"\[0, 1\]",
        ),
        (
            torch.randn(2, 3),
            torch.tensor([0, 1]),
            {"label_smoothing": -0.1},
            ValueError,
            "smoothing",
        ),
        (torch.randn(2, 3), torch.tensor([0, 1]), {"weight": torch.ones(4)}, ValueError, "3 class"),
        (torch.randn(2, 3), torch.rand(2, 3), {"ignore_index": 0}, ValueError, "ignore_index"),
        (torch.tensor([[1, 2]]), torch.tensor([0]), {}, TypeError, "floating-point"),
        (torch.randn(2, 3), torch.tensor([True, False]), {}, TypeError, "class indices"),
        (torch.randn(2, 3), [0, 1], {}, TypeError, "got list"),
    ],
)
def test_bad_input_raises(logits, target, options, error, match):
    with pytest.raises(error, match=match):
        cross_entropy(logits, target, **options)


TARGET_DTYPES = [
    torch.bool,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
]


@pytest.mark.parametrize("dtype", TARGET_DTYPES, ids=str)
def test_target_dtypes_accepted_exactly_where_torch_accepts_them(dtype):
    # torch 2.13 takes int64 and uint8 class indices and floating probabilities of any
    # precision; the loss then follows the usual type promotion
    logits = torch.randn(2, 3, dtype=torch.float64)
    if dtype.is_floating_point:
        target = torch.tensor([[0.25, 0.25, 0.5], [1.0, 0.0, 0.0]]).to(dtype)
    else:
        target = torch.tensor([0, 1]).to(dtype)
    try:
        expected = F.cross_entropy(logits, target)
    except RuntimeError:
        with pytest.raises(TypeError, match=f"int64 or torch.uint8.*got {dtype}"):
            cross_entropy(logits, target)
    else:
        torch.testing.assert_close(cross_entropy(logits, target), expected)


def test_ignore_index_may_be_out_of_range():
    logits = torch.randn(3, 4, dtype=torch.float64)
    target = torch.tensor([0, 7, 3])
    torch.testing.assert_close(
        cross_entropy(logits, target, ignore_index=7),
        F.cross_entropy(logits, target, ignore_index=7),
    )
