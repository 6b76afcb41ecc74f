"""Model sources beyond the zoo: timm / torchvision architectures, Hugging Face folders, ONNX files.

Every source returns the same :class:`~xai.zoo.ModelHandle` as the zoo, with the layers a
user would pick by hand already chosen (:mod:`xai.sources.layers`). ``load_model`` in
:mod:`xai.zoo.loaders` dispatches here; timm, transformers and onnxruntime are imported
only inside the loader that needs them, so ``xai --help`` stays light.

Specs
-----
- ``timm:NAME`` / ``torchvision:NAME`` plus ``weights`` (safetensors or a state dict);
- a Hugging Face ``save_pretrained`` folder (``config.json``), optionally ``hf:FOLDER``;
- an ``.onnx`` file (optional extra ``xai-audit[onnx]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xai.zoo.handle import ModelHandle

__all__ = ["is_source", "load_source", "prepare_bundled"]

PREFIXES = ("timm:", "torchvision:", "hf:", "onnx:")


def is_source(spec: str) -> bool:
    """Whether ``spec`` names a model of one of these sources (not the zoo, not a factory)."""
    if spec.startswith(PREFIXES):
        return True
    path = Path(spec)
    if path.suffix.lower() == ".onnx":
        return True
    return path.is_dir() and (path / "config.json").is_file() and not (path / "card.json").is_file()


def load_source(spec: str, *, weights: str | Path | None = None, classes: Sequence[str] | None = None,
                trust_pickle: bool = False, trust_remote_code: bool = False,
                input_size: int | None = None) -> ModelHandle:
    """Load ``spec`` (see :func:`is_source`) into a handle on the CPU, in eval mode.

    Parameters
    ----------
    weights
        The weights of a ``timm:`` / ``torchvision:`` architecture.
    classes
        Class names (default ``class 0``, ``class 1``, ...; Hugging Face folders: their ``id2label``).
    trust_pickle
        Allow pickled weights (runs code from the file).
    trust_remote_code
        Allow a Hugging Face folder whose config asks for its own Python code (runs that code).
    input_size
        Override the image side of the architecture's data config (and ViTs' / Swins' ``img_size``).
    """
    from xai.zoo.loaders import quiet_torch

    with quiet_torch():
        return _load(spec, weights, classes, trust_pickle, trust_remote_code, input_size)


def _load(spec: str, weights: Any, classes: Sequence[str] | None, trust_pickle: bool, trust_remote_code: bool,
          input_size: int | None) -> ModelHandle:
    from xai.errors import ModelLoadError

    kind, sep, rest = spec.partition(":")
    if sep and kind == "timm":
        from xai.sources.vision import load_timm

        return load_timm(rest, weights, classes=classes, trust_pickle=trust_pickle, input_size=input_size)
    if sep and kind == "torchvision":
        from xai.sources.vision import load_torchvision

        return load_torchvision(rest, weights, classes=classes, trust_pickle=trust_pickle, input_size=input_size)
    path = Path(rest if sep and kind in ("hf", "onnx") else spec)
    if weights is not None:
        raise ModelLoadError(f"--weights applies to timm:/torchvision: architectures and package.module:factory; "
                             f"{path} holds its own weights")
    if kind == "onnx" or path.suffix.lower() == ".onnx":
        from xai.sources.onnx import load_onnx

        return load_onnx(path, classes=classes)
    from xai.sources.huggingface import load_hf

    return load_hf(path, classes=classes, trust_pickle=trust_pickle, trust_remote_code=trust_remote_code)


def prepare_bundled(handle: ModelHandle, data: Any) -> Any:
    """See :func:`xai.sources._common.prepare_bundled` (raw bundled data -> this model's inputs)."""
    from xai.sources._common import prepare_bundled as prepare

    return prepare(handle, data)
