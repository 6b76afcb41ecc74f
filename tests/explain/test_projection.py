from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from typer.testing import CliRunner

from xai.cli import app
from xai.errors import DataError, UnknownNameError
from xai.explain.projection import project


def _lenet_fc1(module, x):
    """LeNet's fc1 output computed by hand, without hooks."""
    h = module.pool1(torch.relu(module.conv1(x)))
    h = module.pool2(torch.relu(module.conv2(h)))
    return module.fc1(h.flatten(1))


def test_pca_view_equals_scikit_learn_on_hand_computed_activations(lenet, digits_test):
    view = project(lenet, digits_test, layer="fc1", method="pca", samples=120, seed=4)
    rows = np.sort(np.random.default_rng(4).permutation(len(digits_test))[:120])
    with torch.no_grad():
        acts = _lenet_fc1(lenet.module, digits_test.x[rows]).numpy()
    reference = PCA(n_components=2, random_state=4).fit(acts)
    np.testing.assert_allclose(view.coords, reference.transform(acts), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(view.explained_variance, reference.explained_variance_ratio_, rtol=1e-5)
    labels = digits_test.y.numpy()[rows]
    assert view.separation["class"] == pytest.approx(silhouette_score(acts, labels), abs=1e-4)
    # a trained classifier's penultimate features separate digits, not stroke weight
    assert view.separation["class"] > 0.15 > abs(view.separation["ink"])
    assert not lenet.module.fc1._forward_hooks  # the capture hook is gone


def test_tsne_view_is_seeded_and_keeps_neighbourhoods(lenet, digits_test):
    first = project(lenet, digits_test, layer="conv2", method="tsne", samples=80, seed=1)
    second = project(lenet, digits_test, layer="conv2", method="tsne", samples=80, seed=1)
    np.testing.assert_array_equal(first.coords, second.coords)
    assert first.trust > 0.85 and first.explained_variance == () and first.features == 16 * 10 * 10


def test_bad_requests_are_clear(lenet, digits_test):
    with pytest.raises(UnknownNameError, match="layer"):
        project(lenet, digits_test, layer="fc9")
    with pytest.raises(UnknownNameError, match="projection method"):
        project(lenet, digits_test, method="umap")
    with pytest.raises(UnknownNameError, match="grouping column"):
        project(lenet, digits_test, color_by=["sex"])
    with pytest.raises(DataError, match="at least 5 samples"):
        project(lenet, digits_test.head(3))


def test_cli_writes_page_and_json(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["project", "lenet", "-l", "fc1", "-n", "60", "-o", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert np.array(document["coords"]).shape == (60, 2)
    page = (tmp_path / "project-lenet-fc1-pca.html").read_text()
    assert "<svg" in page and "silhouette" in page and "Coloured by <b>ink</b>" in page
    saved = json.loads((tmp_path / "project-lenet-fc1-pca.json").read_text())  # the page's audit JSON
    assert saved["projections"][0]["layer"] == "fc1" and saved["projections"][0]["separation"] == document["separation"]
    assert 'class="verdict-box' in page and 'id="provenance"' in page  # an audit page, listed in the index
    assert 'href="project-lenet-fc1-pca.html"' in (tmp_path / "index.html").read_text()
    bad = runner.invoke(app, ["project", "lenet", "-l", "nope"])
    assert bad.exit_code == 2 and "unknown layer" in bad.output.lower()


def test_cli_rejects_an_unknown_split_before_loading_anything(tmp_path):
    # --split is checked at the edge: some loaders would read any other split as "test"
    result = CliRunner().invoke(app, ["project", "lenet", "--split", "validation", "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "--split must be train, test or all, got 'validation'" in result.output
    assert list(tmp_path.iterdir()) == []
