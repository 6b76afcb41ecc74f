"""Recurrent internals: unrolled gates equal a hand-written cell, and gradient decay by distance.

The hand-unrolled cells below are written from the equations of the PyTorch documentation
(nn.LSTM, nn.GRU), one gate at a time with the documented weight slices, independently
of xai/explain/recurrent.py (which uses fused matrix products).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from xai.datasets import load_dataset
from xai.errors import DataError, NotApplicableError
from xai.explain.recurrent import RecurrentInternals, gradient_by_distance, unroll
from xai.zoo import ModelHandle, load_model
from xai.zoo.rnn import carry_bias


def _slices(w: torch.Tensor, n: int) -> list[torch.Tensor]:
    h = w.shape[0] // n
    return [w[k * h:(k + 1) * h] for k in range(n)]


def hand_lstm(lstm: nn.LSTM, x: torch.Tensor, layer: int = 0) -> dict[str, list[list[torch.Tensor]]]:
    """Per sample and step: i, f, g, o, c, h of one layer, from the docs' equations (batch_first input)."""
    w_ii, w_if, w_ig, w_io = _slices(getattr(lstm, f"weight_ih_l{layer}"), 4)
    w_hi, w_hf, w_hg, w_ho = _slices(getattr(lstm, f"weight_hh_l{layer}"), 4)
    b_ii, b_if, b_ig, b_io = _slices(getattr(lstm, f"bias_ih_l{layer}"), 4)
    b_hi, b_hf, b_hg, b_ho = _slices(getattr(lstm, f"bias_hh_l{layer}"), 4)
    out: dict[str, list[list[torch.Tensor]]] = {k: [] for k in ("input", "forget", "output", "cell", "hidden")}
    for sample in x:
        h = torch.zeros(lstm.hidden_size, dtype=x.dtype)
        c = torch.zeros(lstm.hidden_size, dtype=x.dtype)
        rows: dict[str, list[torch.Tensor]] = {k: [] for k in out}
        for x_t in sample:
            i = torch.sigmoid(w_ii @ x_t + b_ii + w_hi @ h + b_hi)
            f = torch.sigmoid(w_if @ x_t + b_if + w_hf @ h + b_hf)
            g = torch.tanh(w_ig @ x_t + b_ig + w_hg @ h + b_hg)
            o = torch.sigmoid(w_io @ x_t + b_io + w_ho @ h + b_ho)
            c = f * c + i * g
            h = o * torch.tanh(c)
            for key, value in (("input", i), ("forget", f), ("output", o), ("cell", c), ("hidden", h)):
                rows[key].append(value)
        for key in out:
            out[key].append(rows[key])
    return out


def hand_gru(gru: nn.GRU, x: torch.Tensor) -> dict[str, list[list[torch.Tensor]]]:
    """Per sample and step: r, z, n, h from the docs' equations (one layer, batch_first input)."""
    w_ir, w_iz, w_in = _slices(gru.weight_ih_l0, 3)
    w_hr, w_hz, w_hn = _slices(gru.weight_hh_l0, 3)
    b_ir, b_iz, b_in = _slices(gru.bias_ih_l0, 3)
    b_hr, b_hz, b_hn = _slices(gru.bias_hh_l0, 3)
    out: dict[str, list[list[torch.Tensor]]] = {k: [] for k in ("reset", "update", "candidate", "hidden")}
    for sample in x:
        h = torch.zeros(gru.hidden_size, dtype=x.dtype)
        rows: dict[str, list[torch.Tensor]] = {k: [] for k in out}
        for x_t in sample:
            r = torch.sigmoid(w_ir @ x_t + b_ir + w_hr @ h + b_hr)
            z = torch.sigmoid(w_iz @ x_t + b_iz + w_hz @ h + b_hz)
            n = torch.tanh(w_in @ x_t + b_in + r * (w_hn @ h + b_hn))
            h = (1 - z) * n + z * h
            for key, value in (("reset", r), ("update", z), ("candidate", n), ("hidden", h)):
                rows[key].append(value)
        for key in out:
            out[key].append(rows[key])
    return out


