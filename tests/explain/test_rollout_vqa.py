"""Attention rollout on the single-stream VQA transformer: relevance over [CLS, patches, words] on the packed input."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from xai.cli import app
from xai.datasets import load_dataset
from xai.datasets._vqa import QUESTION_LENGTH, VOCAB, decode_plane
from xai.errors import NotApplicableError
from xai.explain import create_explainer, list_explainers
from xai.zoo import ModelHandle, load_model
from xai.zoo.multimodal import split_packed
from xai.zoo.vilt import VQATransformer

from ..conftest import ZOO
from ._hooks import no_hooks

runner = CliRunner()
PATCHES = 25  # 40x40 image, 8x8 patches


@pytest.fixture(scope="module")
def vilt():
    return load_model("vqa-transformer", zoo_dir=ZOO)


@pytest.fixture(scope="module")
def rows():
    return load_dataset("shapes-vqa", "test").head(6)


def _recorded(module: torch.nn.Module, names: tuple[str, ...], x: torch.Tensor, target: torch.Tensor | None = None):
    """Each layer's attention (B, heads, T, T) from plain hooks, and with a target its gradient."""
    maps: list[torch.Tensor] = []
    layers = dict(module.named_modules())

    def keep(_m, _i, out):
        if out.requires_grad:
            out.retain_grad()
        maps.append(out)

    hooks = [layers[n].register_forward_hook(keep) for n in names]
    try:
        module.eval()
        with torch.set_grad_enabled(target is not None):
            logits = module(x)
            if target is not None:
                logits.gather(1, target[:, None]).sum().backward()
    finally:
        for h in hooks:
            h.remove()
    grads = [m.grad.double().numpy() for m in maps] if target is not None else None
    module.zero_grad(set_to_none=True)
    return [m.detach().double().numpy() for m in maps], grads


def _real(x: torch.Tensor) -> np.ndarray:
    """(B, T) real tokens: CLS, every patch, the non-padding words (worked out from the plane)."""
    words = decode_plane(x).numpy() != 0
    return np.concatenate([np.ones((len(x), 1 + PATCHES), dtype=bool), words], 1)


def test_rollout_equals_the_residual_normalised_product_of_the_recorded_attentions(vilt, rows):
    x = rows.x
    maps, _ = _recorded(vilt.module, vilt.attention, x)
    real = _real(x)
    assert maps[0].shape == (6, 4, 1 + PATCHES + QUESTION_LENGTH, 1 + PATCHES + QUESTION_LENGTH)
    assert (~real).any()  # the questions are left-padded
    relevance = create_explainer("attention-rollout", vilt).relevance(x).double().numpy()
    for i in range(len(x)):
        keep = np.flatnonzero(real[i])  # by hand: drop the padding tokens altogether
        product = np.eye(len(keep))
        for a in maps:
            fused = a[i].mean(0)[np.ix_(keep, keep)] + np.eye(len(keep))
            product = (fused / fused.sum(1, keepdims=True)) @ product
        expected = np.zeros(real.shape[1])
        expected[keep] = product[0]
        np.testing.assert_allclose(relevance[i], expected[1:], rtol=1e-5, atol=1e-7)
        assert relevance[i].sum() == pytest.approx(1 - product[0, 0], abs=1e-5)  # rows of the product sum to 1
    assert (relevance[~real[:, 1:]] == 0).all()  # padding words: exactly 0


def test_grad_mode_equals_chefers_update_from_hooked_attentions_and_gradients(vilt, rows):
    x, target = rows.x[:3], rows.y[:3]
    maps, grads = _recorded(vilt.module, vilt.attention, x, target)
    real = _real(x)
    relevance = create_explainer("attention-rollout", vilt, mode="grad").relevance(x, target).double().numpy()
    t = real.shape[1]
    for i in range(len(x)):
        pair = real[i][:, None] & real[i][None, :]
        r = np.eye(t)
        for a, g in zip(maps, grads, strict=True):
            bar = np.clip(a[i] * g[i], 0, None).mean(0) * pair  # E_h[(grad * A)^+], padding zeroed
            r = r + bar @ r
        np.testing.assert_allclose(relevance[i], (r - np.eye(t))[0, 1:], rtol=1e-4, atol=1e-7)
    assert np.isfinite(relevance).all() and (relevance >= 0).all()
    assert (relevance[~real[:, 1:]] == 0).all()
    assert all(p.grad is None for p in vilt.module.parameters()) and no_hooks(vilt.module)


@pytest.mark.parametrize("options", [{"mode": "rollout", "head_fusion": "max", "discard_ratio": 0.3},
                                     {"mode": "grad"}, {"mode": "flow"}])
def test_more_padding_words_change_no_real_tokens_relevance(vilt, rows, options):
    x = rows.x[:3]
    target = vilt.predict_targets(x)
    # the same weights reading 12 plane rows: rows 8..11 are 4 more padding words
    arch = {k: v for k, v in vilt.card["recipe"].items() if k in inspect.signature(VQATransformer).parameters}
    longer = VQATransformer(question_rows=QUESTION_LENGTH + 4, **arch)
    longer.load_state_dict(vilt.module.state_dict())
    padded = ModelHandle(name="padded", module=longer.eval(), task="classification", modality="multimodal",
                         input_shape=(4, 40, 40), class_names=vilt.class_names, source="test", sha256="0",
                         attention=vilt.attention)
    with torch.no_grad():
        torch.testing.assert_close(longer(x), vilt.module.eval()(x), rtol=1e-5, atol=1e-5)
    ours = create_explainer("attention-rollout", vilt, **options).relevance(x, target)
    more = create_explainer("attention-rollout", padded, **options).relevance(x, target)
    assert more.shape == (3, PATCHES + QUESTION_LENGTH + 4)
    torch.testing.assert_close(more[:, :PATCHES + QUESTION_LENGTH], ours, rtol=1e-4, atol=1e-6)
    assert (more[:, PATCHES + QUESTION_LENGTH:] == 0).all()
    assert (ours[~torch.from_numpy(_real(x))[:, 1:]] == 0).all()


