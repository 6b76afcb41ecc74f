"""Load any model into a :class:`ModelHandle`: zoo entries and users' own models.

Accepted specs
--------------
- a zoo name (``lenet``) or a trained entry folder (``zoo/lenet``);
- a TorchScript file (``torch.jit.save``) or a ``torch.export`` program (``.pt2``);
- ``package.module:factory`` plus a weights file (safetensors, or a state dict that
  ``torch.load(weights_only=True)`` accepts).

A pickled whole model is refused unless ``trust_pickle=True``: unpickling runs code. So is a
``.pt2`` archive that torch would read with pickle (or whose program would be ``exec``-ed),
see :mod:`xai.zoo._archive`. Zip archives are CRC-checked before use, every load is quiet
(torch's warnings are silenced here), and a model that cannot be built or read is a
one-line :class:`~xai.errors.ModelLoadError`.
"""

from __future__ import annotations

import importlib
import io
import logging
import os
import pickle
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn

from xai._provenance import sha256_file, sha256_state_dict
from xai._typing import Task
from xai.datasets import load_dataset
from xai.datasets._user import DataInfo
from xai.errors import ModelLoadError, UnknownNameError
from xai.zoo._archive import TRUST_HINT, check_pt2, read_verified_zip
from xai.zoo._entry import MODELS, ZooEntry, get_entry
from xai.zoo._store import (
    CARD_FILE,
    WEIGHTS_FILE,
    ZOO_ENV,
    check_state_dict,
    entry_dir,
    is_trained,
    load_state_into,
    read_card,
    train_entry,
    zoo_root,
)
from xai.zoo.handle import TARGETS_BY_TASK, ModelHandle, arg_max, explainable_layers, set_eval


def load_model(
    spec: str,
    *,
    weights: str | Path | None = None,
    data: str | DataInfo | None = None,
    trust_pickle: bool = False,
    zoo_dir: str | Path | None = None,
    train_missing: bool = False,
    seed: int = 0,
    device: str = "auto",
    console: Console | None = None,
    classes: list[str] | tuple[str, ...] | None = None,
) -> ModelHandle:
    """Resolve ``spec`` to a model handle on the CPU, in eval mode.

    ``spec`` may also name a model of another source (:mod:`xai.sources`): ``timm:NAME`` or
    ``torchvision:NAME`` with ``weights``, a Hugging Face ``save_pretrained`` folder, an
    ``.onnx`` file; ``classes`` names their classes (default: the data's labels when they
    count as many, else ``class 0``, ``class 1``, ...).

    Parameters
    ----------
    data
        Bundled dataset, or a user data source's :class:`~xai.datasets._user.DataInfo`, that
        gives a user model its task, input shape and classes (zoo entries know their own).
    trust_pickle
        Allow unpickling (runs code from the file). Only the command line's
        ``--trust-pickle`` or a Python caller may set it, never a spec.
    zoo_dir
        Folder of trained zoo entries; it must exist when given (a typo must not train a
        fresh entry somewhere new).
    train_missing
        Train a zoo entry that has no weights yet instead of failing.
    """
    with quiet_torch():
        return _load_model(spec, weights, data, trust_pickle, zoo_dir, train_missing, seed, device, console,
                           classes)


@contextmanager
def quiet_torch() -> Iterator[None]:
    """Silence torch's load-time warnings and log records (deprecations, tracebacks it logs and survives).

    Loading reports its problems as :class:`ModelLoadError`; what torch prints on the way is
    noise on a CLI's stderr (a global ``--verbose`` may show it again).
    """
    previous = logging.root.manager.disable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)


