from __future__ import annotations

import json
import warnings
import zipfile

import pytest
import torch

from xai.errors import ModelLoadError, UnknownNameError
from xai.zoo import check_model_on_data, load_model
from xai.zoo._archive import _safe_expression, _safe_guard, check_pt2, read_verified_zip
from xai.zoo.cnn import LeNet5

from .._hostile import (
    export_lenet,
    flip_stored_byte,
    genuine_pickled_weight_pt2,
    guards_code_pt2,
    marker_pickle,
    pickled_weight_pt2,
    rewrite_zip,
    sympy_expr_pt2,
)
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


# --- trust: nothing from a model file runs without trust_pickle=True --------------------------

def test_pt2_with_a_pickled_weight_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    path = pickled_weight_pt2(tmp_path / "evil.pt2", marker)
    with pytest.raises(ModelLoadError, match=r"use_pickle.*--trust-pickle"):
        load_model(str(path), data="digits")
    assert not marker.exists()
    # the file is really hostile: trusted, torch unpickles the payload (which is no tensor)
    with pytest.raises(ModelLoadError):
        load_model(str(path), data="digits", trust_pickle=True)
    assert marker.exists()


def test_pt2_with_a_genuine_pickled_weight_loads_only_when_trusted(lenet, digits_test, tmp_path):
    path = genuine_pickled_weight_pt2(tmp_path / "pickled.pt2", lenet.module)
    with pytest.raises(ModelLoadError, match="use_pickle"):
        load_model(str(path), data="digits")
    handle = load_model(str(path), data="digits", trust_pickle=True)
    assert torch.allclose(handle.predict(digits_test.x[:16]), _reference_logits(lenet, digits_test), atol=1e-5)


@pytest.mark.parametrize(("craft", "message"), [
    (guards_code_pt2, "guard code"),
    (sympy_expr_pt2, "shape expression"),
])
def test_pt2_code_outside_pickles_is_refused(craft, message, digits_test, tmp_path):
    marker = tmp_path / "marker"
    path = craft(tmp_path / "evil.pt2", marker)
    with pytest.raises(ModelLoadError, match=message):
        load_model(str(path), data="digits")
    assert not marker.exists()
    # trusted, torch runs the code (guards on the first forward): the crafted file is real
    try:
        load_model(str(path), data="digits", trust_pickle=True).predict(digits_test.x[:2])
    except Exception:  # noqa: BLE001 - whether the mangled program still runs does not matter here
        pass
    assert marker.exists()


def test_pt2_with_object_constants_or_unsafe_sample_inputs_is_refused(tmp_path):
    path = export_lenet(tmp_path / "m.pt2")
    rewrite_zip(path, lambda rel, data: marker_pickle(tmp_path / "marker")
                if rel.startswith("data/sample_inputs/") else data)
    with pytest.raises(ModelLoadError, match="sample_inputs.*beyond plain tensors"):
        load_model(str(path), data="digits")
    assert not (tmp_path / "marker").exists()
    path = export_lenet(tmp_path / "c.pt2")

    def add_constant(rel: str, data: bytes) -> bytes:
        if rel.endswith("_constants_config.json"):
            return json.dumps({"config": {"c": {"path_name": "opaque_obj_0", "is_param": False,
                                                "use_pickle": False, "tensor_meta": None}}}).encode()
        return data

    rewrite_zip(path, add_constant)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("c/data/constants/opaque_obj_0", marker_pickle(tmp_path / "marker"))
    with pytest.raises(ModelLoadError, match="opaque_obj_0"):
        load_model(str(path), data="digits")
    assert not (tmp_path / "marker").exists()