def _as_tensor(per_sample: list[list[torch.Tensor]]) -> torch.Tensor:
    return torch.stack([torch.stack(steps) for steps in per_sample])  # (B, T, H)


@torch.no_grad()
def test_lstm_gates_equal_the_hand_unrolled_cell_and_the_final_state_equals_nn_lstm():
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 7, batch_first=True).double()
    x = torch.randn(3, 9, 5, dtype=torch.float64)
    gates = unroll(lstm, x)
    expected = hand_lstm(lstm, x)
    assert sorted(gates) == sorted(expected)
    for name, values in expected.items():
        torch.testing.assert_close(gates[name], _as_tensor(values), rtol=1e-10, atol=1e-12, msg=name)
    output, (h_n, c_n) = lstm(x)
    torch.testing.assert_close(gates["hidden"][:, -1], h_n[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gates["cell"][:, -1], c_n[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gates["hidden"], output, rtol=1e-10, atol=1e-12)
    assert all(float(gates[g].min()) >= 0 and float(gates[g].max()) <= 1 for g in ("input", "forget", "output"))


@torch.no_grad()
def test_gru_gates_equal_the_hand_unrolled_cell_and_the_final_state_equals_nn_gru():
    torch.manual_seed(1)
    gru = nn.GRU(4, 6, batch_first=True).double()
    x = torch.randn(2, 11, 4, dtype=torch.float64)
    gates = unroll(gru, x)
    for name, values in hand_gru(gru, x).items():
        torch.testing.assert_close(gates[name], _as_tensor(values), rtol=1e-10, atol=1e-12, msg=name)
    output, h_n = gru(x)
    torch.testing.assert_close(gates["hidden"][:, -1], h_n[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gates["hidden"], output, rtol=1e-10, atol=1e-12)


@torch.no_grad()
def test_stacked_sequence_first_lstm_with_an_initial_state():
    torch.manual_seed(2)
    lstm = nn.LSTM(3, 4, num_layers=2).double()  # (T, B, F) input
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    h0, c0 = torch.randn(2, 2, 4, dtype=torch.float64), torch.randn(2, 2, 4, dtype=torch.float64)
    output, (h_n, c_n) = lstm(x, (h0, c0))
    top = unroll(lstm, x, (h0, c0))
    bottom = unroll(lstm, x, (h0, c0), layer=0)
    torch.testing.assert_close(top["hidden"], output.transpose(0, 1), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(bottom["hidden"][:, -1], h_n[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(top["cell"][:, -1], c_n[1], rtol=1e-10, atol=1e-12)


def test_bidirectional_is_refused():
    with pytest.raises(DataError, match="bidirectional"):
        unroll(nn.LSTM(3, 4, bidirectional=True, batch_first=True), torch.zeros(1, 2, 3))


def test_gradient_by_distance_on_a_linear_recurrence_is_the_decay_factor_to_the_distance():
    """h_T = sum_t 0.5^(T-1-t) x_t, so |d h_T / d x_t| = 0.5^d exactly (ReLU on positive inputs)."""

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.RNN(1, 1, nonlinearity="relu", bias=False, batch_first=True)
            self.head = nn.Linear(1, 2, bias=False)
            with torch.no_grad():
                self.rnn.weight_ih_l0.fill_(1.0)
                self.rnn.weight_hh_l0.fill_(0.5)
                self.head.weight.copy_(torch.tensor([[1.0], [0.0]]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.rnn(x)[0][:, -1])

    handle = ModelHandle.from_module(Tiny(), classes=2, input_shape=(10, 1), modality="sequence")
    norms, target = gradient_by_distance(handle, torch.rand(3, 10, 1) + 0.1)
    assert target.tolist() == [0, 0, 0]
    np.testing.assert_allclose(norms, np.tile(0.5 ** np.arange(10), (3, 1)), rtol=1e-6)


@pytest.fixture(scope="module")
def digits_rows():
    return load_dataset("digits-rows", "test")


@pytest.fixture(scope="module")
def trained():
    return {name: load_model(name) for name in ("rnn", "lstm", "gru")}


def test_method_on_the_zoo_lstm_reproduces_its_hidden_states(trained, digits_rows):
    handle = trained["lstm"]
    before = {k: v.clone() for k, v in handle.module.state_dict().items()}
    result = RecurrentInternals.run(handle, digits_rows, {"samples": 3, "sequences": 4, "concat": 2})
    assert result.cell == "lstm" and result.layer == "rnn"
    assert result.gates["forget"].shape == (3, 8, 64) and result.step_means["forget"].shape == (8,)
    assert result.unroll_error < 1e-5
    # the unrolled final hidden state reproduces the model's own logits through its head
    logits = handle.module.head(torch.from_numpy(result.gates["hidden"][:, -1]))
    with torch.no_grad():
        torch.testing.assert_close(logits, handle.module(digits_rows.x[:3]), rtol=1e-4, atol=1e-4)
    assert result.grad_norm.shape == (16,) and result.sequences == 4 and result.window == 8
    assert set(result.metrics()) >= {"unroll_error", "forget.mean", "gradient.far_near_log10"}
    assert not handle.module.training
    assert all(torch.equal(before[k], v) for k, v in handle.module.state_dict().items())
    assert all(p.grad is None for p in handle.module.parameters())


def test_not_applicable_without_a_recurrent_module(lenet):
    with pytest.raises(NotApplicableError):
        RecurrentInternals.check_applies(lenet)


def test_text_lstm_gets_gates_and_a_note_instead_of_the_gradient():
    handle = load_model("lstm-text")
    data = load_dataset(handle.dataset, "test")
    result = RecurrentInternals.run(handle, data, {"samples": 2})
    assert result.unroll_error < 1e-5 and result.gates["input"].shape[0] == 2
    assert result.grad_norm.size == 0 and "gradient diagnostic skipped" in result.notes[0]


# The vanishing-gradient diagnostic on the trained zoo models: 64 sequences of 16 test digits
# read row by row (128 steps), the same sequences for the three models (seed 0).
@pytest.fixture(scope="module")
def decay(trained, digits_rows):
    options = {"samples": 1, "sequences": 64, "concat": 16}
    return {name: RecurrentInternals.run(handle, digits_rows, options, seed=0) for name, handle in trained.items()}


def test_rnn_gradient_decays_faster_than_the_lstm_at_long_distances(decay):
    rnn, lstm = decay["rnn"], decay["lstm"]
    assert rnn.far_near_log10 < -2  # over 100 times weaker 120 steps back than at the end
    assert rnn.far_near_log10 < lstm.far_near_log10
    assert rnn.far_near_ratio < lstm.far_near_ratio
    assert rnn.grad_log10[-8:].mean() < lstm.grad_log10[-8:].mean()


def test_rnn_gradient_decays_faster_than_the_gru_at_long_distances(decay):
    # The zoo GRU starts with an update-gate bias of 2 (xai.zoo.rnn.carry_bias); with PyTorch's
    # default init it settled on z = 0.23 and its gradient decayed as fast as the RNN's.
    rnn, gru = decay["rnn"], decay["gru"]
    assert rnn.far_near_log10 < gru.far_near_log10 - 2  # over 100 times more gradient 120 steps back
    assert rnn.grad_log10[-8:].mean() < gru.grad_log10[-8:].mean()


def test_carry_bias_starts_the_update_gate_at_sigmoid_of_the_bias():
    # h' = (1 - z) * n + z * h: with zero weights and zero other biases, n = tanh(0) = 0,
    # so one step from h = 1 leaves exactly z = sigmoid(2) of the state.
    gru = torch.nn.GRU(3, 4, batch_first=True)
    with torch.no_grad():
        for parameter in gru.parameters():
            parameter.zero_()
    carry_bias(gru, 2.0)
    _, h = gru(torch.zeros(1, 1, 3), torch.ones(1, 1, 4))
    torch.testing.assert_close(h, torch.full((1, 1, 4), 1 / (1 + math.exp(-2.0))))
