"""SEAT (May et al. 2019) with hand-built encoders whose answers are known, and on MiniLM."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from xai.cli import app
from xai.errors import DataError
from xai.fairness.embedding import WeatTest, WordSet
from xai.fairness.seat import SEAT_TEMPLATES, seat, seat_sentences

runner = CliRunner()

TEST = WeatTest("toy", WordSet("X", ("xa", "xb")), WordSet("Y", ("ya", "yb")),
                WordSet("A", ("aa", "ab")), WordSet("B", ("ba", "bb")))
TWO = ("This is {}.", "{} is here.")


def word_encoder(sentences: list[str]) -> np.ndarray:
    """X and A words -> (1, 0), Y and B words -> (0, 1), whatever the template."""
    out = []
    for s in sentences:
        word = next(w for w in ("xa", "xb", "ya", "yb", "aa", "ab", "ba", "bb") if w in s.lower())
        out.append([1.0, 0.0] if word[0] in "xa" else [0.0, 1.0])
    return np.array(out)


def test_templates_fill_and_capitalise():
    assert seat_sentences(["nurse"], TWO) == ("This is nurse.", "Nurse is here.")
    assert len(SEAT_TEMPLATES) == 8 and all(t.count("{}") == 1 for t in SEAT_TEMPLATES)


def test_seat_on_a_hand_built_encoder_matches_the_hand_computation():
    result = seat(word_encoder, [TEST], templates=TWO, permutations=100_000)
    (score,) = result.scores
    # 4 sentences per set; s(w, A, B) = 1 - 0 = 1 for X sentences and 0 - 1 = -1 for Y sentences.
    assert score.association_x == (1.0,) * 4 and score.association_y == (-1.0,) * 4
    assert score.statistic == pytest.approx(8.0)  # 4 * 1 - 4 * (-1)
    # pooled (1,1,1,1,-1,-1,-1,-1): mean 0, sample variance 8 / 7
    assert score.effect_size == pytest.approx(2 / math.sqrt(8 / 7))
    # exact over C(8, 4) = 70 partitions; only X itself reaches the observed statistic
    assert score.p_method == "exact" and score.partitions == 70
    assert score.p_value == pytest.approx(1 / 70)
    assert result.metrics()["seat.toy.effect_size"] == pytest.approx(1.8708287, abs=1e-6)
    assert score.used[0] == ("This is xa.", "Xa is here.", "This is xb.", "Xb is here.")


def test_an_encoder_that_ignores_the_word_shows_no_bias_and_unknown_words_are_listed():
    def template_only(sentences):  # depends on the template alone: every set looks the same
        return np.array([[1.0, float(s.startswith("This"))] for s in sentences])

    result = seat(template_only, [TEST], templates=TWO, permutations=1000)
    assert result.scores[0].statistic == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(result.scores[0].effect_size)  # every association is 0: no spread
    lost = seat(word_encoder, [TEST], templates=TWO, unknown=lambda w: w == "ab", permutations=1000)
    assert lost.missing_words["toy"] == ((), (), ("ab",), ())
    assert lost.metrics()["seat.toy.n_missing_words"] == 1.0
    assert len(lost.scores[0].used[2]) == 2  # one word x two templates left in A
    with pytest.raises(DataError, match="exactly one"):
        seat(word_encoder, [TEST], templates=("no slot",))


def test_cli_seat_on_minilm(tmp_path):
    ok = runner.invoke(app, ["bias", "seat", "--model", "minilm", "--test", "career-family",
                             "--permutations", "2000", "--json", "-o", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.stdout)
    assert doc["missing_words"] == {"career-family": [[], [], [], []]}  # WordPiece spells every word
    score = doc["weat"]["scores"][0]
    assert score["test"] == "career-family" and score["p_method"] == "monte-carlo"
    assert len(score["used"][0]) == 8 * 8  # 8 male names x 8 templates
    assert np.isfinite(doc["metrics"]["seat.career-family.effect_size"])
    saved = json.loads((tmp_path / "bias-seat-minilm.json").read_text())  # the audit JSON beside the page
    assert saved["weat"][0]["weat"]["scores"][0]["effect_size"] == pytest.approx(score["effect_size"])
    page = (tmp_path / "bias-seat-minilm.html").read_text()
    assert 'class="verdict-box' in page and "career-family" in page and "May et al. 2019" in page
