"""Load any model into a :class:`ModelHandle`: zoo entries and users' own models.

Accepted specs
--------------
- a zoo name (``lenet``) or a trained entry folder (``zoo/lenet``);
- a TorchScript file (``torch.jit.save``) or a ``torch.export`` program (``.pt2``);
- ``package.module:factory`` plus a weights file (safetensors, or a state dict that
  ``torch.load(weights_only=True)`` accepts).

A pickled whole model is refused unless ``trust_pickle=True``: unpickling runs code.
"""

from __future__ import annotations

import importlib
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn

from xai._provenance import sha256_file, sha256_state_dict
from xai.datasets import load_dataset
from xai.errors import ModelLoadError, UnknownNameError
from xai.zoo._entry import MODELS, ZooEntry, get_entry
from xai.zoo._store import (
    CARD_FILE,
    WEIGHTS_FILE,
    check_state_dict,
    entry_dir,
    is_trained,
    load_state_into,
    read_card,
    train_entry,
    zoo_root,
)
from xai.zoo.handle import TARGETS_BY_TASK, ModelHandle, arg_max, set_eval

_EXPLAINABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.MultiheadAttention)


def load_model(
    spec: str,
    *,
    weights: str | Path | None = None,
    data: str | None = None,
    trust_pickle: bool = False,
    zoo_dir: str | Path | None = None,
    train_missing: bool = False,
    seed: int = 0,
    device: str = "auto",
    console: Console | None = None,
) -> ModelHandle:
    """Resolve ``spec`` to a model handle on the CPU, in eval mode.

    Parameters
    ----------
    data
        Bundled dataset that gives a user model its task, input shape and classes
        (zoo entries know their own).
    train_missing
        Train a zoo entry that has no weights yet instead of failing.
    """
    path = Path(spec)
    if spec in MODELS:
        return _load_zoo(spec, zoo_dir, train_missing, seed, device, console)
    if path.is_dir():
        if not (path / CARD_FILE).is_file():
            raise ModelLoadError(f"{path} is a folder without {CARD_FILE}; a zoo entry folder "
                                 f"holds {WEIGHTS_FILE} and {CARD_FILE}")
        name = read_card(path.name, path.parent).get("name", path.name)
        return _load_zoo(str(name), path.parent, False, seed, device, console)
    if _looks_like_factory(spec):
        return _load_factory(spec, weights, data, trust_pickle)
    if path.is_file():
        return _load_file(path, data, trust_pickle)
    if weights is not None and not path.exists():
        raise ModelLoadError(f"{spec!r} is neither a zoo name nor package.module:factory")
    raise UnknownNameError("model", spec, MODELS.names())


def _load_zoo(name: str, zoo_dir: str | Path | None, train_missing: bool, seed: int,
              device: str, console: Console | None) -> ModelHandle:
    entry = get_entry(name)
    if entry.pretrained is not None:
        return _load_pretrained(name, zoo_dir)
    if not is_trained(name, zoo_dir):
        if not train_missing:
            root = zoo_root(zoo_dir)  # the hint trains into the folder that was searched
            where = "" if root == Path("zoo") else f" --zoo-dir {root}"
            raise ModelLoadError(f"zoo entry {name!r} is not trained in {entry_dir(name, zoo_dir)};"
                                 f" run `xai zoo train {name}{where}`")
        if console is not None:
            console.print(f"[dim]training zoo entry {name!r} (no weights yet)...[/]")
        train_entry(name, seed=seed, device=device, zoo_dir=zoo_dir, console=console)
    folder = entry_dir(name, zoo_dir)
    module = entry.build()
    load_state_into(module, folder / WEIGHTS_FILE)
    return _entry_handle(entry, module, source=f"zoo:{folder}", sha256=sha256_file(folder / WEIGHTS_FILE),
                         card=read_card(name, zoo_dir))


def _load_pretrained(name: str, zoo_dir: str | Path | None) -> ModelHandle:
    """A zoo entry whose weights ship in an installed package (the card is optional)."""
    entry = get_entry(name)
    assert entry.pretrained is not None
    module = entry.build()
    digest = entry.pretrained.load(module)
    card = read_card(name, zoo_dir) if (entry_dir(name, zoo_dir) / CARD_FILE).is_file() else None
    return _entry_handle(entry, module, source=f"pretrained:{entry.pretrained.source}", sha256=digest, card=card)


def _entry_handle(entry: ZooEntry, module: nn.Module, *, source: str, sha256: str,
                  card: dict[str, Any] | None) -> ModelHandle:
    """The handle of a zoo entry whose weights are loaded into ``module`` (put in eval mode)."""
    module.eval()
    input_shape = entry.input_shape
    if input_shape is None:
        input_shape = tuple(load_dataset(entry.dataset, "test").x.shape[1:])
    return ModelHandle(
        name=entry.name,
        module=module,
        task=entry.task,
        modality=entry.modality,
        input_shape=input_shape,
        class_names=entry.class_names,
        source=source,
        sha256=sha256,
        dataset=entry.dataset,
        layers=entry.layers,
        card=card,
        targets_adapter=entry.targets or TARGETS_BY_TASK[entry.task],
        attention=entry.attention,
        target_names=entry.target_names,
        predicted_target=entry.predicted_target or arg_max,
        evaluate=entry.evaluate,
        preprocess=_tokenizer_encode(module),
        split_modalities=entry.split_modalities,
    )


