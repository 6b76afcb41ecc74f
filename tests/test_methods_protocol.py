"""Every registered method of every kind follows the one Method protocol (xai/_method.py)."""

from __future__ import annotations

import json
from typing import get_args

import pytest

from xai._method import Capabilities, Kind, Method, Options
from xai.audit.spec import METHOD_SECTIONS, parse_spec
from xai.errors import DataError
from xai.explain._index import DEFAULT_METHOD, METHODS, method_registry

KINDS = [k for k in get_args(Kind) if k != "bias"]  # the embedding tests are not Methods yet
ALL = [(kind, name) for kind in KINDS for name in method_registry(kind).names()]


def test_every_kind_but_bias_has_a_registry_with_methods():
    assert set(METHODS) | {"probe"} == set(KINDS)
    for kind in KINDS:
        assert len(method_registry(kind)) > 0, kind
    assert {kind for kind, _ in ALL} == set(KINDS)


@pytest.mark.parametrize(("kind", "name"), ALL, ids=[f"{k}:{n}" for k, n in ALL])
def test_registered_method_follows_the_protocol(kind, name):
    cls = method_registry(kind).get(name)
    assert isinstance(cls, type) and issubclass(cls, Method)
    assert cls.kind == kind and cls.name == name
    assert isinstance(cls.capabilities, Capabilities)
    assert isinstance(cls.Options, type) and issubclass(cls.Options, Options)
    assert cls.Options.model_config.get("extra") == "forbid" and cls.Options.model_config.get("frozen")
    described = cls.describe()
    assert described["name"] == name and described["kind"] == kind and described["summary"]
    assert set(described["options"]) == set(cls.Options.model_fields)
    json.dumps(described)  # JSON-ready (``xai methods --json``)
    required = [f for f, info in cls.Options.model_fields.items() if info.is_required()]
    expected = f"option {required[0]}: Field required" if required else "unknown option 'no_such_option'"
    with pytest.raises(DataError, match=rf"^{name}: {expected}"):  # one line naming the method and the option
        cls.parse_options({"no_such_option": 1})


@pytest.mark.parametrize(("kind", "name"), [(k, n) for k, n in ALL if k not in ("explain", "probe")],
                         ids=[f"{k}:{n}" for k, n in ALL if k not in ("explain", "probe")])
def test_run_returns_a_result(kind, name):
    import dataclasses
    import sys
    from typing import get_type_hints

    cls = method_registry(kind).get(name)
    returned = get_type_hints(cls.run, vars(sys.modules[cls.__module__]))["return"]
    assert callable(returned.to_dict) and callable(returned.metrics), returned
    assert "provenance" in {f.name for f in dataclasses.fields(returned)}, returned


@pytest.mark.parametrize(("kind", "defaults"), [
    ("dream", {"steps": 128, "top_k": 8, "lr": 0.05, "objective": "channel"}),  # dream()'s own defaults
    ("invert", {"steps": 300, "lr": 0.05, "tv": 0.02, "sample": 0}),  # invert()'s own defaults
    ("sanity", {"samples": 16, "steps": 20, "target": "predicted", "mprt_steps": 8}),
])
def test_spec_sections_take_their_defaults_from_the_options(kind, defaults):
    key = {"dream": 'layer = "conv2"', "invert": 'layer = "conv1"', "sanity": 'method = "saliency"'}[kind]
    spec = parse_spec(f'title = "t"\n[model]\nname = "lenet"\n[[{kind}]]\n{key}\n')
    (entry,) = getattr(spec, kind)
    cls = METHOD_SECTIONS[kind].method_class()
    assert cls is method_registry(kind).get(DEFAULT_METHOD[kind])
    assert isinstance(entry.options, cls.Options)
    assert {k: getattr(entry.options, k) for k in defaults} == defaults
    assert entry.options == cls.parse_options({key.split(" = ")[0]: key.split(" = ")[1].strip('"')})


def test_function_defaults_match_the_options():
    import inspect

    from xai.explain.dream import Dream, dream
    from xai.explain.inversion import Invert, invert
    from xai.explain.projection import Projection, project

    for cls, function, renamed in ((Dream, dream, {}), (Invert, invert, {"sample": None}),
                                   (Projection, project, {})):
        parameters = inspect.signature(function).parameters
        for field, info in cls.Options.model_fields.items():
            if field in renamed or field not in parameters or parameters[field].default is inspect.Parameter.empty:
                continue
            default = parameters[field].default
            assert info.default == (tuple(default) if isinstance(default, list) else default), (cls.name, field)


#: Kinds a spec reaches: ``[[explain]]`` and ``[[probe]]`` entries, and the method sections.
SPEC_KINDS = {"explain": "explain", "probe": "probe", **{section: cls.KIND for section, cls in METHOD_SECTIONS.items()}}


