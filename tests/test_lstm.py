"""The from-scratch recurrent networks against torch.nn.LSTM, LSTMCell and RNN."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from companion.lstm import (
    LSTM,
    RNN,
    ArticleGatedRNN,
    LSTMCell,
    article_cell,
    hidden_gradient_norms,
    hidden_gradients,
    lstm_cell_backward,
    lstm_state_gradients,
)

TOL = 1e-6


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute elementwise difference."""
    return (a - b).abs().max().item()


def grads(module: nn.Module) -> dict[str, torch.Tensor]:
    """Parameter gradients by name."""
    return {name: p.grad for name, p in module.named_parameters()}


@pytest.mark.parametrize(
    ("batch", "steps", "inp", "hidden", "layers", "bias", "with_state"),
    [
        (1, 1, 1, 1, 1, True, False),
        (3, 7, 5, 4, 1, True, True),
        (2, 5, 3, 6, 2, True, False),
        (4, 9, 6, 3, 3, True, True),
        (5, 4, 2, 5, 2, False, True),
        (2, 6, 4, 4, 1, False, False),
    ],
)
def test_lstm_matches_torch(batch, steps, inp, hidden, layers, bias, with_state):
    torch.manual_seed(batch * 100 + steps)
    ref = nn.LSTM(inp, hidden, layers, bias=bias, batch_first=True).double()
    ours = LSTM.from_torch(ref)
    x = torch.randn(batch, steps, inp, dtype=torch.float64, requires_grad=True)
    x_ours = x.detach().clone().requires_grad_()
    state = None
    if with_state:
        state = tuple(torch.randn(layers, batch, hidden, dtype=torch.float64) for _ in range(2))
    out_ref, (h_ref, c_ref) = ref(x, state)
    out, (h, c) = ours(x_ours, state)
    assert out.shape == (batch, steps, hidden) and h.shape == c.shape == (layers, batch, hidden)
    assert max_diff(out, out_ref) < TOL
    assert max_diff(h, h_ref) < TOL
    assert max_diff(c, c_ref) < TOL
    weight = torch.randn_like(out_ref)
    ((out_ref * weight).sum() + h_ref.sum() + 2 * c_ref.sum()).backward()
    ((out * weight).sum() + h.sum() + 2 * c.sum()).backward()
    assert max_diff(x_ours.grad, x.grad) < TOL
    ref_grads, our_grads = grads(ref), grads(ours)
    assert ref_grads.keys() == our_grads.keys()
    for name, g in ref_grads.items():
        assert max_diff(our_grads[name], g) < TOL, name


def test_initial_state_gradients_match_torch():
    torch.manual_seed(1)
    ref = nn.LSTM(3, 4, 2, batch_first=True).double()
    ours = LSTM.from_torch(ref)
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    h0, c0 = torch.randn(2, 2, 2, 4, dtype=torch.float64)
    states = [(h0.clone().requires_grad_(), c0.clone().requires_grad_()) for _ in range(2)]
    for model, (h0, c0) in zip((ref, ours), states, strict=True):
        out, (h, c) = model(x, (h0, c0))
        (out.pow(2).sum() + c.sum()).backward()
    for a, b in zip(states[0], states[1], strict=True):
        assert max_diff(a.grad, b.grad) < TOL


def test_to_torch_round_trip():
    torch.manual_seed(2)
    ours = LSTM(4, 3, num_layers=2).double()
    ref = ours.to_torch()
    assert isinstance(ref, nn.LSTM) and ref.batch_first
    x = torch.randn(3, 6, 4, dtype=torch.float64)
    assert max_diff(ours(x)[0], ref(x)[0]) < TOL
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), ref.parameters(), strict=True))


def test_parameter_names_and_shapes_match_torch():
    ref = nn.LSTM(5, 7, 3, batch_first=True)
    ours = LSTM(5, 7, 3)
    assert {n: p.shape for n, p in ours.named_parameters()} == {
        n: p.shape for n, p in ref.named_parameters()
    }


def test_lstm_cell_matches_torch():
    torch.manual_seed(3)
    ref = nn.LSTMCell(4, 6).double()
    ours = LSTMCell(4, 6).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(5, 4, dtype=torch.float64)
    state = (torch.randn(5, 6, dtype=torch.float64), torch.randn(5, 6, dtype=torch.float64))
    for s in (None, state):
        (h_ref, c_ref), (h, c) = ref(x, s), ours(x, s)
        assert max_diff(h, h_ref) < TOL and max_diff(c, c_ref) < TOL
    (h_ref.sum() + c_ref.pow(2).sum()).backward()
    (h.sum() + c.pow(2).sum()).backward()
    for name, g in grads(ref).items():
        assert max_diff(grads(ours)[name], g) < TOL, name


