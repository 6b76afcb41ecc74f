"""Model cards with ethics (xai/zoo/_considerations.py, xai/zoo/considerations.toml, xai/report/model_card.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import REPO, ZOO
from xai._provenance import sha256_file
from xai.report.model_card import card_markdown, card_mct, render_html
from xai.zoo._considerations import CONSIDERATION_FIELDS, considerations, group_results, model_card
from xai.zoo._index import entry_info, list_models

TOML = REPO / "xai" / "zoo" / "considerations.toml"


@pytest.mark.parametrize("name", list_models())
def test_every_entry_has_every_consideration(name):
    c = considerations(name)
    assert set(c) == set(CONSIDERATION_FIELDS)
    for field in ("intended_use", "training_data", "evaluation_data"):
        assert isinstance(c[field], str) and len(c[field]) > 40, (name, field)
    for field in ("users", "out_of_scope", "limitations", "tradeoffs"):
        assert c[field] and all(isinstance(v, str) and v for v in c[field]), (name, field)
    assert c["ethical_considerations"]
    assert all(set(r) == {"risk", "mitigation"} and r["risk"] and r["mitigation"] for r in c["ethical_considerations"])


def test_every_layer_of_the_data_names_a_real_family_dataset_or_entry_and_known_fields():
    data = tomllib.loads(TOML.read_text(encoding="utf-8"))
    infos = [entry_info(n) for n in list_models()]
    assert set(data["family"]) <= {i.family for i in infos}
    assert set(data["dataset"]) <= {i.dataset for i in infos}
    assert set(data["entry"]) <= set(list_models())
    known = set(CONSIDERATION_FIELDS) | {"extra_limitations", "extra_out_of_scope"}
    layers = [data["default"], *data["family"].values(), *data["dataset"].values(), *data["entry"].values()]
    for layer in layers:
        assert set(layer) <= known, set(layer) - known


def test_layers_merge_family_then_dataset_then_entry():
    shortcut, control = considerations("lenet-shortcut"), considerations("lenet-marked")
    assert "deliberately flawed" in shortcut["intended_use"]  # the entry's own
    assert control["intended_use"].startswith("The clean control")
    assert "random column" in shortcut["evaluation_data"]  # from dataset.digits-shortcut
    compas = considerations("compas-mlp")
    assert any("pretrial" in use for use in compas["out_of_scope"])  # entry adds to ...
    assert any("bail" in use for use in compas["out_of_scope"])  # ... the tabular family's ...
    assert any("real person" in use for use in compas["out_of_scope"])  # ... and the default's
    assert any("Re-arrest" in item for item in compas["limitations"])


def test_the_card_adds_considerations_without_touching_card_json_or_the_weights(tmp_path):
    card_file = ZOO / "adult-mlp" / "card.json"
    before = card_file.read_bytes()
    card = model_card("adult-mlp", ZOO, audits_dir=REPO / "audits", baselines_dir=REPO / "reports" / "baselines")
    assert card_file.read_bytes() == before
    assert card["weights_sha256"] == sha256_file(ZOO / "adult-mlp" / "weights.safetensors")
    assert {k: v for k, v in card.items() if k not in ("considerations", "group_results")} == json.loads(before)


def test_group_results_are_the_audit_baselines_numbers():
    stored = json.loads((REPO / "reports" / "baselines" / "adult-mlp.json").read_text(encoding="utf-8"))
    baseline, baseline_intervals = stored["metrics"], stored["intervals"]
    rows = group_results("adult-mlp", audits_dir=REPO / "audits", baselines_dir=REPO / "reports" / "baselines")
    sex = next(r for r in rows if r["feature"] == "sex" and r["audit"] == "adult-mlp")
    assert sex["groups"]["Female"]["count"] == baseline["fairness.group-metrics.sex.count.Female"]
    assert sex["groups"]["Male"]["selection_rate"] == baseline["fairness.group-metrics.sex.selection_rate.Male"]
    dp = "demographic_parity_difference"
    assert sex["disparities"][dp] == baseline[f"fairness.group-metrics.sex.{dp}"]
    low, high = sex["intervals"]["accuracy.Female"]
    assert [low, high] == baseline_intervals["fairness.group-metrics.sex.accuracy.Female"]
    assert low <= sex["groups"]["Female"]["accuracy"] <= high
    assert group_results("lenet", audits_dir=REPO / "audits", baselines_dir=REPO / "nowhere") == []


def test_hostile_or_broken_baselines_are_left_out(tmp_path):
    (tmp_path / "audits").mkdir()
    (tmp_path / "base").mkdir()
    for slug in ("a", "b", "c"):
        (tmp_path / "audits" / f"{slug}.toml").write_text(f'title = "{slug}"\n[model]\nname = "adult-mlp"\n')
    (tmp_path / "audits" / "broken.toml").write_text("[model\n")
    (tmp_path / "base" / "a.json").write_text("{not json")
    (tmp_path / "base" / "b.json").write_text(json.dumps({"metrics": [1, 2]}))
    (tmp_path / "base" / "c.json").write_text(json.dumps({"metrics": {
        "fairness.group-metrics.sex.count.F": "<script>",
        "fairness.group-metrics.sex.count.M": True,
        "fairness.group-metrics.sex.accuracy.M": 0.5,
        "fairness.group-metrics.sex.accuracy_difference": 1e999,  # inf from JSON
    }}))
    rows = group_results("adult-mlp", audits_dir=tmp_path / "audits", baselines_dir=tmp_path / "base")
    assert rows == [{"audit": "c", "feature": "sex", "groups": {"M": {"accuracy": 0.5}}, "disparities": {},
                     "intervals": {}}]


# Model Card Toolkit's JSON schema v0.0.2 (model_card_toolkit/schema/v0.0.2/model_card.schema.json),
# restated by its field names: additionalProperties false everywhere, so a misspelt field fails.
def _obj(**props):
    return {"type": "object", "properties": props, "additionalProperties": False}


_TEXT = {"type": "string"}
_DESCRIBED = {"type": "array", "items": _obj(description=_TEXT)}
MCT_V002 = _obj(
    schema_version=_TEXT,
    model_details=_obj(name=_TEXT, overview=_TEXT, documentation=_TEXT,
                       owners={"type": "array", "items": _obj(name=_TEXT, contact=_TEXT)},
                       version=_obj(name=_TEXT, date=_TEXT, diff=_TEXT),
                       licenses={"type": "array", "items": _obj(identifier=_TEXT, custom_text=_TEXT)},
                       references={"type": "array", "items": _obj(reference=_TEXT)},
                       citations={"type": "array", "items": _obj(style=_TEXT, citation=_TEXT)}),
    model_parameters=_obj(model_architecture=_TEXT, input_format=_TEXT, output_format=_TEXT,
                          data={"type": "array", "items": _obj(
                              name=_TEXT, link=_TEXT, description=_TEXT, graphics={"type": "object"},
                              sensitive=_obj(sensitive_data={"type": "array", "items": _TEXT}))}),
    quantitative_analysis=_obj(performance_metrics={"type": "array", "items": _obj(
        type=_TEXT, value={"type": "number"}, slice=_TEXT)}, graphics={"type": "object"}),
    considerations=_obj(users=_DESCRIBED, use_cases=_DESCRIBED, limitations=_DESCRIBED, tradeoffs=_DESCRIBED,
                        ethical_considerations={"type": "array", "items": _obj(
                            name=_TEXT, mitigation_strategy=_TEXT)}),
)


@pytest.mark.parametrize("name", ["adult-mlp", "lenet-shortcut", "googlenews", "compas-mlp"])
def test_mct_export_follows_the_v0_0_2_field_names(name):
    card = model_card(name, ZOO, audits_dir=REPO / "audits", baselines_dir=REPO / "reports" / "baselines")
    mct = card_mct(card)
    jsonschema.validate(mct, MCT_V002)
    assert mct["schema_version"] == "0.0.2"
    c = mct["considerations"]
    assert c["ethical_considerations"] and all(r["name"] and r["mitigation_strategy"]
                                               for r in c["ethical_considerations"])
    assert any(item["description"].startswith("Out of scope: ") for item in c["limitations"])
    assert [d["description"].split(":")[0] for d in mct["model_parameters"]["data"]] == [
        "Training data", "Evaluation data"]


def test_mct_per_group_metrics_are_slices():
    card = model_card("adult-mlp", ZOO, audits_dir=REPO / "audits", baselines_dir=REPO / "reports" / "baselines")
    metrics = card_mct(card)["quantitative_analysis"]["performance_metrics"]
    female = {m["type"]: m["value"] for m in metrics if m["slice"] == "sex=Female"}
    assert female["count"] == 4913
    assert {m["slice"] for m in metrics} >= {"overall", "sex=Male", "race=Black", "sex"}


def test_markdown_and_html_escape_user_strings():
    card = {"name": "x|<b>", "description": "a\nb", "considerations": {
        "intended_use": "<script>alert(1)</script>", "users": ["u|v"], "out_of_scope": [], "limitations": [],
        "tradeoffs": [], "ethical_considerations": [{"risk": "<i>r</i>", "mitigation": "m"}],
        "training_data": "t", "evaluation_data": "e"},
        "metrics": {"accuracy": 0.5}, "group_results": [
            {"audit": "a", "feature": "f", "groups": {"g|1": {"count": 3.0}}, "disparities": {}, "intervals": {}}]}
    md = card_markdown(card)
    assert "<script>" not in md and "| g\\|1 | 3 |" in md and "# Model card: x\\|&lt;b&gt;" in md
    html = render_html(card)
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;i&gt;r&lt;/i&gt;" in html


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "xai", "zoo", "card", *args], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO), "XAI_ZOO_DIR": str(ZOO)})


def test_cli_card_formats():
    md = _cli("adult-mlp", "--format", "md")
    assert md.returncode == 0, md.stderr
    for heading in ("## Intended use", "## Out-of-scope uses", "## Limitations", "## Ethical considerations",
                    "## Training data", "## Evaluation data", "## Per-group results", "### sex (audit `adult-mlp`)"):
        assert heading in md.stdout
    full = json.loads(_cli("compas-mlp", "--format", "json").stdout)
    assert full["considerations"]["training_data"].startswith("ProPublica") and full["group_results"]
    stored = json.loads(_cli("compas-mlp", "--json").stdout)  # --json: card.json as it is
    assert stored == json.loads((ZOO / "compas-mlp" / "card.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in full.items() if k not in ("considerations", "group_results")} == stored
    jsonschema.validate(json.loads(_cli("lenet", "--format", "mct").stdout), MCT_V002)
    table = _cli("adult-mlp")
    assert table.returncode == 0 and "intended_use" in table.stdout and "ethical_considerations" in table.stdout
    bad = _cli("adult-mlp", "--format", "pdf")
    assert bad.returncode == 2 and "pdf" in bad.stderr and "Traceback" not in bad.stderr


def test_card_of_an_untrained_entry_is_one_line_and_exit_2(tmp_path):
    result = _cli("lenet", "--zoo-dir", str(tmp_path))
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_considerations_ship_with_the_package():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["xai"]
    assert any(Path("zoo/considerations.toml").match(p) for p in patterns)


def test_the_audit_page_card_section_carries_the_considerations():
    import dataclasses

    from tests.audit._factory import audit
    from xai.report.html import render_audit_page

    base = audit()
    card = json.loads((ZOO / "compas-mlp" / "card.json").read_text(encoding="utf-8"))
    page = render_audit_page(dataclasses.replace(base, model=dataclasses.replace(base.model, card=card)))
    for heading in ("Intended use", "Out-of-scope uses", "Limitations", "Ethical considerations",
                    "Training data", "Evaluation data"):
        assert f"<h3>{heading}</h3>" in page
    assert "pretrial risk assessment" in page
    unknown = dataclasses.replace(base.model, card={**card, "name": "<not-an-entry>"})
    assert "<h3>Intended use</h3>" not in render_audit_page(dataclasses.replace(base, model=unknown))
