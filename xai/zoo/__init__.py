"""The model zoo: architectures, recipes, trained entries and model loading."""

from xai.zoo import (  # noqa: F401  (importing registers the entries)
    bert,
    cnn,
    detection,
    diffusion,
    generative,
    multimodal,
    protonet,
    rl,
    rnn,
    segmentation,
    shortcut,
    tabular,
    text,
    tinyml,
    transformer,
    vilt,
    vision,
    word2vec,
)
from xai.zoo._entry import MODELS, ZooEntry, create_model, get_entry, list_models, register_model
from xai.zoo._store import (
    entry_dir,
    is_trained,
    read_card,
    reproduce_entries,
    train_entries,
    train_entry,
    zoo_root,
)
from xai.zoo._train import TrainContext, fit_classifier, seed_everything
from xai.zoo.handle import ModelHandle, check_model_on_data, class_logit, eval_mode
from xai.zoo.loaders import load_model

__all__ = [
    "MODELS",
    "ModelHandle",
    "TrainContext",
    "ZooEntry",
    "check_model_on_data",
    "class_logit",
    "create_model",
    "entry_dir",
    "eval_mode",
    "fit_classifier",
    "get_entry",
    "is_trained",
    "list_models",
    "load_model",
    "read_card",
    "register_model",
    "reproduce_entries",
    "seed_everything",
    "train_entries",
    "train_entry",
    "zoo_root",
]
