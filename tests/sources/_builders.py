"""Offline builders of users' models for the source tests: random weights, nothing downloaded."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

#: Words of the bundled sentiment-text sentences and a few more (the tiny tokenizers' vocabulary).
WORDS = ("the a this my to me at but then first made feel feels felt glad happy proud grateful furious scared "
         "terrified sad angry everyone boy girl mom dad tanisha emily talking movie film good bad").split()


def save_state(module: nn.Module, path: Path) -> Path:
    """Safetensors of ``module``'s state dict (contiguous copies: shared storage is not allowed)."""
    save_file({k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}, str(path))
    return path


def timm_model(name: str, path: Path, *, classes: int = 3, img_size: int | None = None, seed: int = 0) -> nn.Module:
    """A timm architecture with random weights saved to ``path`` (``img_size`` for ViT / Swin)."""
    import timm

    torch.manual_seed(seed)
    kwargs = {"img_size": img_size} if img_size is not None else {}
    model = timm.create_model(name, pretrained=False, num_classes=classes, **kwargs).eval()
    save_state(model, path)
    return model


def vocab(pad_first: bool = True) -> dict[str, int]:
    """A WordPiece vocabulary; ``pad_first=False`` puts ``[PAD]`` at id 1 (RoBERTa-like)."""
    specials = ["[PAD]", "[CLS]"] if pad_first else ["[CLS]", "[PAD]"]
    return {w: i for i, w in enumerate([*specials, "[UNK]", "[SEP]", "[MASK]", *WORDS])}


def tokenizer(pad_first: bool = True):
    import transformers

    return transformers.BertTokenizerFast(vocab=vocab(pad_first))


def hf_text_folder(folder: Path, kind: str = "bert", *, head: str = "sequence", labels: int = 2,
                   seed: int = 0) -> nn.Module:
    """A tiny Hugging Face text model (hidden 32, 2 layers) and its tokenizer, saved with save_pretrained."""
    import transformers as tf

    tok = tokenizer(pad_first=kind not in ("roberta",))
    n = len(tok.get_vocab())
    small = {"vocab_size": n, "num_labels": labels, "pad_token_id": tok.pad_token_id}
    configs = {
        "bert": lambda: tf.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                      max_position_embeddings=64, **small),
        "distilbert": lambda: tf.DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                                  max_position_embeddings=64, **small),
        "roberta": lambda: tf.RobertaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                            intermediate_size=64, max_position_embeddings=70, **small),
        "electra": lambda: tf.ElectraConfig(hidden_size=32, embedding_size=32, num_hidden_layers=2,
                                            num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                                            **small),
        "albert": lambda: tf.AlbertConfig(hidden_size=32, embedding_size=16, num_hidden_layers=2,
                                          num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                                          **small),
    }
    config = configs[kind]()
    auto = tf.AutoModelForSequenceClassification if head == "sequence" else tf.AutoModel
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = auto.from_config(config, attn_implementation="eager").eval()
        model.save_pretrained(str(folder))
        tok.save_pretrained(str(folder))
    return model


def hf_image_folder(folder: Path, kind: str = "vit", *, labels: int = 3, seed: int = 0) -> nn.Module:
    """A tiny Hugging Face image classifier (32x32 inputs) and its image processor, saved with save_pretrained."""
    import transformers as tf

    if kind == "vit":
        config = tf.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, num_labels=labels)
    elif kind == "deit":
        config = tf.DeiTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                               num_attention_heads=2, intermediate_size=64, num_labels=labels)
    else:  # a small HF ResNet
        config = tf.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], num_labels=labels)
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        heads = {"vit": tf.ViTForImageClassification, "deit": tf.DeiTForImageClassification}
        head = heads.get(kind, tf.ResNetForImageClassification)
        model = (head._from_config(config, attn_implementation="eager") if kind in heads else head(config)).eval()
        model.save_pretrained(str(folder))
        tf.ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5, 0.4, 0.3],
                             image_std=[0.2, 0.25, 0.3]).save_pretrained(str(folder))
    return model


def onnx_export(module: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """``module`` exported to ONNX with a dynamic batch axis."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (example,), str(path), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False)
    return path
