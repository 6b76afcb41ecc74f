"""The model zoo: architectures, recipes, trained entries and model loading."""

from typing import TYPE_CHECKING

from xai._lazy import attach

if TYPE_CHECKING:
    from xai.zoo._cards import entry_dir, is_trained, read_card, zoo_root
    from xai.zoo._entry import ZooEntry, create_model, get_entry, register_model
    from xai.zoo._index import MODELS, EntryInfo, entry_info, list_models
    from xai.zoo._store import reproduce_entries, train_entries, train_entry
    from xai.zoo._train import TrainContext, fit_classifier, seed_everything
    from xai.zoo.handle import ModelHandle, check_model_on_data, class_logit, eval_mode
    from xai.zoo.loaders import load_model

# name -> the module that defines it, imported on first use (importing this package is free)
_EXPORTS: dict[str, str] = {
    "entry_dir": "xai.zoo._cards",
    "is_trained": "xai.zoo._cards",
    "read_card": "xai.zoo._cards",
    "zoo_root": "xai.zoo._cards",
    "ZooEntry": "xai.zoo._entry",
    "create_model": "xai.zoo._entry",
    "get_entry": "xai.zoo._entry",
    "register_model": "xai.zoo._entry",
    "EntryInfo": "xai.zoo._index",
    "MODELS": "xai.zoo._index",
    "entry_info": "xai.zoo._index",
    "list_models": "xai.zoo._index",
    "reproduce_entries": "xai.zoo._store",
    "train_entries": "xai.zoo._store",
    "train_entry": "xai.zoo._store",
    "TrainContext": "xai.zoo._train",
    "fit_classifier": "xai.zoo._train",
    "seed_everything": "xai.zoo._train",
    "ModelHandle": "xai.zoo.handle",
    "check_model_on_data": "xai.zoo.handle",
    "class_logit": "xai.zoo.handle",
    "eval_mode": "xai.zoo.handle",
    "load_model": "xai.zoo.loaders",
}
__getattr__, __dir__ = attach(__name__, _EXPORTS)

__all__ = [
    "EntryInfo",
    "MODELS",
    "ModelHandle",
    "TrainContext",
    "ZooEntry",
    "check_model_on_data",
    "class_logit",
    "create_model",
    "entry_dir",
    "entry_info",
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
