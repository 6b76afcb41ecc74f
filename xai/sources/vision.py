"""``timm:NAME`` and ``torchvision:NAME`` plus a weights file -> a :class:`ModelHandle`.

The architecture is built with ``pretrained=False`` (nothing is downloaded) and as many
classes as the weights' classifier has; the input size, mean and std come from the
architecture's own data config (timm's ``pretrained_cfg``, torchvision's weight-enum
transforms, else ImageNet's). The layers a user would pick by hand are picked here
(:mod:`xai.sources.layers`): the CAM layer, the attention modules for rollout.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xai._typing import Task
from xai.errors import ModelLoadError
from xai.sources._common import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    class_names_for,
    classifier_width,
    load_into,
    read_state_dict,
)
from xai.sources.layers import timm_layers, torchvision_layers
from xai.zoo.handle import TARGETS_BY_TASK, ImageConfig, ModelHandle, set_eval


def load_timm(name: str, weights: str | Path | None, *, classes: Sequence[str] | None = None,
              trust_pickle: bool = False, input_size: int | None = None) -> ModelHandle:
    """``timm:NAME`` with ``weights``; ``input_size`` overrides the data config's side (and ViTs' ``img_size``)."""
    import timm

    spec = f"timm:{name}"
    if not timm.is_model(name):
        close = timm.list_models(f"*{name[:6]}*")[:8]
        raise ModelLoadError(f"unknown timm architecture {name!r}" + (f"; close: {', '.join(close)}" if close else ""))
    state, path = read_state_dict(weights, spec, trust_pickle)
    with torch.device("meta"):  # shapes only: no memory, no random init
        probe: Any = _create_timm(timm, name, {})
    kwargs: dict[str, Any] = {}
    n_classes = classifier_width(probe, state, int(probe.num_classes))
    if n_classes is None:
        raise ModelLoadError(f"{path}: no classifier weights of {spec} found (is it a {name} state dict?)")
    kwargs["num_classes"] = n_classes
    side = input_size or _vit_side(probe, state)
    if side is not None and "img_size" in _init_params(probe):
        kwargs["img_size"] = side
    model = _create_timm(timm, name, kwargs)
    load_into(model, state, path, spec)
    config = timm.data.resolve_data_config({}, model=model)
    size = (int(config["input_size"][0]), side, side) if side else tuple(int(d) for d in config["input_size"])
    image = ImageConfig(input_size=size, mean=tuple(float(m) for m in config["mean"]),  # type: ignore[arg-type]
                        std=tuple(float(s) for s in config["std"]),
                        interpolation=str(config.get("interpolation", "bilinear")))
    return _handle(spec, model, path, image, class_names_for(classes, n_classes, spec), timm_layers(model))


def load_torchvision(name: str, weights: str | Path | None, *, classes: Sequence[str] | None = None,
                     trust_pickle: bool = False, input_size: int | None = None) -> ModelHandle:
    """``torchvision:NAME`` with ``weights`` (classification models of ``torchvision.models``)."""
    import torchvision

    spec = f"torchvision:{name}"
    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        close = [k for k in known if name[:4] in k][:8]
        raise ModelLoadError(f"unknown torchvision classification model {name!r}"
                             + (f"; close: {', '.join(close)}" if close else ""))
    state, path = read_state_dict(weights, spec, trust_pickle)
    extra = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    with torch.device("meta"):  # shapes only: no memory, no random init
        probe = torchvision.models.get_model(name, weights=None, **extra)
    n_classes = classifier_width(probe, state, 1000)
    if n_classes is None:
        raise ModelLoadError(f"{path}: no classifier weights of {spec} found (is it a {name} state dict?)")
    kwargs: dict[str, Any] = {"num_classes": n_classes, **extra}
    if input_size is not None and "image_size" in _init_params(probe):
        kwargs["image_size"] = input_size
    model = torchvision.models.get_model(name, weights=None, **kwargs)
    load_into(model, state, path, spec)
    image = _torchvision_config(torchvision, name, input_size)
    return _handle(spec, model, path, image, class_names_for(classes, n_classes, spec), torchvision_layers(model))


def _create_timm(timm: Any, name: str, kwargs: dict[str, Any]) -> nn.Module:
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except Exception as exc:  # timm raises many types for options an architecture refuses
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelLoadError(f"timm could not build {name} with {kwargs}: {first}") from None


def _init_params(model: nn.Module) -> set[str]:
    return set(inspect.signature(type(model).__init__).parameters)


def _vit_side(model: nn.Module, state: dict[str, torch.Tensor]) -> int | None:
    """The image side a ViT's weights were made for, read off their position embedding."""
    pos = state.get("pos_embed")
    embed = getattr(model, "patch_embed", None)
    if pos is None or embed is None or pos.ndim != 3:
        return None
    expected = getattr(model, "pos_embed", None)
    if isinstance(expected, torch.Tensor) and tuple(expected.shape) == tuple(pos.shape):
        return None
    prefix = 0 if getattr(model, "no_embed_class", False) else int(getattr(model, "num_prefix_tokens", 1))
    patches = pos.shape[1] - prefix
    grid = round(patches ** 0.5)
    patch = embed.patch_size[0] if isinstance(embed.patch_size, tuple | list) else int(embed.patch_size)
    return int(grid * patch) if grid * grid == patches else None


def _torchvision_config(torchvision: Any, name: str, input_size: int | None) -> ImageConfig:
    """Crop size, mean and std of the architecture's weight enum (metadata only: nothing is downloaded)."""
    side, mean, std, interpolation = 224, IMAGENET_MEAN, IMAGENET_STD, "bilinear"
    try:
        transforms = torchvision.models.get_model_weights(name).DEFAULT.transforms()
        side = int(transforms.crop_size[0])
        mean, std = tuple(transforms.mean), tuple(transforms.std)
        interpolation = str(transforms.interpolation.value)
    except (ValueError, AttributeError, KeyError):  # no weight enum: ImageNet defaults
        pass
    side = input_size or side
    return ImageConfig(input_size=(3, side, side), mean=mean, std=std, interpolation=interpolation)


def _handle(spec: str, model: nn.Module, path: Path, image: ImageConfig, class_names: tuple[str, ...],
            layers: Any) -> ModelHandle:
    from xai._provenance import sha256_file

    set_eval(model)
    task: Task = "binary-classification" if len(class_names) == 2 else "classification"
    return ModelHandle(
        name=spec,
        module=model,
        task=task,
        modality="image",
        input_shape=image.input_size,
        class_names=class_names,
        source=f"{spec}+{path}",
        sha256=sha256_file(path),
        layers=layers.layers,
        targets_adapter=TARGETS_BY_TASK[task],
        attention=layers.attention,
        image_config=image,
        cam_layer=layers.cam_layer,
        layer_reshapes=layers.reshapes,
    )
