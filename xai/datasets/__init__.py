"""Bundled datasets (files under ``xai/datasets/data/``) and seeded generators."""

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
from xai.datasets._digits import load_digit_rows, load_digits32, upsample_digits
from xai.datasets._german import german_encoder, load_german, read_german_frame
from xai.datasets._photos import PairedDataset, load_sr_patches, load_style_content
from xai.datasets._shortcut import MARK_REGION, load_digits_marked, load_digits_shortcut
from xai.datasets._tabular import TabularEncoder, read_bundled_csv, tabular_dataset
from xai.datasets._words import EMBEDDINGS, WordVectors, list_word_vectors, load_word_vectors, read_weat_json

__all__ = [
    "DATASETS",
    "EMBEDDINGS",
    "MARK_REGION",
    "Dataset",
    "PairedDataset",
    "Split",
    "TabularEncoder",
    "WordVectors",
    "adult_encoder",
    "compas_encoder",
    "german_encoder",
    "list_datasets",
    "list_word_vectors",
    "load_adult",
    "load_compas",
    "load_dataset",
    "load_digit_rows",
    "load_sr_patches",
    "load_style_content",
    "load_digits32",
    "load_digits_marked",
    "load_digits_shortcut",
    "load_german",
    "load_word_vectors",
    "read_adult_frame",
    "read_bundled_csv",
    "read_compas_frame",
    "read_german_frame",
    "read_weat_json",
    "register_dataset",
    "tabular_dataset",
    "upsample_digits",
]