def test_lstm_cell_without_bias_matches_torch():
    torch.manual_seed(4)
    ref = nn.LSTMCell(3, 2, bias=False).double()
    ours = LSTMCell(3, 2, bias=False).double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(4, 3, dtype=torch.float64)
    assert max_diff(ours(x)[0], ref(x)[0]) < TOL


@pytest.mark.parametrize(("layers", "bias"), [(1, True), (2, False), (3, True)])
def test_rnn_matches_torch(layers, bias):
    torch.manual_seed(layers)
    ref = nn.RNN(3, 5, layers, bias=bias, batch_first=True).double()
    ours = RNN.from_torch(ref)
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    h0 = torch.randn(layers, 4, 5, dtype=torch.float64)
    (out_ref, h_ref), (out, h) = ref(x, h0), ours(x, h0)
    assert max_diff(out, out_ref) < TOL and max_diff(h, h_ref) < TOL
    out_ref.sum().backward()
    out.sum().backward()
    for name, g in grads(ref).items():
        assert max_diff(grads(ours)[name], g) < TOL, name


@pytest.mark.parametrize(("ours_class", "torch_class"), [(LSTM, nn.LSTM), (RNN, nn.RNN)])
def test_initialisation_is_torchs(ours_class, torch_class):
    # the same seed gives torch's own uniform(±1/sqrt(hidden)) draws, parameter by parameter
    torch.manual_seed(9)
    ref = torch_class(3, 4, 2, batch_first=True)
    torch.manual_seed(9)
    ours = ours_class(3, 4, 2)
    for (name, a), b in zip(ref.named_parameters(), ours.parameters(), strict=True):
        assert torch.equal(a, b), name


def test_forget_bias_sets_total_forget_gate_bias():
    torch.manual_seed(10)
    ref = nn.LSTM(3, 4, num_layers=2, batch_first=True)
    torch.manual_seed(10)
    model = LSTM(3, 4, num_layers=2, forget_bias=1.0)
    forget = slice(4, 8)  # gate order i, f, g, o
    for k in range(2):
        for kind, forget_value in (("ih", 1.0), ("hh", 0.0)):
            ours, init = getattr(model, f"bias_{kind}_l{k}"), getattr(ref, f"bias_{kind}_l{k}")
            assert torch.equal(ours[forget], torch.full((4,), forget_value))
            others = torch.ones(16, dtype=torch.bool)
            others[forget] = False
            assert torch.equal(ours[others], init[others])  # the other gates keep torch's init
        assert torch.equal(model.weight_hh_l1, ref.weight_hh_l1)


def test_article_cell_has_no_cell_state():
    torch.manual_seed(5)
    model = ArticleGatedRNN(3, 4).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    out, h = model(x)
    assert isinstance(h, torch.Tensor) and torch.equal(out[:, -1], h[0])
    w_ih, w_hh, b_ih, b_hh = model.layer_weights(0)
    h1 = article_cell(x[:, 0], torch.zeros(2, 4, dtype=torch.float64), w_ih, w_hh, b_ih, b_hh)
    o = torch.sigmoid(x[:, 0] @ w_ih[:4].T + b_ih[:4] + b_hh[:4])
    a = x[:, 0] @ w_ih[4:].T + b_ih[4:] + b_hh[4:]
    assert max_diff(h1, torch.tanh(o * a)) < TOL
    assert max_diff(out[:, 0], h1) < TOL


def rnn_problem(seed: int, steps: int) -> tuple[RNN, torch.Tensor, torch.Tensor]:
    """A seeded float64 RNN(2, 3), inputs [4, steps, 2] and targets [4, 3]."""
    torch.manual_seed(seed)
    model = RNN(2, 3).double()
    return (
        model,
        torch.randn(4, steps, 2, dtype=torch.float64),
        torch.randn(4, 3, dtype=torch.float64),
    )


def test_hidden_gradient_norms_follow_the_jacobians():
    model, x, target = rnn_problem(seed=6, steps=6)
    norms = hidden_gradient_norms(model, x, target)
    assert norms.shape == (6,)
    hs, _ = model.run_layer(x, (torch.zeros(4, 3, dtype=torch.float64),), 0)
    grad = (hs[-1] - target).detach()  # dL/dh_T of L = ||h_T - y||^2 / 2
    for t in range(5, -1, -1):
        assert abs(norms[t].item() - grad.norm(dim=1).mean().item()) < TOL
        if t:  # one step back: multiply by the Jacobian dh_t/dh_{t-1} = diag(1 - h_t^2) W_hh
            grad = (grad * (1 - hs[t] ** 2)) @ model.weight_hh_l0
            grad = grad.detach()