def test_corrupt_archives_are_refused_by_their_crc(lenet, tmp_path):
    script = tmp_path / "lenet_ts.pt"
    torch.jit.script(lenet.module).save(str(script))
    with zipfile.ZipFile(script) as archive:  # the largest stored entry: weights
        biggest = max(archive.infolist(), key=lambda i: i.file_size).filename
    flip_stored_byte(script, biggest)
    with pytest.raises(ModelLoadError, match="CRC"):
        load_model(str(script), data="digits")
    program = export_lenet(tmp_path / "lenet.pt2", lenet.module)
    flip_stored_byte(program, "weight_4")
    with pytest.raises(ModelLoadError, match="CRC"):
        load_model(str(program), data="digits")


def test_broken_user_code_and_files_are_one_clean_error(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "trust_raises.py").write_text("def build():\n    raise ValueError('no GPU here')\n")
    (tmp_path / "trust_syntax.py").write_text("def build(:\n")
    (tmp_path / "trust_nameerror.py").write_text("undefined_name + 1\n")
    (tmp_path / "trust_value.py").write_text("build = 3\n")
    cases = [("trust_raises:build", r"trust_raises:build\(\) failed: ValueError: no GPU here"),
             ("trust_syntax:build", "cannot import 'trust_syntax'.*SyntaxError"),
             ("trust_nameerror:build", "cannot import 'trust_nameerror'.*NameError"),
             ("trust_value:build", "not a callable")]
    for spec, message in cases:
        with pytest.raises(ModelLoadError, match=message):
            load_model(spec, weights=tmp_path / "w.safetensors", data="digits")
    text = tmp_path / "model.txt"
    text.write_text("not a model\n")
    with pytest.raises(ModelLoadError, match="not a PyTorch file"):
        load_model(str(text), data="digits")


def test_weights_with_a_zoo_model_or_a_model_file_is_an_error(lenet, tmp_path):
    with pytest.raises(ModelLoadError, match="--weights applies to package.module:factory"):
        load_model("lenet", weights=ZOO / "lenet" / "weights.safetensors")
    with pytest.raises(ModelLoadError, match="--weights applies to package.module:factory"):
        load_model(str(ZOO / "lenet"), weights=ZOO / "lenet" / "weights.safetensors")
    script = tmp_path / "m.pt"
    torch.jit.script(lenet.module).save(str(script))
    with pytest.raises(ModelLoadError, match="--weights applies"):
        load_model(str(script), weights=ZOO / "lenet" / "weights.safetensors", data="digits")


def test_a_zoo_dir_that_does_not_exist_is_an_error_and_nothing_is_created(tmp_path, monkeypatch):
    missing = tmp_path / "zooo"
    with pytest.raises(ModelLoadError, match=r"--zoo-dir .*zooo: no such folder"):
        load_model("adult-mlp", zoo_dir=missing, train_missing=True)
    monkeypatch.setenv("XAI_ZOO_DIR", str(missing))
    with pytest.raises(ModelLoadError, match=r"\$XAI_ZOO_DIR=.*zooo: no such folder"):
        load_model("adult-mlp", train_missing=True)
    assert not missing.exists()


def test_an_existing_empty_zoo_dir_trains_the_missing_entry(tmp_path):
    handle = load_model("adult-mlp", zoo_dir=tmp_path, train_missing=True)
    assert (tmp_path / "adult-mlp" / "weights.safetensors").is_file()
    assert handle.name == "adult-mlp"


def test_loading_is_quiet(lenet, tmp_path, capfd):
    script = tmp_path / "m.pt"
    torch.jit.script(lenet.module).save(str(script))
    program = export_lenet(tmp_path / "m.pt2", lenet.module)
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # every warning, even one shown before in this process
        load_model(str(script), data="digits")
        load_model(str(program), data="digits")
        warnings.warn("the recorder works", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["the recorder works"]
    assert capfd.readouterr().err == ""


# --- first batch: the model must fit the data ---------------------------------------------------

class _Nan(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :10] * float("nan")


@pytest.mark.parametrize(("build", "message"), [
    (lambda: torch.jit.trace(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)),
                             torch.zeros(2, 1, 8, 8)), r"fails on inputs of shape \(4, 1, 32, 32\)"),
    (lambda: torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1024, 3))),
     r"outputs of shape \(4, 3\).*expected \(4, 10\)"),
    (lambda: torch.jit.script(_Nan()), "not finite"),
])
def test_first_batch_check_refuses_a_model_that_does_not_fit(build, message, digits_test, tmp_path):
    path = tmp_path / "m.pt"
    build().save(str(path))
    handle = load_model(str(path), data="digits")
    with pytest.raises(ModelLoadError, match=message):
        check_model_on_data(handle, digits_test)


