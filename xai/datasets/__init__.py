"""Bundled datasets (files under ``xai/datasets/data/``) and seeded generators."""

from xai.datasets._adult import AdultEncoder, adult_encoder, load_adult, read_adult_frame
from xai.datasets._base import (
    DATASETS,
    Dataset,
    Split,
    list_datasets,
    load_dataset,
    register_dataset,
)
from xai.datasets._digits import load_digit_rows, load_digits32, upsample_digits

__all__ = [
    "DATASETS",
    "AdultEncoder",
    "Dataset",
    "Split",
    "adult_encoder",
    "list_datasets",
    "load_adult",
    "load_dataset",
    "load_digit_rows",
    "load_digits32",
    "read_adult_frame",
    "register_dataset",
    "upsample_digits",
]
