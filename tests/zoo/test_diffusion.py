from __future__ import annotations

import pytest
import torch

from xai.errors import DataError
from xai.zoo import create_model, load_model
from xai.zoo.diffusion import SCORE_TIMESTEPS, TOKENS, LatentDiffusion, prompt_tokens

from ..conftest import ZOO


@pytest.fixture(scope="module")
def ldm() -> LatentDiffusion:
    return load_model("latent-diffusion", zoo_dir=ZOO).module.eval()


def test_prompts_are_two_tokens_and_the_null_prompt_keeps_digit():
    ids = prompt_tokens(torch.tensor([3, -1, 0]))
    assert [[TOKENS[i] for i in row] for row in ids.tolist()] == [
        ["digit", "<3>"], ["digit", "<null>"], ["digit", "<0>"]]


def test_alphas_cumprod_is_the_product_of_one_minus_the_linear_betas():
    model = LatentDiffusion(steps=4, beta_start=0.1, beta_end=0.4)
    expected = torch.tensor([0.9, 0.9 * 0.8, 0.9 * 0.8 * 0.7, 0.9 * 0.8 * 0.7 * 0.6])
    torch.testing.assert_close(model.alphas_cumprod, expected)


class _ConstantNoise(torch.nn.Module):
    """A denoiser that predicts noise ``eps`` for each of its rows (both halves of a guided batch)."""

    def __init__(self, eps: torch.Tensor) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, z, t, context):
        return self.eps.repeat(len(z) // len(self.eps), 1, 1, 1)


def test_ddim_with_an_exact_noise_prediction_recovers_the_clean_latent():
    # eta = 0: if z_T = sqrt(abar_T) x0 + sqrt(1 - abar_T) eps and the denoiser predicts eps,
    # every DDIM step predicts x0 again, so sampling ends at x0 whatever the number of steps.
    torch.manual_seed(0)
    model = create_model("latent-diffusion").eval()
    n, seed = 3, 7
    z_t = torch.randn(n, *model.latent_shape, generator=torch.Generator().manual_seed(seed))
    x0 = torch.randn(1, *model.latent_shape)
    abar = model.alphas_cumprod[model.num_timesteps - 1]
    model.denoiser = _ConstantNoise((z_t - abar.sqrt() * x0) / (1 - abar).sqrt())
    for steps in (1, 4, 10):
        images = model.sample(n, torch.Generator().manual_seed(seed), torch.tensor([1, 2, 3]),
                              sample_steps=steps, guidance=2.0)
        expected = model.decode(x0.expand(n, -1, -1, -1)).clamp(0, 1)
        torch.testing.assert_close(images, expected, rtol=1e-4, atol=1e-4)


def test_classifier_free_guidance_extrapolates_from_unconditional_to_conditional(ldm):
    z = torch.randn(2, *ldm.latent_shape, generator=torch.Generator().manual_seed(1))
    classes = torch.tensor([4, 9])
    t = torch.full((2,), 500)
    with torch.no_grad():
        eps_c = ldm.denoiser(z, t, ldm.context(classes))
        eps_u = ldm.denoiser(z, t, ldm.context(torch.tensor([-1, -1])))
        torch.testing.assert_close(ldm.guided_eps(z, 500, classes, 3.0), eps_u + 3.0 * (eps_c - eps_u),
                                   rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ldm.guided_eps(z, 500, classes, 1.0), eps_c, rtol=1e-4, atol=1e-5)


def test_forward_scores_are_minus_the_denoising_error_per_class(ldm, digits_test):
    data = digits_test.head(2)
    with torch.no_grad():
        scores = ldm(data.x)
        z0 = ldm.encode(data.x)
        for c in (0, 7):
            errs = []
            for s, t in enumerate(SCORE_TIMESTEPS):
                noise = ldm.score_noise[s].expand(2, -1, -1, -1)
                tt = torch.full((2,), t)
                eps = ldm.denoiser(ldm.q_sample(z0, tt, noise), tt, ldm.context(torch.full((2,), c)))
                errs.append((eps - noise).pow(2).mean((1, 2, 3)))
            torch.testing.assert_close(scores[:, c], -torch.stack(errs).mean(0), rtol=1e-4, atol=1e-6)


def test_sampling_is_seeded_and_in_range(ldm):
    first = ldm.sample(4, torch.Generator().manual_seed(3), sample_steps=5)
    second = ldm.sample(4, torch.Generator().manual_seed(3), sample_steps=5)
    other = ldm.sample(4, torch.Generator().manual_seed(4), sample_steps=5)
    assert first.shape == (4, 1, 32, 32) and first.device.type == "cpu"
    assert torch.equal(first, second) and not torch.equal(first, other)
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    with pytest.raises(DataError, match="classes must be 2 indices"):
        ldm.sample(2, torch.Generator(), torch.tensor([1, 10]))


def test_the_judge_reads_the_prompted_class_in_most_samples(ldm, lenet):
    classes = torch.arange(10).repeat(2)
    images = ldm.sample(len(classes), torch.Generator().manual_seed(11), classes)
    agreement = float((lenet.predict(images).argmax(1) == classes).float().mean())
    assert agreement >= 0.7  # the card's headline (100 samples, seed 0) is held to 0.80


def test_declared_cross_attention_modules_give_row_stochastic_token_maps(ldm):
    modules = dict(ldm.named_modules())
    seen = []
    hooks = [modules[n].register_forward_hook(lambda _m, _i, out: seen.append(out))
             for n in ldm.cross_attention]
    try:
        with torch.no_grad():
            ldm.denoiser(torch.zeros(3, *ldm.latent_shape), torch.full((3,), 10), ldm.context(torch.arange(3)))
    finally:
        for h in hooks:
            h.remove()
    assert [tuple(a.shape) for a in seen] == [(3, 4, 64, 2), (3, 4, 16, 2), (3, 4, 64, 2)]  # 8x8, 4x4, 8x8
    for a in seen:
        torch.testing.assert_close(a.sum(-1), torch.ones(a.shape[:-1]))
