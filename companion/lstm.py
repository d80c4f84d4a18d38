"""Recurrent networks from scratch: tanh RNN, LSTM, and the source article's cell-less variant.

Every model is multi-layer and batch-first, and names and shapes its parameters like PyTorch
(``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``; LSTM gate order
i, f, g, o), so weights copy to and from ``torch.nn.LSTM`` / ``torch.nn.RNN`` unchanged.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from companion.checks import check_ints

State = tuple[Tensor, ...]


def check_dropout(dropout: float) -> None:
    """Raise ValueError unless ``dropout`` is a probability in [0, 1] (as torch.nn.LSTM does)."""
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout <= 1:
        raise ValueError(f"dropout must be a probability in [0, 1], got {dropout!r}")


def affine_gates(
    x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None, b_hh: Tensor | None
) -> Tensor:
    """The pre-activations ``x W_ih^T + b_ih + h W_hh^T + b_hh`` of all gates at once."""
    z = x @ w_ih.T + h @ w_hh.T
    if b_ih is not None:
        z = z + b_ih + b_hh
    return z


def lstm_cell(
    x: Tensor,
    h: Tensor,
    c: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """One LSTM step: ``c_t = f*c_{t-1} + i*g``, ``h_t = o*tanh(c_t)`` (gate order i, f, g, o)."""
    i, f, g, o = affine_gates(x, h, w_ih, w_hh, b_ih, b_hh).chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_next = f * c + i * g
    return o * torch.tanh(c_next), c_next


def lstm_cell_backward(
    x: Tensor,
    h: Tensor,
    c: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    grad_h_next: Tensor,
    grad_c_next: Tensor,
) -> dict[str, Tensor]:
    """One LSTM step backwards, by hand: from ``dL/dh_t``, ``dL/dc_t`` to the gradients of
    the step's inputs ``x``, ``h``, ``c`` and weights (``bias``: that of ``b_ih`` and ``b_hh``)."""
    i, f, g, o = affine_gates(x, h, w_ih, w_hh, b_ih, b_hh).chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    tanh_c = torch.tanh(f * c + i * g)
    grad_c_total = grad_c_next + grad_h_next * o * (1 - tanh_c**2)  # h_t = o tanh(c_t)
    grad_gates = torch.cat(  # dL/d(pre-activation) of i, f, g, o: sigma' = s(1-s), tanh' = 1-g^2
        [
            grad_c_total * g * i * (1 - i),
            grad_c_total * c * f * (1 - f),
            grad_c_total * i * (1 - g**2),
            grad_h_next * tanh_c * o * (1 - o),
        ],
        dim=-1,
    )
    return {
        "x": grad_gates @ w_ih,
        "h": grad_gates @ w_hh,
        "c": grad_c_total * f,  # the carousel: the direct path through c_t = f c_{t-1} + ...
        "weight_ih": grad_gates.T @ x,
        "weight_hh": grad_gates.T @ h,
        "bias": grad_gates.sum(dim=0),
    }


