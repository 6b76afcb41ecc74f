"""Fusion as the course notes define it: late (averaged unimodal predictions), intermediate (concatenated
features), FiLM kept apart, and the bag-of-words question encoder."""

from __future__ import annotations

import pytest
import torch

from xai.datasets import load_dataset
from xai.datasets._vqa import QUESTION_LENGTH, QUESTION_TYPES, VOCAB, decode_plane
from xai.zoo import get_entry, load_model, read_card
from xai.zoo.multimodal import ImageOnlyNet, LateFusionVQA, QuestionOnlyNet, VQANet, vqa_accuracy

from ..conftest import ZOO

FUSIONS = {"fusion-early": "early", "fusion-film": "film", "fusion-intermediate": "concat", "vqa": "film",
           "vqa-bow": "film"}


@pytest.fixture(scope="module")
def vqa_test():
    return load_dataset("shapes-vqa", "test")


@pytest.fixture(scope="module")
def late():
    return load_model("fusion-late", zoo_dir=ZOO)


def _other_questions(x: torch.Tensor) -> torch.Tensor:
    """The same images with each row's question plane replaced by the next row's."""
    out = x.clone()
    out[:, 3] = x.roll(1, 0)[:, 3]
    return out


def _other_images(x: torch.Tensor) -> torch.Tensor:
    out = x.clone()
    out[:, :3] = x.roll(1, 0)[:, :3]
    return out


def test_late_fusion_output_is_the_mean_of_its_two_unimodal_models_probabilities(late, vqa_test):
    module = late.module.eval()
    assert isinstance(module, LateFusionVQA)
    x = vqa_test.x[:64]
    with torch.no_grad():
        p_image = torch.softmax(module.image(x), 1)  # each unimodal classifier called on its own
        p_question = torch.softmax(module.question(x), 1)
        fused = module(x)
    mean = (p_image + p_question) / 2
    torch.testing.assert_close(fused.exp(), mean, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(torch.softmax(late.predict(x), 1), mean, rtol=1e-5, atol=1e-7)
    assert torch.equal(fused.argmax(1), mean.argmax(1))
    # and the two really disagree somewhere: the average is not either model alone
    assert not torch.equal(p_image.argmax(1), p_question.argmax(1))


def test_late_fusion_halves_are_unimodal_and_were_trained_apart(late, vqa_test):
    module = late.module.eval()
    x = vqa_test.x[:32]
    with torch.no_grad():
        torch.testing.assert_close(module.image(_other_questions(x)), module.image(x), rtol=0, atol=0)
        torch.testing.assert_close(module.question(_other_images(x)), module.question(x), rtol=0, atol=0)
        assert not torch.allclose(module.image(_other_images(x)), module.image(x))
        assert not torch.allclose(module.question(_other_questions(x)), module.question(x))
    metrics = read_card("fusion-late", ZOO)["metrics"]
    # the card's per-half accuracies are each half's own, recomputed from the committed weights
    for part in ("image", "question"):
        ours = vqa_accuracy(getattr(module, part), vqa_test, torch.device("cpu"))["accuracy"]
        assert ours == pytest.approx(metrics[f"{part}_accuracy"], abs=1e-5)
    assert metrics["accuracy"] > max(metrics["image_accuracy"], metrics["question_accuracy"])
    assert {"image_train_loss", "question_train_loss"} <= set(metrics)


def test_late_fusion_log_average_is_stable_where_one_model_is_certain():
    module = LateFusionVQA().eval()
    with torch.no_grad():
        module.image.fc2.bias.fill_(0).add_(torch.arange(16.0) * 200)  # softmax underflows to 0 for most answers
        x = torch.zeros(2, 4, 40, 40)
        out = module(x)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.exp().sum(1), torch.ones(2))


