"""ESPCN super-resolution and the fast style-transfer net: data, adapters and metrics by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from scipy.ndimage import gaussian_filter

from xai.datasets import load_dataset
from xai.datasets._photos import TEST_PHOTOS, TRAIN_PHOTOS, bicubic_upsample, busiest_cell
from xai.explain.inversion import gram_matrix
from xai.zoo.vision import ESPCN, StyleNet, blurred_baseline, cell_mean, channel_mean, psnr_gain, style_losses


@pytest.fixture(scope="module")
def sr_test():
    return load_dataset("sr-patches", "test")


def test_sr_patches_are_split_by_photo_and_downsampled_from_their_hr(sr_test):
    assert set(sr_test.groups["photo"]) == set(TEST_PHOTOS)
    assert not set(TRAIN_PHOTOS) & set(TEST_PHOTOS)
    assert sr_test.x.shape == (512, 1, 16, 16) and sr_test.target.shape == (512, 1, 32, 32)
    # the LR patch is the x2 reduction of the HR one (up to the photo-level context of the filter)
    box = F.avg_pool2d(sr_test.target, 2)
    assert float((box - sr_test.x)[..., 2:-2, 2:-2].abs().mean()) < 0.02
    assert torch.equal(sr_test.head(5).target, sr_test.target[:5])  # subsets keep the targets
    assert torch.equal(load_dataset("sr-patches", "test").x, sr_test.x)  # seeded


def test_psnr_gain_equals_a_numpy_computation(sr_test):
    data = sr_test.head(32)
    model = ESPCN()
    with torch.no_grad():
        model.conv3.weight.zero_(), model.conv3.bias.fill_(0.01)  # bicubic + 0.01 everywhere
    got = psnr_gain(model, data, torch.device("cpu"))
    hr = data.target.numpy()[..., 8:-8, 8:-8]
    bic = bicubic_upsample(data.x).numpy()[..., 8:-8, 8:-8]
    up = F.interpolate(data.x, scale_factor=2, mode="bicubic", align_corners=False).numpy()[..., 8:-8, 8:-8]
    mine = np.clip(up + 0.01, 0, 1)
    expected = 10 * np.log10(np.mean((bic - hr) ** 2) / np.mean((mine - hr) ** 2))
    assert got["psnr_gain_db"] == pytest.approx(expected, abs=1e-4)


def test_cell_mean_and_busiest_cell_by_hand():
    out = torch.zeros(2, 1, 32, 32)
    out[0, 0, 8:16, 24:32] = (torch.arange(8)[:, None] + torch.arange(8)).remainder(2).float()  # row 1, col 3: index 7
    out[1, 0, 0:8, 0:8] = torch.rand(8, 8, generator=torch.Generator().manual_seed(0))
    assert cell_mean(out, torch.tensor([7, 0])).tolist() == pytest.approx([0.5, float(out[1, 0, :8, :8].mean())])
    assert busiest_cell(out).tolist() == [7, 0]


def test_blurred_baseline_equals_scipy():
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    ours = blurred_baseline(x, sigma=2.0).numpy()
    ref = np.stack([gaussian_filter(x[i, 0].numpy(), 2.0, mode="mirror", truncate=3.0) for i in range(2)])
    np.testing.assert_allclose(ours[:, 0], ref, atol=1e-5)


def test_style_losses_by_hand():
    from xai.zoo.vision import _style_targets

    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    content, style = style_losses(x, x)
    assert torch.allclose(content, torch.zeros(2))
    phi, grams = _style_targets()
    feats = phi(x)
    expected = sum(((gram_matrix(feats[k]) - grams[k]) ** 2).flatten(1).sum(1) / (grams[k] ** 2).sum()
                   for k in ("relu1", "relu2", "relu3"))
    torch.testing.assert_close(style, expected)


def test_channel_mean_adapter_and_style_net_shape():
    with torch.no_grad():
        out = StyleNet()(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 3, 64, 64) and 0 <= float(out.min()) and float(out.max()) <= 1
    assert channel_mean(out, torch.tensor([2, 0])).tolist() == pytest.approx(
        [float(out[0, 2].mean()), float(out[1, 0].mean())])


def test_lam_style_integrated_gradients_from_the_blurred_baseline_is_complete(sr_test):
    from captum.attr import IntegratedGradients

    torch.manual_seed(0)
    model = ESPCN().eval()
    x = sr_test.x[:3]
    target = sr_test.y[:3]
    baseline = blurred_baseline(x)
    ig = IntegratedGradients(lambda inp, t: cell_mean(model(inp), t))  # captum expands t with the steps
    attr, delta = ig.attribute(x, baselines=baseline, additional_forward_args=(target,), n_steps=64,
                               return_convergence_delta=True)
    with torch.no_grad():
        gap = cell_mean(model(x), target) - cell_mean(model(baseline), target)
    torch.testing.assert_close(attr.flatten(1).sum(1), gap, atol=1e-4, rtol=1e-3)
    assert float(delta.abs().max()) < 1e-4
