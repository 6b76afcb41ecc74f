"""Visual question answering on ``shapes-vqa``: a CNN, an LSTM and three ways to fuse them.

One architecture, :class:`VQANet`, reads the packed input of ``shapes-vqa`` (RGB image
plus the one-hot question plane, see :mod:`xai.datasets._vqa`) and fuses the modalities

- ``early``: the question vector is broadcast as extra input channels of the CNN;
- ``intermediate``: FiLM (Perez et al. 2018) -- the question scales and shifts every
  channel of the CNN's mid-level feature map, before pooling (the ``vqa`` entry);
- ``late``: each modality is reduced to one global vector on its own (the image is
  pooled before it meets the question); they meet only in the classifier.

Token attributions: :func:`question_attributions` runs captum's
``LayerIntegratedGradients`` on the question embedding (``embed``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from captum.attr import LayerIntegratedGradients
from torch import nn

from xai.datasets import Dataset
from xai.datasets._vqa import ANSWERS, QUESTION_LENGTH, QUESTION_TYPES, VOCAB, decode_plane
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._train import TrainContext, fit_classifier, predict_logits
from xai.zoo.handle import ModalitySplit

__all__ = ["VQANet", "question_attributions", "split_attributions", "split_packed", "vqa_accuracy"]

Fusion = Literal["early", "intermediate", "late"]


class VQANet(nn.Module):
    """CNN image encoder + LSTM question encoder + fusion + answer classifier.

    Parameters
    ----------
    fusion
        ``early``, ``intermediate`` (FiLM) or ``late`` (see the module doc).
    widths, hidden, embed_dim
        CNN channels of the three 3x3 convolutions, LSTM hidden size and word-embedding size.

    Examples
    --------
    >>> VQANet()(torch.zeros(2, 4, 40, 40)).shape
    torch.Size([2, 16])
    """

    def __init__(self, fusion: Fusion = "intermediate", widths: tuple[int, int, int] = (16, 32, 48), hidden: int = 64,
                 embed_dim: int = 32, num_answers: int = len(ANSWERS)) -> None:
        super().__init__()
        self.fusion = fusion
        # an nn.Embedding(padding_idx=0) written as a linear map of one-hot rows
        self.embed = nn.Linear(len(VOCAB), embed_dim, bias=False)
        self.lstm = nn.LSTM(embed_dim, hidden, batch_first=True)
        extra = 8 if fusion == "early" else 0
        if fusion == "early":
            self.question_channels = nn.Linear(hidden, extra)
        w1, w2, width = widths
        self.conv1 = nn.Conv2d(3 + extra, w1, 3, padding=1)  # (B, w1, 40, 40)
        self.bn1 = nn.BatchNorm2d(w1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)  # (B, w1, 20, 20)
        self.conv2 = nn.Conv2d(w1, w2, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(w2)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)  # (B, w2, 10, 10)
        self.conv3 = nn.Conv2d(w2, width, 3, padding=1)  # (B, width, 10, 10)
        self.bn3 = nn.BatchNorm2d(width, affine=fusion != "intermediate")  # FiLM is the affine
        self.relu3 = nn.ReLU()
        if fusion == "intermediate":
            self.film = nn.Linear(hidden, 2 * width)
        if fusion == "late":  # on the pooled (B, 2 width, 1, 1) vector
            self.conv4 = nn.Conv2d(2 * width, 2 * width, 1)
        else:
            self.conv4 = nn.Conv2d(width, width, 3, padding=1)
        self.relu4 = nn.ReLU()
        self.avg = nn.AdaptiveAvgPool2d(1)  # counts (how much of it)
        self.max = nn.AdaptiveMaxPool2d(1)  # presence (is it anywhere)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(2 * width + hidden, 128)
        self.relu5 = nn.ReLU()
        self.fc2 = nn.Linear(128, num_answers)

    def encode_question(self, x: torch.Tensor) -> torch.Tensor:
        """Question vector ``(B, hidden)``: the LSTM state after the last (rightmost) token."""
        rows = x[:, 3, :QUESTION_LENGTH, :len(VOCAB)]  # (B, T, V) one-hot rows
        tokens = self.embed(rows)  # (B, T, E)
        use_cudnn = self.training or not torch.is_grad_enabled()  # cuDNN RNN backward needs train mode
        with torch.backends.cudnn.flags(enabled=use_cudnn and torch.backends.cudnn.enabled):
            out = self.lstm(tokens)[0]
        return out[:, -1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Answer logits ``(B, len(ANSWERS))`` for packed inputs ``(B, 4, S, S)``."""
        q = self.encode_question(x)
        image = x[:, :3]
        if self.fusion == "early":
            planes = self.question_channels(q)[:, :, None, None].expand(-1, -1, *image.shape[-2:])
            image = torch.cat([image, planes], 1)
        h = self.pool1(self.relu1(self.bn1(self.conv1(image))))
        h = self.pool2(self.relu2(self.bn2(self.conv2(h))))
        h = self.bn3(self.conv3(h))
        if self.fusion == "intermediate":
            gamma, beta = self.film(q)[:, :, None, None].chunk(2, 1)
            h = h * (1 + gamma) + beta
        h = self.relu3(h)
        if self.fusion == "late":  # pool first: no spatial binding with the question
            h = torch.cat([self.avg(h), self.max(h)], 1)  # (B, 2 width, 1, 1)
            h = self.flatten(self.relu4(self.conv4(h)))
        else:
            h = self.relu4(self.conv4(h))
            h = torch.cat([self.flatten(self.avg(h)), self.flatten(self.max(h))], 1)
        h = torch.cat([h, q], 1)
        return self.fc2(self.relu5(self.fc1(h)))


