"""Crafted hostile model files and specs (issue 17): each is refused with exit 2 and one line.

The pickle payloads create a marker file when unpickled (and then hand back what the
loader expects, so a run that executes them can even finish with exit 0, as the issue
found); every test asserts the marker does NOT exist. Each test first writes a good
report into the output folder and checks that the refused run left it byte for byte.
"""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from ._contract import assert_contract, describe, invoke, snapshot

GERMAN_FEATURES = 59  # german credit rows: one-hot and scaled columns (xai.datasets)


class Payload:
    """Unpickling this runs ``code`` (creating the marker) and returns its value."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return eval, (self.code,)


def _payload(marker: Path, value: str) -> bytes:
    """A ``torch.save`` file whose unpickling creates ``marker`` and evaluates to ``value``."""
    code = f"(open({str(marker)!r}, 'w').close(), {value})[1]"
    path = marker.with_suffix(".payload")
    torch.save(Payload(code), path)
    return path.read_bytes()


def _rewrite_zip(path: Path, replace: dict[str, bytes]) -> None:
    """Rewrite the archive with some members' bytes replaced (by name suffix), stored like torch stores them."""
    with zipfile.ZipFile(path) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members:
            for suffix, new in replace.items():
                if name.endswith(suffix):
                    data = new
            archive.writestr(name, data)


def _linear(outputs: int = 2) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(GERMAN_FEATURES, outputs)).eval()


