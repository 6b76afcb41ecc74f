"""Convolutional networks of the zoo: LeNet-5, a small ResNet and a small GoogLeNet."""

from __future__ import annotations

from typing import Any

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


_LENET_RECIPE: dict[str, Any] = {"epochs": 30, "lr": 2e-3, "batch_size": 64, "weight_decay": 1e-4,
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


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv-BN layers plus an identity (or 1x1 projection) shortcut.

    He et al. 2016, https://arxiv.org/abs/1512.03385. The sum is taken out of place and the
    final ReLU is its own module, so hooks see the block's output.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H / stride, W / stride)``."""
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet(nn.Module):
    """A small ResNet for ``(B, 1, 32, 32)`` digits: stem, three stages, global pooling.

    The stem halves the resolution (the digits are 8x8 scans upsampled to 32x32, so
    full resolution adds cost, not information); the stages run at 16, 8 and 4 pixels.

    Examples
    --------
    >>> ResNet()(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1,
                 widths: tuple[int, int, int] = (16, 32, 64), blocks: tuple[int, int, int] = (1, 1, 2)) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, widths[0], 3, stride=2, padding=1, bias=False)  # (B, 16, 16, 16)
        self.bn = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        stages = []
        width = widths[0]
        for i, (out, count) in enumerate(zip(widths, blocks, strict=True)):
            stride = 1 if i == 0 else 2
            layers = [BasicBlock(width, out, stride)] + [BasicBlock(out, out) for _ in range(count - 1)]
            stages.append(nn.Sequential(*layers))
            width = out
        self.layer1, self.layer2, self.layer3 = stages  # (B, 16, 16, 16) (B, 32, 8, 8) (B, 64, 4, 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)``."""
        x = self.relu(self.bn(self.stem(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.pool(x)))


class ConvBNReLU(nn.Module):
    """Conv, batch norm, ReLU (torchvision's GoogLeNet ``BasicConv2d``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H / stride, W / stride)``."""
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Inception module: 1x1, 1x1-3x3, 1x1-5x5 and pool-1x1 branches, concatenated.

    Szegedy et al. 2015, https://arxiv.org/abs/1409.4842 (the network DeepDream ran on).
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int,
                 ch5x5red: int, ch5x5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1 = ConvBNReLU(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(ConvBNReLU(in_channels, ch3x3red, 1), ConvBNReLU(ch3x3red, ch3x3, 3))
        self.branch3 = nn.Sequential(ConvBNReLU(in_channels, ch5x5red, 1), ConvBNReLU(ch5x5red, ch5x5, 5))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), ConvBNReLU(in_channels, pool_proj, 1))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)`` -> ``(B, out_channels, H, W)``."""
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    """A small GoogLeNet for ``(B, 1, 32, 32)`` digits: stem, three inception modules.

    Names follow torchvision's GoogLeNet (``inception3a``, ``inception3b``, ``inception4a``).

    Examples
    --------
    >>> GoogLeNet()(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.stem = ConvBNReLU(in_channels, 32, 3, stride=2)  # (B, 32, 16, 16)
        self.pool1 = nn.MaxPool2d(2)  # (B, 32, 8, 8): the scans' own resolution
        self.inception3a = Inception(32, 16, 16, 24, 4, 8, 8)  # (B, 56, 8, 8)
        self.inception3b = Inception(56, 24, 24, 32, 8, 12, 12)  # (B, 80, 8, 8)
        self.pool2 = nn.MaxPool2d(2)  # (B, 80, 4, 4)
        self.inception4a = Inception(80, 32, 32, 48, 8, 16, 16)  # (B, 112, 4, 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(112, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)``."""
        x = self.pool1(self.stem(x))
        x = self.pool2(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        return self.fc(self.flatten(self.pool(x)))


_RESNET_RECIPE: dict[str, Any] = {"epochs": 8, "lr": 3e-3, "batch_size": 64, "weight_decay": 1e-4,
                                  "augment": "random shift +-2 px"}


def _train_resnet(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    recipe = {k: v for k, v in _RESNET_RECIPE.items() if k != "augment"}
    return fit_classifier(module, ctx, augment=random_shift, label="resnet", **recipe)


register_model(
    ZooEntry(
        name="resnet",
        family="cnn",
        task="classification",
        modality="image",
        dataset="digits",
        build=ResNet,
        train=_train_resnet,
        input_shape=(1, 32, 32),
        class_names=DIGIT_CLASSES,
        layers=("layer1", "layer2", "layer3"),  # stages, shallow to deep; last = last conv
        metric="accuracy",
        floor=0.98,
        paper="https://arxiv.org/abs/1512.03385",
        description="small ResNet (basic blocks, batch norm; 3 stages) on the digits at 32x32",
        recipe=_RESNET_RECIPE,
    )
)


_GOOGLENET_RECIPE: dict[str, Any] = {"epochs": 6, "lr": 3e-3, "batch_size": 64, "weight_decay": 1e-4,
                                     "augment": "random shift +-2 px"}


def _train_googlenet(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    recipe = {k: v for k, v in _GOOGLENET_RECIPE.items() if k != "augment"}
    return fit_classifier(module, ctx, augment=random_shift, label="googlenet", **recipe)


register_model(
    ZooEntry(
        name="googlenet",
        family="cnn",
        task="classification",
        modality="image",
        dataset="digits",
        build=GoogLeNet,
        train=_train_googlenet,
        input_shape=(1, 32, 32),
        class_names=DIGIT_CLASSES,
        layers=("inception3a", "inception3b", "inception4a"),  # shallow to deep
        metric="accuracy",
        floor=0.97,
        paper="https://arxiv.org/abs/1409.4842",
        description="small GoogLeNet (three inception modules, batch norm) on the digits at 32x32",
        recipe=_GOOGLENET_RECIPE,
    )
)
