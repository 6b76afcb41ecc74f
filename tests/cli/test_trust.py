"""The trust model end to end: hostile and mismatched model files through the CLI.

Every refusal is exit 2, exactly one ``error:`` line on stderr, no traceback, and no marker
file (each hostile file would create its marker if any of its code ran).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from xai.cli import app

from .._hostile import export_lenet, flip_stored_byte, genuine_pickled_weight_pt2, marker_pickle, pickled_weight_pt2
from ..conftest import REPO, ZOO

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def run_process(*args: str) -> subprocess.CompletedProcess[str]:
    """The real ``python -m xai`` (what a user's terminal sees on stderr, warnings included)."""
    env = {**os.environ, "XAI_ZOO_DIR": str(ZOO), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "xai", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)


def assert_refused(code: int, stdout: str, stderr: str, message: str, marker: Path | None = None) -> None:
    assert code == 2, stdout + stderr
    assert stderr.count("\n") == 1 and stderr.startswith("error: "), stderr
    assert "Traceback" not in stdout + stderr
    assert message in stderr, stderr
    if marker is not None:
        assert not marker.exists()


def refused(result, message: str, marker: Path | None = None) -> None:
    assert_refused(result.exit_code, result.stdout, result.stderr, message, marker)


def test_pt2_with_a_pickled_weight_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    path = pickled_weight_pt2(tmp_path / "evil.pt2", marker)
    done = run_process("explain", path, "--data", "digits", "-m", "saliency", "-n", "1")
    assert_refused(done.returncode, done.stdout, done.stderr, "use_pickle", marker)
    assert "--trust-pickle" in done.stderr


def test_pt2_with_a_pickled_weight_loads_with_the_flag(tmp_path, lenet):
    path = genuine_pickled_weight_pt2(tmp_path / "pickled.pt2", lenet.module)
    refused(run("explain", path, "--data", "digits", "-m", "saliency", "-n", "1"), "use_pickle")
    trusted = run("explain", path, "--data", "digits", "-m", "saliency", "-n", "1", "--trust-pickle", "--json")
    assert trusted.exit_code == 0, trusted.output


def _spec(tmp_path: Path, model: Path, *, trust: bool) -> Path:
    spec = tmp_path / ("trusting.toml" if trust else "plain.toml")
    spec.write_text(f'title = "t"\n[model]\nname = "{model}"\n' + ("trust_pickle = true\n" if trust else "")
                    + '[data]\nname = "digits"\n[[explain]]\nmethod = "saliency"\nsamples = 1\n', encoding="utf-8")
    return spec


def test_a_spec_cannot_grant_itself_trust(tmp_path):
    marker = tmp_path / "marker"
    model = tmp_path / "evil.pt"
    model.write_bytes(marker_pickle(marker))  # a pickle that creates the marker when loaded
    spec = _spec(tmp_path, model, trust=True)
    for command in ("audit", "check"):
        result = run(command, spec, "-q", "-o", tmp_path / "out")
        refused(result, "model: `trust_pickle` is not allowed in a spec", marker)
        assert "--trust-pickle on the command line" in result.stderr
    # without the key the pickle is refused; only the command-line flag opens it
    plain = _spec(tmp_path, model, trust=False)
    for command in ("audit", "check"):
        refused(run(command, plain, "-q", "-o", tmp_path / "out"), "--trust-pickle", marker)
    trusted = run("audit", plain, "-q", "-o", tmp_path / "out", "--trust-pickle")
    assert marker.exists()  # the flag really is what runs the file's code
    refused(trusted, "could not be unpickled")  # the payload is no model


@pytest.mark.parametrize("command", [
    ("explain", "-m", "saliency", "-n", "1"),
    ("fairness", "-s", "ink"),
    ("sanity", "-m", "saliency", "-n", "2"),
])
def test_commands_that_build_a_spec_take_trust_from_the_flag_only(command, tmp_path, lenet):
    whole = tmp_path / "whole.pt"
    torch.save(lenet.module, whole)
    name, *rest = command
    refused(run(name, whole, "--data", "digits", *rest), "--trust-pickle")
    trusted = run(name, whole, "--data", "digits", *rest, "--trust-pickle", "--json")
    assert trusted.exit_code == 0, trusted.output


def test_a_torchscript_archive_with_a_bad_crc_is_refused(tmp_path, lenet):
    path = tmp_path / "lenet_ts.pt"
    torch.jit.script(lenet.module).save(str(path))
    import zipfile

    with zipfile.ZipFile(path) as archive:
        biggest = max(archive.infolist(), key=lambda i: i.file_size).filename
    flip_stored_byte(path, biggest)
    refused(run("explain", path, "--data", "digits", "-m", "saliency", "-n", "1"), "fails its CRC check")


class _Nan(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :10] * float("nan")


def _broken_models(tmp_path: Path, lenet) -> dict[str, tuple[str, str]]:
    """name -> (model argument, expected message) for models that used to end in a traceback."""
    (tmp_path / "trustcli_raises.py").write_text("def build():\n    raise RuntimeError('boom')\n")
    (tmp_path / "trustcli_syntax.py").write_text("def build(:\n")
    (tmp_path / "notes.txt").write_text("just text\n")
    torch.jit.trace(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)),
                    torch.zeros(2, 1, 8, 8)).save(str(tmp_path / "small.pt"))
    torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1024, 3))).save(str(tmp_path / "three.pt"))
    torch.jit.script(_Nan()).save(str(tmp_path / "nan.pt"))
    export_lenet(tmp_path / "static.pt2", lenet.module, dynamic=False)
    return {
        "text file": (str(tmp_path / "notes.txt"), "not a PyTorch file"),
        "factory raises": ("trustcli_raises:build", "trustcli_raises:build() failed: RuntimeError: boom"),
        "syntax error": ("trustcli_syntax:build", "SyntaxError"),
        "other input size": (str(tmp_path / "small.pt"), "fails on inputs of shape (4, 1, 32, 32)"),
        "static batch": (str(tmp_path / "static.pt2"), "fails on inputs of shape (4, 1, 32, 32)"),
        "3 outputs, 10 classes": (str(tmp_path / "three.pt"), "outputs of shape (4, 3)"),
        "NaN outputs": (str(tmp_path / "nan.pt"), "not finite"),
    }