def rnn_cell(
    x: Tensor,
    h: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> Tensor:
    """One step of the plain (Elman) RNN: ``h_t = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``."""
    return torch.tanh(affine_gates(x, h, w_ih, w_hh, b_ih, b_hh))


def article_cell(
    x: Tensor,
    h: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None = None,
    b_hh: Tensor | None = None,
) -> Tensor:
    """The source article's step, no cell state: ``h_t = tanh(o_t * a_t)`` (blocks o, a)."""
    o, a = affine_gates(x, h, w_ih, w_hh, b_ih, b_hh).chunk(2, dim=-1)
    return torch.tanh(torch.sigmoid(o) * a)


class Recurrent(nn.Module):
    """Multi-layer, batch-first recurrent loop shared by ``RNN``, ``LSTM``, ``ArticleGatedRNN``.

    ``dropout`` is PyTorch's inter-layer dropout: in training mode only, on the outputs of every
    layer but the last (so it does nothing with one layer).
    """

    blocks = 1  # gate blocks stacked in weight_ih (4 for the LSTM)
    state_size = 1  # tensors carried from step to step (2 for the LSTM: h and c)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        *,
        dropout: float = 0.0,
    ):
        super().__init__()
        check_ints(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        check_dropout(dropout)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.bias, self.dropout = num_layers, bias, float(dropout)
        rows = self.blocks * hidden_size
        for k in range(num_layers):
            cols = input_size if k == 0 else hidden_size
            setattr(self, f"weight_ih_l{k}", nn.Parameter(torch.empty(rows, cols)))
            setattr(self, f"weight_hh_l{k}", nn.Parameter(torch.empty(rows, hidden_size)))
            if bias:
                setattr(self, f"bias_ih_l{k}", nn.Parameter(torch.empty(rows)))
                setattr(self, f"bias_hh_l{k}", nn.Parameter(torch.empty(rows)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's initialisation: every parameter uniform in ``±1/sqrt(hidden_size)``."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def layer_weights(self, k: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of layer ``k`` (None biases if no bias)."""
        names = [f"weight_ih_l{k}", f"weight_hh_l{k}", f"bias_ih_l{k}", f"bias_hh_l{k}"]
        return tuple(getattr(self, n, None) for n in names)  # type: ignore[return-value]

    def step(self, x: Tensor, state: State, k: int) -> State:
        """One time step of layer ``k``: the next state from input ``x`` [B, in] and ``state``."""
        return (self.cell(x, state[0], *self.layer_weights(k)),)

    cell = staticmethod(rnn_cell)

    def run_layer(self, x: Tensor, state: State, k: int) -> tuple[list[Tensor], State]:
        """Unroll layer ``k`` over ``x`` [B, T, in]: the list of ``h_t`` and the final state."""
        hs = []
        for t in range(x.size(1)):
            state = self.step(x[:, t], state, k)
            hs.append(state[0])
        return hs, state

    def zero_state(self, x: Tensor) -> State:
        """All-zero initial state for the batch ``x``, each tensor [num_layers, B, hidden]."""
        zeros = x.new_zeros(self.num_layers, x.size(0), self.hidden_size)
        return tuple(zeros for _ in range(self.state_size))

    def check_input(self, x: Tensor) -> None:
        """Raise unless ``x`` is a float tensor [batch, time, input_size] with time >= 1."""
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"input must be a floating-point tensor, got {type(x).__name__}")
        if x.dim() != 3:
            raise ValueError(
                f"input must be 3-D [batch, time, input_size] (batch-first), got shape "
                f"{tuple(x.shape)}"
            )
        if x.size(2) != self.input_size:
            raise ValueError(f"input size mismatch: expected {self.input_size}, got {x.size(2)}")
        if x.size(1) == 0:
            raise ValueError("input has zero time steps: sequences need at least one step")

    def check_state(self, state: State, x: Tensor) -> None:
        """Raise unless every state tensor has shape [num_layers, batch, hidden_size]."""
        expected = (self.num_layers, x.size(0), self.hidden_size)
        if len(state) != self.state_size:
            raise ValueError(f"expected {self.state_size} state tensor(s), got {len(state)}")
        for s in state:
            if not isinstance(s, Tensor) or tuple(s.shape) != expected:
                shape = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
                raise ValueError(
                    f"initial state must have shape {expected} [num_layers, batch, hidden], "
                    f"got {shape}"
                )

    def pack(self, state: State) -> Tensor | State:
        """The state as the caller sees it: ``h`` for one-tensor models, ``(h, c)`` for the LSTM."""
        return state[0] if self.state_size == 1 else state

    def unpack(self, state: Tensor | State) -> State:
        """The caller's state (``h`` or ``(h, c)``) as a tuple of tensors."""
        return (state,) if isinstance(state, Tensor) else tuple(state)

    def inter_layer_dropout(self, x: Tensor) -> Tensor:
        """Dropout on a lower layer's outputs ``x`` [B, T, H], in training mode only.

        The mask is drawn in time-major order, the layout of torch's layer outputs, so that
        the same seed gives the same masks as ``torch.nn.LSTM`` on the CPU.
        """
        if not (self.training and self.dropout):
            return x
        return F.dropout(x.transpose(0, 1).contiguous(), self.dropout).transpose(0, 1)

    def forward(
        self, x: Tensor, state: Tensor | State | None = None
    ) -> tuple[Tensor, Tensor | State]:
        """Run all layers over ``x`` [B, T, in]: top-layer outputs [B, T, H] and the final state."""
        self.check_input(x)
        state = self.zero_state(x) if state is None else self.unpack(state)
        self.check_state(state, x)
        finals = []
        for k in range(self.num_layers):
            if k:
                x = self.inter_layer_dropout(x)
            hs, final = self.run_layer(x, tuple(s[k] for s in state), k)
            x = torch.stack(hs, dim=1)
            finals.append(final)
        return x, self.pack(tuple(torch.stack(f, dim=0) for f in zip(*finals, strict=True)))

    def extra_repr(self) -> str:
        """Sizes shown by ``print(model)``."""
        sizes = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        return f"{sizes}, bias={self.bias}, dropout={self.dropout}"


class TorchCompatible(Recurrent):
    """A ``Recurrent`` whose weights copy to and from its ``torch.nn`` counterpart."""

    torch_class: type[nn.RNNBase] = nn.RNN

    @classmethod
    def from_torch(cls, module: nn.RNNBase) -> TorchCompatible:
        """A copy of ``module``: same sizes, bias, dropout, mode, dtype, device and weights."""
        check_torch_module(module, cls.torch_class)
        weight = module.weight_ih_l0
        new = cls(
            module.input_size,
            module.hidden_size,
            module.num_layers,
            module.bias,
            dropout=module.dropout,
        )
        new = new.to(dtype=weight.dtype, device=weight.device).train(module.training)
        new.load_state_dict(module.state_dict())
        return new

    def to_torch(self) -> nn.RNNBase:
        """The equivalent batch-first ``torch.nn`` module: same dropout and mode, weights copied."""
        weight = self.weight_ih_l0
        module = self.torch_class(
            self.input_size,
            self.hidden_size,
            self.num_layers,
            bias=self.bias,
            batch_first=True,
            dropout=self.dropout,
        ).to(dtype=weight.dtype, device=weight.device)
        module.load_state_dict(self.state_dict())
        return module.train(self.training)


def check_torch_module(module: nn.RNNBase, torch_class: type[nn.RNNBase]) -> None:
    """Raise unless ``module`` is a ``torch_class`` these models can copy exactly.

    That is batch-first, one direction, no projection and (for ``nn.RNN``) the tanh
    nonlinearity; the number of layers, the bias and the dropout are copied.
    """
    if not isinstance(module, torch_class):
        raise TypeError(f"expected a {torch_class.__name__}, got {type(module).__name__}")
    if not module.batch_first:
        raise ValueError(
            "the module has batch_first=False, but these models take [batch, time, features]: "
            "build it with batch_first=True (the weights are the same)"
        )
    if module.bidirectional:
        raise ValueError("bidirectional modules are not supported (one direction only)")
    if getattr(module, "proj_size", 0):
        raise ValueError(f"projected LSTMs are not supported, got proj_size={module.proj_size}")
    if getattr(module, "nonlinearity", "tanh") != "tanh":
        raise ValueError(f"only the tanh RNN is supported, got {module.nonlinearity!r}")


class RNN(TorchCompatible):
    """Plain multi-layer tanh RNN, equal to ``torch.nn.RNN(..., batch_first=True)``."""


class LSTM(TorchCompatible):
    """Multi-layer, batch-first LSTM, equal to ``torch.nn.LSTM(..., batch_first=True)``.

    ``forget_bias`` (e.g. 1.0) sets the forget gate's total bias ``b_ih + b_hh`` at
    initialisation, so that the cell starts out remembering (Gers et al., 2000).
    """

    blocks, state_size, torch_class = 4, 2, nn.LSTM

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        forget_bias: float | None = None,
        *,
        dropout: float = 0.0,
    ):
        if forget_bias is not None and not bias:
            raise ValueError("forget_bias needs bias=True")
        self.forget_bias = forget_bias
        super().__init__(input_size, hidden_size, num_layers, bias, dropout=dropout)

    def reset_parameters(self) -> None:
        """PyTorch's uniform initialisation, then the forget-gate bias if one was asked for."""
        super().reset_parameters()
        if self.forget_bias is not None:
            forget = slice(self.hidden_size, 2 * self.hidden_size)
            with torch.no_grad():
                for k in range(self.num_layers):
                    getattr(self, f"bias_ih_l{k}")[forget] = self.forget_bias
                    getattr(self, f"bias_hh_l{k}")[forget] = 0.0

    def step(self, x: Tensor, state: State, k: int) -> State:
        """One LSTM step of layer ``k``: ``(h, c)`` -> ``(h_next, c_next)``."""
        return lstm_cell(x, state[0], state[1], *self.layer_weights(k))


class ArticleGatedRNN(Recurrent):
    """The source article's "LSTM": gated, but with no cell state, ``h_t = tanh(o_t * a_t)``.

    Kept only to show what the missing cell state costs; do not use it as an LSTM.
    """

    blocks = 2
    cell = staticmethod(article_cell)


class LSTMCell(nn.Module):
    """One LSTM step as a module, equal to ``torch.nn.LSTMCell`` (same parameter names)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        check_ints(input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(h_next, c_next)`` from ``x`` [B, input_size] and ``state = (h, c)``, [B, hidden]."""
        if not isinstance(x, Tensor) or x.dim() != 2 or x.size(1) != self.input_size:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"input must have shape [batch, {self.input_size}], got {shape}")
        if state is None:
            zeros = x.new_zeros(x.size(0), self.hidden_size)
            state = (zeros, zeros)
        expected = (x.size(0), self.hidden_size)
        if len(state) != 2 or any(tuple(s.shape) != expected for s in state):
            raise ValueError(f"state must be (h, c), each of shape {expected} [batch, hidden]")
        return lstm_cell(
            x, state[0], state[1], self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh
        )