def test_intermediate_fusion_concatenates_unimodal_features_then_a_joint_head(vqa_test):
    module = load_model("fusion-intermediate", zoo_dir=ZOO).module.eval()
    assert isinstance(module, VQANet) and module.fusion == "concat"
    x = vqa_test.x[:16]
    seen: list[torch.Tensor] = []
    hook = module.fc1.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].detach()))
    try:
        with torch.no_grad():
            module(x)
            q = module.encode_question(x)
            # the image vector, computed with the question plane zeroed: it never reads the question
            blank = x.clone()
            blank[:, 3] = 0
            h = module.pool2(module.relu2(module.bn2(module.conv2(module.pool1(module.relu1(module.bn1(
                module.conv1(blank[:, :3]))))))))
            h = module.relu3(module.bn3(module.conv3(h)))
            image = module.flatten(module.relu4(module.conv4(torch.cat([module.avg(h), module.max(h)], 1))))
    finally:
        hook.remove()
    assert len(seen) == 1
    torch.testing.assert_close(seen[0], torch.cat([image, q], 1))


def test_film_conditions_the_image_features_on_the_question_and_concat_does_not(vqa_test):
    x = vqa_test.x[:16]
    for name, depends in (("fusion-film", True), ("fusion-intermediate", False)):
        module = load_model(name, zoo_dir=ZOO).module.eval()
        maps: list[torch.Tensor] = []
        hook = module.relu3.register_forward_hook(lambda _m, _i, out, maps=maps: maps.append(out.detach()))
        try:
            with torch.no_grad():
                module(x)
                module(_other_questions(x))
        finally:
            hook.remove()
        assert (not torch.equal(maps[0], maps[1])) is depends, name


def test_cards_name_each_fusion_and_meet_their_floors():
    for name, fusion in FUSIONS.items():
        card = read_card(name, ZOO)
        assert card["recipe"]["fusion"] == fusion == get_entry(name).recipe["fusion"], name
        assert {f"accuracy_{k}" for k in QUESTION_TYPES} <= set(card["metrics"])
        assert get_entry(name).meets_floor(card["metrics"]["accuracy"]), name
    card = read_card("fusion-late", ZOO)
    assert card["recipe"]["fusion"].startswith("late") and get_entry("fusion-late").meets_floor(
        card["metrics"]["accuracy"])
    assert read_card("vqa-bow", ZOO)["recipe"]["encoder"] == "bow"


def _shuffle_words(x: torch.Tensor) -> torch.Tensor:
    """Each question's words in reverse order, the padding left where it was."""
    out = x.clone()
    for i, ids in enumerate(decode_plane(x)):
        n = int((ids != 0).sum())
        rows = x[i, 3, QUESTION_LENGTH - n:QUESTION_LENGTH]
        out[i, 3, QUESTION_LENGTH - n:QUESTION_LENGTH] = rows.flip(0)
    return out


def test_bag_of_words_encoder_sums_word_embeddings_and_ignores_order(vqa_test):
    bow = load_model("vqa-bow", zoo_dir=ZOO).module.eval()
    lstm = load_model("vqa", zoo_dir=ZOO).module.eval()
    x = vqa_test.x[:16]
    shuffled = _shuffle_words(x)
    assert not torch.equal(shuffled, x)
    with torch.no_grad():
        torch.testing.assert_close(bow(shuffled), bow(x), rtol=1e-5, atol=1e-5)
        assert not torch.allclose(lstm(shuffled), lstm(x), atol=1e-3)  # the LSTM reads the order
        # by hand: word counts (B, V) -> summed embedding -> linear -> ReLU
        counts = torch.zeros(len(x), len(VOCAB))
        for i, ids in enumerate(decode_plane(x)):
            for t in ids[ids != 0]:
                counts[i, t] += 1
        hand = torch.relu(counts @ bow.embed.weight.T @ bow.bow.weight.T + bow.bow.bias)
        torch.testing.assert_close(bow.encode_question(x), hand, rtol=1e-5, atol=1e-6)
    assert not hasattr(bow, "lstm") and get_entry("vqa-bow").layers[-1] == "bow"


def test_unimodal_models_and_encoders_build_with_the_right_shapes():
    x = torch.zeros(3, 4, 40, 40)
    for module in (ImageOnlyNet(), QuestionOnlyNet(), VQANet("concat", encoder="bow"), VQANet("early")):
        assert module(x).shape == (3, 16)
    with pytest.raises(ValueError, match="fusion"):
        VQANet("late")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="encoder"):
        VQANet(encoder="gru")  # type: ignore[arg-type]
