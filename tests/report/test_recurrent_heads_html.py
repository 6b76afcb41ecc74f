"""HTML sections of the recurrent-gates and attention-heads results: escaped, self-contained, complete."""

from __future__ import annotations

import re

import numpy as np

from xai._provenance import Provenance
from xai.explain.heads import HeadsResult
from xai.explain.recurrent import RecurrentResult
from xai.report import heads, recurrent

HOSTILE = '<script>alert(1)</script>"'
PROVENANCE = Provenance(model_sha256="m", data_sha256="d", seed=0, wall_seconds=0.0, device="cpu")


def _self_contained(page: str) -> None:
    assert "<script" not in page and HOSTILE not in page
    assert "&lt;script&gt;" in page
    for src in re.findall(r'src="([^"]*)"', page):
        assert src.startswith("data:image/png;base64,"), src[:40]
    assert "http://" not in page and "https://" not in page


def test_recurrent_section_has_one_heat_map_per_gate_and_sample_and_the_gradient_curve():
    rng = np.random.default_rng(0)
    gates = {g: rng.random((2, 8, 5)).astype(np.float32) for g in ("input", "forget", "output", "cell", "hidden")}
    result = RecurrentResult(
        model=HOSTILE, layer="rnn", cell="lstm", rows=(0, 1), labels=(HOSTILE, "1"), predicted=("0", "1"),
        gates=gates, step_means={g: v.mean(axis=(0, 2)) for g, v in gates.items()}, unroll_error=1e-7,
        grad_norm=0.5 ** np.arange(32), grad_log10=np.log10(0.5) * np.arange(32), window=8, sequences=4,
        provenance=PROVENANCE, notes=(HOSTILE,))
    page = recurrent.render_html(result)
    _self_contained(page)
    assert page.count("<img ") == 2 * 5
    assert "<polyline" in page and "10^-7.22" in page  # log10(0.5) * (mean of 24..31 - mean of 0..7) = -7.22
    assert result.far_near_log10 == np.log10(0.5) * 24


def test_recurrent_section_without_the_gradient_has_no_curve():
    gates = {"hidden": np.zeros((1, 4, 3), dtype=np.float32)}
    result = RecurrentResult(
        model="rnn", layer="rnn", cell="rnn", rows=(0,), labels=("a",), predicted=("a",), gates=gates,
        step_means={"hidden": np.zeros(4)}, unroll_error=0.0, grad_norm=np.zeros(0), grad_log10=np.zeros(0),
        window=4, sequences=0, provenance=PROVENANCE)
    page = recurrent.render_html(result)
    assert page.count("<img ") == 1 and "<polyline" not in page
    assert "gradient.far_near_log10" not in result.metrics()


def _heads_result(tokens: tuple[tuple[str, ...], ...], t: int, inputs: np.ndarray) -> HeadsResult:
    rng = np.random.default_rng(1)
    attention = rng.random((2, 3, 2, t, t)).astype(np.float32)
    attention /= attention.sum(-1, keepdims=True)
    return HeadsResult(
        model=HOSTILE, layers=("a", "b", "c"), heads=2, pool="cls", attention=attention,
        pooled=attention[:, :, :, 0], mask=np.ones((2, t), dtype=bool), tokens=tokens, inputs=inputs,
        metric=HOSTILE, baseline=0.9, baseline_loss=0.3, drop=np.array([[0.1, 0.0], [-0.02, 0.3], [0.0, 0.0]]),
        loss_increase=np.full((3, 2), 0.01), importance_rows=16, provenance=PROVENANCE)


def test_heads_section_for_images_draws_one_patch_map_per_layer_and_head():
    result = _heads_result((), 17, np.zeros((2, 1, 32, 32), dtype=np.float32))
    page = heads.render_html(result)
    _self_contained(page)
    assert page.count("<img ") == 2 * 3 * 2
    assert "+0.300" in page and "-0.020" in page  # the importance table
    assert "attention" not in result.to_dict() and result.to_dict()["attention_shape"] == [2, 3, 2, 17, 17]


def test_heads_section_for_text_escapes_the_tokens():
    tokens = (("[CLS]", HOSTILE, "b"), ("[CLS]", "c", "d"))
    page = heads.render_html(_heads_result(tokens, 3, np.zeros(0)))
    _self_contained(page)
    assert page.count('class="tok"') == 2 * 3 * 2 * 3  # samples x layers x heads x tokens
