from __future__ import annotations

import numpy as np
import pytest

from xai.audit import collect_spec_paths, default_specs, load_spec, parse_spec, run_audit
from xai.errors import NotApplicableError, SpecError
from xai.zoo import load_model

GOOD = """
title = "t"
[model]
name = "lenet"
[data]
sensitive = ["ink"]
[[explain]]
method = "saliency"
samples = 3
"""


def test_default_specs_are_the_two_bundled_audits():
    specs = dict(default_specs())
    assert set(specs) == {"lenet", "adult-mlp"}
    assert specs["adult-mlp"].data.sensitive == ["sex", "race"]
    assert specs["lenet"].model.name == "lenet"


def test_good_spec_round_trips():
    spec = parse_spec(GOOD)
    assert spec.explain[0].samples == 3 and spec.probe is None and spec.seed == 0


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (GOOD.replace("samples = 3", "samples = 0"), "explain.0.samples"),
        (GOOD.replace('name = "lenet"', ""), "model.name"),
        ("colour = 'red'\n" + GOOD, "colour"),
        (GOOD + "\ncolour = 'red'\n", "explain.0.colour"),
        (GOOD.replace('title = "t"', ""), "title"),
        (GOOD.replace('[data]', '[data]\nsplit = "validation"'), "data.split"),
    ],
)
def test_spec_errors_name_the_file_and_key(text, key):
    with pytest.raises(SpecError) as info:
        parse_spec(text, "audits/x.toml")
    assert str(info.value).startswith(f"audits/x.toml: {key}:")


def test_invalid_toml_gives_the_line():
    with pytest.raises(SpecError, match=r"audits/bad.toml: invalid TOML: .*line 2"):
        parse_spec('title = "t"\n[model\n', "audits/bad.toml")


def test_spec_paths(tmp_path):
    (tmp_path / "b.toml").write_text(GOOD)
    (tmp_path / "a.toml").write_text(GOOD)
    assert [p.name for p in collect_spec_paths([str(tmp_path)])] == ["a.toml", "b.toml"]
    with pytest.raises(SpecError, match="not found"):
        collect_spec_paths([str(tmp_path / "missing.toml")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SpecError, match="holds no"):
        collect_spec_paths([str(empty)])
    assert load_spec(tmp_path / "a.toml").title == "t"


def test_run_audit_on_a_small_spec(lenet, digits_test):
    spec = parse_spec(GOOD)
    result = run_audit(spec, slug="small")
    assert [e.method for e in result.explanations] == ["saliency"]
    assert result.explanations[0].attributions.shape == (3, 1, 32, 32)
    # probe left out of the spec: every applicable probe runs on the sensitive columns
    from xai.fairness import list_probes

    assert [f.probe for f in result.fairness] == list_probes(handle=lenet, default_only=True)
    assert "group-metrics" in list_probes(handle=lenet) and "proxy" not in list_probes(handle=lenet)
    assert result.fairness[0].tables[0].feature == "ink"
    assert result.model.sha256 == lenet.sha256
    assert result.data.rows == 360
    pred = lenet.predict(digits_test.x).argmax(1)
    acc = float((pred == digits_test.y).float().mean())
    assert result.performance["accuracy"] == pytest.approx(acc)


def test_unknown_method_in_spec_fails_before_work():
    # when the spec loads, not when the audit runs: the message names the key and the known methods
    with pytest.raises(SpecError, match=r"explain\.0: unknown explainer 'gradcam\+\+'; known: .*integrated-gradients"):
        parse_spec(GOOD.replace('"saliency"', '"gradcam++"'))


def test_bad_option_in_spec_fails_when_the_spec_loads():
    bad = GOOD.replace('"saliency"', '"integrated-gradients"\noptions = { steps = "many" }')
    with pytest.raises(SpecError, match=r"explain\.0: integrated-gradients: option steps: .*\(got 'many'\)"):
        parse_spec(bad)


def test_probes_that_need_options_only_run_when_named(lenet):
    from xai.fairness import list_probes

    assert "shortcut" in list_probes(handle=lenet)  # it applies to an image classifier ...
    assert "shortcut" not in list_probes(handle=lenet, default_only=True)  # ... but needs its region


def test_audit_progress_names_each_step_and_counts_them():
    import io

    from rich.console import Console

    from xai.audit.runner import AuditProgress

    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=120)
    with AuditProgress(console, "LeNet", 2) as steps:
        with steps.step("explain saliency (8 samples)"):
            pass
        with steps.step("probe group-metrics by ink"):
            console.file.flush()
    shown = stream.getvalue()
    assert "explain saliency (8 samples)" in shown and "probe group-metrics by ink" in shown
    with AuditProgress(None, "quiet", 3) as steps, steps.step("nothing shown"):
        pass  # no console (--json, -q): no display, no error


