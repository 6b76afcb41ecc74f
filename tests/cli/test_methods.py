"""``xai methods``: generated from the registries, filtered by a model's capabilities."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from xai.cli import app
from xai.explain._index import EXPLAINERS
from xai.fairness._index import PROBES
from xai.methods import METHOD_REGISTRIES

runner = CliRunner()


def _json(*args: str) -> dict:
    result = runner.invoke(app, ["methods", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_lists_every_registered_method_of_every_kind_with_its_options():
    doc = _json()
    assert doc["model"] is None
    listed = {(m["kind"], m["name"]): m for m in doc["methods"]}
    expected = {("explain", n) for n in EXPLAINERS.names()} | {("probe", n) for n in PROBES.names()}
    assert expected <= set(listed) == {(k, n) for k, r in METHOD_REGISTRIES.items() for n in r.names()}
    assert {k for k, _ in listed} == {"explain", "probe", "sanity", "dream", "invert", "daam", "project", "tokens",
                                           "drift",
                                           "recurrent", "heads", "agents", "seq2seq", "llm", "training"}
    for (kind, name), row in listed.items():
        fields = METHOD_REGISTRIES[kind].get(name).Options.model_fields
        assert [o["name"] for o in row["options"]] == list(fields), name  # every option, in order
        for option in row["options"]:
            field = fields[option["name"]]
            # a required option shows no default; a default_factory shows the value it makes
            default = None if field.is_required() else field.get_default(call_default_factory=True)
            assert option["default"] == (list(default) if isinstance(default, tuple) else default), (name, option)
        assert set(row["capabilities"]) >= {"tasks", "modalities", "needs_layer", "needs_attention"}
        assert row["summary"]
    ig = {o["name"]: o for o in listed[("explain", "integrated-gradients")]["options"]}
    assert ig["steps"]["type"] == "integer" and ig["steps"]["default"] == 50
    assert ig["baseline"]["allowed"] == "zeros, mean, blurred"  # the Literal's values, from the schema


def test_model_lenet_excludes_attention_rollout_with_its_reason():
    doc = _json("--model", "lenet")
    assert doc["model"] == "lenet"
    rows = {m["name"]: m for m in doc["methods"]}
    assert rows["attention-rollout"]["applies"] is False
    assert rows["attention-rollout"]["why_not"] == "it needs attention modules; lenet has none"
    assert rows["saliency"]["applies"] is True and rows["saliency"]["why_not"] is None
    assert rows["group-metrics"]["applies"] is True


def test_terminal_lists_applicable_methods_and_the_others_with_reasons():
    result = runner.invoke(app, ["methods", "--model", "lenet", "--kind", "explain"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    applicable, _, others = result.stdout.partition("not applicable to lenet")
    assert "saliency" in applicable and "attention-rollout" not in applicable
    assert "attention-rollout" in others and "it needs attention modules; lenet has none" in others
    assert "group-metrics" not in result.stdout  # --kind explain
    assert "steps: integer = 50 (>= 2)" in applicable  # an option line of integrated-gradients


@pytest.mark.parametrize(("args", "message"), [(["--kind", "nope"], "unknown kind 'nope'"),
                                               (["--model", "no-such-model"], "no-such-model")])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = runner.invoke(app, ["methods", *args])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


def test_explain_and_fairness_help_name_the_methods():
    explain = runner.invoke(app, ["explain", "--help"], env={"COLUMNS": "300"}).stdout
    assert all(name in explain for name in EXPLAINERS.names())
    assert "see `xai explain --help`" not in explain
    fairness = runner.invoke(app, ["fairness", "--help"], env={"COLUMNS": "300"}).stdout
    assert all(name in fairness for name in PROBES.names())
