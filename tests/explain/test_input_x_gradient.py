"""input-x-gradient: captum's InputXGradient reached through the Method protocol."""

from __future__ import annotations

import numpy as np
from captum.attr import InputXGradient, Saliency

from xai.explain import EXPLAINERS, create_explainer, list_explainers


def test_equals_captum_and_the_input_times_the_signed_gradient(lenet, digits_test):
    data = digits_test.head(6)
    result = create_explainer("input-x-gradient", lenet).explain(data, target="label")
    x, target = data.x.float(), data.y
    theirs = InputXGradient(lenet.module).attribute(x, target=target)
    np.testing.assert_allclose(result.attributions, theirs.detach().numpy(), rtol=1e-5, atol=1e-7)
    gradient = Saliency(lenet.module).attribute(x, target=target, abs=False)  # by hand: x * d logit / d x
    np.testing.assert_allclose(result.attributions, (x * gradient).detach().numpy(), rtol=1e-5, atol=1e-7)


def test_registered_with_only_the_target_option(lenet, adult_mlp, digits_test):
    assert "input-x-gradient" in list_explainers(handle=lenet)
    assert "input-x-gradient" in list_explainers(handle=adult_mlp)  # tabular rows too
    method = EXPLAINERS.get("input-x-gradient")
    assert set(method.describe()["options"]) == {"target"}
    result = method.run(lenet, digits_test.head(2), {"target": "predicted"}, seed=0)
    assert result.method == "input-x-gradient" and result.attributions.shape == (2, 1, 32, 32)