def hidden_gradients(model: Recurrent, x: Tensor, target: Tensor) -> Tensor:
    """``dL/dh_t`` [B, T, H] by autograd, one-layer ``model``, ``L = ||h_T - target||^2 / 2``.

    Only the hidden states are differentiated: the model's parameters get no ``.grad``.
    """
    if model.num_layers != 1:
        raise ValueError(f"needs a one-layer model, got num_layers={model.num_layers}")
    model.check_input(x)
    with torch.enable_grad():  # the zero start needs a gradient: a frozen model works too
        state = tuple(s[0].clone().requires_grad_() for s in model.zero_state(x))
        hs, _ = model.run_layer(x, state, 0)
        loss = 0.5 * ((hs[-1] - target) ** 2).sum()
        grads = torch.autograd.grad(loss, hs, allow_unused=True)
    grads = [torch.zeros_like(h) if g is None else g for h, g in zip(hs, grads, strict=True)]
    return torch.stack(grads, dim=1).detach()


def hidden_gradient_norms(model: Recurrent, x: Tensor, target: Tensor) -> Tensor:
    """``||dL/dh_t||`` for every step t (each sequence's norm, averaged over the batch): how
    much of the loss's gradient reaches step t (see ``hidden_gradients``)."""
    return hidden_gradients(model, x, target).norm(dim=2).mean(dim=0)


