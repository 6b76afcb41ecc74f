"""GAN training diagnostics: the recipe's recorded numbers by hand, the saturation flag, the method and its page."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from xai.audit.spec import parse_spec
from xai.datasets import load_dataset
from xai.errors import DataError
from xai.explain.training import SERIES, GanTraining, read_history, saturated_epochs
from xai.zoo import load_model
from xai.zoo.generative import DCGAN, HISTORY_FIELDS, GanStepStats, epoch_history, gan_step, gradient_norm

from ..conftest import ZOO


def _optimisers(model: DCGAN) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    return (torch.optim.Adam(model.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999)),
            torch.optim.Adam(model.generator.parameters(), lr=2e-4, betas=(0.5, 0.999)))


def test_recorded_step_equals_clip_grad_norm_and_a_hand_norm_on_the_same_step():
    torch.manual_seed(0)
    model = DCGAN()
    twin = copy.deepcopy(model)
    xb = load_dataset("digits", "train").x[:64]
    z = torch.randn(64, model.noise, generator=torch.Generator().manual_seed(1))
    model.train(), twin.train()
    opts, (opt_d, opt_g) = _optimisers(model), _optimisers(twin)
    for step in range(2):  # the second step starts from trained weights and Adam state
        stats = gan_step(model, xb, z, *opts)
        # The same step by hand on the twin (the recipe's code before it recorded anything).
        fake = twin.generator(z)
        d_real, d_fake = twin.discriminator(xb), twin.discriminator(fake.detach())
        d_loss = (F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, 0.9))
                  + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        hand_d = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in twin.discriminator.parameters()))
        clip_d = float(torch.nn.utils.clip_grad_norm_(twin.discriminator.parameters(), max_norm=math.inf))
        opt_d.step()
        g_out = twin.discriminator(fake)
        g_loss = F.binary_cross_entropy_with_logits(g_out, torch.ones_like(g_out))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        clip_g = float(torch.nn.utils.clip_grad_norm_(twin.generator.parameters(), max_norm=math.inf))
        opt_g.step()
        assert stats.d_grad_norm == pytest.approx(clip_d, rel=1e-5) and stats.d_grad_norm > 0, step
        assert stats.d_grad_norm == pytest.approx(hand_d, rel=1e-5), step
        assert stats.g_grad_norm == pytest.approx(clip_g, rel=1e-5) and stats.g_grad_norm > 0, step
        assert stats.d_real == pytest.approx(float(torch.sigmoid(d_real.detach()).mean()), abs=1e-6), step
        assert stats.d_fake == pytest.approx(float(torch.sigmoid(d_fake.detach()).mean()), abs=1e-6), step
        assert stats.d_fake_g == pytest.approx(float(torch.sigmoid(g_out.detach()).mean()), abs=1e-6), step
        assert stats.d_loss == pytest.approx(float(d_loss.detach()), abs=1e-6), step
        assert stats.g_loss == pytest.approx(float(g_loss.detach()), abs=1e-6), step
    # Recording reads tensors only: the recorded and the hand-written steps train the same weights.
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_gradient_norm_skips_parameters_without_a_gradient():
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    a.grad = torch.tensor([3.0, 0.0, 4.0])
    assert gradient_norm([a, b]) == pytest.approx(5.0)
    assert gradient_norm([b]) == 0.0


def test_epoch_history_is_the_mean_of_each_epochs_steps():
    steps = [GanStepStats(*(float(k + 10 * i) for i in range(len(HISTORY_FIELDS)))) for k in range(6)]
    history = epoch_history(steps, 3)
    assert history["epoch"] == [1, 2] and history["steps_per_epoch"] == 3
    assert history["d_loss"] == [1.0, 4.0]  # means of 0, 1, 2 and of 3, 4, 5
    assert history["d_fake_g"] == [61.0, 64.0]
    with pytest.raises(ValueError, match="whole epochs"):
        epoch_history(steps, 4)


def _history(d_fake_g: list[float], g_norm: list[float]) -> dict[str, object]:
    n = len(d_fake_g)
    history: dict[str, object] = {name: [0.5] * n for name in SERIES}
    history.update(d_fake_g=d_fake_g, d_fake=d_fake_g, g_grad_norm=g_norm, steps_per_epoch=22,
                   epoch=list(range(1, n + 1)))
    return history


def test_saturation_flag_on_a_synthetic_history():
    # 40 healthy epochs, then the discriminator wins: D(G(z)) -> 0.001 and the generator's gradient -> 0.01.
    healthy_fake, healthy_norm = [0.3] * 40, [1.0 + 0.1 * math.sin(k) for k in range(40)]
    collapse_fake, collapse_norm = [0.3 * 0.5 ** k for k in range(1, 21)], [0.5 ** k for k in range(1, 21)]
    fake, norm = healthy_fake + collapse_fake, healthy_norm + collapse_norm
    peak = max(norm)
    expected = tuple(e + 1 for e in range(60) if fake[e] < 0.05 and norm[e] < 0.1 * peak)
    flagged = saturated_epochs(fake, norm, d_fake_below=0.05, vanishing_ratio=0.1)
    assert flagged == expected and flagged[0] == 44 and flagged[-1] == 60  # 0.3/2^3 < .05 at 43, norm 1/8 > .1
    # Either condition alone is not saturation.
    assert saturated_epochs([0.001] * 10, [1.0] * 10, d_fake_below=0.05, vanishing_ratio=0.1) == ()
    assert saturated_epochs([0.5] * 5 + [0.4] * 5, [1.0] * 5 + [0.01] * 5, d_fake_below=0.05,
                            vanishing_ratio=0.1) == ()
    # Through the method: the card's history in, the flag, the metrics and a note out.
    handle = dataclasses.replace(load_model("dcgan", zoo_dir=ZOO),
                                 card={"seed": 0, "details": {"training_history": _history(fake, norm)}})
    result = GanTraining.run(handle, None, {})
    assert result.saturated == expected
    metrics = result.metrics()
    assert metrics["saturated"] == 1.0 and metrics["saturated_epochs"] == len(expected)
    assert metrics["min_d_fake"] == pytest.approx(min(fake)) and metrics["final_g_grad_norm"] == norm[-1]
    assert metrics["g_grad_norm_min_ratio"] == pytest.approx(min(norm) / peak)
    assert "saturated in 17 of 60 epochs" in result.notes[0]
    json.dumps(result.to_dict())


def test_committed_dcgan_card_carries_the_history_and_does_not_saturate():
    handle = load_model("dcgan", zoo_dir=ZOO)
    history = read_history(handle.card)
    card = handle.card
    assert card is not None and len(history["d_real"]) == card["recipe"]["epochs"]
    assert history["steps_per_epoch"] == len(load_dataset("digits", "train")) // card["recipe"]["batch_size"]
    result = GanTraining.run(handle, None, {})
    assert result.saturated == () and result.metrics()["saturated"] == 0.0
    assert result.series["g_grad_norm"] == tuple(history["g_grad_norm"])
    # The recipe's D outputs are probabilities and its gradient norms positive.
    assert all(0 < v < 1 for name in ("d_real", "d_fake", "d_fake_g") for v in history[name])
    assert all(v > 0 for name in ("d_grad_norm", "g_grad_norm") for v in history[name])


def test_method_needs_a_card_with_a_history_and_refuses_a_malformed_one():
    handle = load_model("dcgan", zoo_dir=ZOO)
    bare = dataclasses.replace(handle, card={"seed": 0})
    assert "records none" in (GanTraining.why_not(bare) or "")
    assert GanTraining.why_not(load_model("lenet", zoo_dir=ZOO)) is not None  # not a generator
    for bad, message in (({"d_real": "x"}, "'d_real' is not a list"),
                         ({"d_real": [0.5, float("nan")]}, "'d_real' is not a list"),
                         ({"d_real": [0.5]}, "different lengths")):
        history = {**_history([0.3, 0.3], [1.0, 1.0]), **bad}
        with pytest.raises(DataError, match=message):
            GanTraining.run(dataclasses.replace(handle, card={"details": {"training_history": history}}), None, {})
    with pytest.raises(DataError, match="d_fake_below"):
        GanTraining.parse_options({"d_fake_below": 2})


def test_page_section_draws_both_charts_with_axes_and_the_flag():
    from xai.report.training import render_section

    handle = dataclasses.replace(load_model("dcgan", zoo_dir=ZOO), card={"details": {"training_history": _history(
        [0.3, 0.3, 0.01, 0.01], [1.0, 1.0, 0.05, 0.02])}})
    flagged = GanTraining.run(handle, None, {})
    page = SimpleNamespace(untrusted={}, palette=("#000",))
    html = str(render_section([flagged], page))  # type: ignore[arg-type]
    assert html.count("<svg") == 2 and html.count('class="axis-x"') == 2 and ">epoch<" in html
    assert "mean D output (probability real)" in html and "gradient norm (L2, all parameters)" in html
    assert "Discriminator saturated</b> in 2 of 4 epochs" in html and 'fill="#D55E00"' in html
    healthy = GanTraining.run(load_model("dcgan", zoo_dir=ZOO), None, {})
    assert "No saturation" in str(render_section([healthy], page))  # type: ignore[arg-type]


def test_spec_section_and_audit_metrics():
    from xai.audit.runner import run_audit

    spec = parse_spec('title = "t"\nexplain = []\nprobe = []\n[model]\nname = "dcgan"\n[data]\nname = "digits"\n'
                      'samples = 8\n[[training]]\nvanishing_ratio = 0.2\n')
    (entry,) = spec.training
    assert entry.options.vanishing_ratio == 0.2 and entry.options.d_fake_below == 0.05
    audit = run_audit(spec, slug="t", zoo_dir=ZOO)
    metrics = audit.metrics()
    assert metrics["training.saturated_epochs"] == 0.0
    history = read_history(load_model("dcgan", zoo_dir=ZOO).card)
    assert metrics["training.final_d_real"] == history["d_real"][-1]
    assert np.isclose(metrics["training.final_g_grad_norm"], history["g_grad_norm"][-1])
