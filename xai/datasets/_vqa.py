"""Seeded visual question answering on the shapes scenes (``shapes-vqa``).

Each row pairs a shapes scene with one templated question about its object records:

============  ======================================  ==========================
type          template                                answers
============  ======================================  ==========================
``exists``    ``is there a <colour> <shape>``         ``yes`` / ``no`` (half each)
``count``     ``how many <shape>s are there``         ``0`` .. ``4``
``colour``    ``what colour is the <shape>``          a colour (the shape is unique)
``shape``     ``what shape is the <colour> object``   a shape (the colour is unique)
============  ======================================  ==========================

Packing of the two modalities into one float tensor (so captum differentiates it and
every explainer sees one input): ``x`` is ``(N, 4, S, S)``.

- channels 0-2: the RGB image in [0, 1];
- channel 3, the *question plane*: row ``t < QUESTION_LENGTH`` is the one-hot vector of
  token ``t`` over the vocabulary (column ``id``), all zeros for the padding id 0; the
  other rows and columns are zero. Questions are left-padded, so the last token sits in
  row ``QUESTION_LENGTH - 1``.

A model multiplies the plane's rows by an embedding matrix (an ``nn.Embedding`` with
``padding_idx=0`` written as a bias-free linear map), so scaling the plane from zero to
the question, as integrated gradients does, scales the token embeddings from the zero
baseline: token attributions are the plane rows' attributions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import torch

from xai.datasets._base import Dataset, Split, register_dataset
from xai.datasets._shapes import COLOURS, SHAPES, Scene, generate_scenes

VQA_IMAGE_SIZE = 40
QUESTION_LENGTH = 8
QUESTION_TYPES: tuple[str, ...] = ("exists", "count", "colour", "shape")
PAD = "<pad>"
#: Vocabulary: id 0 is the padding token.
VOCAB: tuple[str, ...] = (
    PAD, "is", "there", "a", "how", "many", "are", "what", "colour", "shape", "the", "object",
    *COLOURS, *SHAPES, *(f"{s}s" for s in SHAPES),
)
WORD_IDS: dict[str, int] = {w: i for i, w in enumerate(VOCAB)}
#: Answer classes: the labels ``y`` index this tuple.
ANSWERS: tuple[str, ...] = ("no", "yes", "0", "1", "2", "3", "4", *COLOURS, *SHAPES)
VQA_SPLIT_SEEDS = {"train": 3_000, "test": 4_000}
VQA_SPLIT_SCENES = {"train": 2_400, "test": 400}


@dataclass(frozen=True)
class Question:
    """One templated question about a scene and its answer."""

    kind: str
    text: str
    answer: str

    @property
    def label(self) -> int:
        """Index of the answer in :data:`ANSWERS`."""
        return ANSWERS.index(self.answer)


def tokenize(text: str) -> list[int]:
    """Word ids of a question (lower-cased, split on spaces; unknown words are an error).

    Examples
    --------
    >>> tokenize("is there a red circle")
    [1, 2, 3, 12, 18]
    """
    words = text.lower().replace("?", " ").split()
    unknown = [w for w in words if w not in WORD_IDS or w == PAD]
    if unknown:
        from xai.errors import DataError

        raise DataError(f"unknown words {unknown}; the vocabulary is {', '.join(VOCAB[1:])}")
    return [WORD_IDS[w] for w in words]


def encode_ids(ids: list[int], length: int = QUESTION_LENGTH) -> list[int]:
    """Left-pad (or keep the last ``length`` of) token ids with the padding id 0."""
    ids = ids[-length:]
    return [0] * (length - len(ids)) + ids


def question_plane(ids: list[int], size: int = VQA_IMAGE_SIZE) -> np.ndarray:
    """The ``(size, size)`` question plane: row ``t`` one-hot of padded token ``t``."""
    plane = np.zeros((size, size), dtype=np.float32)
    for t, i in enumerate(encode_ids(ids)):
        if i:
            plane[t, i] = 1.0
    return plane


def decode_plane(x: torch.Tensor) -> torch.Tensor:
    """Token ids ``(N, QUESTION_LENGTH)`` read back from packed inputs ``(N, 4, S, S)``."""
    rows = x[:, 3, :QUESTION_LENGTH, :len(VOCAB)]
    return torch.where(rows.sum(-1) > 0, rows.argmax(-1), torch.zeros_like(rows[..., 0], dtype=torch.long))


def scene_questions(scene: Scene, rng: np.random.Generator) -> list[Question]:
    """One question of each type the scene allows (colour/shape need a unique referent)."""
    objects = scene.objects
    present = {(o.colour, o.shape) for o in objects}
    out: list[Question] = []
    # exists: yes for a present (colour, shape), no for an absent one, half each
    if rng.random() < 0.5:
        colour, shape = sorted(present)[int(rng.integers(len(present)))]
    else:
        absent = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in present]
        colour, shape = absent[int(rng.integers(len(absent)))]
    out.append(Question("exists", f"is there a {colour} {shape}",
                        "yes" if (colour, shape) in present else "no"))
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    count = sum(o.shape == shape for o in objects)
    out.append(Question("count", f"how many {shape}s are there", str(count)))
    unique_shapes = [s for s in SHAPES if sum(o.shape == s for o in objects) == 1]
    if unique_shapes:
        shape = unique_shapes[int(rng.integers(len(unique_shapes)))]
        colour = next(o.colour for o in objects if o.shape == shape)
        out.append(Question("colour", f"what colour is the {shape}", colour))
    unique_colours = [c for c in COLOURS if sum(o.colour == c for o in objects) == 1]
    if unique_colours:
        colour = unique_colours[int(rng.integers(len(unique_colours)))]
        shape = next(o.shape for o in objects if o.colour == colour)
        out.append(Question("shape", f"what shape is the {colour} object", shape))
    return out


@lru_cache(maxsize=4)
def vqa_rows(split: str) -> tuple[tuple[Scene, Question], ...]:
    """``(scene, question)`` rows of a fixed split (``train``, ``test`` or ``all``)."""
    if split == "all":
        return vqa_rows("train") + vqa_rows("test")
    if split not in VQA_SPLIT_SEEDS:
        raise ValueError(f"split must be train, test or all, got {split!r}")
    seed = VQA_SPLIT_SEEDS[split]
    scenes = generate_scenes(VQA_SPLIT_SCENES[split], seed, size=VQA_IMAGE_SIZE)
    rng = np.random.default_rng(seed + 1)
    return tuple((scene, q) for scene in scenes for q in scene_questions(scene, rng))


def pack(images: np.ndarray | torch.Tensor, questions: list[str]) -> torch.Tensor:
    """Pack ``(N, 3, S, S)`` images and N question strings into ``(N, 4, S, S)`` inputs."""
    images = torch.as_tensor(images, dtype=torch.float32)
    size = images.shape[-1]
    planes = np.stack([question_plane(tokenize(q), size) for q in questions])
    return torch.cat([images, torch.from_numpy(planes)[:, None]], 1)


@register_dataset("shapes-vqa")
def load_shapes_vqa(split: Split = "test") -> Dataset:
    """Shapes scenes (40x40) with templated questions; ``y`` indexes :data:`ANSWERS`.

    ``x`` ``(N, 4, 40, 40)``: RGB image plus the question plane (see the module doc).
    ``groups``: ``question`` (exists / count / colour / shape) and ``objects`` (``"1"`` ..
    ``"4"``). ``annotations``: per row ``{"scene", "question", "answer", "type"}``.
    """
    rows = vqa_rows(split)
    x = pack(np.stack([s.image for s, _ in rows]), [q.text for _, q in rows])
    y = torch.tensor([q.label for _, q in rows], dtype=torch.int64)
    groups = pd.DataFrame({"question": [q.kind for _, q in rows],
                           "objects": [str(len(s.objects)) for s, _ in rows]})
    notes = tuple({"scene": s, "question": q.text, "answer": q.answer, "type": q.kind} for s, q in rows)
    return Dataset(name="shapes-vqa", split=split, modality="multimodal", x=x, y=y,
                   class_names=ANSWERS, groups=groups, annotations=notes,
                   description="seeded shapes scenes with exists/count/colour/shape questions "
                               "(image + one-hot question plane packed as 4 channels)")