def vqa_accuracy(module: nn.Module, data: Dataset, device: torch.device) -> dict[str, float]:
    """Held-out accuracy, overall and per question type (``accuracy_<type>``)."""
    pred = predict_logits(module, data.x, device).argmax(1)
    correct = (pred == data.y).numpy()
    kinds = data.groups["question"].to_numpy() if "question" in data.groups else None
    out = {"accuracy": float(correct.mean())}
    if kinds is not None:
        for kind in QUESTION_TYPES:
            if (kinds == kind).any():
                out[f"accuracy_{kind}"] = float(correct[kinds == kind].mean())
    return out


def split_attributions(attributions: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Split attributions over packed inputs ``(N, 4, S, S)`` into image and token parts.

    Returns the image's ``(N, 3, S, S)`` and one value per question token
    ``(N, QUESTION_LENGTH)`` (the sum of its plane row; only the token's own column is
    non-zero for path methods, whose baseline plane is zero).
    """
    attr = np.asarray(attributions.detach().cpu() if isinstance(attributions, torch.Tensor) else attributions)
    return attr[:, :3], attr[:, 3, :QUESTION_LENGTH, :len(VOCAB)].sum(-1)


def split_packed(inputs: np.ndarray, attributions: np.ndarray) -> ModalitySplit:
    """Packed ``shapes-vqa`` inputs and attributions -> image part and question words with scores.

    The question's words are decoded from the plane (left padding dropped) and each
    word's score is its plane row's sum (:func:`split_attributions`), moved to the front
    of the row like a text model's.
    """
    image_attr, row_scores = split_attributions(attributions)  # (N, 3, S, S), (N, L)
    ids = decode_plane(torch.as_tensor(inputs)).numpy()  # (N, L), left-padded
    tokens, scores = [], np.zeros_like(row_scores)
    for i, row in enumerate(ids):
        words = np.flatnonzero(row)
        tokens.append(tuple(VOCAB[int(row[t])] for t in words))
        scores[i, :len(words)] = row_scores[i, words]
    return ModalitySplit(np.asarray(inputs)[:, :3], image_attr, tuple(tokens), scores)


def question_attributions(module: nn.Module, x: torch.Tensor, target: torch.Tensor,
                          steps: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Integrated gradients of the answer logits over the question tokens.

    captum's ``LayerIntegratedGradients`` on ``module.embed`` with the zero embedding as
    baseline (the padding embedding); the image stays as it is along the path.

    Returns
    -------
    attributions
        ``(N, QUESTION_LENGTH)``: per token, summed over the embedding dimensions.
    delta
        ``(N,)`` convergence deltas (completeness: attributions sum to the logit change).
    """
    module.eval()
    lig = LayerIntegratedGradients(module, module.embed)
    zero = x.clone()
    zero[:, 3] = 0.0  # the question plane gone: every token embeds to the zero vector
    attr, delta = lig.attribute(x, baselines=zero, target=target, n_steps=steps,
                                return_convergence_delta=True)
    return attr.sum(-1).detach().cpu().numpy(), delta.detach().cpu().numpy()


# channels_last: NHWC convolutions train these conv stems 1.2-1.35x faster on CPU (BENCHMARKS.md).
_VQA_RECIPE: dict[str, Any] = {"epochs": 9, "lr": 3e-3, "batch_size": 32, "weight_decay": 1e-4,
                              "channels_last": True}
#: The three fusion variants share one shorter recipe, so only the fusion differs. Their
#: accuracy moves with the seed (seeds 0-3: early 0.52-0.72, intermediate 0.80-0.87, late
#: 0.70-0.85; BENCHMARKS.md), so the floors hold at the card's seed 0, and the fusion
#: comparison is read over seeds.
_FUSION_RECIPE: dict[str, Any] = {"epochs": 6, "lr": 3e-3, "batch_size": 32, "weight_decay": 1e-4,
                                 "channels_last": True}


def _register(name: str, fusion: Fusion, floor: float, description: str, paper: str,
              base: dict[str, Any] = _FUSION_RECIPE) -> None:
    recipe = dict(base, fusion=fusion)

    def build() -> VQANet:
        return VQANet(fusion)

    def train(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
        fit = fit_classifier(module, ctx, label=name,
                             **{k: v for k, v in recipe.items() if k != "fusion"})
        return {**vqa_accuracy(module, ctx.test, ctx.device), "train_loss": fit["train_loss"]}

    register_model(ZooEntry(
        name=name, family="multimodal", task="classification", modality="multimodal",
        dataset="shapes-vqa", build=build, train=train, input_shape=(4, 40, 40),
        class_names=ANSWERS, layers=("conv1", "conv2", "conv3", "lstm"),
        metric="accuracy", floor=floor, paper=paper, description=description,
        recipe=recipe, evaluate=vqa_accuracy, split_modalities=split_packed,
    ))


_FILM = "https://arxiv.org/abs/1709.07871"
_register("vqa", "intermediate", 0.85,
          "VQA on shapes scenes: CNN + LSTM question encoder, FiLM fusion, answer classifier", _FILM,
          base=_VQA_RECIPE)
_register("fusion-early", "early", 0.62,
          "VQA fusion variant: question vector broadcast as extra CNN input channels (early)", _FILM)
_register("fusion-intermediate", "intermediate", 0.80,
          "VQA fusion variant: FiLM on the mid-level feature map (intermediate)", _FILM)
_register("fusion-late", "late", 0.68,
          "VQA fusion variant: image pooled to one vector, joined with the question at the "
          "classifier (late)", "https://arxiv.org/abs/1505.00468")
