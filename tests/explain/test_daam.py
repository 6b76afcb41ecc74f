from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from xai.cli import app
from xai.errors import DataError, NotApplicableError
from xai.explain.daam import CrossAttentionMaps, daam, ink_lift
from xai.zoo import load_model
from xai.zoo.diffusion import CrossAttention

from ..conftest import ZOO

_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def _hooks(module: torch.nn.Module) -> int:
    return sum(len(getattr(m, d)) for m in module.modules() for d in _HOOK_DICTS)


@pytest.fixture(scope="module")
def ldm():
    return load_model("latent-diffusion", zoo_dir=ZOO)


def _tiny_attention() -> CrossAttention:
    """One head, dim 2, identity projections: logits are q . k / sqrt(2)."""
    attn = CrossAttention(2, 2, heads=1)
    with torch.no_grad():
        for lin in (attn.to_q, attn.to_k, attn.to_v):
            lin.weight.copy_(torch.eye(2))
    return attn


def test_tiny_cross_attention_map_equals_the_hand_computed_softmax():
    attn = _tiny_attention()
    # a 2x2 latent (4 queries, row-major) and 2 tokens with keys (1, 0) and (0, 1)
    queries = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]]])  # (1, 4, 2)
    keys = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (1, 2, 2)
    with CrossAttentionMaps(attn, ["softmax"], size=(2, 2)) as rec:
        attn(queries, keys)
    maps = rec.maps()  # (1, 2, 2, 2)
    e = math.exp(2 / math.sqrt(2))
    token0 = torch.tensor([[e / (e + 1), 1 / (1 + e)], [0.5, 0.5]])  # softmax of (q.k0, q.k1) / sqrt(2)
    torch.testing.assert_close(maps[0, 0], token0)
    torch.testing.assert_close(maps[0, 1], 1 - token0)
    assert _hooks(attn) == 0


def test_maps_average_calls_and_heads_keep_the_first_rows_and_upsample_convexly():
    attn = _tiny_attention()
    keys = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]).repeat(2, 1, 1)
    q1 = torch.tensor([[[2.0, 0.0]] * 4, [[0.0, 9.0]] * 4])  # row 1 (ignored) attends elsewhere
    q2 = torch.zeros(2, 4, 2)  # uniform attention: 0.5 for each token
    with CrossAttentionMaps(attn, ["softmax"], size=(4, 4), rows=1) as rec:
        attn(q1, keys)
        attn(q2, keys)
    maps = rec.maps()
    assert maps.shape == (1, 2, 4, 4) and rec.calls == 2 and rec.count == 2
    e = math.exp(2 / math.sqrt(2))
    # constant maps stay constant under bilinear upsampling; the mean over the two calls
    torch.testing.assert_close(maps[0, 0], torch.full((4, 4), (e / (e + 1) + 0.5) / 2))
    torch.testing.assert_close(maps.sum(1), torch.ones(1, 4, 4))


def test_hooks_are_removed_after_an_error():
    attn = _tiny_attention()
    with pytest.raises(RuntimeError), CrossAttentionMaps(attn, ["softmax"], size=(2, 2)):
        assert _hooks(attn) == 1
        raise RuntimeError("boom")
    assert _hooks(attn) == 0
    with pytest.raises(DataError, match="no cross-attention module named nope"):
        CrossAttentionMaps(attn, ["nope"], size=(2, 2))


def test_ink_lift_by_hand():
    images = np.zeros((1, 1, 2, 2))
    images[0, 0, 0, 0] = 1.0  # one ink pixel of four
    maps = np.array([[[[0.7, 0.1], [0.1, 0.1]], [[0.3, 0.9], [0.9, 0.9]]]])  # (1, 2, 2, 2)
    lift = ink_lift(images, maps)
    np.testing.assert_allclose(lift, [[0.7 / 0.25, 0.3 / 0.75]])


def test_daam_on_the_zoo_model(ldm):
    module = ldm.module
    result = daam(ldm, 3, samples=2, sample_steps=4, seed=5)
    assert _hooks(module) == 0
    assert result.tokens == ("digit", "<3>") and result.steps == 4
    assert result.layers == module.cross_attention
    assert result.maps.shape == (2, 2, 32, 32) and result.images.shape == (2, 1, 32, 32)
    assert (result.maps >= 0).all()
    np.testing.assert_allclose(result.maps.sum(1), 1.0, atol=1e-5)  # tokens share every pixel
    # the hooks only watched: the images are the model's own seeded samples
    expected = module.sample(2, torch.Generator().manual_seed(5), torch.tensor([3, 3]), sample_steps=4)
    np.testing.assert_array_equal(result.images, expected.numpy())
    metrics = result.metrics()
    assert metrics["daam.digit.share"] + metrics["daam.3.share"] == pytest.approx(1.0, abs=1e-5)


def test_daam_refuses_models_without_cross_attention(lenet):
    with pytest.raises(NotApplicableError, match="daam does not apply to lenet"):
        daam(lenet, 3)


def test_daam_refuses_a_bad_class(ldm):
    with pytest.raises(DataError, match="class must be an index 0..9"):
        daam(ldm, 10)


def test_cli_writes_json_and_a_self_contained_page(tmp_path):
    runner = CliRunner()
    out = runner.invoke(app, ["daam", "latent-diffusion", "--class", "7", "--samples", "2", "--steps", "3",
                              "--json", "-o", str(tmp_path), "--zoo-dir", str(ZOO)])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["tokens"] == ["digit", "<7>"] and doc["steps"] == 3
    assert set(doc["metrics"]) >= {"daam.digit.share", "daam.7.share", "daam.7.ink_lift"}
    page = (tmp_path / "daam-latent-diffusion-class7.html").read_text()
    saved = json.loads((tmp_path / "daam-latent-diffusion-class7.json").read_text())  # the page's audit JSON
    assert saved["daam"][0]["tokens"] == doc["tokens"] and saved["metrics"] == doc["metrics"]
    assert page.count("data:image/png;base64,") >= 2 * 3 + 2 + 1
    assert 'src="http' not in page and 'class="verdict-box' in page and 'id="provenance"' in page
    assert 'href="daam-latent-diffusion-class7.html"' in (tmp_path / "index.html").read_text()
    bad = runner.invoke(app, ["daam", "lenet", "--zoo-dir", str(ZOO)])
    assert bad.exit_code == 2 and "daam does not apply to lenet" in bad.output
