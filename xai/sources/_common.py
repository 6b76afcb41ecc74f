"""What every model source shares: reading weights safely, class names, preparing bundled data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from xai.errors import DataError, ModelLoadError
from xai.zoo.handle import ImageConfig, ModelHandle

#: ImageNet's mean and std: what torchvision and most timm architectures normalise with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def read_state_dict(weights: str | Path | None, what: str, trust_pickle: bool) -> tuple[dict[str, torch.Tensor], Path]:
    """A state dict of tensors from safetensors or a ``weights_only`` torch file; pickles need trust.

    Raises
    ------
    ModelLoadError
        No file, an unreadable file, or a pickle of Python objects without ``trust_pickle``.
    """
    from xai.zoo._archive import read_verified_zip
    from xai.zoo.loaders import _torch_load

    if weights is None:
        raise ModelLoadError(f"{what} needs --weights FILE (safetensors or a state dict)")
    path = Path(weights)
    if not path.is_file():
        raise ModelLoadError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path))), path
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelLoadError(f"{path}: not a readable safetensors file ({exc})") from None
    raw, _ = read_verified_zip(path)
    state = _torch_load(path, raw, trust_pickle)
    if isinstance(state, nn.Module):
        state = state.state_dict()
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):  # a training checkpoint
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path} does not hold a state dict of tensors")
    return {str(k).removeprefix("module."): v for k, v in state.items()}, path


def classifier_width(model: nn.Module, state: dict[str, torch.Tensor], default: int) -> int | None:
    """Number of classes in ``state``: dim 0 of the parameter that has ``default`` outputs in ``model``.

    The classifier is the last parameter whose first dimension is the architecture's default
    class count; its shape in the weights file says how many classes they were trained for.
    """
    keys = [k for k, v in model.state_dict().items()
            if v.ndim >= 1 and v.shape[0] == default and k.endswith((".weight", ".bias"))]
    for key in reversed(keys):
        if key in state and state[key].ndim >= 1:
            return int(state[key].shape[0])
    return None


def class_names_for(classes: Sequence[str] | None, n: int, what: str) -> tuple[str, ...]:
    """``classes`` checked against ``n`` outputs, else ``class 0`` ... ``class n-1``."""
    if classes is None:
        return tuple(f"class {i}" for i in range(n))
    names = tuple(str(c) for c in classes)
    if len(names) != n:
        raise ModelLoadError(f"{what} scores {n} classes but {len(names)} class names were given")
    return names


def load_into(model: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> None:
    """``model.load_state_dict(state)`` with the zoo's one-line report of mismatched tensors."""
    from xai.zoo._store import check_state_dict

    check_state_dict(model, state, path)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = (str(exc).strip().splitlines() or ["mismatch"])[0][:300]
        raise ModelLoadError(f"{path}: does not fit {what}: {first}") from None


def prepare_images(x: torch.Tensor, config: ImageConfig) -> torch.Tensor:
    """Raw images ``(N, C, H, W)`` in ``[0, 1]`` -> the model's inputs: channels, size, mean and std.

    One channel is repeated to three (digits on an RGB model); the size is changed by
    bilinear interpolation (antialiased when shrinking).
    """
    channels, height, width = config.input_size
    if x.ndim != 4:
        raise DataError(f"images must be (N, C, H, W), got {tuple(x.shape)}")
    if x.shape[1] == 1 and channels == 3:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[1] != channels:
        raise DataError(f"the model takes {channels}-channel images, the data has {x.shape[1]} channels")
    x = x.float()
    if tuple(x.shape[-2:]) != (height, width):
        mode = "bicubic" if config.interpolation == "bicubic" else "bilinear"
        x = F.interpolate(x, size=(height, width), mode=mode, align_corners=False, antialias=True).clamp(0, 1)
    mean = torch.tensor(config.mean, dtype=x.dtype).view(1, -1, 1, 1)
    std = torch.tensor(config.std, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - mean) / std


def prepare_bundled(handle: ModelHandle, data: Any) -> Any:
    """A bundled dataset made ready for a model of another source (raw images / our own token ids).

    - an image model with an :class:`~xai.zoo.handle.ImageConfig` gets the images resized and
      normalised with its own mean and std;
    - a text model with its own tokenizer (Hugging Face) gets the rows' text (the ``text``
      group column of the bundled text sets) encoded by that tokenizer.

    Other handles (zoo entries, factories) get ``data`` unchanged. Only bundled data goes
    through here: user data sources preprocess with the handle's config themselves.
    """
    from dataclasses import replace

    config = handle.image_config
    if config is not None and data.modality == "image":
        return replace(data, x=prepare_images(data.x, config))
    tokenizer: Any = getattr(handle.module, "tokenizer", None)
    if handle.modality == "text" and getattr(tokenizer, "hugging_face", False) and data.modality == "text":
        if "text" not in data.groups.columns:
            raise DataError(f"{data.name} holds token ids of another vocabulary and no text column to "
                            f"encode with {handle.name}'s tokenizer; use a text dataset such as sentiment-text")
        return replace(data, x=tokenizer.encode([str(t) for t in data.groups["text"]]))
    return data
