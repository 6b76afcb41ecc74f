"""Registry-driven smoke tests: every zoo entry x every explainer (timm/captum style)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xai.datasets import load_dataset
from xai.errors import NotApplicableError
from xai.explain import EXPLAINERS, create_explainer, list_explainers
from xai.zoo import get_entry, list_models, load_model

from ..conftest import ZOO

_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


@pytest.fixture(scope="module", params=list_models())
def entry_and_data(request):
    handle = load_model(request.param, zoo_dir=ZOO)
    data = load_dataset(get_entry(request.param).dataset, "test").head(3)
    return handle, data


def _hooks(module: torch.nn.Module) -> dict[str, int]:
    return {f"{name}.{d}": len(getattr(m, d)) for name, m in module.named_modules()
            for d in _HOOK_DICTS if len(getattr(m, d))}


@pytest.mark.parametrize("method", EXPLAINERS.names())
def test_every_entry_x_every_applicable_explainer(entry_and_data, method):
    handle, data = entry_and_data
    applicable = method in list_explainers(handle=handle)
    reason = EXPLAINERS.get(method).why_not(handle)
    assert (reason is None) == applicable
    if not applicable:
        with pytest.raises(NotApplicableError, match=f"{method} does not apply to {handle.name}"):
            create_explainer(method, handle)
        return
    module = handle.module
    before = {k: v.clone() for k, v in module.state_dict().items()}
    modes = [m.training for m in module.modules()]
    result = create_explainer(method, handle).explain(data, batch_size=2)
    assert result.attributions.shape == tuple(data.x.shape)
    assert np.isfinite(result.attributions).all()
    assert np.abs(result.attributions).sum() > 0  # something was attributed
    assert _hooks(module) == {}  # every hook released
    assert [m.training for m in module.modules()] == modes
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert all(p.grad is None for p in module.parameters())


def test_the_new_methods_are_registered():
    assert {"smoothgrad", "gradient-shap", "deeplift", "occlusion", "grad-cam",
            "guided-grad-cam"} <= set(EXPLAINERS.names())