def test_dream_panels_run_in_an_audit_and_reach_the_page(tmp_path):
    from xai.audit.spec import parse_spec
    from xai.explain.dream import dream
    from xai.report.html import render_audit_page

    spec = parse_spec('title = "d"\n[model]\nname = "lenet"\n[data]\nsamples = 20\nsensitive = ["ink"]\n'
                      '[[explain]]\nmethod = "saliency"\nsamples = 2\n[[probe]]\nname = "group-metrics"\n'
                      '[[dream]]\nlayer = "conv2"\nchannel = 3\nsteps = 6\ntop_k = 2\n')
    result = run_audit(spec, slug="d")
    direct = dream(load_model("lenet"), "conv2", channel=3, steps=6, top_k=2, seed=0)
    (panel,) = result.dreams
    np.testing.assert_allclose(panel.image, direct.image, rtol=1e-5, atol=1e-6)  # the same seeded ascent
    metrics = result.metrics()
    assert metrics["dream.conv2.channel3.end"] == pytest.approx(direct.end_value, rel=1e-5)
    page = render_audit_page(result)
    assert 'id="dreams"' in page and "image optimised to excite conv2.channel3" in page
    with pytest.raises(SpecError, match="needs `layer`"):
        parse_spec('title = "d"\n[model]\nname = "lenet"\n[[dream]]\nchannel = 1\n')


def test_invert_panels_run_in_an_audit_and_reach_the_page():
    from xai.audit.spec import parse_spec
    from xai.datasets import load_dataset
    from xai.explain.inversion import invert
    from xai.report.html import render_audit_page

    spec = parse_spec('title = "i"\n[model]\nname = "lenet"\n[data]\nsamples = 20\nsensitive = ["ink"]\n'
                      '[[explain]]\nmethod = "saliency"\nsamples = 2\n[[probe]]\nname = "group-metrics"\n'
                      '[[invert]]\nlayer = "conv1"\nsample = 3\nsteps = 8\n')
    result = run_audit(spec, slug="i")
    (panel,) = result.inversions
    from xai.audit.runner import sample_rows

    rows = sample_rows(load_dataset("digits", "test"), 20, 0)
    direct = invert(load_model("lenet"), "conv1", image=3, data=rows, steps=8, seed=0)
    np.testing.assert_allclose(panel.target, rows.x[3:4].numpy())  # the audited rows' sample 3
    np.testing.assert_allclose(panel.reconstruction, direct.reconstruction, rtol=1e-5, atol=1e-6)
    assert result.metrics()["invert.conv1.relative_error"] == pytest.approx(direct.relative_error, rel=1e-5)
    assert 'id="inversions"' in render_audit_page(result)
    with pytest.raises(SpecError, match="invert.0.layer"):
        parse_spec('title = "i"\n[model]\nname = "lenet"\n[[invert]]\nsteps = 3\n')


def test_sample_rows_keeps_sentence_pairs_whole():
    from collections import Counter

    from xai.audit.runner import sample_rows
    from xai.datasets import load_dataset

    full = load_dataset("sentence-pairs", "test")
    sizes = Counter(full.groups["pair"].tolist())
    rows = sample_rows(full, 40, 0)
    kept = Counter(rows.groups["pair"].tolist())
    assert len(kept) == 20 and all(kept[p] == sizes[p] for p in kept)
    assert len(rows) == sum(sizes[p] for p in kept)
    assert Counter(sample_rows(full, 40, 0).groups["pair"].tolist()) == kept  # seeded


def test_a_section_method_that_does_not_apply_fails_before_any_work(monkeypatch):
    import xai.audit.runner as runner

    def no_work(*_args, **_kwargs):
        raise AssertionError("an explainer ran before the sections were checked")

    monkeypatch.setattr(runner, "_run_explainers", no_work)
    spec = parse_spec('title = "t"\n[model]\nname = "adult-mlp"\n[[dream]]\nlayer = "net.0"\n')
    reason = "dream does not apply to adult-mlp: it takes image inputs, not tabular"
    with pytest.raises(NotApplicableError, match=reason):
        run_audit(spec, slug="x")
