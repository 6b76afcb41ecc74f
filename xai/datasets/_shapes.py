"""Seeded "shapes scenes": coloured circles, squares and triangles on a noisy background.

Every scene is generated from a seed (never stored). One scene carries everything the
dense-prediction and question-answering entries need:

- the image ``(3, H, W)`` in [0, 1];
- a per-pixel class mask ``(H, W)`` (0 = background, ``1 + SHAPES.index(shape)``);
- one :class:`ShapeObject` record per object: shape, colour, box, centre, area, label
  (boxes and labels for detection; exists / count / colour / shape questions for VQA).

Objects never overlap (their boxes keep a 2-pixel gap), so the mask shows every object
whole and counting is unambiguous.

Examples
--------
>>> scenes = generate_scenes(2, seed=0)
>>> scenes[0].image.shape, scenes[0].mask.shape
((3, 64, 64), (64, 64))
>>> [o.shape for o in scenes[0].objects]
['square', 'circle', 'triangle', 'circle']
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import torch

from xai.datasets._base import Dataset, Split, register_dataset

#: Shape classes; a shape's class index in masks and detection labels is ``1 + position``.
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
#: Class names of masks and detections: index 0 is the background.
SHAPE_CLASSES: tuple[str, ...] = ("background", *SHAPES)
#: Object colours and their RGB values in [0, 1].
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.12, 0.10),
    "green": (0.12, 0.78, 0.20),
    "blue": (0.15, 0.30, 0.95),
    "yellow": (0.95, 0.88, 0.10),
    "magenta": (0.88, 0.20, 0.88),
    "cyan": (0.10, 0.88, 0.90),
}
IMAGE_SIZE = 64
MAX_OBJECTS = 4
#: Half side of an object's box, in pixels (boxes are 13 to 25 pixels wide).
RADIUS_RANGE = (6, 12)
#: Fixed splits: each is generated from its own seed, independent of any training seed.
SPLIT_SEEDS = {"train": 1_000, "test": 2_000}
SPLIT_SIZES = {"train": 1_200, "test": 300}
NOISE_STD = 0.06
_GAP = 2  # pixels kept free between object boxes


@dataclass(frozen=True)
class ShapeObject:
    """One object of a scene.

    Attributes
    ----------
    shape, colour
        Names from :data:`SHAPES` and :data:`COLOURS`.
    label
        Class index in masks and detections: ``1 + SHAPES.index(shape)``.
    box
        ``(x1, y1, x2, y2)`` in pixel edges: the object covers columns ``x1 .. x2 - 1``
        and rows ``y1 .. y2 - 1`` (torchvision's box convention).
    centre
        ``(x, y)``: the centre of the box.
    area
        Number of pixels of the object in the mask.
    """

    shape: str
    colour: str
    label: int
    box: tuple[float, float, float, float]
    centre: tuple[float, float]
    area: int


@dataclass(frozen=True, eq=False)
class Scene:
    """One generated scene: image, class mask and object records.

    Attributes
    ----------
    image
        ``(3, H, W)`` float32 in [0, 1].
    mask
        ``(H, W)`` int64 class per pixel (0 = background).
    objects
        The objects, in the order they were drawn.
    """

    image: np.ndarray
    mask: np.ndarray
    objects: tuple[ShapeObject, ...]

    @property
    def boxes(self) -> torch.Tensor:
        """``(n, 4)`` float boxes ``(x1, y1, x2, y2)`` of the objects."""
        return torch.tensor([o.box for o in self.objects], dtype=torch.float32).reshape(-1, 4)

    @property
    def labels(self) -> torch.Tensor:
        """``(n,)`` int64 class labels of the objects (1 .. len(SHAPES))."""
        return torch.tensor([o.label for o in self.objects], dtype=torch.int64)

    @property
    def largest_label(self) -> int:
        """Class of the object with the most pixels (the datasets' ``y``)."""
        return max(self.objects, key=lambda o: o.area).label


def shape_footprint(shape: str, r: int) -> np.ndarray:
    """Boolean ``(2r + 1, 2r + 1)`` footprint of a shape of half side ``r`` (it fills its box)."""
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    if shape == "circle":
        return xx ** 2 + yy ** 2 <= r * r + r  # a little rounder at small r; touches the box
    if shape == "square":
        return np.ones_like(xx, dtype=bool)
    if shape == "triangle":  # apex up at the top row, base 2r + 1 wide at the bottom row
        return np.abs(xx) <= (yy + r) / 2.0
    raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")


def _overlaps(box: tuple[int, int, int, int], taken: list[tuple[int, int, int, int]]) -> bool:
    x1, y1, x2, y2 = box
    return any(x1 < b[2] + _GAP and b[0] < x2 + _GAP and y1 < b[3] + _GAP and b[1] < y2 + _GAP
               for b in taken)


def generate_scene(rng: np.random.Generator, size: int = IMAGE_SIZE) -> Scene:
    """One scene drawn from ``rng`` (1 to :data:`MAX_OBJECTS` non-overlapping objects)."""
    wanted = int(rng.integers(1, MAX_OBJECTS + 1))
    grey = rng.uniform(0.25, 0.6)
    tint = rng.uniform(-0.05, 0.05, size=3)
    image = np.empty((3, size, size), dtype=np.float64)
    image[:] = (grey + tint)[:, None, None]
    mask = np.zeros((size, size), dtype=np.int64)
    colour_names = list(COLOURS)
    objects: list[ShapeObject] = []
    taken: list[tuple[int, int, int, int]] = []
    for _ in range(60):  # placement attempts
        if len(objects) == wanted:
            break
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        colour = colour_names[int(rng.integers(len(colour_names)))]
        r = int(rng.integers(RADIUS_RANGE[0], RADIUS_RANGE[1] + 1))
        cx = int(rng.integers(r + 1, size - r - 1))
        cy = int(rng.integers(r + 1, size - r - 1))
        box = (cx - r, cy - r, cx + r + 1, cy + r + 1)
        if _overlaps(box, taken):
            continue
        taken.append(box)
        footprint = np.zeros((size, size), dtype=bool)
        footprint[box[1]:box[3], box[0]:box[2]] = shape_footprint(shape, r)
        label = 1 + SHAPES.index(shape)
        shade = rng.uniform(0.8, 1.0)
        image[:, footprint] = (np.asarray(COLOURS[colour]) * shade)[:, None]
        mask[footprint] = label
        objects.append(ShapeObject(
            shape=shape, colour=colour, label=label,
            box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
            centre=((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0),
            area=int(footprint.sum()),
        ))
    image += rng.normal(0.0, NOISE_STD, size=image.shape)
    return Scene(image=np.clip(image, 0.0, 1.0).astype(np.float32), mask=mask,
                 objects=tuple(objects))


def generate_scenes(n: int, seed: int, size: int = IMAGE_SIZE) -> list[Scene]:
    """``n`` scenes from ``seed`` (the same seed always gives the same scenes).

    Parameters
    ----------
    n
        Number of scenes.
    seed
        Seed of NumPy's PCG64 generator; scene ``i`` depends on every scene before it,
        so take prefixes, not different ``n``, to get nested sets.
    size
        Height and width of the square images in pixels.

    Examples
    --------
    >>> [len(s.objects) for s in generate_scenes(5, seed=7)]
    [4, 4, 4, 3, 1]
    >>> [len(s.objects) for s in generate_scenes(3, seed=7)]  # a prefix of the same scenes
    [4, 4, 4]
    """
    if n < 0 or size < 2 * RADIUS_RANGE[1] + 4:
        raise ValueError(f"need n >= 0 and size >= {2 * RADIUS_RANGE[1] + 4}, got {n}, {size}")
    rng = np.random.default_rng(seed)
    return [generate_scene(rng, size) for _ in range(n)]


@lru_cache(maxsize=4)
def split_scenes(split: str) -> tuple[Scene, ...]:
    """The scenes of a fixed split: ``train`` (1,200), ``test`` (300) or ``all`` (both)."""
    if split == "all":
        return split_scenes("train") + split_scenes("test")
    if split not in SPLIT_SEEDS:
        raise ValueError(f"split must be train, test or all, got {split!r}")
    return tuple(generate_scenes(SPLIT_SIZES[split], SPLIT_SEEDS[split]))


def _scenes_dataset(name: str, split: Split, description: str) -> Dataset:
    scenes = split_scenes(split)
    x = torch.from_numpy(np.stack([s.image for s in scenes]))  # (N, 3, H, W)
    y = torch.tensor([s.largest_label for s in scenes], dtype=torch.int64)
    groups = pd.DataFrame({"objects": [str(len(s.objects)) for s in scenes]})
    return Dataset(name=name, split=split, modality="image", x=x, y=y,
                   class_names=SHAPE_CLASSES, groups=groups, description=description,
                   annotations=scenes)


@register_dataset("shapes-seg")
def load_shapes_seg(split: Split = "test") -> Dataset:
    """Shapes scenes for segmentation: ``x`` ``(N, 3, 64, 64)`` in [0, 1].

    ``y`` is the class (1 circle, 2 square, 3 triangle; 0 is the background and never a
    label) of the scene's largest object: the default target to explain. Each row's
    :class:`Scene` (its class mask, boxes, object records) is in ``annotations``;
    ``groups`` holds ``objects``, the number of objects (``"1"`` .. ``"4"``).
    """
    return _scenes_dataset("shapes-seg", split,
                           "seeded shapes scenes (circle/square/triangle), per-pixel class masks")


@register_dataset("shapes-det")
def load_shapes_det(split: Split = "test") -> Dataset:
    """The same scenes as ``shapes-seg``, read as detection data (boxes and labels).

    ``x``, ``y``, ``groups`` and ``annotations`` are those of ``shapes-seg``; the
    detection entries use each scene's ``boxes`` and ``labels``.
    """
    return _scenes_dataset("shapes-det", split,
                           "seeded shapes scenes (circle/square/triangle), boxes and labels")


def scene_masks(data: Dataset) -> torch.Tensor:
    """``(N, H, W)`` int64 class masks of a shapes dataset's rows."""
    return torch.from_numpy(np.stack([s.mask for s in _scenes(data)]))


def scene_targets(data: Dataset) -> list[dict[str, torch.Tensor]]:
    """Detection targets for torchvision (``boxes`` ``(n, 4)``, ``labels`` ``(n,)``) per row."""
    return [{"boxes": s.boxes, "labels": s.labels} for s in _scenes(data)]


def _scenes(data: Dataset) -> tuple[Scene, ...]:
    from xai.errors import DataError

    scenes = data.annotations
    if len(scenes) != len(data) or not all(isinstance(s, Scene) for s in scenes):
        raise DataError(f"dataset {data.name!r} carries no shapes scenes; use shapes-seg or shapes-det")
    return scenes
