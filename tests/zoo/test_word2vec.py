"""word2vec entries: the corpus, negative sampling and 3CosAdd worked by hand, the shipped vector files."""

from __future__ import annotations

import gzip
import hashlib
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

from xai.datasets import load_dataset, load_word_vectors, read_analogies
from xai.datasets._pydoc import WINDOW, pydoc_analogies, pydoc_corpus
from xai.zoo import load_model
from xai.zoo.word2vec import Word2Vec, analogy_accuracy, negative_sampling_loss

from ..conftest import ZOO

DATASETS_MD = Path(__file__).resolve().parents[2] / "DATASETS.md"


@pytest.mark.parametrize("name", ["googlenews.npz", "bolukbasi.json", "questions-words-googlenews.txt.gz"])
def test_shipped_files_match_datasets_md(name):
    data = resources.files("xai.datasets.data").joinpath(name).read_bytes()
    assert hashlib.sha256(data).hexdigest() in DATASETS_MD.read_text(encoding="utf-8")


def test_skipgram_rows_are_the_window_pairs_of_each_topic_split_90_10():
    corpus = pydoc_corpus()
    expected = []  # brute force: every (centre, context) within WINDOW tokens of the same topic
    for ids in corpus.documents:
        for i, centre in enumerate(ids):
            for j in range(max(0, i - WINDOW), min(len(ids), i + WINDOW + 1)):
                if j != i:
                    expected.append((int(centre), int(ids[j])))
    every = load_dataset("pydoc-skipgram", "all")
    assert sorted(zip(every.x[:, 0].tolist(), every.y.tolist(), strict=True)) == sorted(expected)
    train, test = load_dataset("pydoc-skipgram", "train"), load_dataset("pydoc-skipgram", "test")
    assert len(train) + len(test) == len(expected) and len(test) == round(0.1 * len(expected))
    assert len(corpus.words) == 1355 and corpus.tokens == 63637 and corpus.counts[0] == corpus.counts.max()


def test_cbow_rows_hold_the_context_and_pad_beyond_the_topic():
    corpus = pydoc_corpus()
    pad = len(corpus.words)
    first = corpus.documents[0]
    every = load_dataset("pydoc-cbow", "all")
    # rows come topic by topic, in order: the first row is the first token of the first topic
    assert every.y[0] == first[0]
    assert every.x[0].tolist() == [pad, pad, int(first[1]), int(first[2])]
    assert every.x[3].tolist() == [int(first[1]), int(first[2]), int(first[4]), int(first[5])]


def test_analogy_set_is_built_from_the_vocabulary():
    vocab = set(pydoc_corpus().words)
    questions = pydoc_analogies()
    assert all(w in vocab for _, q in questions for w in q)
    assert ("dunder", ("len", "__len__", "repr", "__repr__")) in questions
    for section in ("plural", "past-tense", "dunder"):
        n = sum(s == section for s, _ in questions)
        k = (1 + math.isqrt(1 + 4 * n)) // 2  # n = k (k - 1) ordered pairs of k word pairs
        assert k * (k - 1) == n and k >= 10


def test_negative_sampling_loss_by_hand():
    model = Word2Vec(("a", "b", "c"), np.array([0, 0, 7]), dim=2)  # all noise mass on "c"
    with torch.no_grad():
        model.in_embed.weight[:3] = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
        model.output.weight[:] = torch.tensor([[0.5, 0.0], [0.0, -1.0], [1.0, 0.0]])
    x, y = torch.tensor([[0], [1]]), torch.tensor([1, 0])

    def log_sigmoid(v: float) -> float:
        return -math.log1p(math.exp(-v))

    # row 0: h = (1, 0), positive u_b . h = 0, negatives u_c . h = 1 (twice)
    # row 1: h = (0, 2), positive u_a . h = 0, negatives u_c . h = 0 (twice)
    row0 = -(log_sigmoid(0.0) + 2 * log_sigmoid(-1.0))
    row1 = -(log_sigmoid(0.0) + 2 * log_sigmoid(0.0))
    got = negative_sampling_loss(model, x, y, negatives=2)
    assert float(got.detach()) == pytest.approx((row0 + row1) / 2, rel=1e-6)
    # CBOW: padding (id 3) is left out of the mean
    h = model.hidden(torch.tensor([[0, 3, 1, 3]]))
    torch.testing.assert_close(h, torch.tensor([[0.5, 1.0]]))
    torch.testing.assert_close(model(torch.tensor([[2]])), torch.tensor([[0.5, -1.0, 1.0]]))


def test_untrained_loss_is_six_log_two_and_training_beats_it():
    model = Word2Vec(("a", "b", "c"), np.array([3, 2, 1]), dim=4)  # zero output embeddings
    loss = negative_sampling_loss(model, torch.tensor([[0], [1]]), torch.tensor([1, 2]))
    assert float(loss.detach()) == pytest.approx(6 * math.log(2), rel=1e-6)
    for name in ("skipgram", "cbow"):
        card = load_model(name, zoo_dir=ZOO).card
        assert card is not None
        metrics = card["metrics"]
        assert metrics["untrained_heldout_ns_loss"] == pytest.approx(6 * math.log(2), abs=1e-5)
        assert metrics["heldout_ns_loss"] < 0.6 * metrics["untrained_heldout_ns_loss"]
        assert metrics["heldout_top10_accuracy"] > metrics["unigram_heldout_top10_accuracy"]
        assert set(card["details"]["nearest_neighbours"]) >= {"list", "exception", "class"}


def test_3cosadd_by_hand_excludes_the_question_words():
    # king - man + woman lands exactly on queen; b itself (king) would score higher if allowed
    vectors = torch.tensor([[1.0, 0.0, 0.0],   # 0 man
                            [0.0, 1.0, 0.0],   # 1 woman
                            [1.0, 0.0, 1.0],   # 2 king
                            [0.0, 1.0, 1.0],   # 3 queen
                            [0.0, 0.0, 1.0]])  # 4 crown
    hits = analogy_accuracy(vectors, torch.tensor([[0, 2, 1, 3], [0, 1, 2, 3], [0, 2, 1, 4]]))
    assert hits.tolist() == [True, True, False]


def test_googlenews_entry_reads_the_shipped_vectors_and_answers_analogies():
    handle = load_model("googlenews", zoo_dir=ZOO)
    wv = handle.module.word_vectors()
    assert wv is load_word_vectors("googlenews")  # gain is ones: the vectors as shipped
    index = wv.index
    question = torch.tensor([[index["man"], index["king"], index["woman"]]])
    scores = handle.predict(question)[0]
    scores[question[0]] = -math.inf
    assert wv.words[int(scores.argmax())] == "queen"
    questions, _ = read_analogies()
    test = load_dataset("googlenews-analogies", "all")
    decoded = [(wv.words[a], wv.words[b], wv.words[c], wv.words[int(d)])
               for (a, b, c), d in zip(test.x.tolist(), test.y, strict=True)]
    assert decoded == [q for _, q in questions]
    lines = gzip.decompress(resources.files("xai.datasets.data").joinpath(
        "questions-words-googlenews.txt.gz").read_bytes()).decode().splitlines()
    assert sum(not line.startswith(":") for line in lines) == len(questions) == 8740
