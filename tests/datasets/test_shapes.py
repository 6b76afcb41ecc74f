from __future__ import annotations

import numpy as np
import pytest
import torch

from xai.datasets import (
    SHAPE_CLASSES,
    SHAPES,
    generate_scenes,
    load_dataset,
    scene_masks,
    scene_targets,
)
from xai.datasets._shapes import MAX_OBJECTS, shape_footprint
from xai.errors import DataError


def test_same_seed_same_scenes_and_other_seed_other_scenes():
    a, b, c = generate_scenes(5, seed=3), generate_scenes(5, seed=3), generate_scenes(5, seed=4)
    assert all(np.array_equal(s.image, t.image) and s.objects == t.objects for s, t in zip(a, b, strict=True))
    assert not all(np.array_equal(s.image, t.image) for s, t in zip(a, c, strict=True))
    assert a[0].image.shape == (3, 64, 64) and a[0].image.dtype == np.float32
    assert generate_scenes(2, seed=0, size=48)[0].mask.shape == (48, 48)


def test_footprints_drawn_by_hand():
    assert shape_footprint("square", 1).all() and shape_footprint("square", 1).shape == (3, 3)
    circle = np.array([[0, 1, 1, 1, 0],
                       [1, 1, 1, 1, 1],
                       [1, 1, 1, 1, 1],
                       [1, 1, 1, 1, 1],
                       [0, 1, 1, 1, 0]], dtype=bool)  # x^2 + y^2 <= r^2 + r = 6: (1, 2) in, (2, 2) out
    np.testing.assert_array_equal(shape_footprint("circle", 2), circle)
    triangle = np.array([[0, 0, 1, 0, 0],
                         [0, 0, 1, 0, 0],
                         [0, 1, 1, 1, 0],
                         [0, 1, 1, 1, 0],
                         [1, 1, 1, 1, 1]], dtype=bool)  # |x| <= (y + r) / 2
    np.testing.assert_array_equal(shape_footprint("triangle", 2), triangle)


def test_masks_boxes_and_records_agree():
    for scene in generate_scenes(40, seed=11):
        assert 1 <= len(scene.objects) <= MAX_OBJECTS
        assert set(np.unique(scene.mask)) <= {0, 1, 2, 3}
        covered = np.zeros_like(scene.mask, dtype=bool)
        for obj in scene.objects:
            assert obj.label == 1 + SHAPES.index(obj.shape)
            x1, y1, x2, y2 = (int(v) for v in obj.box)
            inside = scene.mask[y1:y2, x1:x2] == obj.label
            assert inside.sum() == obj.area > 0
            rows, cols = np.nonzero(inside)  # the box is tight around the object's pixels
            assert (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1) == (0, 0, y2 - y1, x2 - x1)
            assert obj.centre == ((x1 + x2) / 2, (y1 + y2) / 2)
            covered[y1:y2, x1:x2] |= inside
        # every foreground pixel belongs to exactly one object's box (no overlaps)
        np.testing.assert_array_equal(covered, scene.mask > 0)
        assert sum(o.area for o in scene.objects) == int((scene.mask > 0).sum())
        assert scene.largest_label == max(scene.objects, key=lambda o: o.area).label
        torch.testing.assert_close(scene.boxes, torch.tensor([o.box for o in scene.objects]))


def test_registered_splits_are_fixed_and_aligned():
    seg, det = load_dataset("shapes-seg", "test"), load_dataset("shapes-det", "test")
    train = load_dataset("shapes-seg", "train")
    assert len(seg) == 300 and len(train) == 1200 and seg.x.shape[1:] == (3, 64, 64)
    assert torch.equal(seg.x, det.x) and torch.equal(seg.y, det.y)
    assert seg.class_names == SHAPE_CLASSES and set(seg.y.tolist()) <= {1, 2, 3}
    assert 0.0 <= float(seg.x.min()) and float(seg.x.max()) <= 1.0
    assert not torch.equal(train.x[:300], seg.x)  # train and test come from different seeds
    scenes = generate_scenes(300, seed=2_000)
    assert np.array_equal(seg.x[7].numpy(), scenes[7].image)
    assert seg.groups["objects"].tolist() == [str(len(s.objects)) for s in scenes]
    assert seg.y.tolist() == [s.largest_label for s in scenes]


def test_subsets_keep_masks_and_targets_aligned():
    data = load_dataset("shapes-det", "test")
    part = data.subset(torch.tensor([5, 2]))
    assert torch.equal(scene_masks(part)[1], torch.from_numpy(data.annotations[2].mask))
    targets = scene_targets(part)
    assert torch.equal(targets[0]["labels"], data.annotations[5].labels)
    assert targets[0]["boxes"].shape == (len(data.annotations[5].objects), 4)
    with pytest.raises(DataError, match="no shapes scenes"):
        scene_masks(load_dataset("digits", "test").head(2))