def _tokenizer_encode(module: nn.Module) -> Callable[..., torch.Tensor] | None:
    """``module.tokenizer.encode`` for text models that carry a tokenizer, else ``None``."""
    encode = getattr(getattr(module, "tokenizer", None), "encode", None)
    return encode if callable(encode) else None


def _looks_like_factory(spec: str) -> bool:
    module, sep, attr = spec.partition(":")
    return bool(sep) and bool(attr) and all(p.isidentifier() for p in module.split("."))


def _user_handle(name: str, module: nn.Module, source: str, sha256: str,
                 data: str | None) -> ModelHandle:
    if data is None:
        raise ModelLoadError(f"{name}: a model outside the zoo needs --data NAME (a bundled "
                             "dataset) to know its task, inputs and classes")
    dataset = load_dataset(data, "test")
    set_eval(module)
    layers = tuple(n for n, m in module.named_modules() if isinstance(m, _EXPLAINABLE))
    task = "binary-classification" if len(dataset.class_names) == 2 else "classification"
    return ModelHandle(
        name=name,
        module=module,
        task=task,
        modality=dataset.modality,
        input_shape=tuple(dataset.x.shape[1:]),
        class_names=dataset.class_names,
        source=source,
        sha256=sha256,
        dataset=data,
        layers=layers,
        targets_adapter=TARGETS_BY_TASK[task],
        preprocess=_tokenizer_encode(module),
    )


def _load_factory(spec: str, weights: str | Path | None, data: str | None,
                  trust_pickle: bool) -> ModelHandle:
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise ModelLoadError(f"cannot import {module_name!r} for {spec!r}: {exc}") from None
    except AttributeError:
        raise ModelLoadError(f"{module_name!r} has no attribute {attr!r}") from None
    try:
        model = factory()
    except TypeError as exc:
        raise ModelLoadError(f"{spec} must be callable with no arguments: {exc}") from None
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"{spec}() returned {type(model).__name__}, not a torch.nn.Module")
    if weights is None:
        raise ModelLoadError(f"{spec} needs --weights FILE (safetensors or a state dict)")
    path = Path(weights)
    if not path.is_file():
        raise ModelLoadError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        load_state_into(model, path)
    else:
        state = _torch_load(path, trust_pickle)
        if isinstance(state, nn.Module):
            state = state.state_dict()
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                                  for v in state.values()):
            raise ModelLoadError(f"{path} does not hold a state dict of tensors")
        check_state_dict(model, state, path)
        model.load_state_dict(state)
    return _user_handle(spec, model, f"factory:{spec}+{path}", sha256_file(path), data)


def _load_file(path: Path, data: str | None, trust_pickle: bool) -> ModelHandle:
    if path.suffix == ".pt2":
        try:
            module = torch.export.load(str(path)).module()
        except Exception as exc:  # torch.export raises many types for a bad file
            raise ModelLoadError(f"{path}: not a torch.export program ({exc})") from None
        return _user_handle(path.stem, module, f"export:{path}", sha256_file(path), data)
    if path.suffix == ".safetensors":
        raise ModelLoadError(f"{path} holds weights only; give the architecture as "
                             "package.module:factory and pass this file with --weights")
    if _is_torchscript(path):
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as exc:
            raise ModelLoadError(f"{path}: broken TorchScript archive ({exc})") from None
        return _user_handle(path.stem, module, f"torchscript:{path}", sha256_file(path), data)
    loaded = _torch_load(path, trust_pickle)
    if isinstance(loaded, nn.Module):
        return _user_handle(path.stem, loaded, f"pickle:{path}", sha256_file(path), data)
    if isinstance(loaded, dict):
        raise ModelLoadError(f"{path} holds a state dict; give the architecture as "
                             "package.module:factory and pass this file with --weights")
    raise ModelLoadError(f"{path} holds a {type(loaded).__name__}, not a model")


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.split("/", 1)[-1].startswith(("code/", "constants.pkl"))
                   for n in archive.namelist())


def _torch_load(path: Path, trust_pickle: bool) -> object:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if not trust_pickle:
            raise ModelLoadError(
                f"{path} is a pickle that holds Python objects beyond tensors; loading it "
                "could run arbitrary code. Save a state dict (safetensors) or TorchScript "
                "instead, or pass --trust-pickle if you trust its source"
            ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise ModelLoadError(f"{path}: not a PyTorch file ({exc})") from None
    try:
        return torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:  # unpickling user code can raise anything
        raise ModelLoadError(f"{path}: could not be unpickled ({exc})") from None


def handle_hash(module: nn.Module) -> str:
    """Hash of a module's current weights (for models built in memory)."""
    return sha256_state_dict(module)
