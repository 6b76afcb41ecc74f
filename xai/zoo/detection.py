"""Faster R-CNN and Fast R-CNN on the shapes scenes (torchvision's detection parts).

Both entries share one module, :class:`RCNN`: a small convolutional backbone (stride 4,
trained from scratch, nothing downloaded) and torchvision's Fast R-CNN ROI head
(``RoIHeads``: RoIAlign, a two-layer MLP, class scores and box regression). They
differ in where the regions of interest come from:

- ``faster-rcnn``: torchvision's region proposal network on the backbone's features
  (Ren et al. 2015);
- ``fast-rcnn``: proposals from outside the network (Girshick 2015). Training uses
  jittered ground-truth boxes plus random boxes; at test time bottom-up grouping
  proposes the regions: the boxes of Felzenszwalb-Huttenlocher segments at two scales,
  the first step of selective search (Uijlings et al. 2013), which Fast R-CNN used.

Whatever the mode, ``forward`` takes images ``(B, 3, H, W)`` and returns the detections
as one differentiable tensor ``(B, K, 6)``: ``x1, y1, x2, y2, score, label`` per row,
best score first, padded with zero rows (label 0, the background) when fewer than
``K`` boxes are kept. captum differentiates scores and boxes through it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, cast

import torch
from scipy import ndimage
from skimage.segmentation import felzenszwalb
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import concat_box_prediction_layers
from torchvision.ops import MultiScaleRoIAlign

from xai.datasets import Dataset
from xai.datasets._shapes import SHAPE_CLASSES, scene_targets
from xai.errors import DataError
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._train import TrainContext, seed_everything
from xai.zoo.dense_metrics import mean_average_precision

__all__ = ["RCNN", "SmallBackbone", "detection_box_score", "region_proposals", "top_box_label"]

#: Detections kept per image (rows of the forward's output).
DETECTIONS_PER_IMAGE = 16
#: Felzenszwalb segmentation scales of the Fast R-CNN test-time proposals.
PROPOSAL_SCALES = (100.0, 300.0)
#: Side of the RoIAlign grid (one sample per cell: CPU RoIAlign's backward is slow).
ROI_SIZE = 5


class SmallBackbone(nn.Module):
    """Five 3x3 conv-BN-ReLU layers, stride 4: ``(B, 3, H, W)`` -> ``(B, 32, H/4, W/4)``.

    Examples
    --------
    >>> SmallBackbone()(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 32, 16, 16])
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 32) -> None:
        super().__init__()
        self.out_channels = out_channels
        plan = [(in_channels, 16, 1), (16, 32, 2), (32, out_channels, 2),
                (out_channels, out_channels, 1), (out_channels, out_channels, 1)]
        for i, (c_in, c_out, stride) in enumerate(plan, start=1):
            self.add_module(f"conv{i}", nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map ``(B, out_channels, H/4, W/4)``."""
        for block in self.children():
            x = block(x)
        return x


def region_proposals(image: torch.Tensor, scales: tuple[float, ...] = PROPOSAL_SCALES,
                     min_side: int = 6, max_side: int = 40) -> torch.Tensor:
    """Boxes of the Felzenszwalb-Huttenlocher segments of one image ``(k, 4)``.

    The bottom-up regions that selective search starts from (Uijlings et al. 2013,
    https://doi.org/10.1007/s11263-013-0620-5); segments whose box side lies outside
    ``[min_side, max_side]`` pixels are dropped, duplicates removed.

    Parameters
    ----------
    image
        ``(3, H, W)`` in [0, 1].
    """
    pixels = image.detach().float().cpu().permute(1, 2, 0).numpy()  # (H, W, 3)
    boxes: set[tuple[int, int, int, int]] = set()
    for scale in scales:
        segments = felzenszwalb(pixels, scale=scale, sigma=0.8, min_size=10)
        for found in ndimage.find_objects(segments + 1):
            if found is None:
                continue
            rows, cols = found
            w, h = cols.stop - cols.start, rows.stop - rows.start
            if min_side <= w <= max_side and min_side <= h <= max_side:
                boxes.add((cols.start, rows.start, cols.stop, rows.stop))
    return torch.tensor(sorted(boxes), dtype=torch.float32).reshape(-1, 4)


def jittered_proposals(boxes: torch.Tensor, size: tuple[int, int], *, copies: int = 8,
                       random_boxes: int = 32, jitter: float = 0.2,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Training proposals: ``copies`` jittered versions of each box plus random boxes.

    Centres move by up to ``jitter`` times the box side and sides scale by up to
    ``exp(+-jitter)``; random boxes have sides of 8 to 32 pixels. All are clipped to the image.
    """
    h, w = size
    out = []
    if len(boxes):
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2  # (n, 2)
        side = boxes[:, 2:] - boxes[:, :2]  # (n, 2)
        shift = (torch.rand(copies, *centre.shape, generator=generator) * 2 - 1) * jitter * side
        scale = torch.exp((torch.rand(copies, *side.shape, generator=generator) * 2 - 1) * jitter)
        c, s = centre + shift, side * scale  # (copies, n, 2)
        out.append(torch.cat([c - s / 2, c + s / 2], -1).reshape(-1, 4))
    side = 8 + torch.rand(random_boxes, 2, generator=generator) * 24
    corner = torch.rand(random_boxes, 2, generator=generator) * (torch.tensor([w, h]) - side)
    out.append(torch.cat([corner, corner + side], 1))
    proposals = torch.cat(out)
    proposals[:, 0::2] = proposals[:, 0::2].clamp(0, w)
    proposals[:, 1::2] = proposals[:, 1::2].clamp(0, h)
    return proposals


class RCNN(nn.Module):
    """A two-stage detector: backbone, region proposals, torchvision's Fast R-CNN ROI head.

    Built by :func:`build_faster_rcnn` (proposals from torchvision's RPN) or
    :func:`build_fast_rcnn` (external proposals, ``rpn=None``) from the parts of a
    ``torchvision.models.detection.FasterRCNN``.

    Examples
    --------
    >>> build_faster_rcnn().eval()(torch.rand(2, 3, 64, 64)).shape
    torch.Size([2, 16, 6])
    """

    def __init__(self, detector: FasterRCNN, use_rpn: bool) -> None:
        super().__init__()
        self.transform = detector.transform  # normalisation (no resizing: see _features)
        self.backbone = detector.backbone
        self.rpn = detector.rpn if use_rpn else None
        self.roi_heads = detector.roi_heads

    def _features(self, x: torch.Tensor) -> tuple[ImageList, OrderedDict[str, torch.Tensor]]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise DataError(f"a detector takes (batch, 3, H, W) images, got {tuple(x.shape)}")
        images = ImageList(self.transform.normalize(x), [(int(x.shape[-2]), int(x.shape[-1]))] * len(x))
        return images, OrderedDict([("0", self.backbone(images.tensors))])

    def _rpn_proposals(self, images: ImageList, features: OrderedDict[str, torch.Tensor]) -> list[torch.Tensor]:
        """The RPN's proposals without its training losses (any mode; no targets needed)."""
        rpn = self.rpn
        assert rpn is not None
        maps = list(features.values())
        objectness, deltas = rpn.head(maps)
        anchors = rpn.anchor_generator(images, maps)
        per_level = [o[0].numel() for o in objectness]
        objectness, deltas = concat_box_prediction_layers(objectness, deltas)
        proposals = rpn.box_coder.decode(deltas.detach(), anchors).view(len(anchors), -1, 4)
        boxes, _ = rpn.filter_proposals(proposals, objectness, images.image_sizes, per_level)
        return boxes

    def proposals(self, x: torch.Tensor, images: ImageList,
                  features: OrderedDict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Regions of interest per image: the RPN's, or :func:`region_proposals`."""
        if self.rpn is not None:
            return self._rpn_proposals(images, features)
        return [region_proposals(image).to(x.device) for image in x]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Detections ``(B, K, 6)``: ``x1, y1, x2, y2, score, label``, zero rows as padding."""
        images, features = self._features(x)
        proposals = self.proposals(x, images, features)
        heads = self.roi_heads
        pooled = heads.box_roi_pool(features, proposals, images.image_sizes)  # (R, C, 5, 5)
        class_logits, box_regression = heads.box_predictor(heads.box_head(pooled))
        boxes, scores, labels = heads.postprocess_detections(
            class_logits, box_regression, proposals, images.image_sizes)
        rows = []
        for b, s, lab in zip(boxes, scores, labels, strict=True):
            row = torch.cat([b, s[:, None], lab[:, None].to(b.dtype)], 1)[:DETECTIONS_PER_IMAGE]  # (k, 6)
            rows.append(nn.functional.pad(row, (0, 0, 0, DETECTIONS_PER_IMAGE - len(row))))
        return torch.stack(rows)  # (B, K, 6)

    def losses(self, x: torch.Tensor, targets: list[dict[str, torch.Tensor]],
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Torchvision's training losses (RPN and ROI head); the module must be in train mode."""
        if not self.training:
            raise DataError("detection losses need the module in train mode (module.train())")
        images, features = self._features(x)
        targets = [{k: v.to(x.device) for k, v in t.items()} for t in targets]
        if self.rpn is not None:
            proposals, losses = self.rpn(images, features, targets)
        else:
            size = (int(x.shape[-2]), int(x.shape[-1]))
            proposals = [jittered_proposals(t["boxes"].cpu(), size, generator=generator).to(x.device)
                         for t in targets]
            losses = {}
        _, head_losses = self.roi_heads(features, proposals, images.image_sizes, targets)
        return {**losses, **head_losses}


def _detector_parts() -> FasterRCNN:
    detector = FasterRCNN(
        SmallBackbone(),
        min_size=64, max_size=64, image_mean=[0.45] * 3, image_std=[0.25] * 3,
        rpn_anchor_generator=AnchorGenerator(sizes=((12, 18, 26),), aspect_ratios=((1.0,),)),
        rpn_pre_nms_top_n_train=300, rpn_pre_nms_top_n_test=150,
        rpn_post_nms_top_n_train=100, rpn_post_nms_top_n_test=30,
        rpn_batch_size_per_image=64,
        box_roi_pool=MultiScaleRoIAlign(["0"], output_size=ROI_SIZE, sampling_ratio=1),
        box_head=TwoMLPHead(32 * ROI_SIZE * ROI_SIZE, 128),
        box_predictor=FastRCNNPredictor(128, len(SHAPE_CLASSES)),
        box_batch_size_per_image=32,
        box_detections_per_img=DETECTIONS_PER_IMAGE,
        box_nms_thresh=0.3,
    )
    # torchvision's RPN head uses an in-place ReLU; captum's hooks need out-of-place ones.
    for module in detector.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    return detector


def build_faster_rcnn() -> RCNN:
    """Faster R-CNN for 64x64 scenes: backbone, torchvision's RPN (3 square anchors) and ROI head."""
    return RCNN(_detector_parts(), use_rpn=True)


def build_fast_rcnn() -> RCNN:
    """Fast R-CNN: the same backbone and ROI head, with external proposals (no RPN)."""
    return RCNN(_detector_parts(), use_rpn=False)


def detection_box_score(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Score of the best box of class ``target[i]`` in sample ``i`` (0 if there is none).

    Parameters
    ----------
    output
        Detections ``(B, K, 6)``: ``x1, y1, x2, y2, score, label`` per row.
    target
        Class index per sample ``(B,)``.
    """
    if output.ndim != 3 or output.shape[-1] != 6:
        raise DataError(f"a detection target needs (batch, boxes, 6) outputs, got {tuple(output.shape)}")
    of_class = output[..., 5].detach() == target.view(-1, 1).to(output.device, output.dtype)  # (B, K)
    return (output[..., 4] * of_class.to(output.dtype)).amax(1)  # (B,)


def top_box_label(output: torch.Tensor) -> torch.Tensor:
    """Label of each sample's highest-scoring box ``(B,)`` (0, the background, if none)."""
    best = output[..., 4].argmax(1, keepdim=True)  # (B, 1)
    return output[..., 5].gather(1, best).squeeze(1).round().long()


def _detection_loss(module: nn.Module, batch: Dataset) -> torch.Tensor:
    """Sum of torchvision's detection losses on a batch of shapes scenes."""
    assert isinstance(module, RCNN)  # both entries build an RCNN
    losses = module.losses(batch.x, scene_targets(batch))
    return cast(torch.Tensor, sum(losses.values()))  # a sum of (non-empty) loss tensors


@torch.no_grad()
def _evaluate_detector(module: nn.Module, data: Dataset, device: torch.device) -> dict[str, float]:
    """VOC mAP@0.5 over the three shape classes (and each class's AP) on ``data``."""
    was_training = module.training
    module.eval()
    try:
        outputs = torch.cat([module(data.x[i:i + 50].to(device)).cpu() for i in range(0, len(data), 50)])
    finally:
        module.train(was_training)
    detections = [(o[o[:, 5] > 0, :4], o[o[:, 5] > 0, 4], o[o[:, 5] > 0, 5].long()) for o in outputs]
    truths = [(t["boxes"], t["labels"]) for t in scene_targets(data)]
    ap = mean_average_precision(detections, truths, len(SHAPE_CLASSES), iou_threshold=0.5)
    metrics = {"map50": ap["map"]}
    metrics.update({f"ap50_{SHAPE_CLASSES[int(k[3:])]}": v for k, v in ap.items() if k.startswith("ap_")})
    return metrics


def _fit_detector(module: RCNN, ctx: TrainContext, recipe: dict[str, Any], label: str) -> dict[str, float]:
    generator = seed_everything(ctx.seed)
    epochs, batch_size, lr = int(recipe["epochs"]), int(recipe["batch_size"]), float(recipe["lr"])
    module.to(ctx.device).train()
    optimiser = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=float(recipe["weight_decay"]))
    steps = epochs * -(-len(ctx.train) // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps)
    x_all, targets_all = ctx.train.x, scene_targets(ctx.train)
    running = float("nan")
    with ctx.progress() as progress:
        task = progress.add_task(label, total=epochs, status="")
        for _ in range(epochs):
            order = torch.randperm(len(x_all), generator=generator)
            total, count = 0.0, 0
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                xb = x_all[idx].to(ctx.device)
                targets = [targets_all[i] for i in idx.tolist()]
                optimiser.zero_grad(set_to_none=True)
                loss = cast(torch.Tensor, sum(module.losses(xb, targets, generator=generator).values()))
                loss.backward()
                optimiser.step()
                scheduler.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            running = total / count
            progress.update(task, advance=1, status=f"loss {running:.4f}")
    module.eval()
    return {**_evaluate_detector(module, ctx.test, ctx.device), "train_loss": running}


_FASTER_RECIPE: dict[str, Any] = {"epochs": 5, "lr": 2e-3, "batch_size": 16, "weight_decay": 1e-4,
                                  "anchors": "12, 18, 26 px, square", "proposals": "RPN, 30 per image at test"}
_FAST_RECIPE: dict[str, Any] = {"epochs": 4, "lr": 2e-3, "batch_size": 16, "weight_decay": 1e-4,
                                "proposals": "train: 8 jittered copies of each true box + 32 random boxes; "
                                             "test: Felzenszwalb segment boxes at scales 100 and 300"}


def _train_faster(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    assert isinstance(module, RCNN)  # the entry builds an RCNN
    return _fit_detector(module, ctx, _FASTER_RECIPE, "faster-rcnn")


def _train_fast(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    assert isinstance(module, RCNN)  # the entry builds an RCNN
    return _fit_detector(module, ctx, _FAST_RECIPE, "fast-rcnn")


_COMMON: dict[str, Any] = dict(
    family="detection", task="detection", modality="image", dataset="shapes-det",
    input_shape=(3, 64, 64), class_names=SHAPE_CLASSES,
    layers=("backbone.conv1", "backbone.conv2", "backbone.conv3", "backbone.conv4", "backbone.conv5"),
    metric="map50", floor=0.70, loss=_detection_loss, evaluate=_evaluate_detector,
    targets=detection_box_score, target_names=SHAPE_CLASSES, predicted_target=top_box_label,
)

register_model(ZooEntry(
    name="faster-rcnn", build=build_faster_rcnn, train=_train_faster,
    paper="https://arxiv.org/abs/1506.01497",
    description="Faster R-CNN (small backbone, torchvision RPN and ROI head) on 64x64 shapes scenes",
    recipe=_FASTER_RECIPE, **_COMMON,
))

register_model(ZooEntry(
    name="fast-rcnn", build=build_fast_rcnn, train=_train_fast,
    paper="https://arxiv.org/abs/1504.08083",
    description="Fast R-CNN (the same ROI head) with selective-search-style segment proposals",
    recipe=_FAST_RECIPE, **_COMMON,
))