def _load_model(spec: str, weights: str | Path | None, data: str | DataInfo | None, trust_pickle: bool,
                zoo_dir: str | Path | None, train_missing: bool, seed: int, device: str,
                console: Console | None, classes: list[str] | tuple[str, ...] | None = None) -> ModelHandle:
    path = Path(spec)
    if spec not in MODELS:
        from xai.sources import is_source, load_source

        if is_source(spec):  # timm:/torchvision: architectures, Hugging Face folders, ONNX files
            # remote code in a Hugging Face folder runs like a pickle's: the same explicit trust
            handle = load_source(spec, weights=weights, classes=classes, trust_pickle=trust_pickle,
                                 trust_remote_code=trust_pickle)
            return _with_data(handle, data, named=classes is not None)
    if classes is not None:  # a zoo entry's card, a factory's or a file's data names them: never ignore the flag
        raise ModelLoadError(f"--classes applies to timm:NAME, torchvision:NAME, Hugging Face folders and .onnx "
                             f"files; {spec!r} takes its class names from its card or its data")
    if spec in MODELS or path.is_dir():
        if weights is not None:
            raise ModelLoadError(f"--weights applies to package.module:factory models; {spec!r} is a zoo "
                                 "entry with its own weights")
    if spec in MODELS:
        _check_zoo_dir(zoo_dir)
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
        if weights is not None:
            raise ModelLoadError(f"--weights applies to package.module:factory models; {path} holds its "
                                 "own weights")
        return _load_file(path, data, trust_pickle)
    if weights is not None and not path.exists():
        raise ModelLoadError(f"{spec!r} is neither a zoo name nor package.module:factory")
    raise UnknownNameError("model", spec, MODELS.names())


def _with_data(handle: ModelHandle, data: str | DataInfo | None, named: bool) -> ModelHandle:
    """Audit on ``data`` (bundled or the user's) by default; name the classes after its labels if counts agree."""
    if data is None:
        return handle
    handle.dataset = data if isinstance(data, str) else data.name
    if not named and handle.task in ("classification", "binary-classification"):
        from xai.datasets import list_datasets

        labels: tuple[str, ...] = ()
        if not isinstance(data, str):
            labels = data.class_names
        elif data in list_datasets():
            labels = tuple(load_dataset(data, "test").class_names)
        if labels and len(labels) == len(handle.class_names):
            handle.class_names = handle.target_names = tuple(labels)
    return handle


def _check_zoo_dir(zoo_dir: str | Path | None) -> None:
    """A zoo folder named by ``--zoo-dir`` or ``$XAI_ZOO_DIR`` must exist (the default ``./zoo`` may not yet)."""
    if zoo_dir is not None and not Path(zoo_dir).is_dir():
        raise ModelLoadError(f"--zoo-dir {zoo_dir}: no such folder (create it to train entries into it)")
    named = os.environ.get(ZOO_ENV)
    if zoo_dir is None and named and not Path(named).is_dir():
        raise ModelLoadError(f"${ZOO_ENV}={named}: no such folder (create it to train entries into it)")


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
            console.print(f"[dim]note: zoo entry {name!r} has no weights in {zoo_root(zoo_dir)}; "
                          "training it first...[/]")
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
                 data: str | DataInfo | None) -> ModelHandle:
    if data is None:
        raise ModelLoadError(f"{name}: a model outside the zoo needs --data (a bundled dataset, an "
                             "image folder or a table) to know its task, inputs and classes")
    if isinstance(data, str):
        dataset = load_dataset(data, "test")
        data = DataInfo(name=data, modality=dataset.modality, input_shape=tuple(dataset.x.shape[1:]),
                        class_names=dataset.class_names)
        bundled: str | None = data.name
    else:  # the user's own data (xai.datasets._user) says what it holds
        bundled = None
    set_eval(module)
    layers = explainable_layers(module)
    task: Task = "binary-classification" if len(data.class_names) == 2 else "classification"
    return ModelHandle(
        name=name,
        module=module,
        task=task,
        modality=data.modality,
        input_shape=data.input_shape,
        class_names=data.class_names,
        source=source,
        sha256=sha256,
        dataset=bundled,
        layers=layers,
        targets_adapter=TARGETS_BY_TASK[task],
        preprocess=_tokenizer_encode(module),
    )


