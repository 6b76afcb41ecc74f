from __future__ import annotations

import collections

import numpy as np
import torch

from xai.datasets import WordTokenizer, load_dataset, sentiment_tokenizer
from xai.datasets._text import EMOTIONS, TEMPLATES, _emotion_phrase, generate_sentences


def _label_by_hand(phrase: str) -> int:
    """The rule written out: the last emotion word decides, flipped by a 'not' right before it."""
    words = phrase.split()
    last = max(i for i, w in enumerate(words) if w in EMOTIONS)
    negated = "not" in words[:last] and "but" not in words
    return EMOTIONS[words[last]] ^ int(negated)


def test_generated_labels_follow_negation_and_contrast():
    rng = np.random.default_rng(3)
    phrases = [_emotion_phrase(rng) for _ in range(400)]
    assert {kind for _, _, kind in phrases} == {"plain", "negated", "not-but", "contrast"}
    for phrase, label, _ in phrases:
        assert label == _label_by_hand(phrase), phrase
    assert _label_by_hand("not sad but happy") == 1 and _label_by_hand("not very happy") == 0


def test_bag_of_words_cannot_tell_the_classes_apart():
    # the same multiset of words occurs with both labels (order decides)
    frame = generate_sentences(6000, 0)
    bags = collections.defaultdict(set)
    for text, label in zip(frame["text"], frame["label"], strict=True):
        bags[tuple(sorted(text.split()))].add(label)
    assert any(len(labels) == 2 for labels in bags.values())


def test_dataset_is_seeded_held_out_and_balanced_across_groups():
    train, test = load_dataset("sentiment-text", "train"), load_dataset("sentiment-text", "test")
    assert train.x.dtype == torch.long and train.x.shape == (6000, 16) and test.modality == "text"
    assert set(train.groups["text"]).isdisjoint(test.groups["text"])
    assert generate_sentences(50, 1).equals(generate_sentences(50, 1))
    assert not generate_sentences(50, 1).equals(generate_sentences(50, 2))
    assert {"gender", "name_group"} <= set(train.groups.columns)
    rates = train.groups.assign(y=train.y.numpy()).groupby("gender")["y"].mean()
    assert abs(rates["female"] - rates["male"]) < 0.05  # persons drawn independently of the label
    tokenizer = sentiment_tokenizer()
    assert [tokenizer.decode(row) for row in test.x[:5]] == list(test.groups["text"][:5])
    assert (train.x[:, 0] == tokenizer.cls_id).all() and len(TEMPLATES) == 8


def test_word_tokenizer_specials_padding_and_unknowns():
    tok = WordTokenizer(["b", "a"])
    assert tok.vocab[:4] == ["[PAD]", "[CLS]", "[MASK]", "[UNK]"] and tok.vocab[4:] == ["a", "b"]
    ids = tok.encode(["A b zzz", "b"])
    assert ids.tolist() == [[1, 4, 5, 3], [1, 5, 0, 0]]
    assert tok.encode(["a a a a"], length=3).tolist() == [[1, 4, 4]]
    assert tok.tokens(ids[1]) == ["[CLS]", "b"] and tok.decode(ids[0]) == "a b"
