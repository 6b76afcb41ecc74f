"""Meta-learning: a prototypical network (Snell et al. 2017) trained on N-way K-shot digit episodes.

The embedding is trained only on episodes of the *base* digits 0-4 (training split; each
digit under the 8 rotations/flips of the square is a class of its own, 40 classes, as
Snell et al. rotated Omniglot characters) and evaluated on 5-way 5-shot episodes of the
*novel* digits 5-9 (test split): support and query images of classes it never saw a
label of during training.

The floor, 0.90, asks the learned embedding to beat nearest-prototype classification of
the raw 8x8 pixels on the same episodes (0.886, ``pixel_episode_accuracy`` on the card;
chance is 0.2). Trained on the five base digits alone (no symmetries) the embedding
reached only 0.86-0.89: five classes are learned in a few dozen episodes and teach
little about other digits.

For explainers and probes the module is also a 10-digit classifier: ``forward(x)``
returns the negative squared distances from ``x``'s embedding to ten fixed prototypes,
the mean embeddings of each digit over the training split, stored as the buffer
``prototypes`` after training (Snell et al.'s classifier with many shots).
Paper: https://arxiv.org/abs/1703.05175.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xai.datasets import Dataset
from xai.datasets._digits import DIGIT_CLASSES
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._train import TrainContext, predict_logits, seed_everything
from xai.zoo.cnn import random_shift

#: Digits whose labels the embedding is trained on, and the held-out ones it is tested on.
BASE_CLASSES = (0, 1, 2, 3, 4)
NOVEL_CLASSES = (5, 6, 7, 8, 9)
#: The evaluation protocol: seeded episodes of the test split's novel digits.
EVAL_WAY, EVAL_SHOT, EVAL_QUERY, EVAL_EPISODES, EVAL_SEED = 5, 5, 15, 600, 0


class ConvBlock(nn.Module):
    """3x3 convolution, batch norm, ReLU (one block of Snell et al.'s embedding)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H, W)``."""
        return self.relu(self.bn(self.conv(x)))


class ProtoNet(nn.Module):
    """A small conv embedding plus fixed class prototypes.

    ``embed(x)`` maps ``(B, 1, 32, 32)`` digits to ``(B, 512)``; ``forward(x)`` gives
    ``-||embed(x) - prototype_c||^2`` for the ten stored prototypes (logits of a
    nearest-prototype classifier).

    Examples
    --------
    >>> ProtoNet()(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 10])
    """

    # buffers (register_buffer), declared for the type checker
    prototypes: torch.Tensor

    def __init__(self, width: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        self.downsample = nn.AvgPool2d(2)  # (B, 1, 16, 16): the scans are 8x8, 32x32 adds no detail
        self.block1 = ConvBlock(1, width)  # (B, w, 16, 16)
        self.pool1 = nn.MaxPool2d(2)  # (B, w, 8, 8)
        self.block2 = ConvBlock(width, width)  # (B, w, 8, 8)
        self.pool2 = nn.MaxPool2d(2)  # (B, w, 4, 4)
        self.block3 = ConvBlock(width, width)  # (B, w, 4, 4)
        self.flatten = nn.Flatten()  # (B, 16w)
        self.register_buffer("prototypes", torch.zeros(num_classes, 16 * width))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(B, 16 * width)``."""
        x = self.pool1(self.block1(self.downsample(x)))
        x = self.pool2(self.block2(x))
        return self.flatten(self.block3(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Negative squared distances to the stored prototypes ``(B, num_classes)``."""
        return neg_sq_distance(self.embed(x), self.prototypes)


def neg_sq_distance(embeddings: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """``-||e_i - p_c||^2`` for every row ``(B, D)`` and prototype ``(C, D)`` -> ``(B, C)``."""
    diff = embeddings.unsqueeze(1) - prototypes.unsqueeze(0)  # (B, C, D)
    return -(diff * diff).sum(-1)


def class_prototypes(embeddings: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Mean embedding of each class ``0 .. n_classes - 1`` ``(n_classes, D)``."""
    one_hot = F.one_hot(labels, n_classes).to(embeddings.dtype)  # (B, C)
    return (one_hot.T @ embeddings) / one_hot.sum(0).clamp_min(1).unsqueeze(1)


def sample_episode(labels: torch.Tensor, classes: tuple[int, ...], *, way: int, shot: int, query: int,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row indices of one N-way K-shot episode and the episode's labels ``0 .. way - 1``.

    ``way`` classes are drawn from ``classes``, then ``shot + query`` distinct rows of each.
    Returns ``(support_idx, support_y, query_idx, query_y)``.
    """
    chosen = torch.randperm(len(classes), generator=generator)[:way]
    support, query_rows = [], []
    for c in chosen.tolist():
        rows = torch.nonzero(labels == classes[c]).squeeze(1)
        picked = rows[torch.randperm(len(rows), generator=generator)[:shot + query]]
        support.append(picked[:shot])
        query_rows.append(picked[shot:])
    support_y = torch.arange(way).repeat_interleave(shot)
    query_y = torch.arange(way).repeat_interleave(query)
    return torch.cat(support), support_y, torch.cat(query_rows), query_y


def episode_logits(module: ProtoNet, support_x: torch.Tensor, support_y: torch.Tensor, query_x: torch.Tensor,
                   way: int) -> torch.Tensor:
    """Query logits ``(Q, way)`` against the prototypes of this episode's support set."""
    embeddings = module.embed(torch.cat([support_x, query_x]))
    prototypes = class_prototypes(embeddings[:len(support_x)], support_y, way)
    return neg_sq_distance(embeddings[len(support_x):], prototypes)


def prototypical_loss(module: nn.Module, batch: Dataset) -> torch.Tensor:
    """The prototypical loss with ``batch`` as both support and query set.

    Prototypes are the class means of the batch's own embeddings; training episodes keep
    support and query apart (this form is what a single batch allows).
    """
    assert isinstance(module, ProtoNet)
    classes, labels = torch.unique(batch.y, return_inverse=True)
    embeddings = module.embed(batch.x)
    prototypes = class_prototypes(embeddings, labels, len(classes))
    return F.cross_entropy(neg_sq_distance(embeddings, prototypes), labels)


@torch.no_grad()
def embed_all(module: ProtoNet, x: torch.Tensor, device: torch.device, batch_size: int = 512) -> torch.Tensor:
    """Embeddings of every row of ``x`` in eval mode ``(N, D)``, on the CPU."""
    was_training = module.training
    module.eval()
    try:
        return torch.cat([module.embed(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])
    finally:
        module.train(was_training)


@torch.no_grad()
def episode_accuracy(module: nn.Module, data: Dataset, classes: tuple[int, ...] = NOVEL_CLASSES, *,
                     way: int = EVAL_WAY, shot: int = EVAL_SHOT, query: int = EVAL_QUERY,
                     episodes: int = EVAL_EPISODES, seed: int = EVAL_SEED,
                     device: torch.device | None = None) -> tuple[float, float]:
    """Mean query accuracy over seeded episodes and its 95% normal interval half-width.

    In eval mode a row's embedding does not depend on the other rows, so every row is
    embedded once and the episodes index the embeddings.
    """
    assert isinstance(module, ProtoNet)
    embeddings = embed_all(module, data.x, device or torch.device("cpu"))  # (N, D)
    generator = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(episodes):
        s_idx, s_y, q_idx, q_y = sample_episode(data.y, classes, way=way, shot=shot, query=query,
                                                generator=generator)
        logits = neg_sq_distance(embeddings[q_idx], class_prototypes(embeddings[s_idx], s_y, way))
        scores.append(float((logits.argmax(1) == q_y).float().mean()))
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / max(len(scores) - 1, 1))
    return mean, 1.96 * std / math.sqrt(len(scores))


def evaluate_protonet(module: nn.Module, test: Dataset, device: torch.device) -> dict[str, float]:
    """Held-out metrics of a trained prototypical network.

    ``episode_accuracy`` (headline): 5-way 5-shot episodes of the novel digits;
    ``base_episode_accuracy``: the same on the base digits; ``accuracy``: the 10-digit
    classifier of the stored training-set prototypes.
    """
    novel, novel_ci = episode_accuracy(module, test, NOVEL_CLASSES, device=device)
    base, _ = episode_accuracy(module, test, BASE_CLASSES, device=device)
    logits = predict_logits(module, test.x, device)
    return {"episode_accuracy": novel, "episode_accuracy_ci95": novel_ci, "base_episode_accuracy": base,
            "accuracy": float((logits.argmax(1) == test.y).float().mean())}


@torch.no_grad()
def store_prototypes(module: ProtoNet, train: Dataset, device: torch.device, batch_size: int = 512) -> None:
    """Set ``module.prototypes`` to each digit's mean embedding over ``train`` (eval mode)."""
    module.eval()
    embeddings = embed_all(module, train.x, device, batch_size)
    module.prototypes.copy_(class_prototypes(embeddings, train.y, module.prototypes.shape[0]).to(
        module.prototypes.device))


_PROTONET_RECIPE: dict[str, Any] = {
    "train_classes": list(BASE_CLASSES), "test_classes": list(NOVEL_CLASSES),
    "pseudo_classes": "each base digit under the 8 rotations/flips of the square: 40 classes",
    "episodes": 400, "way": 20, "shot": 5, "query": 5, "lr": 1e-3,
    "augment": "random shift +-2 px",
    "evaluation": f"{EVAL_EPISODES} seeded {EVAL_WAY}-way {EVAL_SHOT}-shot episodes, "
                  f"{EVAL_QUERY} queries per class, test split, novel digits 5-9"
}


def dihedral_classes(x: torch.Tensor, y: torch.Tensor, classes: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ``classes`` under the 8 symmetries of the square, each symmetry a class of its own.

    Snell et al. trained on Omniglot with rotated characters as new classes; with only five
    base digits the extra 35 classes make the embedding learn strokes, not five templates.
    Returns images ``(8 n, 1, H, W)`` and labels ``0 .. 8 len(classes) - 1``.
    """
    keep = torch.isin(y, torch.tensor(classes))
    base_x = x[keep]
    base_y = torch.searchsorted(torch.tensor(classes), y[keep])  # 0 .. len(classes) - 1
    images, labels = [], []
    for k in range(8):
        flipped = base_x.flip(3) if k >= 4 else base_x
        images.append(torch.rot90(flipped, k % 4, (2, 3)))
        labels.append(base_y + k * len(classes))
    return torch.cat(images), torch.cat(labels)


def pixel_episode_accuracy(data: Dataset, classes: tuple[int, ...] = NOVEL_CLASSES) -> float:
    """The same episodes classified by prototypes of the raw 8x8 pixels (the floor's reference)."""
    embeddings = F.avg_pool2d(data.x, 4).flatten(1)  # (N, 64): back to the scans' resolution
    generator = torch.Generator().manual_seed(EVAL_SEED)
    scores = []
    for _ in range(EVAL_EPISODES):
        s_idx, s_y, q_idx, q_y = sample_episode(data.y, classes, way=EVAL_WAY, shot=EVAL_SHOT, query=EVAL_QUERY,
                                                generator=generator)
        logits = neg_sq_distance(embeddings[q_idx], class_prototypes(embeddings[s_idx], s_y, EVAL_WAY))
        scores.append(float((logits.argmax(1) == q_y).float().mean()))
    return sum(scores) / len(scores)


def _train_protonet(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    assert isinstance(module, ProtoNet)
    r = _PROTONET_RECIPE
    generator = seed_everything(ctx.seed)
    module.to(ctx.device).train()
    optimiser = torch.optim.Adam(module.parameters(), lr=float(r["lr"]))
    episodes, way, shot, query = (int(r[k]) for k in ("episodes", "way", "shot", "query"))
    x_all, y_all = dihedral_classes(ctx.train.x, ctx.train.y, BASE_CLASSES)
    pseudo = tuple(range(int(y_all.max()) + 1))
    running = 0.0
    with ctx.progress() as progress:
        task = progress.add_task("protonet", total=episodes, status="")
        for step in range(episodes):
            s_idx, s_y, q_idx, q_y = sample_episode(y_all, pseudo, way=way, shot=shot, query=query,
                                                    generator=generator)
            x = random_shift(x_all[torch.cat([s_idx, q_idx])], generator).to(ctx.device)
            optimiser.zero_grad(set_to_none=True)
            logits = episode_logits(module, x[:len(s_idx)], s_y.to(ctx.device), x[len(s_idx):], way)
            loss = F.cross_entropy(logits, q_y.to(ctx.device))
            loss.backward()
            optimiser.step()
            running = 0.95 * running + 0.05 * float(loss.detach()) if step else float(loss.detach())
            if step % 20 == 0:
                progress.update(task, completed=step + 1, status=f"loss {running:.4f}")
    store_prototypes(module, ctx.train, ctx.device)
    metrics = evaluate_protonet(module, ctx.test, ctx.device)
    metrics["pixel_episode_accuracy"] = pixel_episode_accuracy(ctx.test)
    metrics["train_loss"] = running
    return metrics


register_model(
    ZooEntry(
        name="protonet",
        family="meta-learning",
        task="classification",
        modality="image",
        dataset="digits",
        build=ProtoNet,
        train=_train_protonet,
        input_shape=(1, 32, 32),
        class_names=DIGIT_CLASSES,
        layers=("block1", "block2", "block3"),
        metric="episode_accuracy",
        floor=0.90,
        paper="https://arxiv.org/abs/1703.05175",
        description="prototypical network: conv embedding trained on 20-way 5-shot episodes of digits 0-4 "
                    "(x 8 symmetries), tested on 5-way 5-shot episodes of unseen digits 5-9; "
                    "forward = -distance to 10 stored prototypes",
        recipe=_PROTONET_RECIPE,
        loss=prototypical_loss,
        evaluate=evaluate_protonet,
    )
)
