"""Recurrent networks of the zoo: a vanilla RNN, an LSTM and a GRU reading digits row by row.

Each reads a digit of the ``digits-rows`` dataset as a sequence of 8 time steps (the rows,
top to bottom) of 8 pixels, and classifies it from the hidden state after the last row.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from xai.datasets._digits import DIGIT_CLASSES
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._train import TrainContext, fit_classifier

__all__ = ["SequenceClassifier", "carry_bias"]

Cell = Literal["rnn", "lstm", "gru"]
_CELLS: dict[str, type[nn.RNN] | type[nn.LSTM] | type[nn.GRU]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class SequenceClassifier(nn.Module):
    """A one-layer recurrent network over ``(B, T, F)`` sequences with a linear head.

    The recurrent layer is ``self.rnn`` (``nn.RNN`` with tanh, ``nn.LSTM`` or ``nn.GRU``);
    the head reads its output at the last step.

    Examples
    --------
    >>> SequenceClassifier("gru")(torch.zeros(2, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, cell: Cell, in_features: int = 8, hidden: int = 64, num_classes: int = 10) -> None:
        super().__init__()
        self.cell = cell
        self.rnn = _CELLS[cell](in_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)`` for sequences ``(B, T, F)``."""
        # cuDNN's RNN backward refuses eval mode, and explainers differentiate models in
        # eval mode: use the native kernels whenever gradients flow outside training.
        use_cudnn = self.training or not torch.is_grad_enabled()
        with torch.backends.cudnn.flags(enabled=use_cudnn and torch.backends.cudnn.enabled):
            out = self.rnn(x)[0]  # (B, T, hidden)
        return self.head(out[:, -1])  # (B, classes)


def carry_bias(rnn: nn.GRU, bias: float) -> None:
    """Start a GRU carrying its state: update-gate bias ``bias`` (z = sigmoid(bias) at zero input).

    PyTorch's GRU keeps ``z * h`` of the old state and its default init starts z near 0.5; a
    GRU trained so on 8-step digits settled on z = 0.23, overwriting its state as fast as the
    RNN forgets. A positive bias is the GRU form of the LSTM's forget-gate bias of 1
    (Jozefowicz et al. 2015); ``log(T - 1)`` starts a memory of about T steps (Tallec and
    Ollivier 2018, "chrono" initialisation).
    """
    update = slice(rnn.hidden_size, 2 * rnn.hidden_size)  # gate order r, z, n
    with torch.no_grad():  # the input and hidden biases add up
        for name in ("bias_ih_l0", "bias_hh_l0"):
            getattr(rnn, name)[update] = bias / 2


def _register(cell: Cell, architecture: str, epochs: int, lr: float, hidden: int, floor: float,
              paper: str, update_bias: float | None = None) -> None:
    recipe: dict[str, float | int] = {"epochs": epochs, "lr": lr, "batch_size": 32, "weight_decay": 0.0,
                                      "hidden": hidden}
    if update_bias is not None:
        recipe["update_bias"] = update_bias

    def build() -> SequenceClassifier:
        return SequenceClassifier(cell, hidden=hidden)

    def train(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
        if update_bias is not None:
            carry_bias(module.rnn, update_bias)  # type: ignore[arg-type]
        return fit_classifier(module, ctx, epochs=epochs, lr=lr, batch_size=32, label=cell)

    register_model(
        ZooEntry(
            name=cell,
            family="rnn",
            task="classification",
            modality="sequence",
            dataset="digits-rows",
            build=build,
            train=train,
            input_shape=(8, 8),
            class_names=DIGIT_CLASSES,
            layers=("rnn",),
            metric="accuracy",
            floor=floor,
            paper=paper,
            description=f"{architecture}, {hidden} hidden units, reading the 8x8 digits row by row",
            recipe=recipe,
        )
    )


_register("rnn", "Elman RNN (tanh)", epochs=40, lr=3e-3, hidden=64, floor=0.90,
          paper="https://doi.org/10.1207/s15516709cog1402_1")
_register("lstm", "LSTM", epochs=30, lr=5e-3, hidden=64, floor=0.95,
          paper="https://doi.org/10.1162/neco.1997.9.8.1735")
# update_bias = log(8 - 1), about 2: start with a memory of one digit's 8 rows
_register("gru", "GRU", epochs=30, lr=5e-3, hidden=64, floor=0.95,
          paper="https://arxiv.org/abs/1406.1078", update_bias=2.0)
