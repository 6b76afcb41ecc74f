"""``xai sanity`` and ``xai explain --layer`` through typer's CliRunner."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from xai.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [*args, "--device", "cpu"])


def test_sanity_json_and_page(tmp_path):
    result = run("sanity", "adult-mlp", "-m", "saliency", "-n", "8", "--steps", "4", "--json",
                 "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["method"] == "saliency" and document["samples"] == 8
    assert isinstance(document["verdict"]["trustworthy"], bool)
    page = (tmp_path / "sanity-adult-mlp-saliency.html").read_text()
    saved = json.loads((tmp_path / "sanity-adult-mlp-saliency.json").read_text())  # the page's audit JSON
    assert saved["sanity"][0]["verdict"] == document["verdict"]
    assert saved["verdict"]["status"] == ("pass" if document["verdict"]["trustworthy"] else "warn")
    assert document["verdict"]["summary"].split(":")[0].lower() in page.lower()  # "... not trustworthy"
    assert "<svg" in page and "src=\"http" not in page


def test_sanity_table_names_the_verdict():
    result = run("sanity", "lenet", "-m", "grad-cam", "--layer", "conv2", "-n", "4", "--steps", "4")
    assert result.exit_code == 0, result.output
    assert "sanity checks: grad-cam on lenet" in result.stdout
    assert "trustworthy" in result.stdout


def test_explain_layer_option_reaches_the_method():
    result = run("explain", "lenet", "-m", "grad-cam", "--layer", "conv1", "-n", "2", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["options"]["layer"] == "conv1"
    assert np.array(document["attributions"]).shape == (2, 1, 32, 32)


def _fails(*args: str, message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr


def test_bad_inputs_exit_2_with_a_reason():
    _fails("explain", "lenet", "-m", "grad-cam", "--layer", "fc9",
           message="unknown layer 'fc9'; known: conv1, conv2, fc1")
    _fails("sanity", "lenet", "-m", "grad-cam", "--layer", "fc1", message="fc1 (Linear) has no convolution")
    _fails("explain", "adult-mlp", "-m", "grad-cam", message="grad-cam needs a convolutional layer; adult-mlp has none")
    _fails("sanity", "adult-mlp", "-m", "guided-grad-cam",
           message="guided-grad-cam needs a convolutional layer; adult-mlp has none")
    _fails("sanity", "lenet", "-m", "no-such-method", message="unknown explainer 'no-such-method'")
    _fails("sanity", "lenet", "-m", "saliency", "--layer", "conv1",
           message="saliency: unknown option 'layer'; it takes target, abs")
    _fails("sanity", "lenet", "-m", "occlusion", "--option", "window=99", message="window 99 is larger")
    _fails("explain", "lenet", "-m", "grad-cam", "--layer", "conv1", "--option", "layer=conv2",
           message="disagree")
    _fails("sanity", "lenet", "-m", "saliency", "-n", "1", message="Invalid value")


def test_sanity_on_a_token_model_writes_a_page_without_noise_metrics(tmp_path):
    result = run("sanity", "lstm-text", "-m", "layer-integrated-gradients", "-n", "8", "--steps", "4",
                 "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "not defined on token ids" in result.output
    page = (tmp_path / "sanity-lstm-text-layer-integrated-gradients.html").read_text()
    assert "not defined on token ids" in page and "target probability" in page
    assert "fraction of words removed" in page and "n/a (not an image)" in page
    document = json.loads((tmp_path / "sanity-lstm-text-layer-integrated-gradients.json").read_text())["sanity"][0]
    assert document["infidelity"] is None and "infidelity" not in document["metrics"]


def test_classes_names_a_source_models_classes_with_explains_checks(tmp_path):
    from ..sources._builders import timm_model

    weights = tmp_path / "resnet10t.safetensors"
    timm_model("resnet10t", weights, classes=3)
    source = ("timm:resnet10t", "--weights", str(weights), "--data", "style-content")
    ok = run("sanity", *source, "-m", "saliency", "-n", "2", "--steps", "2", "--classes", "red,green,blue", "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["samples"] == 2
    # the same checks as xai explain --classes: counted against the model's outputs, non-empty names
    _fails("sanity", *source, "-m", "saliency", "--classes", "a,b", message="scores 3 classes but 2 class names")
    _fails("explain", *source, "-m", "saliency", "--classes", "a,b", message="scores 3 classes but 2 class names")
    _fails("sanity", *source, "-m", "saliency", "--classes", "a,,c", message="non-empty names")


def test_classes_on_a_model_that_names_its_own_is_an_error():
    for command in (("sanity", "lenet", "-m", "saliency"), ("explain", "lenet", "-m", "saliency")):
        _fails(*command, "--classes", "a,b", message="--classes applies to timm:NAME, torchvision:NAME")
