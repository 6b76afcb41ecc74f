from __future__ import annotations

import pytest

from xai._registry import Registry
from xai.errors import UnknownNameError, XaiError
from xai.explain import EXPLAINERS, create_explainer, list_explainers
from xai.fairness import PROBES, create_probe, list_probes
from xai.zoo import MODELS, create_model, list_models


def test_register_get_and_list_round_trip():
    registry: Registry[int] = Registry("thing")
    registry.register("b-two")(2)
    registry.register("a-one")(1)
    assert registry.get("a-one") == 1
    assert registry.names() == ["a-one", "b-two"]
    assert registry.names("b*") == ["b-two"]
    assert "a-one" in registry and len(registry) == 2


def test_duplicate_name_is_refused():
    registry: Registry[int] = Registry("thing")
    registry.register("x")(1)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("x")(2)


def test_unknown_name_lists_known_ones():
    with pytest.raises(UnknownNameError) as info:
        MODELS.get("resnet-9000")
    assert isinstance(info.value, XaiError)
    assert "lenet" in str(info.value) and "adult-mlp" in str(info.value)


def test_model_registry_builds_every_entry():
    assert {"lenet", "adult-mlp"} <= set(list_models())
    for name in list_models():
        assert create_model(name) is not None


def test_explainers_and_probes_are_picked_from_the_registry(lenet, adult_mlp):
    without_attention = {n for n in EXPLAINERS.names()
                         if not EXPLAINERS.get(n).capabilities.needs_attention
                         and "image" in EXPLAINERS.get(n).capabilities.modalities}
    assert set(list_explainers(handle=lenet)) == without_attention
    assert "attention-rollout" in EXPLAINERS.names()
    assert "group-metrics" in list_probes(handle=adult_mlp)
    for name in list_explainers(handle=lenet):
        assert create_explainer(name, lenet).name == name
    assert create_probe("group-metrics", adult_mlp).name == "group-metrics"
    assert PROBES.names("group*") == ["group-metrics"]
