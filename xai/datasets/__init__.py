"""Bundled datasets (files under ``xai/datasets/data/``) and seeded generators."""

from xai.datasets import _analogies, _pydoc  # noqa: F401  (importing registers the datasets)
from xai.datasets._adult import adult_encoder, load_adult, read_adult_frame
from xai.datasets._base import (
    DATASETS,
    Dataset,
    Split,
    list_datasets,
    load_dataset,
    register_dataset,
)
from xai.datasets._compas import compas_encoder, load_compas, read_compas_frame
from xai.datasets._control import load_cartpole_states, load_mountaincar_states
from xai.datasets._digits import load_digit_rows, load_digits32, upsample_digits
from xai.datasets._german import german_encoder, load_german, read_german_frame
from xai.datasets._photos import PairedDataset, load_sr_patches, load_style_content
from xai.datasets._sentences import PAIR_LEVELS, sentence_pairs
from xai.datasets._shapes import (
    COLOURS,
    SHAPE_CLASSES,
    SHAPES,
    Scene,
    ShapeObject,
    generate_scenes,
    load_shapes_det,
    load_shapes_seg,
    scene_masks,
    scene_targets,
)
from xai.datasets._shortcut import MARK_REGION, load_digits_marked, load_digits_shortcut
from xai.datasets._tabular import TabularEncoder, read_bundled_csv, tabular_dataset
from xai.datasets._text import WordTokenizer, load_sentiment_text, sentiment_tokenizer
from xai.datasets._vqa import ANSWERS, VOCAB, load_shapes_vqa
from xai.datasets._words import (
    EMBEDDINGS,
    WordVectors,
    list_word_vectors,
    load_word_vectors,
    read_analogies,
    read_bolukbasi_json,
    read_weat_json,
)

__all__ = [
    "ANSWERS",
    "COLOURS",
    "DATASETS",
    "PAIR_LEVELS",
    "EMBEDDINGS",
    "MARK_REGION",
    "SHAPES",
    "SHAPE_CLASSES",
    "Scene",
    "ShapeObject",
    "Dataset",
    "PairedDataset",
    "Split",
    "TabularEncoder",
    "WordTokenizer",
    "WordVectors",
    "adult_encoder",
    "compas_encoder",
    "generate_scenes",
    "german_encoder",
    "list_datasets",
    "list_word_vectors",
    "load_adult",
    "load_cartpole_states",
    "load_compas",
    "load_dataset",
    "load_digit_rows",
    "load_sr_patches",
    "load_style_content",
    "load_digits32",
    "load_digits_marked",
    "load_digits_shortcut",
    "load_german",
    "load_sentiment_text",
    "load_mountaincar_states",
    "load_shapes_det",
    "load_shapes_seg",
    "load_shapes_vqa",
    "load_word_vectors",
    "read_adult_frame",
    "read_analogies",
    "read_bolukbasi_json",
    "read_bundled_csv",
    "read_compas_frame",
    "read_german_frame",
    "read_weat_json",
    "register_dataset",
    "sentiment_tokenizer",
    "sentence_pairs",
    "scene_masks",
    "scene_targets",
    "tabular_dataset",
    "upsample_digits",
    "VOCAB",
]