def _export(path: Path) -> Path:
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(_linear(), (torch.randn(4, GERMAN_FEATURES),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    return path


def _pt2_pickled_weight(folder: Path, marker: Path) -> Path:
    """A torch.export archive whose bias is stored as a pickle (``use_pickle``): torch unpickles it freely."""
    path = _export(folder / "weights.pt2")
    with zipfile.ZipFile(path) as archive:
        config_name = next(n for n in archive.namelist() if n.endswith("model_weights_config.json"))
        config = json.loads(archive.read(config_name))
    bias = config["config"]["0.bias"]
    bias["use_pickle"] = True
    parameter = "__import__('torch').nn.Parameter(__import__('torch').zeros(2))"
    _rewrite_zip(path, {config_name.split("/", 1)[1]: json.dumps(config).encode(),
                        f"weights/{bias['path_name']}": _payload(marker, parameter)})
    return path


def _pt2_pickled_sample_inputs(folder: Path, marker: Path) -> Path:
    """A torch.export archive whose sample inputs fail the weights-only load: torch retries with full unpickling."""
    path = _export(folder / "samples.pt2")
    inputs = f"((__import__('torch').zeros(4, {GERMAN_FEATURES}),), {{}})"
    _rewrite_zip(path, {"sample_inputs/model.pt": _payload(marker, inputs)})
    return path


def _torchscript(module: nn.Module, path: Path) -> Path:
    torch.jit.script(module).save(str(path))
    return path


class NaNOut(nn.Module):
    """A 2-class model on german rows whose every output is NaN."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 59) -> (B, 2)
        return torch.full((x.shape[0], 2), float("nan")) + 0 * x[:, :1]


class Flat3(nn.Module):
    """Three outputs from any input: too few for 10-class digits, too many for 2-class german."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.fc = nn.Linear(features, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, ...) -> (B, 3)
        return self.fc(x.flatten(1))


def _bad_crc(folder: Path) -> Path:
    """A TorchScript archive with one weight byte changed after the zip recorded its CRC."""
    path = _torchscript(_linear(), folder / "bad-crc.pt")
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("data/0"))
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len  # first byte of the (stored) weight tensor
    raw[start + 3] ^= 0x40  # the exponent byte of the first float32 weight: the value changes a lot
    path.write_bytes(bytes(raw))
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is not None  # the zip itself knows: the CRC no longer matches
    return path


@pytest.fixture
def previous(tmp_path: Path) -> tuple[Path, dict[str, tuple[int, int]], dict[str, bytes]]:
    """An output folder holding a good report (a predictions audit), with its files' stats and bytes."""
    csv = tmp_path / "preds.csv"
    csv.write_text("label,pred,sex\n" + "".join(f"{i % 2},{(i // 3) % 2},{'FM'[i % 4 == 0]}\n" for i in range(40)))
    out = tmp_path / "reports"
    args = ["fairness", "--data", str(csv), "--y-true", "label", "--y-pred", "pred", "-s", "sex", "--n-boot", "0",
            "-o", str(out)]
    result = invoke(args, family="hostile")
    assert result.exit_code == 0, describe(result, args)
    contents = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert any(name.endswith(".html") for name in contents)
    return out, snapshot(out), contents


def _refused(args: list[str], previous: tuple[Path, dict[str, tuple[int, int]], dict[str, bytes]],
             marker: Path | None = None) -> None:
    out, stats, contents = previous
    result = invoke([*args, "-o", str(out)], family="hostile")
    assert_contract(result, args, codes={2}, outputs=[out])
    if marker is not None:
        assert not marker.exists(), "the pickle payload ran" + describe(result, args)
    assert snapshot(out) == stats, "the refused run touched the previous report" + describe(result, args)
    assert {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()} == contents


def _fairness(model: Path, data: str) -> list[str]:
    return ["fairness", str(model), "--data", data, "-s", "sex", "--n-boot", "0", "--device", "cpu", "--json"]


@pytest.mark.parametrize("craft", [_pt2_pickled_weight, _pt2_pickled_sample_inputs])
def test_pickle_inside_a_pt2_archive_is_refused_without_running(tmp_path, previous, craft):
    marker = tmp_path / "PWNED"
    model = craft(tmp_path, marker)
    assert not marker.exists()  # crafting never ran the payload
    _refused(_fairness(model, "german"), previous, marker)


@pytest.mark.parametrize("command", ["check", "audit"])
def test_a_spec_cannot_grant_itself_trust_in_a_pickle(tmp_path, previous, command):
    marker = tmp_path / "PWNED"
    model = tmp_path / "model.pt"
    model.write_bytes(_payload(marker, "__import__('torch').nn.Linear(59, 2)"))
    spec = tmp_path / "self-trusting.toml"
    spec.write_text(f'title = "self-trusting"\nexplain = []\nprobe = []\n[model]\nname = {json.dumps(str(model))}\n'
                    'trust_pickle = true\n[data]\nname = "german"\nsamples = 40\n')
    args = [command, str(spec), "--device", "cpu", "--json"]
    if command == "check":
        args += ["--baselines", str(tmp_path / "baselines")]
    _refused(args, previous, marker)


def test_torchscript_archive_with_a_bad_crc_is_refused(tmp_path, previous):
    _refused(_fairness(_bad_crc(tmp_path), "german"), previous)


@pytest.mark.parametrize(("data", "features"), [("german", GERMAN_FEATURES), ("digits", 32 * 32)])
def test_model_whose_outputs_do_not_match_the_classes_is_refused(tmp_path, previous, data, features):
    model = _torchscript(Flat3(features).eval(), tmp_path / "three.pt")
    args = _fairness(model, data)
    if data == "digits":  # digits has no sex column: explain instead of probing
        args = ["explain", str(model), "--data", "digits", "-m", "saliency", "-n", "2", "--device", "cpu", "--json"]
    _refused(args, previous)


def test_model_with_nan_outputs_is_refused(tmp_path, previous):
    _refused(_fairness(_torchscript(NaNOut().eval(), tmp_path / "nan.pt"), "german"), previous)


def test_the_crafted_payloads_do_run_when_torch_unpickles_freely(tmp_path):
    """Guards the tests above: torch itself runs each craft, so 'no marker' there means 'refused'."""
    marker = tmp_path / "RAN"
    path = tmp_path / "p.pt"
    path.write_bytes(_payload(marker, "1 + 1"))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    assert not marker.exists()
    assert torch.load(path, weights_only=False) == 2 and marker.exists()
    for craft in (_pt2_pickled_weight, _pt2_pickled_sample_inputs):
        marker.unlink()
        torch.export.load(str(craft(tmp_path, marker)))
        assert marker.exists(), craft.__name__