def test_hidden_gradients_leave_the_model_without_grad():
    """Only the hidden states are differentiated: a second call gives the same, no .grad."""
    model, x, target = rnn_problem(seed=8, steps=5)
    first = hidden_gradients(model, x, target)
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(hidden_gradients(model, x, target), first)
    assert all(p.grad is None for p in model.parameters())
    model.requires_grad_(False)  # a frozen model, and a call under no_grad
    with torch.no_grad():
        assert torch.equal(hidden_gradients(model, x, target), first)


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_backward_matches_autograd_of_torch_cell(bias):
    """The hand-derived step backwards = autograd through ``torch.nn.LSTMCell``."""
    torch.manual_seed(7)
    ref = nn.LSTMCell(3, 5, bias=bias).double()
    x, h, c = (torch.randn(4, n, dtype=torch.float64, requires_grad=True) for n in (3, 5, 5))
    grad_h, grad_c = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    h_next, c_next = ref(x, (h, c))
    ((h_next * grad_h).sum() + (c_next * grad_c).sum()).backward()
    biases = (ref.bias_ih, ref.bias_hh) if bias else (None, None)
    ours = lstm_cell_backward(x, h, c, ref.weight_ih, ref.weight_hh, *biases, grad_h, grad_c)
    expected = {"x": x.grad, "h": h.grad, "c": c.grad, "weight_ih": ref.weight_ih.grad}
    expected["weight_hh"] = ref.weight_hh.grad
    if bias:
        expected["bias"] = ref.bias_ih.grad
        assert max_diff(ref.bias_ih.grad, ref.bias_hh.grad) < 1e-12
    for name, grad in expected.items():
        assert max_diff(ours[name], grad) < 1e-12, name


def test_lstm_state_gradients_match_autograd_through_torch_lstm():
    """Back-propagation through time by hand = autograd through ``torch.nn.LSTM``, every step."""
    torch.manual_seed(8)
    model = LSTM(3, 4, forget_bias=1.0).double()
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    target = torch.randn(2, 4, dtype=torch.float64)
    ours = lstm_state_gradients(model, x, target)
    assert ours.h.shape == ours.c.shape == ours.forget.shape == (2, 7, 4)
    ref = model.to_torch()
    h, c = torch.zeros(1, 2, 4, dtype=torch.float64), torch.zeros(1, 2, 4, dtype=torch.float64)
    states = []
    for t in range(7):  # torch's own LSTM, one step at a time, keeping each state's gradient
        _, (h, c) = ref(x[:, t : t + 1], (h, c))
        h.retain_grad()
        c.retain_grad()
        states.append((h, c))
    (0.5 * ((h[0] - target) ** 2).sum()).backward()
    for t, (h_t, c_t) in enumerate(states):
        assert max_diff(ours.h[:, t], h_t.grad[0]) < 1e-12
        expected_c = torch.zeros(2, 4, dtype=torch.float64) if c_t.grad is None else c_t.grad[0]
        assert max_diff(ours.c[:, t], expected_c) < 1e-12
    b = model.bias_ih_l0[4:8] + model.bias_hh_l0[4:8]
    first_forget = torch.sigmoid(x[:, 0] @ model.weight_ih_l0[4:8].T + b)
    assert max_diff(ours.forget[:, 0], first_forget.detach()) < 1e-12


def test_hidden_gradients_are_autograd_of_torch_rnn():
    """Every dL/dh_t of our RNN = autograd through ``torch.nn.RNN`` run one step at a time."""
    torch.manual_seed(9)
    model = RNN(2, 3).double()
    x = torch.randn(4, 5, 2, dtype=torch.float64)
    target = torch.randn(4, 3, dtype=torch.float64)
    ours = hidden_gradients(model, x, target)
    ref, h, states = model.to_torch(), torch.zeros(1, 4, 3, dtype=torch.float64), []
    for t in range(5):
        _, h = ref(x[:, t : t + 1], h)
        h.retain_grad()
        states.append(h)
    (0.5 * ((h[0] - target) ** 2).sum()).backward()
    assert ours.shape == (4, 5, 3)
    for t, h_t in enumerate(states):
        assert max_diff(ours[:, t], h_t.grad[0]) < 1e-12


@pytest.mark.parametrize(
    "gradients", [hidden_gradients, hidden_gradient_norms, lstm_state_gradients]
)
def test_gradients_through_time_reject_deep_model(gradients):
    with pytest.raises(ValueError, match="one-layer"):
        gradients(LSTM(2, 2, num_layers=2), torch.randn(1, 2, 2), torch.zeros(1, 2))


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (torch.randn(3, 4), ValueError, "3-D"),
        (torch.randn(2, 3, 4, 5), ValueError, "3-D"),
        (torch.randn(2, 3, 7), ValueError, "input size mismatch: expected 5, got 7"),
        (torch.randn(2, 0, 5), ValueError, "zero time steps"),
        (torch.ones(2, 3, 5, dtype=torch.long), TypeError, "floating-point"),
    ],
)
def test_bad_input_raises(x, error, match):
    with pytest.raises(error, match=match):
        LSTM(5, 4)(x)