class StateGradients(NamedTuple):
    """``dL/dh_t`` and ``dL/dc_t`` [B, T, H] for t = 1..T, and the forget gates ``f_t``."""

    h: Tensor
    c: Tensor
    forget: Tensor


def lstm_state_gradients(model: LSTM, x: Tensor, target: Tensor) -> StateGradients:
    """Back-propagation through time by hand (``lstm_cell_backward``, step T down to 1) for a
    one-layer LSTM and ``L = ||h_T - target||^2 / 2``: the gradient reaching every state."""
    if model.num_layers != 1:
        raise ValueError(f"needs a one-layer model, got num_layers={model.num_layers}")
    model.check_input(x)
    weights = model.layer_weights(0)
    with torch.no_grad():
        states = [tuple(s[0] for s in model.zero_state(x))]
        for t in range(x.size(1)):
            states.append(model.step(x[:, t], states[-1], 0))
        grad_h, grad_c = states[-1][0] - target, torch.zeros_like(target)
        grads_h, grads_c = [grad_h], [grad_c]
        for t in range(x.size(1) - 1, 0, -1):  # step t+1 (0-based t) maps s_t to s_{t+1}
            step = lstm_cell_backward(x[:, t], *states[t], *weights, grad_h, grad_c)
            grad_h, grad_c = step["h"], step["c"]
            grads_h.append(grad_h)
            grads_c.append(grad_c)
        gates = torch.stack(
            [affine_gates(x[:, t], states[t][0], *weights) for t in range(x.size(1))], 1
        )
    forget = torch.sigmoid(gates.chunk(4, dim=-1)[1])
    return StateGradients(torch.stack(grads_h[::-1], 1), torch.stack(grads_c[::-1], 1), forget)
