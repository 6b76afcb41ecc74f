from __future__ import annotations

import pytest
import torch

from xai.errors import ModelLoadError, UnknownNameError
from xai.zoo import load_model
from xai.zoo.cnn import LeNet5

from ..conftest import ZOO


def _reference_logits(lenet, digits_test):
    return lenet.predict(digits_test.x[:16])


def test_zoo_name_and_folder_load_the_same_weights(lenet):
    by_folder = load_model(str(ZOO / "lenet"))
    assert by_folder.sha256 == lenet.sha256
    assert by_folder.name == "lenet" and by_folder.task == "classification"
    assert by_folder.layers == ("conv1", "conv2", "fc1")


def test_torchscript_file(lenet, digits_test, tmp_path):
    path = tmp_path / "lenet_ts.pt"
    torch.jit.script(lenet.module).save(str(path))
    handle = load_model(str(path), data="digits")
    assert handle.source.startswith("torchscript:")
    assert handle.class_names == lenet.class_names
    assert torch.allclose(handle.predict(digits_test.x[:16]), _reference_logits(lenet, digits_test))


def test_factory_with_safetensors_and_with_a_state_dict(lenet, digits_test, tmp_path):
    handle = load_model("xai.zoo.cnn:LeNet5", weights=ZOO / "lenet" / "weights.safetensors",
                        data="digits")
    assert torch.allclose(handle.predict(digits_test.x[:16]), _reference_logits(lenet, digits_test))
    assert "conv2" in handle.layers
    state_path = tmp_path / "state.pt"
    torch.save(lenet.module.state_dict(), state_path)
    again = load_model("xai.zoo.cnn:LeNet5", weights=state_path, data="digits")
    assert torch.allclose(again.predict(digits_test.x[:16]), _reference_logits(lenet, digits_test))


def test_pickled_model_is_refused_unless_trusted(lenet, digits_test, tmp_path):
    path = tmp_path / "whole.pt"
    model = LeNet5()
    model.load_state_dict(lenet.module.state_dict())
    torch.save(model, path)
    with pytest.raises(ModelLoadError, match="--trust-pickle"):
        load_model(str(path), data="digits")
    trusted = load_model(str(path), data="digits", trust_pickle=True)
    assert torch.allclose(trusted.predict(digits_test.x[:16]), _reference_logits(lenet, digits_test))


def test_weights_only_files_ask_for_an_architecture(lenet, tmp_path):
    state_path = tmp_path / "state.pt"
    torch.save(lenet.module.state_dict(), state_path)
    with pytest.raises(ModelLoadError, match="package.module:factory"):
        load_model(str(state_path), data="digits")
    with pytest.raises(ModelLoadError, match="package.module:factory"):
        load_model(str(ZOO / "lenet" / "weights.safetensors"), data="digits")


def test_factory_problems_are_clear(tmp_path):
    with pytest.raises(ModelLoadError, match="cannot import"):
        load_model("no_such_pkg.models:net", weights=tmp_path / "w", data="digits")
    with pytest.raises(ModelLoadError, match="no attribute"):
        load_model("xai.zoo.cnn:Nope", weights=tmp_path / "w", data="digits")
    with pytest.raises(ModelLoadError, match="needs --weights"):
        load_model("xai.zoo.cnn:LeNet5", data="digits")
    with pytest.raises(ModelLoadError, match=r"adult-mlp/weights.safetensors does not match"):
        load_model("xai.zoo.cnn:LeNet5", weights=ZOO / "adult-mlp" / "weights.safetensors",
                   data="digits")


def test_user_model_needs_data(lenet, tmp_path):
    path = tmp_path / "m.pt"
    torch.jit.script(lenet.module).save(str(path))
    with pytest.raises(ModelLoadError, match="--data"):
        load_model(str(path))


def test_unknown_model_and_garbage_file(tmp_path):
    with pytest.raises(UnknownNameError, match="lenet"):
        load_model("no-such-model")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00\x01 definitely not torch")
    with pytest.raises(ModelLoadError, match="junk.pt"):
        load_model(str(junk), data="digits")


def test_torch_export_program(lenet, digits_test, tmp_path):
    program = torch.export.export(lenet.module, (digits_test.x[:2],),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    path = tmp_path / "lenet.pt2"
    torch.export.save(program, str(path))
    handle = load_model(str(path), data="digits")
    assert handle.source.startswith("export:")
    assert torch.allclose(handle.predict(digits_test.x[:16]), _reference_logits(lenet, digits_test),
                          atol=1e-5)