def test_broken_and_mismatched_models_are_one_line(tmp_path, monkeypatch, lenet):
    monkeypatch.syspath_prepend(str(tmp_path))
    for name, (model, message) in _broken_models(tmp_path, lenet).items():
        weights = ("--weights", ZOO / "lenet" / "weights.safetensors") if ":" in model else ()
        result = run("explain", model, *weights, "--data", "digits", "-m", "saliency", "-n", "1")
        try:
            refused(result, message)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


def test_an_audit_spec_with_a_mismatched_model_is_one_line(tmp_path):
    torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1024, 3))).save(str(tmp_path / "three.pt"))
    spec = _spec(tmp_path, tmp_path / "three.pt", trust=False)
    for command in ("audit", "check"):
        refused(run(command, spec, "-q", "-o", tmp_path / "out"), "expected (4, 10): one score per class of 10")


def test_weights_with_a_zoo_model_is_an_error():
    refused(run("explain", "lenet", "--weights", ZOO / "lenet" / "weights.safetensors", "-m", "saliency"),
            "--weights applies to package.module:factory models")


@pytest.mark.parametrize("command", [("explain", "lenet", "-m", "saliency", "-n", "1"),
                                     ("dream", "lenet", "--layer", "conv2", "--steps", "1"),
                                     ("project", "lenet", "--layer", "fc1")])
def test_a_missing_zoo_dir_is_an_error_for_every_command(command, tmp_path):
    missing = tmp_path / "zooo"
    refused(run(*command, "--zoo-dir", missing), "no such folder")
    assert not missing.exists()


def test_an_empty_zoo_dir_trains_the_entry_with_a_note(tmp_path):
    result = run("explain", "adult-mlp", "-m", "saliency", "-n", "1", "--zoo-dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert "note: zoo entry 'adult-mlp' has no weights" in result.stderr
    assert (tmp_path / "adult-mlp" / "weights.safetensors").is_file()


def test_a_torchscript_model_loads_without_noise_on_stderr(tmp_path, lenet):
    path = tmp_path / "lenet_ts.pt"
    torch.jit.script(lenet.module).save(str(path))
    done = run_process("explain", path, "--data", "digits", "-m", "saliency", "-n", "1", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