def test_first_batch_check_catches_a_static_batch_export(lenet, digits_test, tmp_path):
    program = export_lenet(tmp_path / "static.pt2", lenet.module, dynamic=False)  # exported on 2 rows
    handle = load_model(str(program), data="digits")
    with pytest.raises(ModelLoadError, match=r"static on digits: the model fails on inputs of shape \(4, 1, 32, 32\)"):
        check_model_on_data(handle, digits_test)
    dynamic = load_model(str(export_lenet(tmp_path / "dynamic.pt2", lenet.module)), data="digits")
    check_model_on_data(dynamic, digits_test)  # passes: any batch size
    check_model_on_data(lenet, digits_test)


class _TwoInputs(torch.nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = torch.cat([x, y], 0)
        return z.reshape(z.shape[0] // 2, -1).sum(1)


def test_pt2_shape_guards_and_derived_sizes_load_untrusted(tmp_path):
    """torch writes guard code and sympy expressions for derived sizes: plain ones pass the scan."""
    dims = ({0: torch.export.Dim("b", min=2, max=100)}, {0: torch.export.Dim("c", min=2, max=100)})
    program = torch.export.export(_TwoInputs(), (torch.randn(4, 3), torch.randn(6, 3)), dynamic_shapes=dims)
    path = tmp_path / "derived.pt2"
    torch.export.save(program, str(path))
    with zipfile.ZipFile(path) as archive:
        model = json.loads(archive.read(next(n for n in archive.namelist() if "/models/" in n)))
    assert model["guards_code"]  # the case is real: torch did write guards
    _raw, archive = read_verified_zip(path)
    check_pt2(path, archive)  # no refusal
    module = torch.export.load(str(path)).module()
    assert module(torch.ones(4, 3), torch.ones(2, 3)).tolist() == [6.0, 6.0, 6.0]


@pytest.mark.parametrize("guard", [
    "open('m', 'w') is not None", "L['x'].__class__", "L['x'].size()[0] == 2 # c", "L['x'].size()[0] == 2\n",
    "math.system(1)", "(lambda: 1)()", "getattr(L, 'x')", "L['a b'].size()[0] == 1", "__import__('os')",
])
def test_guards_other_than_shape_checks_are_unsafe(guard):
    assert not _safe_guard(guard)


@pytest.mark.parametrize("guard", ["L['x'].size()[0] == 2", "math.isnan(L['x'])", "L['x'] == math.inf",
                                   "L['x'].stride()[1] == 1 and L['y'].dim() == 2"])
def test_shape_check_guards_are_safe(guard):
    assert _safe_guard(guard)


@pytest.mark.parametrize(("expression", "safe"), [
    ("Symbol('s77', positive=True, integer=True)", True),
    ("FloorDiv(Add(Symbol('s1', integer=True), Integer(3)), Integer(2))", True),
    ("Float('1.5', precision=53)", True),
    ("s0*2 + Max(s1, 1)", True),
    ("Symbol('s1') + 0*len(str(open('m', 'w')))", False),
    ("lambdify(s0, 'x')", False),
    ("Symbol('s1').__class__", False),
    ("Symbol('a b')", False),
])
def test_shape_expressions_must_be_plain_arithmetic(expression, safe):
    assert _safe_expression(expression) is safe
