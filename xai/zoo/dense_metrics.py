"""Metrics of dense prediction: mean IoU of class masks and VOC mean average precision.

Both are pure functions over tensors, computed over a whole held-out set (dataset-level
counts, as PASCAL VOC does), not averaged per image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchvision.ops import box_iou

__all__ = ["average_precision", "confusion_matrix", "iou_per_class", "mean_average_precision",
           "mean_iou"]


def confusion_matrix(pred: torch.Tensor, truth: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(num_classes, num_classes)`` counts: row = true class, column = predicted class."""
    truth = truth.reshape(-1).long()
    pred = pred.reshape(-1).long()
    index = truth * num_classes + pred
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_per_class(confusion: torch.Tensor) -> torch.Tensor:
    """IoU ``TP / (TP + FP + FN)`` of each class; NaN for a class absent from truth and prediction."""
    confusion = confusion.double()
    tp = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def mean_iou(pred: torch.Tensor, truth: torch.Tensor, num_classes: int) -> float:
    """Mean over classes (background included) of the dataset-level IoU.

    Parameters
    ----------
    pred, truth
        Integer class maps of the same shape (``(N, H, W)``).
    num_classes
        Number of classes (0 .. num_classes - 1); classes absent from both are skipped.

    Examples
    --------
    >>> mean_iou(torch.tensor([[0, 1], [1, 1]]), torch.tensor([[0, 1], [0, 1]]), 2)
    0.5833333333333333
    """
    iou = iou_per_class(confusion_matrix(pred, truth, num_classes))
    return float(iou[~iou.isnan()].mean())


def average_precision(recall: torch.Tensor, precision: torch.Tensor) -> float:
    """Area under the precision-recall curve with VOC's monotone precision envelope.

    All-point interpolation (PASCAL VOC 2010 onwards): precision at recall ``r`` is the
    highest precision at any recall ``>= r``, integrated over the recall steps.
    """
    r = np.concatenate([[0.0], recall.detach().cpu().double().numpy(), [1.0]])
    p = np.concatenate([[0.0], precision.detach().cpu().double().numpy(), [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]  # envelope: best precision at any higher recall
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def mean_average_precision(
    detections: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    truths: Sequence[tuple[torch.Tensor, torch.Tensor]],
    num_classes: int,
    iou_threshold: float = 0.5,
) -> dict[str, float]:
    """VOC mean average precision at an IoU threshold (0.5: "mAP@0.5").

    Per class, every detection of the set is ranked by score; one is a true positive when
    it overlaps a not yet matched ground-truth box of its class in its image with IoU
    ``>= iou_threshold`` (the best-overlapping one), else a false positive. AP is
    :func:`average_precision` of that ranking; mAP averages it over the classes with at
    least one ground-truth box.

    Parameters
    ----------
    detections
        Per image ``(boxes (k, 4), scores (k,), labels (k,))``; boxes ``(x1, y1, x2, y2)``.
    truths
        Per image ``(boxes (n, 4), labels (n,))``.
    num_classes
        Number of classes including the background 0 (never scored).

    Returns
    -------
    dict
        ``map`` and ``ap_<class index>`` for every class with ground truth.
    """
    if len(detections) != len(truths):
        raise ValueError(f"{len(detections)} detection sets for {len(truths)} images")
    out: dict[str, float] = {}
    for c in range(1, num_classes):
        records: list[tuple[float, int, torch.Tensor]] = []  # (score, image, box)
        gt_boxes: list[torch.Tensor] = []
        for i, ((boxes, scores, labels), (t_boxes, t_labels)) in enumerate(zip(detections, truths, strict=True)):
            keep = labels == c
            records += [(float(s), i, b) for s, b in zip(scores[keep], boxes[keep], strict=True)]
            gt_boxes.append(t_boxes[t_labels == c].reshape(-1, 4).double())
        n_truth = sum(len(g) for g in gt_boxes)
        if n_truth == 0:
            continue
        records.sort(key=lambda rec: -rec[0])  # stable: ties keep image order
        matched = [torch.zeros(len(g), dtype=torch.bool) for g in gt_boxes]
        tp = torch.zeros(len(records), dtype=torch.float64)
        for k, (_, i, box) in enumerate(records):
            if len(gt_boxes[i]) == 0:
                continue
            ious = box_iou(box.double().view(1, 4), gt_boxes[i])[0]
            best = int(ious.argmax())
            if ious[best] >= iou_threshold and not matched[i][best]:
                matched[i][best] = True
                tp[k] = 1.0
        cum_tp = tp.cumsum(0)
        recall = cum_tp / n_truth
        precision = cum_tp / torch.arange(1, len(records) + 1, dtype=torch.float64)
        out[f"ap_{c}"] = average_precision(recall, precision)
    aps = [v for k, v in out.items() if k.startswith("ap_")]
    out["map"] = float(sum(aps) / len(aps)) if aps else float("nan")
    return out
