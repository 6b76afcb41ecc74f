"""Hugging Face ``save_pretrained`` folders -> a :class:`ModelHandle` (offline only, never the hub).

Three kinds, read from ``config.json``'s ``architectures``:

- ``*ForSequenceClassification`` with the folder's tokenizer: a text classifier over
  ``(B, T)`` token ids;
- ``*ForImageClassification`` with the folder's image processor (size, mean, std): an
  image classifier over ``(B, 3, H, W)`` pixels;
- anything else (``BertModel``, a sentence-transformers folder ...): a sentence encoder,
  task ``embedding``, the mean of the last hidden states over the real tokens.

Token ids follow the codebase's text convention, pad id 0: ids 0 and the tokenizer's pad
id are swapped on the way in and out (a swap is its own inverse), so RoBERTa's pad id 1
works like BERT's 0. Attention probabilities are asked of the model (eager attention) and
passed through identity taps ``attention_taps.<i>``, the modules rollout hooks; the word
embedding is the first of the handle's layers (layer IG's default).

A config that asks for its own Python code (``auto_map``) is refused unless trusted, and
so are pickled weights (``pytorch_model.bin``): both run code from the folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xai._typing import Task
from xai.errors import ModelLoadError
from xai.zoo.handle import TARGETS_BY_TASK, ImageConfig, ModelHandle, TokenGrid, set_eval

TRUST_HINT = "pass --trust-pickle if you trust this folder (it runs code from it)"
MAX_LENGTH = 128
#: Files a saved tokenizer consists of (one is enough).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer_config.json", "spiece.model",
                   "sentencepiece.bpe.model", "merges.txt")


class HFTokenizer:
    """A Hugging Face tokenizer in the codebase's text convention (pad id 0; ``encode`` / ``tokens``)."""

    hugging_face = True

    def __init__(self, tokenizer: Any, max_length: int = MAX_LENGTH) -> None:
        self.hf = tokenizer
        self.max_length = max_length
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else 0
        self.mask_id = self._ours(tokenizer.mask_token_id)
        self.cls_id = self._ours(tokenizer.cls_token_id)
        self.sep_id = self._ours(tokenizer.sep_token_id)

    def _ours(self, hf_id: int | None) -> int | None:
        if hf_id is None:
            return None
        return 0 if hf_id == self.pad_id else self.pad_id if hf_id == 0 else int(hf_id)

    def swap(self, ids: torch.Tensor) -> torch.Tensor:
        """Ours <-> the tokenizer's ids: 0 and the pad id trade places (its own inverse)."""
        if self.pad_id == 0:
            return ids
        return torch.where(ids == 0, self.pad_id, torch.where(ids == self.pad_id, 0, ids))

    def encode(self, texts: Sequence[str] | str) -> torch.Tensor:
        """Sentences -> ``(B, T)`` ids (pad id 0), padded to the longest, truncated at ``max_length``."""
        batch = [texts] if isinstance(texts, str) else list(texts)
        out = self.hf(batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        ids = out["input_ids"].long()
        ids = torch.where(out["attention_mask"].bool(), ids, self.pad_id)
        return self.swap(ids)

    def tokens(self, row: torch.Tensor) -> list[str]:
        """The token strings of one row of ids, padding left out."""
        ids = self.swap(row[row != 0].long())
        return [str(t) for t in self.hf.convert_ids_to_tokens(ids.tolist())]


class HFTextModel(nn.Module):
    """``(B, T)`` ids (pad 0) -> logits (classifier) or mean-pooled embeddings (encoder)."""

    def __init__(self, model: Any, tokenizer: HFTokenizer, layers: int, embedding: bool) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.embedding = embedding
        self.attention_taps = nn.ModuleList(nn.Identity() for _ in range(layers))
        if embedding:
            self.pooling = "mean"  # rollout scores tokens by the real tokens' mean row

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, classes)`` or embeddings ``(B, hidden)``."""
        mask = (ids != 0).long()  # (B, T)
        out = self.model(input_ids=self.tokenizer.swap(ids), attention_mask=mask, output_attentions=True)
        for tap, attention in zip(self.attention_taps, out.attentions or (), strict=False):
            tap(attention)  # (B, heads, T, T): the hooks of attention rollout read it here
        if not self.embedding:
            return out.logits
        states = out.last_hidden_state  # (B, T, D)
        keep = mask.to(states.dtype)[..., None]  # (B, T, 1)
        return (states * keep).sum(1) / keep.sum(1).clamp(min=1e-9)  # (B, D)


class HFImageModel(nn.Module):
    """``(B, 3, H, W)`` normalised pixels -> logits, with attention taps for ViT-like models."""

    def __init__(self, model: Any, layers: int, prefix: int = 1) -> None:
        super().__init__()
        self.model = model
        self.prefix = prefix
        self.attention_taps = nn.ModuleList(nn.Identity() for _ in range(layers))

    def token_mask(self, x: torch.Tensor) -> torch.Tensor:
        """Every token is real (images have no padding) ``(B, T)``; rollout's :class:`TokenLayout`."""
        config: Any = self.model.config
        side = x.shape[-1] // int(config.patch_size)
        return torch.ones(x.shape[0], self.prefix + side * side, dtype=torch.bool, device=x.device)

    def tokens_to_input(self, scores: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Scores of the tokens after CLS ``(B, T - 1)`` -> the input's shape: extra prefix tokens dropped."""
        patches = scores[:, self.prefix - 1:]  # (B, h*w): a distillation token is not a patch
        b, n = patches.shape
        h = round(n ** 0.5)
        grid = patches.reshape(b, 1, h, n // h)
        return nn.functional.interpolate(grid, size=tuple(x.shape[-2:]), mode="nearest").expand_as(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, classes)``."""
        if not self.attention_taps:
            return self.model(pixel_values=x).logits
        out = self.model(pixel_values=x, output_attentions=True)
        for tap, attention in zip(self.attention_taps, out.attentions or (), strict=False):
            tap(attention)
        return out.logits


def _read_config(folder: Path) -> dict[str, Any]:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{folder}/config.json: not a readable JSON config ({exc})") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{folder}/config.json: not a JSON object")
    return config


def _kind(config: dict[str, Any]) -> str:
    architectures = [str(a) for a in config.get("architectures") or []]
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return "text-classification"
    if any(a.endswith("ForImageClassification") for a in architectures):
        return "image-classification"
    return "embedding"


def load_hf(folder: Path, *, classes: Sequence[str] | None = None, trust_pickle: bool = False,
            trust_remote_code: bool = False) -> ModelHandle:
    """Load a ``save_pretrained`` folder without touching the network (``local_files_only``)."""
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise ModelLoadError(f"{folder}: not a Hugging Face save_pretrained folder (no config.json)")
    config = _read_config(folder)
    if (config.get("auto_map") or config.get("trust_remote_code")) and not trust_remote_code:
        raise ModelLoadError(f"{folder}: its config asks to run its own Python code (auto_map); refused, "
                             f"{TRUST_HINT}")
    has_safetensors = any(folder.glob("*.safetensors"))
    if not has_safetensors and not trust_pickle:
        pickled = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt*")]
        what = f"only pickled weights ({', '.join(sorted(pickled))})" if pickled else "no model.safetensors"
        raise ModelLoadError(f"{folder}: {what}; loading a pickle could run arbitrary code. Save with "
                             f"safetensors (save_pretrained's default) or {TRUST_HINT}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: local_files_only below
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import transformers

    kind = _kind(config)
    auto = {"text-classification": transformers.AutoModelForSequenceClassification,
            "image-classification": transformers.AutoModelForImageClassification,
            "embedding": transformers.AutoModel}[kind]
    common: dict[str, Any] = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars are noise on our stderr
    try:
        model = auto.from_pretrained(str(folder), attn_implementation="eager", use_safetensors=has_safetensors,
                                     **common)
    except Exception as exc:  # transformers raises many types for a broken folder
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ModelLoadError(f"{folder}: transformers could not load the model ({first})") from None
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()
    set_eval(model)
    n_layers = int(getattr(model.config, "num_hidden_layers", 0) or getattr(model.config, "n_layers", 0) or 0)
    from xai._provenance import sha256_file

    weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    digest = sha256_file(weights[0]) if weights else ""
    name = f"hf:{folder.name}"
    if kind == "image-classification":
        return _image_handle(transformers, folder, model, n_layers, name, digest, classes, common)
    return _text_handle(transformers, folder, model, n_layers, name, digest, classes, kind, common)


def _labels(model: Any, classes: Sequence[str] | None, n: int, name: str) -> tuple[str, ...]:
    from xai.sources._common import class_names_for

    if classes is None:
        id2label = getattr(model.config, "id2label", None) or {}
        names = [str(id2label.get(i, id2label.get(str(i), ""))) for i in range(n)]
        if all(names) and not all(n_.startswith("LABEL_") for n_ in names):
            return tuple(names)
    return class_names_for(classes, n, name)


def _text_handle(transformers: Any, folder: Path, model: Any, n_layers: int, name: str, digest: str,
                 classes: Sequence[str] | None, kind: str, common: dict[str, Any]) -> ModelHandle:
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):  # transformers would build an empty one
        raise ModelLoadError(f"{folder}: no tokenizer in the folder (none of {', '.join(TOKENIZER_FILES[:3])} ...; "
                             "save it with tokenizer.save_pretrained into the same folder)")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), **common)
    except Exception:  # no tokenizer files, or unreadable ones
        raise ModelLoadError(f"{folder}: no tokenizer in the folder (save it with tokenizer.save_pretrained "
                             "into the same folder)") from None
    if isinstance(tokenizer, bool) or not callable(getattr(tokenizer, "convert_ids_to_tokens", None)):
        raise ModelLoadError(f"{folder}: no tokenizer in the folder")
    limit = int(getattr(model.config, "max_position_embeddings", MAX_LENGTH) or MAX_LENGTH)
    wrapped = HFTextModel(model, HFTokenizer(tokenizer, min(MAX_LENGTH, limit)), n_layers, kind == "embedding")
    set_eval(wrapped)
    embedding_name = _module_name(wrapped, model.get_input_embeddings())
    attention = tuple(f"attention_taps.{i}" for i in range(n_layers))
    layers = (embedding_name, *_block_names(wrapped))
    common_fields: dict[str, Any] = {
        "name": name, "module": wrapped, "modality": "text", "input_shape": (MAX_LENGTH,),
        "source": f"huggingface:{folder}", "sha256": digest, "layers": layers, "attention": attention,
        "preprocess": wrapped.tokenizer.encode,
    }
    if kind == "embedding":
        from xai.zoo.bert import embedding_dimension, largest_dimension

        dim = int(getattr(model.config, "hidden_size", 0) or getattr(model.config, "dim", 0))
        dims = tuple(f"dim {i}" for i in range(dim))
        return ModelHandle(task="embedding", class_names=dims, targets_adapter=embedding_dimension,
                           predicted_target=largest_dimension, evaluate=_no_metrics, **common_fields)
    n = int(model.config.num_labels)
    labels = _labels(model, classes, n, name)
    task: Task = "binary-classification" if n == 2 else "classification"
    return ModelHandle(task=task, class_names=labels, targets_adapter=TARGETS_BY_TASK[task], **common_fields)


def _image_handle(transformers: Any, folder: Path, model: Any, n_layers: int, name: str, digest: str,
                  classes: Sequence[str] | None, common: dict[str, Any]) -> ModelHandle:
    try:
        processor = transformers.AutoImageProcessor.from_pretrained(str(folder), **common)
    except Exception:  # no preprocessor_config.json
        raise ModelLoadError(f"{folder}: no image processor in the folder (save it with "
                             "image_processor.save_pretrained into the same folder)") from None
    image = _image_config(processor, model)
    vit_like = hasattr(model.config, "patch_size") and n_layers > 0 and model.config.model_type in (
        "vit", "deit", "beit", "data2vec-vision", "dinov2")
    prefix = 2 if model.config.model_type == "deit" else 1  # DeiT: class and distillation tokens
    wrapped = HFImageModel(model, n_layers if vit_like else 0, prefix)
    set_eval(wrapped)
    from xai.sources.layers import last_conv_stage

    reshapes: dict[str, TokenGrid] = {}
    cam: str | None
    if vit_like:
        norms = [n for n, m in wrapped.named_modules() if n.endswith("layernorm_before")]
        cam = norms[-1] if norms else None
        reshapes = {cam: TokenGrid(prefix=prefix)} if cam else {}
    else:
        cam = last_conv_stage(wrapped)
        blocks = [n for n, m in wrapped.named_modules() if n.endswith("stages") or n.endswith("encoder.stages")]
        if blocks:  # HF ResNet / ConvNeXt ...: the last stage of the encoder
            stages = dict(wrapped.named_modules())[blocks[-1]]
            cam = f"{blocks[-1]}.{len(stages) - 1}"
    n = int(model.config.num_labels)
    labels = _labels(model, classes, n, name)
    task: Task = "binary-classification" if n == 2 else "classification"
    attention = tuple(f"attention_taps.{i}" for i in range(n_layers)) if vit_like else ()
    return ModelHandle(
        name=name, module=wrapped, task=task, modality="image", input_shape=image.input_size, class_names=labels,
        source=f"huggingface:{folder}", sha256=digest, layers=tuple(c for c in (cam,) if c),
        targets_adapter=TARGETS_BY_TASK[task], attention=attention, image_config=image, cam_layer=cam,
        layer_reshapes=reshapes,
    )


def _image_config(processor: Any, model: Any) -> ImageConfig:
    from xai.sources._common import IMAGENET_MEAN, IMAGENET_STD

    size = getattr(processor, "crop_size", None) or getattr(processor, "size", None) or {}
    if hasattr(size, "items"):
        size = dict(size.items())
    side: Any = None
    if isinstance(size, dict):
        side = size.get("height") or size.get("shortest_edge")
    elif isinstance(size, int):
        side = size
    side = int(side or getattr(model.config, "image_size", 224))
    mean = tuple(float(m) for m in (getattr(processor, "image_mean", None) or IMAGENET_MEAN))
    std = tuple(float(s) for s in (getattr(processor, "image_std", None) or IMAGENET_STD))
    channels = int(getattr(model.config, "num_channels", 3) or 3)
    return ImageConfig(input_size=(channels, side, side), mean=mean, std=std)


def _module_name(root: nn.Module, target: nn.Module) -> str:
    for name, module in root.named_modules():
        if module is target and name:
            return name
    raise ModelLoadError(f"{type(root).__name__}: its input embedding is not one of its modules")


def _block_names(root: nn.Module) -> tuple[str, ...]:
    """The encoder's layers (``...layer.0``, ``...layer.1``, ...): what representation probes read."""
    names = []
    for name, module in root.named_modules():
        if isinstance(module, nn.ModuleList) and not name.startswith("attention_taps") and len(module) and \
                any(p.requires_grad for p in module.parameters()):
            names = [f"{name}.{i}" for i in range(len(module))]
    return tuple(names)


def _no_metrics(module: nn.Module, data: Any, device: torch.device) -> dict[str, float]:
    """A sentence encoder has no accuracy on a classification set."""
    return {}
