from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from xai._provenance import Provenance
from xai.audit import AuditResult, DataSummary, ModelSummary, default_specs, parse_spec, run_audit
from xai.explain import AttributionResult
from xai.fairness import FairnessResult, GroupTable
from xai.report import html as html_report
from xai.report.html import render_audit_page, render_index, write_report

HOSTILE = "<script>alert(1)</script>"
HOSTILE_IMG = "<img src=x onerror=alert(2)>"


def _prov() -> Provenance:
    return Provenance(model_sha256="m" * 64, data_sha256="d" * 64, seed=0, wall_seconds=0.1,
                      device="cpu")


def hostile_audit(slug: str = "hostile") -> AuditResult:
    rng = np.random.default_rng(0)
    attr = rng.normal(size=(3, 4)).astype(np.float32)
    explanation = AttributionResult(
        method="saliency", model=HOSTILE, modality="tabular",
        inputs=np.ones((3, 4), np.float32), attributions=attr,
        targets=np.array([0, 1, 0]), predictions=np.array([0, 1, 1]), labels=np.array([0, 1, 0]),
        class_names=(HOSTILE, HOSTILE_IMG), options={"target": "predicted", "abs": True},
        provenance=_prov(), feature_names=(HOSTILE, "b", "c", "d"),
        column_names=(HOSTILE, "b", "c", "d"), column_attributions=attr,
    )
    table = GroupTable(
        feature=HOSTILE,
        groups=(HOSTILE_IMG, "plain"),
        by_group={"accuracy": {HOSTILE_IMG: 0.5, "plain": 0.75},
                  "count": {HOSTILE_IMG: 2.0, "plain": 4.0}},
        overall={"accuracy": 0.6667, "count": 6.0},
        disparities={"accuracy_difference": 0.25},
    )
    fairness = FairnessResult(probe="group-metrics", model=HOSTILE, dataset="x:test",
                              metric_names=("accuracy", "count"), tables=(table,), provenance=_prov())
    return AuditResult(
        slug=slug, title=HOSTILE_IMG, spec_path=HOSTILE,
        model=ModelSummary(name=HOSTILE, source=HOSTILE, sha256="m" * 64,
                           task="classification", modality="tabular", params=10, card=None),
        data=DataSummary(name=HOSTILE, split="test", rows=6, sha256="d" * 64,
                         sensitive=(HOSTILE,)),
        performance={"accuracy": 0.6667}, results=(explanation, fairness),
        provenance=_prov(), notes=(HOSTILE,),
    )


EVERY_TABULAR_PROBE = parse_spec("""
title = "German credit, every tabular probe"
[model]
name = "german-mlp"
[data]
sensitive = ["sex", "age_group"]
[[explain]]
method = "integrated-gradients"
samples = 20
""")


@pytest.fixture(scope="module")
def default_audits():
    audits = [run_audit(spec, slug=slug) for slug, spec in default_specs()]
    return [*audits, run_audit(EVERY_TABULAR_PROBE, slug="german-all-probes")]


def test_hostile_strings_render_as_text():
    audit = hostile_audit()
    for page in (render_audit_page(audit), render_index([audit])):
        assert HOSTILE not in page and HOSTILE_IMG not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "onerror=alert(2)" not in page.replace("&lt;img src=x onerror=alert(2)&gt;", "")


def _external_references(page: str) -> list[str]:
    pattern = (r"""(?:src|srcset|poster|data)\s*=\s*["']?\s*(?:https?:)?//"""
               r"""|url\(\s*["']?\s*(?:https?:)?//|@import|<link\b|<script\b[^>]*\bsrc""")
    return re.findall(pattern, page, flags=re.IGNORECASE)


def test_pages_are_self_contained(default_audits):
    for audit in default_audits:
        page = render_audit_page(audit)
        assert _external_references(page) == []
        tags = re.findall(r"<img\b[^>]*>", page)
        images = re.findall(r'<img src="([^"]+)" alt="([^"]+)"', page)
        assert len(images) == len(tags), "every image has a src and alt text"
        assert all(src.startswith("data:image/png;base64,") for src, _ in images)
        if audit.model.modality == "image":
            assert len(images) >= 8
        assert "Content-Security-Policy" in page
    assert _external_references(render_index(default_audits)) == []


def _floats(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _floats(v)
    elif isinstance(value, list):
        for v in value:
            yield from _floats(v)
    elif isinstance(value, float):
        yield value


def test_json_holds_the_numbers_the_page_shows(default_audits, tmp_path):
    index = write_report(default_audits, tmp_path)
    assert index == tmp_path / "index.html"
    for audit in default_audits:
        page = (tmp_path / f"{audit.slug}.html").read_text()
        document = json.loads((tmp_path / f"{audit.slug}.json").read_text())
        shown = {float(x) for x in re.findall(r'<td class="num">(?:<b>)?(\d+\.\d{4})', page)}
        shown |= {float(x) for x in re.findall(r": <b>(\d+\.\d{4})</b>", page)}
        assert shown, "the page shows numbers"
        rounded = {round(v, 4) for v in _floats(document)}
        missing = {x for x in shown if round(x, 4) not in rounded}
        assert not missing, f"{audit.slug}: numbers on the page but not in the JSON: {missing}"
        assert document["headline"]["accuracy"] == pytest.approx(audit.performance["accuracy"])
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_failed_render_writes_nothing(tmp_path, monkeypatch):
    good, bad = hostile_audit("good"), hostile_audit("bad")

    def explode(audit):
        if audit.slug == "bad":
            raise RuntimeError("render failed")
        return "<html></html>"

    monkeypatch.setattr(html_report, "render_audit_page", explode)
    with pytest.raises(RuntimeError):
        write_report([good, bad], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_sequence_attributions_render_as_one_channel_tiles():
    rng = np.random.default_rng(1)
    result = AttributionResult(
        method="saliency", model="rnn", modality="sequence",
        inputs=rng.random((3, 8, 8)).astype(np.float32),
        attributions=rng.normal(size=(3, 8, 8)).astype(np.float32),
        targets=np.array([1, 2, 3]), predictions=np.array([1, 2, 4]), labels=np.array([1, 2, 3]),
        class_names=tuple("0123456789"), options={"target": "predicted"}, provenance=_prov(),
    )
    view = html_report._explanation_view(result, ())
    assert view["image"] is not None and len(view["image"]["tiles"]) == 3
    png = base64.b64decode(view["image"]["tiles"][0].uri.split(",", 1)[1])
    assert Image.open(io.BytesIO(png)).size == (128, 128)  # 8x8 upscaled to the tile size
    assert [t.wrong for t in view["image"]["tiles"]] == [False, False, True]


def test_intersection_heatmap_shows_the_intersection_table(default_audits):
    from xai.report.html import _heatmap_view

    adult = next(a for a in default_audits if a.slug == "adult-mlp")
    result = next(f for f in adult.fairness if f.probe == "group-metrics")
    view = _heatmap_view(result)
    assert view["metric"] == "selection_rate" and view["cols"] == result.tables[1].groups
    for row in view["rows"]:
        for col, cell in zip(view["cols"], row["cells"], strict=True):
            key = f"{row['label']} x {col}"
            assert cell["text"] == f"{result.intersection.by_group['selection_rate'][key]:.3f}"
            assert cell["count"] == int(result.intersection.by_group["count"][key])
            assert cell["style"].startswith("background: rgb(")
    page = render_audit_page(adult)
    assert 'class="heatmap"' in page and "sex × race" in page