def test_bad_initial_state_raises():
    model = LSTM(5, 4, num_layers=2)
    x = torch.randn(3, 2, 5)
    good = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match=r"shape \(2, 3, 4\)"):
        model(x, (good, torch.zeros(1, 3, 4)))
    with pytest.raises(ValueError, match="expected 2 state"):
        model(x, good)
    with pytest.raises(ValueError, match=r"shape \(2, 3, 4\)"):
        RNN(5, 4, num_layers=2)(x, torch.zeros(2, 2, 4))


def test_bad_cell_input_raises():
    cell = LSTMCell(3, 2)
    with pytest.raises(ValueError, match=r"shape \[batch, 3\]"):
        cell(torch.randn(4, 5))
    with pytest.raises(ValueError, match=r"each of shape \(4, 2\)"):
        cell(torch.randn(4, 3), (torch.zeros(4, 2), torch.zeros(3, 2)))


@pytest.mark.parametrize("size", [0, -1, 2.5, True])
def test_bad_sizes_raise(size):
    with pytest.raises(ValueError, match="hidden_size must be an integer >= 1"):
        LSTM(3, size)


@pytest.mark.parametrize(
    ("module", "error", "match"),
    [
        (nn.GRU(2, 3, batch_first=True), TypeError, "expected a LSTM"),
        (nn.LSTM(2, 3), ValueError, "batch_first=False"),
        (nn.LSTM(2, 3, batch_first=True, bidirectional=True), ValueError, "bidirectional"),
        (nn.LSTM(2, 3, batch_first=True, proj_size=2), ValueError, "proj_size=2"),
    ],
    ids=["gru", "time-major", "bidirectional", "projected"],
)
def test_from_torch_rejects_modules_it_cannot_copy_exactly(module, error, match):
    with pytest.raises(error, match=match):
        LSTM.from_torch(module)


def test_from_torch_rejects_relu_rnn_and_forget_bias_needs_bias():
    with pytest.raises(ValueError, match="tanh"):
        RNN.from_torch(nn.RNN(2, 3, nonlinearity="relu", batch_first=True))
    with pytest.raises(ValueError, match="forget_bias needs bias"):
        LSTM(2, 3, bias=False, forget_bias=1.0)


@pytest.mark.parametrize(("ours_class", "torch_class"), [(LSTM, nn.LSTM), (RNN, nn.RNN)])
def test_inter_layer_dropout_matches_torch_in_training_mode(ours_class, torch_class):
    # torch draws one dropout mask per layer but the last, from the global generator: the
    # same seed must give the same masks, outputs and gradients
    torch.manual_seed(7)
    ref = torch_class(3, 4, 3, batch_first=True, dropout=0.5).double()
    ours = ours_class.from_torch(ref)
    assert ours.training and ours.dropout == 0.5
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    outputs = []
    for model in (ref, ours):
        torch.manual_seed(11)
        out, _ = model(x)
        out.pow(2).sum().backward()
        outputs.append(out)
    assert max_diff(outputs[0], outputs[1]) < TOL
    for name, g in grads(ref).items():
        assert max_diff(grads(ours)[name], g) < TOL, name
    no_dropout = ours_class.from_torch(torch_class(3, 4, 3, batch_first=True).double())
    no_dropout.load_state_dict(ours.state_dict())
    assert max_diff(ours(x)[0], no_dropout(x)[0]) > 1e-3  # the masks do change the output
    ref.eval()
    ours.eval()
    assert max_diff(ours(x)[0], ref(x)[0]) < TOL
    assert max_diff(ours(x)[0], no_dropout(x)[0]) == 0.0  # no dropout in eval mode


def test_dropout_one_zeroes_the_inputs_of_upper_layers():
    torch.manual_seed(8)
    model = LSTM(3, 4, num_layers=2, dropout=1.0).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    top = LSTM(4, 4).double()
    top.load_state_dict(
        {k.replace("_l1", "_l0"): v for k, v in model.state_dict().items() if k.endswith("_l1")}
    )
    assert max_diff(model(x)[0], top(torch.zeros(2, 5, 4, dtype=torch.float64))[0]) < TOL


def test_to_torch_carries_dropout_and_mode():
    ours = LSTM(4, 3, num_layers=2, dropout=0.25).eval()
    ref = ours.to_torch()
    assert ref.dropout == 0.25 and not ref.training
    back = LSTM.from_torch(ref.train())
    assert back.dropout == 0.25 and back.training


@pytest.mark.parametrize("dropout", [-0.1, 1.5, float("nan"), True, "0.5"])
def test_bad_dropout_raises(dropout):
    with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\]"):
        LSTM(3, 4, num_layers=2, dropout=dropout)
