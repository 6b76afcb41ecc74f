"""Feature inversion, Gram matrices, style reconstruction / transfer: numbers recomputed by hand."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from xai._provenance import sha256_state_dict
from xai.cli import app
from xai.errors import DataError, UnknownNameError
from xai.explain.inversion import (
    gram_matrix,
    invert,
    invert_layers,
    load_image,
    style_reconstruction,
    style_transfer,
)

from ..conftest import ZOO
from ._hooks import hooked_output, no_hooks

runner = CliRunner()


@pytest.fixture(scope="module")
def conv1_inversion(lenet):
    return invert(lenet, "conv1", image=3, steps=200, seed=0)


def test_conv1_inversion_reaches_relative_error_below_0_1_recomputed_with_a_plain_hook(lenet, conv1_inversion):
    r = conv1_inversion
    x = torch.from_numpy(r.reconstruction)
    x0 = torch.from_numpy(r.target)
    phi, phi0 = hooked_output(lenet.module, lenet.module.conv1, x), hooked_output(lenet.module, lenet.module.conv1, x0)
    expected = float((phi - phi0).norm() / phi0.norm())
    assert r.relative_error == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert expected < 0.1  # the done-criterion
    start_err = float((hooked_output(lenet.module, lenet.module.conv1, torch.from_numpy(r.start_image)) - phi0).norm()
                      / phi0.norm())
    assert r.error_trace[0] == pytest.approx(start_err, rel=1e-4)
    assert r.metrics() == {"invert.conv1.relative_error": r.relative_error}
    # the target is test sample 3 of the digits, the reconstruction stays in its range
    from xai.datasets import load_dataset

    assert np.array_equal(r.target, load_dataset("digits", "test").x[3:4].numpy())
    assert r.reconstruction.min() >= 0.0 and r.reconstruction.max() <= 1.0
    assert len(r.trace) == 200 and np.isfinite(r.trace).all()


def test_model_untouched_and_hooks_removed(lenet):
    before = sha256_state_dict(lenet.module)
    lenet.module.train()
    try:
        invert(lenet, "conv2", steps=3)
        style_reconstruction(lenet, ["conv1"], steps=3)
        style_transfer(lenet, "conv2", ["conv1"], content=0, style=1, steps=3)
        assert lenet.module.training and all(m.training for m in lenet.module.modules())
    finally:
        lenet.module.eval()
    assert sha256_state_dict(lenet.module) == before
    assert no_hooks(lenet.module)
    assert all(p.grad is None for p in lenet.module.parameters())


def test_gram_matrix_equals_a_hand_computation():
    # F = [[1, 2], [3, 4]] for channel 0 and [[0, 1], [1, 0]] for channel 1 (P = 4 positions)
    fmap = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [1.0, 0.0]]]])  # (1, 2, 2, 2)
    g = gram_matrix(fmap)
    # G00 = (1+4+9+16)/4, G01 = (0+2+3+0)/4, G11 = (0+1+1+0)/4
    assert torch.allclose(g, torch.tensor([[[7.5, 1.25], [1.25, 0.5]]]))
    rng = np.random.default_rng(0)
    f = rng.normal(size=(3, 5, 7)).astype(np.float32)  # (B, C, P)
    ref = np.einsum("bcp,bdp->bcd", f, f) / 7
    assert np.allclose(gram_matrix(torch.from_numpy(f.reshape(3, 5, 7, 1))).numpy(), ref, atol=1e-5)


def test_style_loss_decreases_and_gram_errors_recomputed(lenet):
    r = style_reconstruction(lenet, ["conv1", "conv2"], image=5, steps=60, seed=1)
    assert r.style_loss < 0.1 * r.style_loss_start
    assert r.trace[-1] < r.trace[0]
    x, s = torch.from_numpy(r.reconstruction), torch.from_numpy(r.style_image)
    for name in ("conv1", "conv2"):
        layer = lenet.module.get_submodule(name)
        gx, gs = gram_matrix(hooked_output(lenet.module, layer, x)), gram_matrix(hooked_output(lenet.module, layer, s))
        assert r.layer_errors[name] == pytest.approx(float((gx - gs).norm() / gs.norm()), rel=1e-3, abs=1e-6)
    assert r.metrics()["style.style_loss"] == pytest.approx(sum(e * e for e in r.layer_errors.values()), rel=1e-3)


def test_style_transfer_reports_content_and_style_losses(lenet):
    r = style_transfer(lenet, "conv2", ["conv1", "conv2"], content=0, style=7, steps=60, seed=0)
    assert r.content_loss_start < 1e-3  # starts at the content image
    assert r.style_loss < r.style_loss_start
    x, c = torch.from_numpy(r.reconstruction), torch.from_numpy(r.target)
    phi, phic = hooked_output(lenet.module, lenet.module.conv2, x), hooked_output(lenet.module, lenet.module.conv2, c)
    assert r.content_loss == pytest.approx(float(((phi - phic) ** 2).sum() / (phic ** 2).sum()), rel=1e-3)
    assert {"transfer.content_loss", "transfer.style_loss", "transfer.conv1.gram_error"} <= set(r.metrics())


def test_unknown_layer_lists_the_valid_ones(lenet):
    with pytest.raises(UnknownNameError, match="conv1"):
        invert(lenet, "conv9", steps=1)


def test_image_file_is_read_resized_and_scaled(tmp_path):
    pixels = np.zeros((10, 20), dtype=np.uint8)
    pixels[:, 10:] = 255
    Image.fromarray(pixels, "L").save(tmp_path / "half.png")
    x = load_image(tmp_path / "half.png", (1, 4, 8), lo=-1.0, hi=1.0)
    assert x.shape == (1, 1, 4, 8)
    assert x[0, 0, :, 0].tolist() == [-1.0] * 4 and x[0, 0, :, -1].tolist() == [1.0] * 4
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(DataError, match="cannot read"):
        load_image(tmp_path / "bad.png", (1, 4, 8))


def test_cli_gallery_json_and_page(tmp_path):
    result = runner.invoke(app, ["invert", "lenet", "--all-layers", "--steps", "5", "--sample", "2", "--json",
                                 "-o", str(tmp_path), "--zoo-dir", str(ZOO)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["layers"] == ["conv1", "conv2", "fc1"]
    assert set(doc["metrics"]) == {f"invert.{k}.relative_error" for k in doc["layers"]}
    page = (tmp_path / "invert-lenet-gallery.html").read_text()
    assert "data:image/png;base64," in page and not re.search(r"src=\"(https?:)?//", page)  # loads nothing
    assert (tmp_path / "invert-lenet-gallery-00-conv1-reconstruction.png").is_file()
    assert json.loads((tmp_path / "invert-lenet-gallery.json").read_text())["metrics"] == doc["metrics"]


def test_cli_style_transfer_from_files_escapes_names(tmp_path):
    name = tmp_path / "<i>st&yle.png"
    Image.fromarray((np.arange(64 * 64) % 256).astype(np.uint8).reshape(64, 64), "L").save(name)
    result = runner.invoke(app, ["invert", "lenet", "-l", "conv2", "--style", str(name), "--steps", "3",
                                 "-o", str(tmp_path), "--zoo-dir", str(ZOO)])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "invert-lenet-transfer.conv2.html").read_text()
    assert "&lt;i&gt;st&amp;yle.png" in page and "<i>st" not in page


@pytest.mark.parametrize(("args", "message"), [
    (["-l", "conv9"], "conv1"),
    (["-l", "conv1", "--image", "missing.png"], "does not exist"),
    (["-l", "conv1", "--sample", "99999"], "out of range"),
    ([], "--layer"),
])
def test_cli_bad_input_exits_2(args, message):
    result = runner.invoke(app, ["invert", "lenet", "--steps", "1", *args, "--zoo-dir", str(ZOO)])
    assert result.exit_code == 2
    assert message in result.output


def _image_entries() -> list[str]:
    from xai.zoo import get_entry, list_models

    return [n for n in list_models() if get_entry(n).modality == "image"]


@pytest.mark.parametrize("name", _image_entries())
def test_every_image_zoo_entry_inverts_each_named_layer(name):
    from xai.zoo import load_model

    handle = load_model(name, zoo_dir=ZOO)
    gallery = invert_layers(handle, image=0, steps=2)
    assert gallery.layers == handle.layers
    for r in gallery.results:
        assert r.reconstruction.shape == (1, *handle.input_shape) and np.isfinite(r.reconstruction).all()
        assert np.isfinite(r.relative_error) and r.error_trace[-1] >= 0
    assert no_hooks(handle.module)
