"""HTML section of the cross-attention result: labelled target x source tables, escaped and self-contained."""

from __future__ import annotations

import re

import numpy as np

from xai._provenance import Provenance
from xai.explain.cross_attention import CrossAttentionResult
from xai.report import cross_attention

HOSTILE = '<script>alert(1)</script>"'
PROVENANCE = Provenance(model_sha256="m", data_sha256="d", seed=0, wall_seconds=0.0, device="cpu")


def _result(ablation: bool = True, attributions: bool = True) -> CrossAttentionResult:
    rng = np.random.default_rng(0)
    cross = rng.random((2, 2, 4, 3, 4)).astype(np.float32)  # (samples, layers, heads, T, S)
    cross /= cross.sum(-1, keepdims=True)
    rollout = cross.mean((1, 2))
    return CrossAttentionResult(
        model=HOSTILE, layers=("decoder.0.cross_attn.softmax", HOSTILE), heads=4,
        source_tokens=(("7", HOSTILE, "2", "0"), ("1", "2", "3", "4")),
        generated_tokens=(("2", "0", "[EOS]"), ("1", "2", "[EOS]")),
        reference_tokens=(("2", "0", "[EOS]"), ("9", "9", "[EOS]")),
        source_fields=(("day", "month", "year", "year"), ("year",) * 4),
        target_fields=(("year", "year", "eos"), ("year", "year", "eos")),
        cross=cross, rollout=rollout,
        ablation=rng.normal(size=(2, 3, 4)) if ablation else np.zeros(0), baseline="[PAD]",
        alignment=np.array([0.4, 0.8]), rollout_alignment=0.5, ablation_alignment=0.7 if ablation else float("nan"),
        exact_match=0.5, rows=2, provenance=PROVENANCE, notes=(HOSTILE,),
        shapley=rng.normal(size=(2, 3, 4)) if attributions else np.zeros(0),
        integrated_gradients=rng.normal(size=(2, 3, 4)) if attributions else np.zeros(0),
        shapley_alignment=0.625 if attributions else float("nan"), ig_alignment=0.375 if attributions else float("nan"),
        ig_max_delta=0.0123 if attributions else float("nan"), attribution_rows=2 if attributions else 0)


def _self_contained(page: str) -> None:
    assert "<script" not in page and HOSTILE not in page
    assert "&lt;script&gt;" in page
    assert "src=" not in page and "http://" not in page and "https://" not in page


def test_one_table_per_layer_rollout_and_ablation_with_token_labels():
    result = _result()
    page = cross_attention.render_html(result)
    _self_contained(page)
    assert page.count('class="s2s-cross"') == 2 * 2  # samples x layers
    assert page.count('class="s2s-rollout"') == 2 and page.count('class="s2s-ablation"') == 2
    first = re.search(r'<table class="s2s-cross">.*?</table>', page).group(0)
    assert first.count('<th scope="row">') == 3 and first.count('<th scope="col">') == 1 + 4  # T rows, S columns
    assert first.count("<td ") == 3 * 4
    # cell text is the head-mean probability in percent
    assert f">{100 * result.maps[0, 0, 0, 0]:.0f}</td>" in first
    # framed cells: generated year digits x the sample's two year tokens
    assert first.count("box-shadow") == 2 * 2
    assert "0.800" in page and "wrong (reference 9 9 [EOS])" in page


def test_shapley_and_gradient_tables_and_their_alignment_rows():
    result = _result()
    page = cross_attention.render_html(result)
    assert page.count('class="s2s-shapley"') == 2 and page.count('class="s2s-ig"') == 2
    shapley = re.search(r'<table class="s2s-shapley">.*?</table>', page).group(0)
    assert f">{result.shapley[0, 0, 0]:+.1f}</td>" in shapley and shapley.count("<td ") == 3 * 4
    assert re.search(r"Shapley values \(absent token = \[PAD\]\)</th><td class=\"num\">0.625</td>", page)
    assert ">0.375</td>" in page and "completeness gap of the integrated gradients 0.012" in page


def test_without_ablation_there_is_no_ablation_table_and_a_dash_in_the_summary():
    page = cross_attention.render_html(_result(ablation=False, attributions=False))
    assert 's2s-ablation' not in page and "s2s-shapley" not in page and "s2s-ig" not in page
    assert "Shapley" not in page and "completeness" not in page
    assert re.search(r"ablation \(source token -&gt; \[PAD\]\)</th><td class=\"num\">-</td>", page)
