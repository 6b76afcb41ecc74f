from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence
from typer.testing import CliRunner

from xai.cli import app
from xai.datasets import load_dataset
from xai.zoo import load_model
from xai.zoo.generative import DCGAN, VAE, Autoencoder, evaluate_vae, vae_terms

from ..conftest import ZOO

runner = CliRunner()


@pytest.fixture(scope="module")
def digits4():
    return load_dataset("digits", "test").head(4)


def test_vae_target_is_the_latent_means_kth_dimension(digits4):
    handle = load_model("vae", zoo_dir=ZOO)
    mu, _ = handle.module.encode(digits4.x)
    for k in (0, 7, 15):
        scores = handle.forward_target(digits4.x, torch.full((4,), k))
        torch.testing.assert_close(scores, mu[:, k], rtol=0, atol=0)
    assert handle.target_names[3] == "latent 3" and len(handle.target_names) == 16
    torch.testing.assert_close(handle.predict_targets(digits4.x), mu.abs().argmax(1))


def test_vae_elbo_terms_equal_torch_distributions(digits4):
    torch.manual_seed(0)
    model = VAE().eval()
    with torch.no_grad():
        model.log_sigma.fill_(-1.7)
        eps = torch.randn(4, model.latent)
        log_lik, kl, sse = vae_terms(model, digits4.x, eps)
        mu, logvar = model.encode(digits4.x)
        z = mu + torch.exp(0.5 * logvar) * eps
        mean = model.decode(z)
    sigma = torch.tensor(-1.7, dtype=torch.float64).exp()
    expected_lik = Normal(mean.double(), sigma).log_prob(digits4.x.double()).flatten(1).sum(1)
    expected_kl = kl_divergence(Normal(mu.double(), torch.exp(0.5 * logvar).double()),
                                Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(log_lik, expected_lik, rtol=1e-6, atol=0)  # squares summed from float32
    torch.testing.assert_close(kl, expected_kl, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(sse, ((digits4.x - mean) ** 2).flatten(1).double().sum(1))


def test_vae_evaluation_is_seeded_and_reports_per_pixel_and_per_image(digits4):
    model = load_model("vae", zoo_dir=ZOO).module
    first = evaluate_vae(model, digits4, torch.device("cpu"))
    assert first == evaluate_vae(model, digits4, torch.device("cpu"))
    assert first["elbo_per_image"] == pytest.approx(first["elbo_per_pixel"] * 32 * 32)


def test_autoencoder_forward_is_the_code_and_reconstruct_round_trips(digits4):
    handle = load_model("autoencoder", zoo_dir=ZOO)
    model = handle.module
    code = model(digits4.x)
    torch.testing.assert_close(code, model.encode(digits4.x))
    torch.testing.assert_close(model.reconstruct(digits4.x), model.decode(code))
    torch.testing.assert_close(handle.forward_target(digits4.x, torch.full((4,), 2)), code[:, 2])


def test_gan_target_is_the_discriminator_logit_and_sampling_is_seeded(digits4):
    handle = load_model("dcgan", zoo_dir=ZOO)
    model = handle.module
    assert isinstance(model, DCGAN) and handle.target_names == ("real",)
    torch.testing.assert_close(handle.forward_target(digits4.x, torch.zeros(4, dtype=torch.long)),
                               model.discriminator(digits4.x)[:, 0])
    with torch.no_grad():
        first = model.sample(3, torch.Generator().manual_seed(7))
    assert first.shape == (3, 1, 32, 32) and 0 <= float(first.min()) and float(first.max()) <= 1
    with torch.no_grad():
        again = model.sample(3, torch.Generator().manual_seed(7))
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not isinstance(model, VAE | Autoencoder)


@pytest.mark.parametrize(("name", "method", "extra"), [
    ("dcgan", "saliency", []),
    ("vae", "integrated-gradients", ["--target", "0", "--option", "steps=16"]),
])
def test_explain_generative_entries_from_the_cli(name, method, extra):
    result = runner.invoke(app, ["explain", name, "-m", method, "-n", "3", "--json", *extra])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    attributions = np.array(document["attributions"])
    assert attributions.shape == (3, 1, 32, 32)
    assert np.isfinite(attributions).all() and np.abs(attributions).sum() > 0
    if name == "vae":
        assert document["targets"] == [0, 0, 0] and document["class_names"][0] == "latent 0"
        # Integrated Gradients is complete: attributions add up to mu_0(x) - mu_0(0)
        model = load_model("vae", zoo_dir=ZOO).module
        inputs = torch.tensor(document["inputs"], dtype=torch.float32)
        with torch.no_grad():
            gap = (model(inputs)[:, 0] - model(torch.zeros_like(inputs))[:, 0]).numpy()
        np.testing.assert_allclose(attributions.reshape(3, -1).sum(1), gap, atol=0.05 * np.abs(gap).max() + 1e-3)
    else:
        assert document["class_names"] == ["real"] and document["label_names"][0] == "0"


def test_explain_dcgan_terminal_table_names_labels_and_target():
    result = runner.invoke(app, ["explain", "dcgan", "-m", "saliency", "-n", "2"])
    assert result.exit_code == 0, result.output
    assert "real" in result.stdout


def test_dcgan_saves_the_moving_average_of_its_generator(monkeypatch):
    from torch.optim.swa_utils import AveragedModel

    from xai.zoo import generative
    from xai.zoo._train import TrainContext

    iterates = []

    class Recording(AveragedModel):
        def update_parameters(self, model):
            iterates.append({k: v.detach().clone() for k, v in model.state_dict().items()})
            super().update_parameters(model)

    monkeypatch.setattr(generative, "AveragedModel", Recording)
    monkeypatch.setattr(generative, "evaluate_dcgan", lambda *args: {})
    monkeypatch.setitem(generative._GAN_RECIPE, "epochs", 1)
    decay = generative._GAN_RECIPE["ema_decay"]
    digits = load_dataset("digits", "train")
    ctx = TrainContext(train=digits.head(192), test=digits.head(8), seed=0, device=torch.device("cpu"))
    torch.manual_seed(0)
    model = DCGAN()
    generative._train_dcgan(model, ctx)
    assert len(iterates) == 3  # one update per full batch of 64
    expected = {k: v.clone() for k, v in iterates[0].items()}  # the average starts at the first iterate
    for step in iterates[1:]:
        for k, v in step.items():
            if v.is_floating_point():
                expected[k] = decay * expected[k] + (1 - decay) * v
    for k, v in model.generator.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v, expected[k], rtol=1e-6, atol=1e-7)
    assert not torch.equal(model.generator.conv3.weight, iterates[-1]["conv3.weight"])  # not the last iterate