def _resolve(ref):
    import importlib

    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@pytest.mark.parametrize(("kind", "name"), ALL, ids=[f"{k}:{n}" for k, n in ALL])
def test_every_method_reaches_a_result_with_renderers_and_a_spec_section(kind, name):
    import dataclasses

    from xai._results import RESULT_SECTIONS, section_of, type_name
    from xai.report._renderers import HTML_RENDERERS

    cls = method_registry(kind).get(name)
    result_type = _resolve(cls.result_type)
    assert type_name(result_type) == cls.result_type
    assert callable(result_type.to_dict) and callable(result_type.metrics)  # JSON and the gate namespace
    assert "provenance" in {f.name for f in dataclasses.fields(result_type)}
    assert kind in SPEC_KINDS.values(), f"no spec section reaches {kind}"
    section = section_of(result_type)
    assert callable(_resolve(HTML_RENDERERS[section.key])), section.key
    assert set(HTML_RENDERERS) == {s.key for s in RESULT_SECTIONS}


def test_the_page_draws_each_section_with_the_renderer_of_its_result_type(monkeypatch):
    from markupsafe import Markup

    from tests.audit._factory import attribution, audit, table
    from xai.report import _renderers
    from xai.report.html import render_audit_page

    seen = []

    def fake(results, page):
        seen.append(tuple(type(r).__name__ for r in results))
        return Markup("<p id='drawn'>drawn &amp; escaped</p>")

    monkeypatch.setitem(_renderers.HTML_RENDERERS, "fairness", "tests.test_methods_protocol:_FAKE")
    globals()["_FAKE"] = fake
    result = audit(table("sex", eo=0.1), delta=attribution(None).convergence_delta)
    page = render_audit_page(result)
    assert seen == [("FairnessResult",)]
    assert "<p id='drawn'>drawn &amp; escaped</p>" in page
    assert 'href="#fairness"' in page and 'href="#sanity"' not in page  # empty sections are left out


def test_project_tokens_and_daam_sections_run_in_an_audit_and_equal_their_functions():
    """[[project]], [[tokens]] and [[daam]] reach their methods; numbers equal the functions called directly."""
    from xai.audit.runner import run_audit, sample_rows
    from xai.datasets import load_dataset
    from xai.explain.daam import daam
    from xai.explain.projection import project
    from xai.explain.tokens import token_relevance
    from xai.report.html import render_audit_page
    from xai.zoo import load_model

    only = 'explain = []\nprobe = []\n'  # no default explainers or probes: just the section under test
    lenet = run_audit(parse_spec(f'title = "maps"\n{only}[model]\nname = "lenet"\n[data]\nsamples = 120\n'
                                 '[[project]]\nlayer = "fc1"\nsamples = 60\n', "p.toml"), slug="p")
    handle = load_model("lenet")
    data = sample_rows(load_dataset("digits", "test"), 120, 0)
    direct = project(handle, data, layer="fc1", samples=60, seed=0)
    metrics = lenet.metrics()
    assert metrics["project.fc1.trustworthiness"] == pytest.approx(direct.trust, abs=1e-9)
    assert metrics["project.fc1.separation.class"] == pytest.approx(direct.separation["class"], abs=1e-9)
    page = render_audit_page(lenet)
    assert 'href="#projections"' in page and "<svg" in page and 'href="#explanations"' not in page  # none ran

    text = run_audit(parse_spec(f'title = "tokens"\n{only}[model]\nname = "minilm"\n[[tokens]]\n'
                                'texts = ["A man plays the guitar."]\n', "t.toml"), slug="t")
    (relevance,) = text.section("tokens")
    expected = token_relevance(load_model("minilm"), ["A man plays the guitar."])
    assert relevance.tokens == expected.tokens
    for got, want in zip(relevance.relevance, expected.relevance, strict=True):
        assert list(got) == pytest.approx(list(want), abs=1e-6)
    assert 'id="tokens"' in render_audit_page(text)

    diffusion = run_audit(parse_spec(f'title = "daam"\n{only}[model]\nname = "latent-diffusion"\n[data]\nsamples = 20\n'
                                     '[[daam]]\nclass_index = 3\nsamples = 2\nsteps = 4\n', "d.toml"), slug="d")
    (maps,) = diffusion.section("daam")
    expected_maps = daam(load_model("latent-diffusion"), class_index=3, samples=2, sample_steps=4, seed=0)
    assert maps.maps == pytest.approx(expected_maps.maps, abs=1e-6)
    assert {k for k in diffusion.metrics() if k.startswith("daam.")} == set(expected_maps.metrics())
    assert 'id="daam"' in render_audit_page(diffusion)
