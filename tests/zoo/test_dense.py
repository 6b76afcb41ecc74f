"""U-Net, Faster R-CNN and Fast R-CNN: metrics, targets adapters, modules, explanations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import jaccard_score
from torchvision.ops import box_iou

from xai.datasets import generate_scenes, load_dataset
from xai.explain import create_explainer
from xai.zoo import create_model, load_model
from xai.zoo.dense_metrics import average_precision, mean_average_precision, mean_iou
from xai.zoo.detection import (
    DETECTIONS_PER_IMAGE,
    detection_box_score,
    jittered_proposals,
    region_proposals,
    top_box_label,
)
from xai.zoo.segmentation import UNet, most_frequent_class, segmentation_class_score

from ..conftest import ZOO

# ----------------------------------------------------------------------------- metrics


def test_mean_iou_by_hand_and_against_scikit_learn():
    pred = torch.tensor([[0, 1], [1, 1]])
    truth = torch.tensor([[0, 1], [0, 1]])
    # class 0: TP 1, FN 1 -> 1/2; class 1: TP 2, FP 1 -> 2/3
    assert mean_iou(pred, truth, 2) == pytest.approx((1 / 2 + 2 / 3) / 2)
    generator = torch.Generator().manual_seed(0)
    truth = torch.randint(0, 4, (3, 9, 9), generator=generator)
    pred = torch.where(torch.rand(3, 9, 9, generator=generator) < 0.6, truth,
                       torch.randint(0, 4, (3, 9, 9), generator=generator))
    expected = jaccard_score(truth.flatten().numpy(), pred.flatten().numpy(), average="macro")
    assert mean_iou(pred, truth, 4) == pytest.approx(expected)
    # a class absent from both truth and prediction is skipped, not counted as 0 or 1
    assert mean_iou(torch.tensor([0, 1]), torch.tensor([0, 1]), 5) == 1.0


def test_average_precision_uses_the_monotone_envelope():
    # ranked TP, FP, TP with 2 truths: recall .5 .5 1, precision 1 .5 .667
    recall = torch.tensor([0.5, 0.5, 1.0])
    precision = torch.tensor([1.0, 0.5, 2 / 3])
    assert average_precision(recall, precision) == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)


def test_mean_average_precision_hand_worked():
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    far = torch.tensor([[30.0, 30.0, 40.0, 40.0]])
    truths = [(torch.cat([box, far]), torch.tensor([1, 1])),   # image 0: two class-1 objects
              (box.clone(), torch.tensor([2]))]                # image 1: one class-2 object
    shifted = box + torch.tensor([1.0, 0.0, 1.0, 0.0])         # IoU 90/110 = 0.82 with `box`
    detections = [
        # class 1: 0.9 hits box, 0.8 hits box again (duplicate -> FP), 0.3 hits far
        (torch.cat([shifted, box, far]), torch.tensor([0.9, 0.8, 0.3]), torch.tensor([1, 1, 1])),
        # class 2: 0.7 misses (IoU 0 with the truth), 0.6 hits; class 1 at 0.95 is an FP
        (torch.cat([far, box, box]), torch.tensor([0.7, 0.6, 0.95]), torch.tensor([2, 2, 1])),
    ]
    out = mean_average_precision(detections, truths, num_classes=3)
    # class 1 ranking: FP(.95) TP(.9) FP(.8) TP(.3): recall 0 .5 .5 1, precision 0 .5 .33 .5
    # envelope: .5 up to recall .5, .5 up to 1 -> AP = .5 * .5 + .5 * .5 = .5
    assert out["ap_1"] == pytest.approx(0.5)
    # class 2 ranking: FP(.7) TP(.6): recall 0 1, precision 0 .5 -> AP = .5
    assert out["ap_2"] == pytest.approx(0.5)
    assert out["map"] == pytest.approx(0.5) and "ap_0" not in out
    perfect = [(torch.cat([box, far]), torch.tensor([0.9, 0.8]), torch.tensor([1, 1])),
               (box.clone(), torch.tensor([0.5]), torch.tensor([2]))]
    assert mean_average_precision(perfect, truths, 3)["map"] == 1.0
    # IoU 0.9: the shifted box (0.82) turns FP and the duplicate at .8 the TP:
    # recall 0 0 .5 1, precision 0 0 1/3 1/2 -> envelope .5 everywhere -> AP .5
    strict = mean_average_precision(detections, truths, 3, iou_threshold=0.9)
    assert strict["ap_1"] == pytest.approx(0.5)
    # without the .3 hit, recall stops at .5: AP = .5 * .5
    missing = [(d[0][:2], d[1][:2], d[2][:2]) if i == 0 else d for i, d in enumerate(detections)]
    assert mean_average_precision(missing, truths, 3)["ap_1"] == pytest.approx(0.25)


# ------------------------------------------------------------------- targets adapters


def test_segmentation_class_score_on_a_hand_made_output():
    logits = torch.zeros(2, 3, 2, 2)
    logits[0, 1] = torch.tensor([[5.0, 4.0], [0.0, 0.0]])  # sample 0: top row is class 1
    logits[0, 2] = torch.tensor([[0.0, 0.0], [1.0, 3.0]])  # bottom row is class 2
    logits[1, 2] = torch.tensor([[2.0, 2.0], [2.0, 6.0]])  # sample 1: all class 2
    logits.requires_grad_()
    scores = segmentation_class_score(logits, torch.tensor([1, 2]))
    torch.testing.assert_close(scores, torch.tensor([(5.0 + 4.0) / 2, (2 + 2 + 2 + 6) / 4]))
    assert segmentation_class_score(logits, torch.tensor([2, 1])).tolist() == [2.0, 0.0]  # (1+3)/2; none
    scores.sum().backward()
    assert logits.grad[0, 1, 0, 0] == 0.5 and logits.grad[0, 1, 1, 0] == 0.0
    assert most_frequent_class(logits.detach()).tolist() == [1, 2]  # ties: lowest class
    background = torch.zeros(1, 3, 2, 2)
    background[0, 0] = 9.0
    background[0, 2, 1, 1] = 1.0
    assert most_frequent_class(background).tolist() == [2]  # no foreground pixel: top logit


def test_detection_box_score_on_a_hand_made_output():
    out = torch.zeros(2, 4, 6)
    out[0, :3] = torch.tensor([[0, 0, 5, 5, 0.9, 2], [1, 1, 4, 4, 0.7, 1], [2, 2, 6, 6, 0.4, 2]])
    out[1, :1] = torch.tensor([[0, 0, 5, 5, 0.6, 3]])
    out.requires_grad_()
    scores = detection_box_score(out, torch.tensor([2, 3]))
    assert scores.tolist() == pytest.approx([0.9, 0.6])
    assert detection_box_score(out, torch.tensor([1, 1])).tolist() == pytest.approx([0.7, 0.0])
    assert detection_box_score(out, torch.tensor([0, 0])).tolist() == [0.0, 0.0]  # padding is not a box
    scores.sum().backward()
    assert out.grad[0, 0, 4] == 1.0 and out.grad[0, 2, 4] == 0.0 and out.grad[1, 0, 4] == 1.0
    assert top_box_label(out.detach()).tolist() == [2, 3]
    assert top_box_label(torch.zeros(1, 4, 6)).tolist() == [0]


# ----------------------------------------------------------------------------- modules


def test_unet_decoder_uses_its_skip_connections():
    torch.manual_seed(0)
    model = UNet().eval()
    x = torch.rand(2, 3, 64, 64)
    assert model(x).shape == (2, 4, 64, 64)
    seen = {}
    hook = model.dec1.register_forward_pre_hook(lambda _m, args: seen.setdefault("in", args[0]))
    try:
        model(x)
    finally:
        hook.remove()
    # dec1 reads the upsampled decoder map concatenated with enc1's full-resolution map
    torch.testing.assert_close(seen["in"][:, 8:], model.enc1(x))


@pytest.mark.parametrize("name", ["faster-rcnn", "fast-rcnn"])
def test_detector_output_is_padded_sorted_and_mode_independent_in_shape(name):
    torch.manual_seed(0)
    model = create_model(name)
    x = load_dataset("shapes-det", "test").x[:2]
    assert model(x).shape == (2, DETECTIONS_PER_IMAGE, 6)  # train mode: no targets needed
    handle = load_model(name, zoo_dir=ZOO)
    out = handle.predict(x)
    scores, labels = out[..., 4], out[..., 5]
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    assert ((labels == 0) == (scores == 0)).all() and set(labels.unique().tolist()) <= {0, 1, 2, 3}


def test_region_proposals_cover_every_object():
    for scene in generate_scenes(10, seed=5):
        proposals = region_proposals(torch.from_numpy(scene.image))
        assert box_iou(scene.boxes, proposals).max(1).values.min() >= 0.5


def test_jittered_proposals_stay_in_the_image_and_near_their_box():
    box = torch.tensor([[10.0, 10.0, 30.0, 30.0]])
    proposals = jittered_proposals(box, (64, 64), copies=8, random_boxes=5,
                                   generator=torch.Generator().manual_seed(0))
    assert proposals.shape == (13, 4)
    assert (proposals >= 0).all() and (proposals <= 64).all()
    assert (box_iou(box, proposals[:8]) > 0.3).all()


# ------------------------------------------------------------------------ explanations


@pytest.mark.parametrize(("name", "method", "options"), [
    ("unet", "saliency", {}),
    ("unet", "grad-cam", {"layer": "bottleneck"}),
    ("faster-rcnn", "integrated-gradients", {"steps": 8}),
])
def test_dense_attributions_are_finite_and_shaped_like_the_input(name, method, options):
    handle = load_model(name, zoo_dir=ZOO)
    data = load_dataset(handle.dataset, "test").head(2)
    result = create_explainer(method, handle, **options).explain(data)
    assert result.attributions.shape == (2, 3, 64, 64)
    assert np.isfinite(result.attributions).all() and np.abs(result.attributions).sum() > 0
    assert result.class_names == ("background", "circle", "square", "triangle")
    assert set(result.targets.tolist()) <= {1, 2, 3}
