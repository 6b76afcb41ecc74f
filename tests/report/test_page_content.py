"""What the audit page says must be true of the result it draws (issue 14, items 3 and 4).

Embedding models are not captioned as classifiers; special tokens do not set the token
shading scale and padding is not drawn; RGB inputs stay in colour; each map's caption
says whether it is signed; options read as key-value lists; image tiles pair the plain
input with the overlay and give the predicted class's probability; every glossary term's
first use links to its entry; the mitigation table has an accuracy-vs-disparity plot and
charts have ticked, titled axes.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from xai._provenance import Provenance
from xai.audit import AuditResult, DataSummary, ModelSummary
from xai.explain import AttributionResult, create_explainer, list_explainers
from xai.fairness import FairnessResult, GroupTable
from xai.report import charts, images
from xai.report import html as html_report
from xai.report.glossary import GLOSSARY, link_terms
from xai.report.html import render_audit_page, render_index


def _prov() -> Provenance:
    return Provenance(model_sha256="m" * 64, data_sha256="d" * 64, seed=0, wall_seconds=0.1, device="cpu")


def _audit(*results, task: str = "classification", modality: str = "text") -> AuditResult:
    return AuditResult(
        slug="t", title="t", spec_path="t.toml",
        model=ModelSummary(name="m", source="zoo:m", sha256="m" * 64, task=task, modality=modality,
                           params=10, card=None),
        data=DataSummary(name="d", split="test", rows=4, sha256="d" * 64, sensitive=()),
        performance={}, results=tuple(results), provenance=_prov(), notes=(),
    )


def _png(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


# --- embedding models ----------------------------------------------------------------------------------


def _embedding_result() -> AttributionResult:
    # Rollout over a sentence encoder: [CLS] holds most of the mass, [PAD] none; target/prediction are
    # embedding dimensions, the "labels" are the data's pair levels: none of them is a class.
    tokens = (("[CLS]", "a", "child", "reads", "[SEP]", "[PAD]", "[PAD]"),)
    scores = np.array([[0.65, 0.02, 0.08, 0.04, 0.11, 0.0, 0.0]], np.float32)
    return AttributionResult(
        method="attention-rollout", model="minilm", modality="text",
        inputs=np.array([[101, 1037, 2775, 9631, 102, 0, 0]]), attributions=scores,
        targets=np.array([248]), predictions=np.array([248]), labels=np.array([2]),
        class_names=tuple(f"dim {i}" for i in range(384)),
        options={"target": "predicted", "mode": "rollout", "head_fusion": "mean", "discard_ratio": 0.0,
                 "pool": "mean"},
        provenance=_prov(), tokens=tokens,
    )


def test_an_embedding_model_is_not_captioned_as_a_classifier():
    page = render_audit_page(_audit(_embedding_result(), task="embedding"))
    section = page[page.index('id="explanations"'):page.index('id="provenance"')]
    assert "pred dim" not in section and "label dim" not in section and "explaining dim" not in section
    assert 'class="warn"' not in section  # no row is marked as a wrong prediction
    assert "embedding model: no class, prediction or label" in section


def test_special_tokens_leave_the_shading_scale_and_padding_is_hidden():
    view = html_report._explanation_view(_embedding_result(), (), task="embedding")
    cells = view["text"][0]["cells"]
    assert [c["token"] for c in cells] == ["[CLS]", "a", "child", "reads", "[SEP]"]  # no [PAD]
    assert [c["special"] for c in cells] == [True, False, False, False, True]
    alphas = {c["token"]: float(re.search(r"rgba\([^)]*, ([\d.]+)\)", c["style"]).group(1))
              for c in cells if not c["special"]}
    # scaled to the largest word (child, 0.08), not to [CLS] (0.65): child is full colour
    assert alphas == {"a": pytest.approx(0.02 / 0.08, abs=0.005), "child": 1.0,
                      "reads": pytest.approx(0.04 / 0.08, abs=0.005)}
    # a classifier's text row still shows prediction and label
    classifier = html_report._explanation_view(_embedding_result(), (), task="classification")
    assert classifier["text"][0]["pred"] == "dim 248" and classifier["text"][0]["wrong"]


# --- RGB inputs ----------------------------------------------------------------------------------------


def _red_square_result(method: str = "integrated-gradients", signed: bool = True) -> AttributionResult:
    image = np.zeros((1, 3, 16, 16), np.float32)
    image[0, 0, 4:12, 4:12] = 1.0  # a red square on black, as in the shapes VQA scenes
    rng = np.random.default_rng(0)
    attr = rng.normal(size=(1, 3, 16, 16)).astype(np.float32)
    attr = attr if signed else np.abs(attr)
    return AttributionResult(
        method=method, model="vqa", modality="image", inputs=image, attributions=attr,
        targets=np.array([1]), predictions=np.array([1]), labels=np.array([0]),
        class_names=("blue", "red"), options={"target": "predicted", "steps": 16},
        provenance=_prov(), probabilities=np.array([0.875]),
    )


def test_rgb_inputs_are_drawn_in_colour_beside_the_overlay():
    drawn = images.attribution_tiles(_red_square_result(), scale=4)
    assert drawn.colour and len(drawn.inputs) == len(drawn.tiles) == 1
    plain = np.asarray(Image.open(io.BytesIO(drawn.inputs[0])).convert("RGB")).astype(int)
    assert plain.shape == (64, 64, 3)
    assert tuple(plain[32, 32]) == (255, 0, 0) and tuple(plain[2, 2]) == (0, 0, 0)
    # the page shows both images of each sample, the plain one first
    view = html_report._explanation_view(_red_square_result(), ())
    tile = view["image"]["tiles"][0]
    assert tuple(_png(tile.input_uri)[32, 32]) == (255, 0, 0)
    assert tile.input_alt == "sample 0 as given (colour)"


def test_grey_inputs_stay_grey():
    result = dataclasses.replace(_red_square_result(), inputs=np.linspace(-1, 1, 256, dtype=np.float32)
                                 .reshape(1, 1, 16, 16), attributions=np.ones((1, 1, 16, 16), np.float32))
    drawn = images.attribution_tiles(result, scale=1)
    plain = np.asarray(Image.open(io.BytesIO(drawn.inputs[0])).convert("RGB")).astype(int)
    assert not drawn.colour and (plain[..., 0] == plain[..., 1]).all() and (plain[..., 1] == plain[..., 2]).all()
    assert plain.min() == 0 and plain.max() == 255  # stretched to the sample's own range


def test_tiles_caption_the_predicted_class_with_its_probability_and_state_a_shared_scale():
    page = render_audit_page(_audit(_red_square_result(), modality="image"))
    figure = re.search(r'<figure class="tile pair">(.*?)</figure>', page, re.S).group(1)
    assert len(re.findall(r"<img ", figure)) == 2
    assert "pred red (p = 0.88) · label blue" in figure
    assert "One shared colour scale for all 1 tiles" in page


# --- signed and absolute maps --------------------------------------------------------------------------


def test_an_absolute_map_is_not_captioned_signed():
    tabular = AttributionResult(
        method="saliency", model="adult-mlp", modality="tabular",
        inputs=np.ones((2, 3), np.float32), attributions=np.array([[0.1, 0.3, 0.2], [0.0, 0.5, 0.4]], np.float32),
        targets=np.array([0, 1]), predictions=np.array([0, 1]), labels=np.array([0, 1]),
        class_names=("<=50K", ">50K"), options={"target": "predicted", "abs": True}, provenance=_prov(),
        column_names=("age", "sex", "hours"), column_attributions=np.array([[0.1, 0.3, 0.2], [0.0, 0.5, 0.4]]),
    )
    page = render_audit_page(_audit(tabular, modality="tabular"))
    assert "Signed attributions" not in page and "signed attributions" not in page
    assert "absolute values |attribution| (saliency with abs=True)" in page
    signed = dataclasses.replace(tabular, method="integrated-gradients", options={"target": "predicted"},
                                 attributions=tabular.attributions - 0.25,
                                 column_attributions=tabular.column_attributions - 0.25)
    assert "Signed attributions of each row" in render_audit_page(_audit(signed, modality="tabular"))
    assert html_report.sign_convention(_red_square_result("grad-cam", signed=False))["what"].startswith(
        "positive evidence only")


@pytest.mark.parametrize("method", ["saliency", "smoothgrad", "integrated-gradients", "input-x-gradient",
                                    "occlusion"])
def test_each_explainers_caption_matches_the_sign_of_its_map(adult_mlp, adult_test, method):
    assert method in list_explainers(handle=adult_mlp)
    options = {"steps": 8} if method == "integrated-gradients" else {}
    if method == "smoothgrad":
        options = {"nt_samples": 4}
    result = create_explainer(method, adult_mlp, **options).explain(adult_test.head(16))
    negative = bool((result.attributions < 0).any())
    convention = html_report.sign_convention(result)
    assert convention["signed"] == negative
    if method in ("saliency", "smoothgrad"):  # captum's Saliency and NoiseTunnel take |gradient| by default
        assert not negative and convention["what"].startswith("absolute values")
    else:
        assert negative and convention["what"].startswith("signed")


def test_probabilities_are_the_models_and_change_no_prediction(lenet, digits_test):
    data = digits_test.head(6)
    result = create_explainer("saliency", lenet).explain(data)
    with torch.no_grad():
        probs = torch.softmax(lenet.predict(data.x).double(), 1).numpy()
    assert np.array_equal(result.predictions, lenet.predict_targets(data.x).numpy())
    np.testing.assert_allclose(result.probabilities, probs[np.arange(6), result.predictions], rtol=1e-9)
    assert set(result.metrics()) == set()  # saliency gates nothing; the field adds no gate metric


# --- readable ------------------------------------------------------------------------------------------


def test_options_are_a_key_value_list_not_a_python_dict():
    result = dataclasses.replace(_red_square_result(), options={"target": "predicted", "steps": 32,
                                                                "internal_batch_size": None, "abs": False})
    page = render_audit_page(_audit(result, modality="image"))
    assert "{&#39;" not in page and "{'" not in page
    assert "<dt>steps</dt><dd>32</dd>" in page
    assert "<dt>internal batch size</dt><dd>default</dd>" in page and "<dt>abs</dt><dd>no</dd>" in page


def _fairness_result() -> FairnessResult:
    table = GroupTable(
        feature="sex", groups=("Female", "Male"),
        by_group={"selection_rate": {"Female": 0.1, "Male": 0.3}, "count": {"Female": 40.0, "Male": 60.0}},
        overall={"selection_rate": 0.22, "count": 100.0},
        disparities={"demographic_parity_difference": 0.2, "equalized_odds_difference": 0.15},
    )
    return FairnessResult(probe="group-metrics", model="m", dataset="d:test",
                          metric_names=("selection_rate", "count"), tables=(table,), provenance=_prov())


def test_the_first_use_of_each_term_links_to_its_glossary_entry():
    page = render_audit_page(_audit(_fairness_result(), _red_square_result(), modality="tabular"))
    anchors = set(re.findall(r'<dt id="(term-[a-z-]+)">', page))
    assert anchors == {t.anchor for t in GLOSSARY}
    links = re.findall(r'<a class="term" href="#(term-[a-z-]+)">([^<]+)</a>', page)
    assert len(links) == len({a for a, _ in links}), "only the first use of a term is linked"
    linked = dict(links)
    assert linked["term-demographic-parity"].lower() == "demographic parity"
    assert linked["term-equalized-odds"].lower() == "equalized odds"
    assert linked["term-selection-rate"].lower() == "selection rate"
    # the first use in reading order is the linked one
    first = page.lower().index("selection rate", page.index("<main>"))
    assert page.lower().index('href="#term-selection-rate">', page.index("<main>")) < first + 60
    index = render_index([_audit(_fairness_result(), modality="tabular")])
    assert 'id="glossary"' in index


def test_link_terms_leaves_code_links_headings_and_the_glossary_alone():
    html = ('<main><h3>MPRT</h3><p><code>flip_rate</code> <a href="#x">flip rate</a> the flip rate, '
            'the flip rate</p><th>infidelity</th><h2 id="glossary">Glossary</h2><p>infidelity</p></main>')
    out = link_terms(html)
    assert out.count('href="#term-flip-rate"') == 1
    assert "the <a class=\"term\" href=\"#term-flip-rate\">flip rate</a>, the flip rate" in out
    assert "<h3>MPRT</h3>" in out and "<code>flip_rate</code>" in out
    assert 'term-mprt' not in out
    # a row header is text like any other; the glossary's own entries are never linked
    assert out.count('href="#term-infidelity"') == 1 and '<p>infidelity</p>' in out
    assert re.sub(r'<a class="term" href="#[^"]+">([^<]+)</a>', r"\1", out) == html


def test_mitigation_table_has_an_accuracy_vs_disparity_plot():
    strategies = ("original", "threshold-optimizer:demographic_parity", "exponentiated-gradient:equalized_odds")
    table = GroupTable(
        feature="sex", groups=strategies,
        by_group={"accuracy": dict(zip(strategies, (0.85, 0.80, 0.83), strict=True)),
                  "selection_rate": dict(zip(strategies, (0.2, 0.21, 0.19), strict=True)),
                  "demographic_parity_difference": dict(zip(strategies, (0.18, 0.02, 0.08), strict=True)),
                  "equalized_odds_difference": dict(zip(strategies, (0.10, 0.09, 0.03), strict=True))},
        overall={"accuracy": 0.85}, disparities={}, kind="strategy",
    )
    chart = html_report.tradeoff_chart(table)
    svg = str(chart["svg"])
    circles = re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="4" fill="[^"]+"><title>([^<]+)</title>', svg)
    assert len(circles) == 6
    by_label = {label.split(":")[0] + ":" + label.split(":")[1] if label.count(":") > 1 else label.split(":")[0]:
                (float(x), float(y)) for x, y, label in circles}
    original = next(v for k, v in by_label.items() if k.startswith("original, demographic"))
    threshold = next(v for k, v in by_label.items() if k.startswith("threshold-optimizer:demographic_parity, "
                                                                       "demographic"))
    assert threshold[0] < original[0]  # smaller disparity: further left
    assert threshold[1] > original[1]  # lower accuracy: lower on the page (larger y)
    assert "accuracy (share correct)" in svg and "disparity between sex groups" in svg
    assert chart["legend"] == list(enumerate(strategies, start=1))
    assert html_report.tradeoff_chart(_fairness_result().tables[0]) is None


def test_charts_have_ticked_titled_axes():
    svg = str(charts.line_chart([3.0, 2.0, 5.5, 7.0], x_label="optimisation step", y_label="objective",
                                label="objective per step"))
    assert '<text class="axis-x"' in svg and ">optimisation step</text>" in svg and ">objective</text>" in svg
    ticks = [float(t) for t in re.findall(r'text-anchor="end" [^>]*>([-\d.e]+)</text>', svg)]
    assert min(ticks) <= 2.0 and max(ticks) >= 7.0
    assert charts.nice_ticks(0.0, 1.0) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert "&lt;b&gt;" in str(charts.line_chart([1.0], x_label="<b>", y_label="y", label="l"))
