"""Convolutional networks of the zoo."""

from __future__ import annotations

import torch
from torch import nn

from xai.datasets._digits import DIGIT_CLASSES
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._train import TrainContext, fit_classifier


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998) with ReLU and max pooling, for ``(B, 1, 32, 32)`` inputs.

    Every activation is its own module (no reuse, no in-place ops) so captum's
    layer and DeepLift hooks can attach to each one.

    Examples
    --------
    >>> LeNet5()(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, kernel_size=5)  # (B, 6, 28, 28)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)  # (B, 6, 14, 14)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)  # (B, 16, 10, 10)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)  # (B, 16, 5, 5)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)``."""
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        return self.fc3(self.relu4(self.fc2(x)))


def random_shift(x: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels (zero fill); seeded."""
    b, _, h, w = x.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (b, 2), generator=generator)
    padded = nn.functional.pad(x, (max_shift,) * 4)
    out = torch.empty_like(x)
    for i, (dy, dx) in enumerate(shifts.tolist()):
        top, left = max_shift + dy, max_shift + dx
        out[i] = padded[i, :, top:top + h, left:left + w]
    return out


_LENET_RECIPE = {"epochs": 30, "lr": 2e-3, "batch_size": 64, "weight_decay": 1e-4,
                 "augment": "random shift +-2 px"}


def _train_lenet(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    recipe = {k: v for k, v in _LENET_RECIPE.items() if k != "augment"}
    return fit_classifier(module, ctx, augment=random_shift, label="lenet", **recipe)


register_model(
    ZooEntry(
        name="lenet",
        family="cnn",
        task="classification",
        modality="image",
        dataset="digits",
        build=LeNet5,
        train=_train_lenet,
        input_shape=(1, 32, 32),
        class_names=DIGIT_CLASSES,
        layers=("conv1", "conv2", "fc1"),
        metric="accuracy",
        floor=0.97,
        paper="https://doi.org/10.1109/5.726791",
        description="LeNet-5 on the scikit-learn digits upsampled to 32x32",
        recipe=_LENET_RECIPE,
    )
)