def test_token_scores_map_onto_the_packed_input_and_round_trip_through_split_packed(vilt, rows):
    x = rows.x
    real = torch.from_numpy(_real(x))[:, 1:]
    scores = torch.rand(len(x), PATCHES + QUESTION_LENGTH, generator=torch.Generator().manual_seed(0)) * real
    packed = vilt.module.tokens_to_input(scores, x)
    assert packed.shape == x.shape
    split = split_packed(x.numpy(), packed.numpy())
    ids = decode_plane(x).numpy()
    for i in range(len(x)):
        words = np.flatnonzero(ids[i])
        assert split.tokens[i] == tuple(VOCAB[ids[i, t]] for t in words)
        np.testing.assert_allclose(split.token_attributions[i, :len(words)], scores[i, PATCHES + words], rtol=1e-6)
        assert not split.token_attributions[i, len(words):].any()
    # each 8x8 patch's 3 x 64 entries hold its score evenly and sum to it
    image = split.image_attributions.reshape(len(x), 3, 5, 8, 5, 8)
    np.testing.assert_allclose(image.sum((1, 3, 5)).reshape(len(x), PATCHES), scores[:, :PATCHES], rtol=1e-5)
    np.testing.assert_allclose(image, np.broadcast_to(image[:, :1, :, :1, :, :1], image.shape))
    # the plane is written only at each word's one-hot column; nothing else moves
    assert (packed[:, 3] * (1 - x[:, 3]) == 0).all()
    np.testing.assert_allclose(packed.sum((1, 2, 3)), scores.sum(1), rtol=1e-5)


@pytest.mark.parametrize("mode", ["rollout", "flow", "grad"])
def test_explain_gives_image_maps_and_question_words(vilt, rows, mode):
    data = rows.head(3)
    explainer = create_explainer("attention-rollout", vilt, mode=mode)
    result = explainer.explain(data, batch_size=2)
    assert result.attributions.shape == (3, 4, 40, 40) and result.image_channels == 3
    assert np.isfinite(result.attributions).all() and (result.attributions >= 0).all()
    relevance = explainer.relevance(data.x, torch.from_numpy(result.targets)).numpy()
    ids = decode_plane(data.x).numpy()
    for i, tokens in enumerate(result.tokens):
        words = np.flatnonzero(ids[i])
        assert tokens == tuple(VOCAB[ids[i, t]] for t in words)
        np.testing.assert_allclose(result.token_attributions[i, :len(words)], relevance[i, PATCHES + words],
                                   rtol=1e-5, atol=1e-7)
        share = relevance[i, PATCHES:].sum() / relevance[i].sum()
        assert result.question_share[i] == pytest.approx(share, rel=1e-4)


def test_multimodal_models_need_attention_and_a_token_layout(vilt):
    vqa = load_model("vqa", zoo_dir=ZOO)  # FiLM fusion: no attention
    assert "attention-rollout" in list_explainers(handle=vilt)
    assert "attention-rollout" not in list_explainers(handle=vqa)
    vit = load_model("vit", zoo_dir=ZOO)
    no_layout = ModelHandle(name="vit-as-multimodal", module=vit.module, task="classification",
                            modality="multimodal", input_shape=(1, 32, 32), class_names=vit.class_names,
                            source="test", sha256="0", attention=vit.attention)
    with pytest.raises(NotApplicableError, match="needs a token layout"):
        create_explainer("attention-rollout", no_layout)


def test_cli_rollout_and_explain_report_image_and_question(tmp_path):
    table = runner.invoke(app, ["rollout", "vqa-transformer", "--samples", "4"])
    assert table.exit_code == 0, table.output
    assert "attention rollout on vqa-transformer" in table.stdout and "question words" in table.stdout
    first = load_dataset("shapes-vqa", "test").annotations[0]["question"].split()[0]
    assert f"{first}(" in table.stdout

    grad = runner.invoke(app, ["rollout", "vqa-transformer", "-n", "2", "--mode", "grad", "--json"])
    assert grad.exit_code == 0, grad.output
    doc = json.loads(grad.stdout)
    assert np.asarray(doc["attributions"]).shape == (2, 4, 40, 40) and len(doc["token_attributions"]) == 2

    out = runner.invoke(app, ["explain", "vqa-transformer", "-m", "attention-rollout", "-n", "3",
                              "-o", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "question share" in out.stdout
    document = json.loads((tmp_path / "explain-attention-rollout.json").read_text())
    tokens = document["explanations"][0]["tokens"]
    page = (tmp_path / "explain-attention-rollout.html").read_text()
    assert "Question share" in page and page.count('class="tok"') == sum(map(len, tokens))
    assert "data:image/png;base64" in page
