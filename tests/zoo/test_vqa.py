"""shapes-vqa data, the VQA / fusion entries, and attributions over image and question."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients
from scipy import ndimage

from xai.datasets import COLOURS, SHAPES, load_dataset
from xai.datasets._vqa import (
    ANSWERS,
    QUESTION_LENGTH,
    QUESTION_TYPES,
    VOCAB,
    decode_plane,
    encode_ids,
    pack,
    tokenize,
)
from xai.errors import DataError
from xai.explain import create_explainer
from xai.zoo import get_entry, load_model, read_card
from xai.zoo.multimodal import question_attributions, split_attributions

from ..conftest import ZOO


@pytest.fixture(scope="module")
def vqa_test():
    return load_dataset("shapes-vqa", "test")


@pytest.fixture(scope="module")
def vqa():
    return load_model("vqa", zoo_dir=ZOO)


def test_tokenizer_pads_with_id_0_on_the_left_and_the_plane_round_trips():
    ids = tokenize("What colour is the Circle?")
    assert [VOCAB[i] for i in ids] == ["what", "colour", "is", "the", "circle"]
    assert VOCAB[0] == "<pad>" and 0 not in ids
    assert encode_ids(ids) == [0, 0, 0, *ids]
    x = pack(np.zeros((1, 3, 40, 40), dtype=np.float32), ["what colour is the circle"])
    assert x.shape == (1, 4, 40, 40)
    assert decode_plane(x).tolist() == [[0, 0, 0, *ids]]
    assert x[0, 3].sum() == len(ids) and x[0, :3].abs().sum() == 0  # one 1 per real token
    with pytest.raises(DataError, match="unknown words"):
        tokenize("is there a purple circle")


def _answer_from_pixels(scene, question: str) -> str:
    """The answer worked out from the class mask and the pixels, not the object records."""
    words = question.split()
    labels = {s: 1 + SHAPES.index(s) for s in SHAPES}

    def components(shape):  # objects never touch (2-pixel gap): one component per object
        return ndimage.label(scene.mask == labels[shape])

    def colour_of(pixels):  # nearest named colour by direction (the shade scales it)
        mean = scene.image[:, pixels].mean(1)
        names = list(COLOURS)
        refs = np.array([COLOURS[c] for c in names])
        cos = refs @ mean / (np.linalg.norm(refs, axis=1) * np.linalg.norm(mean))
        return names[int(cos.argmax())]

    if words[0] == "how":  # how many <shape>s are there
        return str(components(words[2][:-1])[1])
    if words[:2] == ["is", "there"]:  # is there a <colour> <shape>
        lab, n = components(words[4])
        return "yes" if any(colour_of(lab == i) == words[3] for i in range(1, n + 1)) else "no"
    if words[1] == "colour":  # what colour is the <shape>
        return colour_of(scene.mask == labels[words[4]])
    # what shape is the <colour> object
    for shape in SHAPES:
        lab, n = components(shape)
        if any(colour_of(lab == i) == words[4] for i in range(1, n + 1)):
            return shape
    raise AssertionError(question)


def test_answers_equal_a_hand_check_of_the_scene_pixels(vqa_test):
    rows = vqa_test.annotations[:240]
    for i, row in enumerate(rows):
        assert _answer_from_pixels(row["scene"], row["question"]) == row["answer"], row["question"]
        assert ANSWERS[int(vqa_test.y[i])] == row["answer"]
        assert vqa_test.groups["question"][i] == row["type"]
        assert vqa_test.groups["objects"][i] == str(len(row["scene"].objects))
    kinds = vqa_test.groups["question"]
    assert set(kinds) == set(QUESTION_TYPES)
    exists = vqa_test.y[torch.tensor((kinds == "exists").to_numpy())]
    assert 0.35 < float((exists == ANSWERS.index("yes")).float().mean()) < 0.65  # balanced


def test_splits_are_seeded_and_disjoint():
    a, b = load_dataset("shapes-vqa", "test"), load_dataset("shapes-vqa", "test")
    assert a.sha256 == b.sha256
    train = load_dataset("shapes-vqa", "train")
    images = {t[:3].numpy().tobytes() for t in train.x[::4]}
    assert not any(t[:3].numpy().tobytes() in images for t in a.x[::4])


@pytest.mark.parametrize("name", ["vqa", "vqa-transformer"])
def test_question_plane_embeds_like_an_embedding_with_padding_idx_0(name, vqa_test):
    module = load_model(name, zoo_dir=ZOO).module
    x = vqa_test.x[:6]
    table = torch.nn.Embedding(len(VOCAB), module.embed.out_features, padding_idx=0)
    with torch.no_grad():
        table.weight.copy_(module.embed.weight.T)
        table.weight[0] = 0
    rows = x[:, 3, :QUESTION_LENGTH, :len(VOCAB)]
    torch.testing.assert_close(module.embed(rows), table(decode_plane(x)))


def test_targets_adapter_picks_the_answer_logit(vqa, vqa_test):
    x, target = vqa_test.x[:5], torch.tensor([0, 3, 7, 13, 15])
    with torch.no_grad():
        logits = vqa.module.eval()(x)
        picked = vqa.forward_target(x, target)
    torch.testing.assert_close(picked, logits[torch.arange(5), target])


@pytest.mark.parametrize("name", ["vqa", "vqa-transformer"])
def test_card_reports_accuracy_per_question_type(name, vqa_test):
    card = read_card(name, ZOO)
    metrics = card["metrics"]
    counts = vqa_test.groups["question"].value_counts()
    weighted = sum(metrics[f"accuracy_{k}"] * counts[k] for k in QUESTION_TYPES) / len(vqa_test)
    assert weighted == pytest.approx(metrics["accuracy"], abs=1e-5)
    assert metrics["accuracy"] >= get_entry(name).floor


def test_integrated_gradients_on_the_image_path_is_complete(vqa, vqa_test):
    x, target = vqa_test.x[:3], vqa_test.y[:3]
    baseline = x.clone()
    baseline[:, :3] = 0  # black image, same question: only the image moves along the path
    attr, delta = IntegratedGradients(vqa.forward_target).attribute(
        x, baselines=baseline, additional_forward_args=(target,), n_steps=64,
        return_convergence_delta=True)
    with torch.no_grad():
        gap = vqa.forward_target(x, target) - vqa.forward_target(baseline, target)
    assert attr[:, 3].abs().sum() == 0  # the question plane did not move
    torch.testing.assert_close(attr.sum((1, 2, 3)), gap, atol=0.05 * gap.abs().max() + 1e-3, rtol=0)
    assert delta.abs().max() < 0.05 * gap.abs().max() + 1e-3


def test_token_attributions_equal_input_ig_on_the_plane_and_are_complete(vqa, vqa_test):
    x, target = vqa_test.x[:3], vqa_test.y[:3]
    tokens, delta = question_attributions(vqa.module, x, target, steps=32)
    assert tokens.shape == (3, QUESTION_LENGTH)
    # the embedding is linear in the plane: layer IG on it is input IG on the plane rows
    baseline = x.clone()
    baseline[:, 3] = 0
    plane = IntegratedGradients(vqa.forward_target).attribute(
        x, baselines=baseline, additional_forward_args=(target,), n_steps=32)
    np.testing.assert_allclose(tokens, plane[:, 3, :QUESTION_LENGTH].sum(-1).numpy(), rtol=1e-4, atol=1e-5)
    pads = decode_plane(x).numpy() == 0
    assert np.abs(tokens[pads]).max() == 0  # padding embeds to zero: nothing to attribute
    with torch.no_grad():
        gap = (vqa.forward_target(x, target) - vqa.forward_target(baseline, target)).numpy()
    np.testing.assert_allclose(tokens.sum(1), gap, atol=0.05 * np.abs(gap).max() + 1e-3)
    assert np.abs(delta).max() < 0.05 * np.abs(gap).max() + 1e-3


def test_xai_integrated_gradients_explains_the_packed_input(vqa, vqa_test):
    data = vqa_test.head(2)
    result = create_explainer("integrated-gradients", vqa, steps=32).explain(data, target="label")
    assert result.attributions.shape == (2, 4, 40, 40) and result.modality == "multimodal"
    theirs = IntegratedGradients(vqa.forward_target).attribute(
        data.x, baselines=torch.zeros_like(data.x), additional_forward_args=(data.y,), n_steps=32)
    np.testing.assert_allclose(result.attributions, theirs.numpy(), rtol=1e-4, atol=1e-6)
    image, tokens = split_attributions(result.attributions)
    assert image.shape == (2, 3, 40, 40) and tokens.shape == (2, QUESTION_LENGTH)
    np.testing.assert_allclose(image.sum((1, 2, 3)) + tokens.sum(1), result.attributions.sum((1, 2, 3)),
                               rtol=1e-5, atol=1e-6)  # the plane is zero outside the token rows


def test_explanations_carry_each_questions_words_their_scores_and_the_question_share(vqa, vqa_test):
    from xai.datasets._vqa import vqa_rows

    data = vqa_test.head(4)
    result = create_explainer("integrated-gradients", vqa, steps=16).explain(data, target="label")
    questions = [q.text.split() for _, q in vqa_rows("test")[:4]]
    assert [list(t) for t in result.tokens] == questions
    # word scores are the plane rows of captum's IG, left padding moved to the end
    theirs = IntegratedGradients(vqa.forward_target).attribute(
        data.x, baselines=torch.zeros_like(data.x), additional_forward_args=(data.y,), n_steps=16).numpy()
    rows = theirs[:, 3, :QUESTION_LENGTH, :].sum(-1)  # (N, L), left-padded
    for i, words in enumerate(questions):
        np.testing.assert_allclose(result.token_attributions[i, :len(words)], rows[i, -len(words):],
                                   rtol=1e-4, atol=1e-6)
        assert not result.token_attributions[i, len(words):].any()
    words = np.abs(rows).sum(1)
    share = words / (words + np.abs(theirs[:, :3]).sum((1, 2, 3)))
    np.testing.assert_allclose(result.question_share, share, rtol=1e-4)


def test_xai_explain_vqa_prints_and_reports_the_question(tmp_path):
    import json

    from typer.testing import CliRunner

    from xai.cli import app

    result = CliRunner().invoke(app, ["explain", "vqa", "-m", "saliency", "-n", "3", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "question share" in result.output
    document = json.loads((tmp_path / "explain-saliency.json").read_text())
    explanation = document["explanations"][0]
    assert len(explanation["tokens"]) == 3 and len(explanation["question_share"]) == 3
    page = (tmp_path / "explain-saliency.html").read_text()
    assert "Question share" in page and page.count('class="tok"') == sum(map(len, explanation["tokens"]))


# ---- the single-stream transformer (vqa-transformer) ----------------------------------


@pytest.fixture(scope="module")
def vilt():
    return load_model("vqa-transformer", zoo_dir=ZOO)


def test_vqa_transformer_attends_over_cls_patches_and_words_never_to_padding(vilt, vqa_test):
    x = vqa_test.x[:5]
    maps = []
    hooks = [vilt.get_layer(n).register_forward_hook(lambda _m, _i, out: maps.append(out.detach()))
             for n in vilt.attention]
    try:
        vilt.predict(x)
    finally:
        for h in hooks:
            h.remove()
    recipe = vilt.card["recipe"]
    tokens = 1 + (40 // recipe["patch"]) ** 2 + QUESTION_LENGTH  # CLS, patches, word rows
    pads = torch.cat([torch.zeros(5, tokens - QUESTION_LENGTH, dtype=torch.bool), decode_plane(x) == 0], 1)
    assert len(maps) == recipe["depth"] and pads.any()
    for attn in maps:
        assert attn.shape == (5, recipe["heads"], tokens, tokens)
        torch.testing.assert_close(attn.sum(-1), torch.ones(5, recipe["heads"], tokens))
        assert (attn.permute(0, 1, 3, 2)[pads[:, None, :].expand(-1, recipe["heads"], -1)] == 0).all()
    real = vilt.module.token_mask(x)
    assert torch.equal(real, ~pads)


def test_vqa_transformer_answer_does_not_depend_on_where_the_padding_sits(vilt, vqa_test):
    # word positions count real words only: right-padding the question (rows moved up) changes nothing
    x = vqa_test.x[:8]
    moved = x.clone()
    for i, ids in enumerate(decode_plane(x)):
        words = int((ids != 0).sum())
        moved[i, 3, :QUESTION_LENGTH] = 0
        moved[i, 3, :words] = x[i, 3, QUESTION_LENGTH - words:QUESTION_LENGTH]
    assert not torch.equal(moved, x)
    torch.testing.assert_close(vilt.predict(moved), vilt.predict(x), rtol=1e-5, atol=1e-5)
    # a question word does matter: replace each question by an all-padding plane
    blank = x.clone()
    blank[:, 3] = 0
    assert not torch.allclose(vilt.predict(blank), vilt.predict(x), atol=1e-3)


def test_vqa_transformer_fades_words_in_continuously_from_the_empty_question(vilt, vqa_test):
    # padding is masked by the key bias log(row mass): a question scaled towards zero tends to the
    # empty plane's answer (no jump at the IG baseline), and a full question is the one-hot input
    x = vqa_test.x[:4]
    empty, faint = x.clone(), x.clone()
    empty[:, 3] = 0
    faint[:, 3] *= 1e-12
    torch.testing.assert_close(vilt.predict(faint), vilt.predict(empty), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(vilt.predict(x), vilt.predict(empty), atol=1e-3)
