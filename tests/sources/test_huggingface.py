"""Hugging Face save_pretrained folders: tiny configs saved offline, numbers checked against the same model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from captum.attr import LayerIntegratedGradients

from xai.datasets import Dataset, load_dataset
from xai.errors import ModelLoadError
from xai.explain import create_explainer
from xai.explain.text import token_baseline
from xai.sources import load_source, prepare_bundled
from xai.sources._common import prepare_images
from xai.zoo import load_model

from .._hostile import marker_pickle
from ._builders import hf_image_folder, hf_text_folder

REPO = Path(__file__).resolve().parents[2]
SENTENCES = ["the movie made me feel glad", "my mom felt sad at first but then happy", "this boy feels scared"]


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf") / "bert"
    return hf_text_folder(folder, "bert"), folder


def test_sequence_classifier_equals_the_model_on_its_tokenizer(bert):
    model, folder = bert
    handle = load_model(str(folder))
    assert handle.task == "binary-classification" and handle.modality == "text"
    assert handle.layers[0] == "model.bert.embeddings.word_embeddings"
    assert handle.attention == ("attention_taps.0", "attention_taps.1")
    ids = handle.preprocess(SENTENCES)
    encoded = model.config  # noqa: F841  (the folder's own tokenizer is what the handle used)
    from transformers import AutoTokenizer

    raw = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)(SENTENCES, padding=True,
                                                                             return_tensors="pt")
    assert torch.equal(ids, raw["input_ids"])  # BERT's pad id is 0 already
    expected = model(input_ids=raw["input_ids"], attention_mask=raw["attention_mask"]).logits
    assert torch.allclose(handle.module(ids), expected, atol=1e-6)
    assert handle.module.tokenizer.tokens(ids[2])[:3] == ["[CLS]", "this", "boy"]


def test_layer_ig_on_the_embedding_equals_captum_called_directly(bert):
    _, folder = bert
    handle = load_source(str(folder))
    ids = handle.preprocess(SENTENCES)
    data = Dataset.from_arrays(np.zeros((3, 1)), [0, 1, 0])
    data = Dataset(name="s", split="all", modality="text", x=ids, y=data.y, class_names=("n", "p"),
                   groups=data.groups)
    result = create_explainer("layer-integrated-gradients", handle, steps=8).explain(data)
    assert result.options["layer"] == "model.bert.embeddings.word_embeddings"  # zero configuration
    layer = handle.get_layer("model.bert.embeddings.word_embeddings")
    target = torch.as_tensor(result.targets)
    attr = LayerIntegratedGradients(handle.forward_target, layer).attribute(
        ids, baselines=token_baseline(ids, "pad", handle.module.tokenizer), additional_forward_args=(target,),
        n_steps=8)
    np.testing.assert_allclose(result.attributions, attr.sum(-1).detach().numpy(), rtol=1e-4, atol=1e-6)
    assert result.tokens[0][:2] == ("[CLS]", "the")


def test_rollout_reads_the_attention_the_model_returns(bert):
    model, folder = bert
    handle = load_source(str(folder))
    ids = handle.preprocess(SENTENCES)
    explainer = create_explainer("attention-rollout", handle)
    relevance = explainer.relevance(ids)
    attentions = model(input_ids=ids, attention_mask=(ids != 0).long(), output_attentions=True).attentions
    from xai.explain.rollout import rollout

    expected = rollout(attentions, mask=ids != 0)[:, 0] * (ids != 0)
    assert torch.allclose(relevance, expected, atol=1e-6)


def test_roberta_pad_id_1_is_swapped_into_the_pad_0_convention(tmp_path):
    model = hf_text_folder(tmp_path / "roberta", "roberta")
    handle = load_source(str(tmp_path / "roberta"))
    tokenizer = handle.module.tokenizer
    assert tokenizer.pad_id == 1 and tokenizer.cls_id == 1  # [CLS] is id 0 in the file, so 1 here
    ids = handle.preprocess(SENTENCES)
    assert (ids[1:] == 0).any() and ((ids == 0) == (ids.roll(0) == 0)).all()
    raw = tokenizer.hf(SENTENCES, padding=True, return_tensors="pt")
    expected = model(input_ids=raw["input_ids"], attention_mask=raw["attention_mask"]).logits
    assert torch.allclose(handle.module(ids), expected, atol=1e-5)
    assert tokenizer.tokens(ids[2])[:2] == ["[CLS]", "this"]


def test_sentence_encoder_is_mean_pooled_with_task_embedding(tmp_path):
    model = hf_text_folder(tmp_path / "enc", "bert", head="model")
    handle = load_source(str(tmp_path / "enc"))
    assert handle.task == "embedding" and handle.module.pooling == "mean"
    ids = handle.preprocess(SENTENCES)
    states = model(input_ids=ids, attention_mask=(ids != 0).long()).last_hidden_state
    keep = (ids != 0).float()[..., None]
    assert torch.allclose(handle.module(ids), (states * keep).sum(1) / keep.sum(1), atol=1e-6)
    assert create_explainer("attention-rollout", handle).relevance(ids).shape == ids.shape


def test_bundled_text_is_encoded_by_the_folders_tokenizer(bert):
    _, folder = bert
    handle = load_source(str(folder))
    raw = load_dataset("sentiment-text", "test").head(4)
    data = prepare_bundled(handle, raw)
    assert torch.equal(data.x, handle.preprocess(list(raw.groups["text"])))


def test_image_classifier_uses_its_image_processor(tmp_path):
    model = hf_image_folder(tmp_path / "vit", "vit")
    handle = load_source(str(tmp_path / "vit"))
    assert handle.image_config.input_size == (3, 32, 32)
    assert handle.image_config.mean == pytest.approx((0.5, 0.4, 0.3))
    assert handle.cam_layer == "model.vit.layers.1.layernorm_before"  # the last block's first norm
    x = prepare_images(torch.rand(2, 3, 48, 48), handle.image_config)
    assert torch.allclose(handle.module(x), model(pixel_values=x).logits, atol=1e-6)
    data = Dataset.from_arrays(x, [0, 1])
    for method in ("grad-cam", "attention-rollout"):
        result = create_explainer(method, handle).explain(data)
        assert result.attributions.shape == (2, 3, 32, 32) and np.isfinite(result.attributions).all()


def test_remote_code_is_refused_and_never_imported(tmp_path):
    folder = tmp_path / "remote"
    hf_text_folder(folder, "bert")
    marker = tmp_path / "marker"
    (folder / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_evil.Evil"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="run its own Python code"):
        load_model(str(folder))
    assert not marker.exists()


def test_pickled_weights_are_refused_without_trust(tmp_path):
    folder = tmp_path / "pickled"
    hf_text_folder(folder, "bert")
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "marker"
    (folder / "pytorch_model.bin").write_bytes(marker_pickle(marker))
    with pytest.raises(ModelLoadError, match=r"only pickled weights \(pytorch_model.bin\)"):
        load_model(str(folder))
    assert not marker.exists()


def test_missing_tokenizer_is_one_line_exit_2(tmp_path):
    folder = tmp_path / "notok"
    hf_text_folder(folder, "bert")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    out = subprocess.run([sys.executable, "-m", "xai", "explain", str(folder), "--data", "sentiment-text",
                          "-m", "layer-integrated-gradients", "-n", "2"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().count("\n") == 0 and "no tokenizer" in out.stderr
    assert out.stderr.startswith("error: ")
