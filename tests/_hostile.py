"""Crafted hostile model files for the trust tests: each would create ``marker`` if loaded unsafely."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import torch

from xai.zoo.cnn import LeNet5


class _Touch:
    """Unpickling this creates (opens for writing) the marker file: stands for any code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def marker_pickle(marker: Path) -> bytes:
    return pickle.dumps(_Touch(marker), protocol=2)


def export_lenet(path: Path, module: torch.nn.Module | None = None, *, dynamic: bool = True) -> Path:
    """A genuine ``torch.export`` program of LeNet (batch dimension dynamic unless ``dynamic=False``)."""
    module = (module or LeNet5()).eval()
    shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic else None
    program = torch.export.export(module, (torch.zeros(2, 1, 32, 32),), dynamic_shapes=shapes)
    torch.export.save(program, str(path))
    return path


def rewrite_zip(path: Path, edit) -> None:
    """Rewrite every entry of the zip at ``path`` through ``edit(relative_name, bytes) -> bytes``."""
    with zipfile.ZipFile(path) as src:
        items = [(info, src.read(info.filename)) for info in src.infolist()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as dst:
        for info, data in items:
            rel = info.filename.split("/", 1)[1]
            dst.writestr(info.filename, edit(rel, data))
    path.write_bytes(buffer.getvalue())


def pickled_weight_pt2(path: Path, marker: Path, module: torch.nn.Module | None = None) -> Path:
    """A ``.pt2`` whose first weight is marked ``use_pickle`` and holds the marker pickle.

    torch 2.14 reads such a weight with ``torch.load(weights_only=False)``.
    """
    export_lenet(path, module)
    target: dict[str, str] = {}

    def edit(rel: str, data: bytes) -> bytes:
        if rel.endswith("_weights_config.json"):
            config = json.loads(data)
            fqn = sorted(config["config"])[0]
            config["config"][fqn]["use_pickle"] = True
            target["file"] = "data/weights/" + config["config"][fqn]["path_name"]
            return json.dumps(config).encode()
        return data

    rewrite_zip(path, edit)
    rewrite_zip(path, lambda rel, data: marker_pickle(marker) if rel == target["file"] else data)
    return path


def guards_code_pt2(path: Path, marker: Path) -> Path:
    """A ``.pt2`` (no pickle at all) whose program carries guard code: torch ``exec``s it in ``.module()``."""
    export_lenet(path)

    def edit(rel: str, data: bytes) -> bytes:
        if rel.startswith("models/") and rel.endswith(".json"):
            program = json.loads(data)
            program["guards_code"] = [f"open({str(marker)!r}, 'w') is not None"]
            return json.dumps(program).encode()
        return data

    rewrite_zip(path, edit)
    return path


def sympy_expr_pt2(path: Path, marker: Path) -> Path:
    """A ``.pt2`` whose symbolic shape expression is Python that ``sympy.sympify`` evals on load."""
    export_lenet(path)
    payload = f"Symbol('s77', positive=True, integer=True) + 0*len(str(open({str(marker)!r}, 'w')))"

    def edit(rel: str, data: bytes) -> bytes:
        if rel.startswith("models/") and rel.endswith(".json"):
            return data.decode().replace("Symbol('s77', positive=True, integer=True)",
                                         payload.replace("'", "\\u0027")).encode()
        return data

    rewrite_zip(path, edit)
    return path


def flip_stored_byte(path: Path, entry_suffix: str) -> None:
    """Flip one byte inside the stored (uncompressed) data of the entry ending with ``entry_suffix``."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(entry_suffix))
    assert info.compress_type == zipfile.ZIP_STORED and info.file_size > 8
    # local header: 30 bytes + name + extra; read the lengths from the local header itself
    name_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    raw[start + info.file_size // 2] ^= 0x55
    path.write_bytes(bytes(raw))


def genuine_pickled_weight_pt2(path: Path, module: torch.nn.Module) -> Path:
    """A working ``.pt2`` whose first weight is stored the way torch stores tensor subclasses: pickled."""
    export_lenet(path, module)
    target: dict[str, str] = {}

    def edit(rel: str, data: bytes) -> bytes:
        if rel.endswith("_weights_config.json"):
            config = json.loads(data)
            fqn = sorted(config["config"])[0]
            config["config"][fqn]["use_pickle"] = True
            target["file"], target["fqn"] = "data/weights/" + config["config"][fqn]["path_name"], fqn
            return json.dumps(config).encode()
        return data

    def pickled(rel: str, data: bytes) -> bytes:
        if rel != target["file"]:
            return data
        buffer = io.BytesIO()
        torch.save(torch.nn.Parameter(module.state_dict()[target["fqn"]].clone()), buffer)
        return buffer.getvalue()

    rewrite_zip(path, edit)
    rewrite_zip(path, pickled)
    return path
