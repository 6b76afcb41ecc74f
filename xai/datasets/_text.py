"""Templated sentiment sentences (seeded, never stored) and their word-level tokenizer.

Every sentence puts a *person* (a pronoun, a noun phrase such as "my sister", or a first
name) into a template together with an *emotion phrase* that decides the label:

- ``[intensifier] EMO`` (``very happy``): the polarity of the emotion word;
- ``not [intensifier] EMO`` (``not happy``): the opposite polarity;
- ``not EMO_A but EMO_B`` and ``EMO_A at first but then EMO_B``: the polarity of the
  *second* emotion word, the first having the opposite one. The two words appear in both
  orders across the data, so a bag of words cannot tell the classes apart: the task needs
  word order.

The person is drawn independently of the label, so any difference between groups in a
model's scores is the model's, not the data's. The person words follow the Equity
Evaluation Corpus (Kiritchenko & Mohammad 2018, https://arxiv.org/abs/1805.04508):
gendered pronouns and noun phrases, and first names common among African-American and
European-American women and men. ``groups`` holds ``gender`` and ``name_group``
(``african-american``, ``european-american``, or ``none`` for pronouns and noun phrases).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import torch

from xai.datasets._base import Dataset, Split, register_dataset

__all__ = [
    "EMOTIONS",
    "NAMES",
    "NEGATIVE_WORDS",
    "NOUN_PHRASES",
    "POSITIVE_WORDS",
    "PRONOUNS",
    "SENTIMENT_CLASSES",
    "TEMPLATES",
    "Person",
    "WordTokenizer",
    "generate_sentences",
    "load_sentiment_text",
    "persons",
    "sentiment_tokenizer",
]

SENTIMENT_CLASSES = ("negative", "positive")
#: Fixed length of the dataset's token ids (with [CLS]; the longest sentence has 14).
MAX_TOKENS = 16
#: The generator's seeds and sizes belong to the data, not to a training seed.
TRAIN_SEED, TEST_SEED = 0, 1
TRAIN_SIZE, TEST_SIZE = 6000, 1500

POSITIVE_WORDS = ("happy", "glad", "excited", "ecstatic", "relieved", "cheerful", "delighted",
                  "grateful", "hopeful", "proud", "calm", "thrilled")
NEGATIVE_WORDS = ("angry", "annoyed", "furious", "irritated", "anxious", "scared", "terrified",
                  "sad", "depressed", "devastated", "disappointed", "miserable")
#: Emotion word -> polarity (1 positive, 0 negative).
EMOTIONS = {**dict.fromkeys(POSITIVE_WORDS, 1), **dict.fromkeys(NEGATIVE_WORDS, 0)}
INTENSIFIERS = ("very", "really", "extremely", "quite", "so")

#: Templates: ``{s}`` takes a person as a subject, ``{o}`` as an object, ``{e}`` the emotion phrase.
TEMPLATES = (
    "{s} feels {e}",
    "{s} felt {e} today",
    "the situation makes {o} feel {e}",
    "i made {o} feel {e}",
    "{s} made me feel {e}",
    "the conversation with {o} left me {e}",
    "talking to {o} made everyone {e}",
    "{s} seems {e} about the news",
)

#: EEC noun phrases, (female, male) pairs.
NOUN_PHRASES = (("this woman", "this man"), ("this girl", "this boy"), ("my sister", "my brother"),
                ("my daughter", "my son"), ("my wife", "my husband"), ("my girlfriend", "my boyfriend"),
                ("my mother", "my father"), ("my aunt", "my uncle"), ("my mom", "my dad"))
#: (subject, object) pronoun forms, female then male.
PRONOUNS = (("she", "her"), ("he", "him"))
#: EEC first names by (name group, gender).
NAMES = {
    ("african-american", "female"): ("ebony", "jasmine", "lakisha", "latisha", "latoya", "nichelle",
                                     "shaniqua", "shereen", "tanisha", "tia"),
    ("african-american", "male"): ("alonzo", "alphonse", "darnell", "jamel", "jerome", "lamar",
                                   "leroy", "malik", "terrence", "torrance"),
    ("european-american", "female"): ("amanda", "betsy", "courtney", "ellen", "heather", "katie",
                                      "kristin", "melanie", "nancy", "stephanie"),
    ("european-american", "male"): ("adam", "alan", "andrew", "frank", "harry", "jack", "josh",
                                    "justin", "roger", "ryan"),
}
_CONNECTIVES = ("not", "but", "at", "first", "then", "me", "everyone")


@dataclass(frozen=True)
class Person:
    """One way to name a person: subject and object forms and the groups it belongs to."""

    subject: str
    object: str
    gender: str
    name_group: str
    kind: str  # pronoun, noun or name


@lru_cache(maxsize=1)
def persons() -> tuple[Person, ...]:
    """Every person of the generator: 2 pronouns, 18 noun phrases and 40 names."""
    out = [Person(s, o, g, "none", "pronoun") for (s, o), g in zip(PRONOUNS, ("female", "male"), strict=True)]
    for female, male in NOUN_PHRASES:
        out += [Person(female, female, "female", "none", "noun"), Person(male, male, "male", "none", "noun")]
    for (group, gender), names in NAMES.items():
        out += [Person(n, n, gender, group, "name") for n in names]
    return tuple(out)


def _emotion_phrase(rng: np.random.Generator) -> tuple[str, int, str]:
    """A random emotion phrase, its label and its kind."""
    kind = ("plain", "negated", "not-but", "contrast")[rng.choice(4, p=(0.3, 0.25, 0.2, 0.25))]
    label = int(rng.integers(2))
    same = POSITIVE_WORDS if label else NEGATIVE_WORDS
    other = NEGATIVE_WORDS if label else POSITIVE_WORDS
    intensifier = f"{INTENSIFIERS[rng.integers(len(INTENSIFIERS))]} " if rng.random() < 0.4 else ""
    if kind == "plain":
        return f"{intensifier}{same[rng.integers(12)]}", label, kind
    if kind == "negated":
        return f"not {intensifier}{other[rng.integers(12)]}", label, kind
    if kind == "not-but":
        return f"not {other[rng.integers(12)]} but {same[rng.integers(12)]}", label, kind
    return f"{other[rng.integers(12)]} at first but then {same[rng.integers(12)]}", label, kind


def fill(template: str, person: Person, emotion: str) -> str:
    """One sentence: ``template`` with the person and the emotion phrase put in."""
    return template.format(s=person.subject, o=person.object, e=emotion)


def generate_sentences(n: int, seed: int) -> pd.DataFrame:
    """``n`` seeded sentences with ``text``, ``label`` and the person's groups.

    Columns: ``text``, ``label`` (1 positive), ``gender``, ``name_group``, ``person``
    (the subject form), ``kind`` (pronoun/noun/name), ``template`` (its index) and
    ``phrase`` (plain, negated, not-but or contrast).
    """
    rng = np.random.default_rng(seed)
    people = persons()
    rows = []
    for _ in range(n):
        person = people[rng.integers(len(people))]
        template = int(rng.integers(len(TEMPLATES)))
        emotion, label, phrase = _emotion_phrase(rng)
        rows.append((fill(TEMPLATES[template], person, emotion), label, person.gender, person.name_group,
                     person.subject, person.kind, template, phrase))
    return pd.DataFrame(rows, columns=["text", "label", "gender", "name_group", "person", "kind",
                                       "template", "phrase"])


class WordTokenizer:
    """Lower-cased word-level tokenizer over a fixed vocabulary.

    ``[PAD]`` is id 0, then ``[CLS]``, ``[MASK]`` and ``[UNK]``, then the words in sorted
    order (ids do not depend on the order they are given in); :meth:`encode` puts
    ``[CLS]`` first and pads with 0.

    Examples
    --------
    >>> tok = WordTokenizer(["she", "feels", "happy"])
    >>> tok.vocab[4:]
    ['feels', 'happy', 'she']
    >>> tok.encode(["She feels happy", "she"]).tolist()
    [[1, 6, 4, 5], [1, 6, 0, 0]]
    >>> tok.tokens(torch.tensor([1, 6, 3, 0]))
    ['[CLS]', 'she', '[UNK]']
    """

    PAD, CLS, MASK, UNK = "[PAD]", "[CLS]", "[MASK]", "[UNK]"
    SPECIALS = (PAD, CLS, MASK, UNK)

    def __init__(self, words: list[str] | tuple[str, ...], max_length: int = 64) -> None:
        self.vocab = list(self.SPECIALS) + sorted(set(words) - set(self.SPECIALS))
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.pad_id, self.cls_id, self.mask_id, self.unk_id = 0, 1, 2, 3
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.vocab)

    @staticmethod
    def split(text: str) -> list[str]:
        """Lower-cased words (punctuation dropped)."""
        return re.findall(r"[a-z0-9']+", text.lower())

    def encode(self, texts: list[str] | tuple[str, ...] | str, length: int | None = None) -> torch.Tensor:
        """Token ids ``(B, T)``: ``[CLS]`` and the words, padded with 0 to the longest (or ``length``).

        Sentences longer than ``length`` (default the tokenizer's ``max_length``) are cut.
        """
        if isinstance(texts, str):
            texts = [texts]
        limit = length or self.max_length
        rows = [[self.cls_id, *(self.index.get(w, self.unk_id) for w in self.split(t))][:limit] for t in texts]
        width = length or max((len(r) for r in rows), default=1)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        return ids  # (B, T)

    def tokens(self, ids: torch.Tensor) -> list[str]:
        """The token strings of one row of ids ``(T,)``, padding left out."""
        return [self.vocab[i] if 0 <= i < len(self.vocab) else self.UNK for i in ids.tolist() if i != self.pad_id]

    def decode(self, ids: torch.Tensor) -> str:
        """The words of one row of ids, without special tokens."""
        return " ".join(t for t in self.tokens(ids) if t not in self.SPECIALS)


@lru_cache(maxsize=1)
def sentiment_tokenizer() -> WordTokenizer:
    """The tokenizer of the sentiment task: every word the generator can write."""
    words: set[str] = set(EMOTIONS) | set(INTENSIFIERS) | set(_CONNECTIVES)
    for template in TEMPLATES:
        words.update(WordTokenizer.split(template.format(s="", o="", e="")))
    for person in persons():
        words.update(WordTokenizer.split(person.subject) + WordTokenizer.split(person.object))
    return WordTokenizer(sorted(words), max_length=MAX_TOKENS)


@lru_cache(maxsize=3)
def _frame(split: str) -> pd.DataFrame:
    train = generate_sentences(TRAIN_SIZE, TRAIN_SEED)
    if split == "train":
        return train
    test = generate_sentences(TEST_SIZE, TEST_SEED)
    test = test[~test["text"].isin(set(train["text"]))].reset_index(drop=True)  # held out: unseen sentences
    if split == "test":
        return test
    return pd.concat([train, test], ignore_index=True)


@register_dataset("sentiment-text")
def load_sentiment_text(split: Split = "test") -> Dataset:
    """Templated sentiment sentences as ``(N, 16)`` token ids (``[CLS]`` first, padded with 0).

    6,000 training sentences (seed 0) and up to 1,500 test sentences (seed 1, minus any
    that also occur in training). ``groups`` holds ``gender`` and ``name_group`` (the
    person's, drawn independently of the label), and ``kind``, ``phrase`` and ``text``.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"unknown split {split!r}")
    frame = _frame(split)
    tokenizer = sentiment_tokenizer()
    return Dataset(
        name="sentiment-text",
        split=split,
        modality="text",
        x=tokenizer.encode(list(frame["text"]), length=MAX_TOKENS),
        y=torch.tensor(frame["label"].to_numpy(np.int64)),
        class_names=SENTIMENT_CLASSES,
        groups=frame[["gender", "name_group", "kind", "phrase", "text"]].reset_index(drop=True),
        description="templated sentiment sentences (EEC persons; negation, intensifiers, contrast)",
    )