def _load_factory(spec: str, weights: str | Path | None, data: str | DataInfo | None,
                  trust_pickle: bool) -> ModelHandle:
    module_name, _, attr = spec.partition(":")
    try:
        imported = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelLoadError(f"cannot import {module_name!r} for {spec!r}: {_one_line(exc)}") from None
    except Exception as exc:  # a broken module raises anything on import (SyntaxError, NameError ...)
        raise ModelLoadError(f"cannot import {module_name!r} for {spec!r}: {type(exc).__name__}: "
                             f"{_one_line(exc)}") from None
    factory = getattr(imported, attr, None)
    if factory is None:
        raise ModelLoadError(f"{module_name!r} has no attribute {attr!r}")
    if not callable(factory):
        raise ModelLoadError(f"{spec} is a {type(factory).__name__}, not a callable that builds a model")
    try:
        model = factory()
    except TypeError as exc:
        raise ModelLoadError(f"{spec} must be callable with no arguments: {_one_line(exc)}") from None
    except Exception as exc:  # user code: any exception means "could not build the model"
        raise ModelLoadError(f"{spec}() failed: {type(exc).__name__}: {_one_line(exc)}") from None
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
        raw, _ = read_verified_zip(path)
        state = _torch_load(path, raw, trust_pickle)
        if isinstance(state, nn.Module):
            state = state.state_dict()
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                                  for v in state.values()):
            raise ModelLoadError(f"{path} does not hold a state dict of tensors")
        check_state_dict(model, state, path)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:  # e.g. a dtype or shape the checks above let through
            raise ModelLoadError(f"{path}: does not fit {spec}: {_one_line(exc)}") from None
    return _user_handle(spec, model, f"factory:{spec}+{path}", sha256_file(path), data)


def _load_file(path: Path, data: str | DataInfo | None, trust_pickle: bool) -> ModelHandle:
    if path.suffix == ".safetensors":
        raise ModelLoadError(f"{path} holds weights only; give the architecture as "
                             "package.module:factory and pass this file with --weights")
    raw, archive = read_verified_zip(path)  # the bytes checked here are the bytes loaded
    if path.suffix == ".pt2":
        if archive is None:
            raise ModelLoadError(f"{path}: not a torch.export program (not a zip archive)")
        if not trust_pickle:
            check_pt2(path, archive)
        try:
            module = torch.export.load(io.BytesIO(raw)).module()
        except Exception as exc:  # torch.export raises many types for a bad file
            raise ModelLoadError(f"{path}: not a torch.export program ({_one_line(exc)})") from None
        return _user_handle(path.stem, module, f"export:{path}", sha256_file(path), data)
    if archive is not None and _is_torchscript(archive):
        try:
            module = torch.jit.load(io.BytesIO(raw), map_location="cpu")
        except Exception as exc:  # the TorchScript reader raises RuntimeError and others
            raise ModelLoadError(f"{path}: broken TorchScript archive ({_one_line(exc)})") from None
        return _user_handle(path.stem, module, f"torchscript:{path}", sha256_file(path), data)
    loaded = _torch_load(path, raw, trust_pickle)
    if isinstance(loaded, nn.Module):
        return _user_handle(path.stem, loaded, f"pickle:{path}", sha256_file(path), data)
    if isinstance(loaded, dict):
        raise ModelLoadError(f"{path} holds a state dict; give the architecture as "
                             "package.module:factory and pass this file with --weights")
    raise ModelLoadError(f"{path} holds a {type(loaded).__name__}, not a model")


def _is_torchscript(archive: zipfile.ZipFile) -> bool:
    return any(n.split("/", 1)[-1].startswith(("code/", "constants.pkl")) for n in archive.namelist())


def _one_line(exc: BaseException) -> str:
    """The first line of an exception's message (torch's messages run over many lines)."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _torch_load(path: Path, raw: bytes, trust_pickle: bool) -> object:
    if not zipfile.is_zipfile(io.BytesIO(raw)) and not raw.startswith(b"\x80"):  # torch.save: zip or pickle 2+
        raise ModelLoadError(f"{path}: not a PyTorch file (neither a zip archive nor a pickle)")
    try:
        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if not trust_pickle:
            raise ModelLoadError(
                f"{path} is a pickle that holds Python objects beyond tensors; loading it "
                "could run arbitrary code. Save a state dict (safetensors) or TorchScript "
                f"instead, or {TRUST_HINT}"
            ) from None
    except Exception as exc:  # a damaged file makes torch raise RuntimeError, EOFError, KeyError ...
        raise ModelLoadError(f"{path}: not a PyTorch file ({_one_line(exc)})") from None
    try:
        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=False)
    except Exception as exc:  # unpickling user code can raise anything
        raise ModelLoadError(f"{path}: could not be unpickled ({_one_line(exc)})") from None


def handle_hash(module: nn.Module) -> str:
    """Hash of a module's current weights (for models built in memory)."""
    return sha256_state_dict(module)
