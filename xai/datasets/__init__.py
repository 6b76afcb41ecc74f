"""Bundled datasets (files under ``xai/datasets/data/``) and seeded generators."""

from typing import TYPE_CHECKING

from xai._lazy import attach

if TYPE_CHECKING:
    from xai.datasets._adult import adult_encoder, load_adult, read_adult_frame
    from xai.datasets._base import Dataset, Split, list_datasets, load_dataset, register_dataset
    from xai.datasets._compas import compas_encoder, load_compas, read_compas_frame
    from xai.datasets._control import load_cartpole_states, load_mountaincar_states
    from xai.datasets._digits import load_digit_rows, load_digits32, upsample_digits
    from xai.datasets._german import german_encoder, load_german, read_german_frame
    from xai.datasets._index import DATASETS
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

# name -> the module that defines it, imported on first use (importing this package is free)
_EXPORTS: dict[str, str] = {
    "adult_encoder": "xai.datasets._adult",
    "load_adult": "xai.datasets._adult",
    "read_adult_frame": "xai.datasets._adult",
    "Dataset": "xai.datasets._base",
    "Split": "xai.datasets._base",
    "list_datasets": "xai.datasets._base",
    "load_dataset": "xai.datasets._base",
    "register_dataset": "xai.datasets._base",
    "compas_encoder": "xai.datasets._compas",
    "load_compas": "xai.datasets._compas",
    "read_compas_frame": "xai.datasets._compas",
    "load_cartpole_states": "xai.datasets._control",
    "load_mountaincar_states": "xai.datasets._control",
    "load_digit_rows": "xai.datasets._digits",
    "load_digits32": "xai.datasets._digits",
    "upsample_digits": "xai.datasets._digits",
    "german_encoder": "xai.datasets._german",
    "load_german": "xai.datasets._german",
    "read_german_frame": "xai.datasets._german",
    "DATASETS": "xai.datasets._index",
    "PairedDataset": "xai.datasets._photos",
    "load_sr_patches": "xai.datasets._photos",
    "load_style_content": "xai.datasets._photos",
    "PAIR_LEVELS": "xai.datasets._sentences",
    "sentence_pairs": "xai.datasets._sentences",
    "COLOURS": "xai.datasets._shapes",
    "SHAPES": "xai.datasets._shapes",
    "SHAPE_CLASSES": "xai.datasets._shapes",
    "Scene": "xai.datasets._shapes",
    "ShapeObject": "xai.datasets._shapes",
    "generate_scenes": "xai.datasets._shapes",
    "load_shapes_det": "xai.datasets._shapes",
    "load_shapes_seg": "xai.datasets._shapes",
    "scene_masks": "xai.datasets._shapes",
    "scene_targets": "xai.datasets._shapes",
    "MARK_REGION": "xai.datasets._shortcut",
    "load_digits_marked": "xai.datasets._shortcut",
    "load_digits_shortcut": "xai.datasets._shortcut",
    "TabularEncoder": "xai.datasets._tabular",
    "read_bundled_csv": "xai.datasets._tabular",
    "tabular_dataset": "xai.datasets._tabular",
    "WordTokenizer": "xai.datasets._text",
    "load_sentiment_text": "xai.datasets._text",
    "sentiment_tokenizer": "xai.datasets._text",
    "ANSWERS": "xai.datasets._vqa",
    "VOCAB": "xai.datasets._vqa",
    "load_shapes_vqa": "xai.datasets._vqa",
    "EMBEDDINGS": "xai.datasets._words",
    "WordVectors": "xai.datasets._words",
    "list_word_vectors": "xai.datasets._words",
    "load_word_vectors": "xai.datasets._words",
    "read_analogies": "xai.datasets._words",
    "read_bolukbasi_json": "xai.datasets._words",
    "read_weat_json": "xai.datasets._words",
}
__getattr__, __dir__ = attach(__name__, _EXPORTS)

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
