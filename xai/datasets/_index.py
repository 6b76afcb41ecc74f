"""The dataset registry and its lazy table (torch-free: listing names loads no data code).

``@register_dataset`` next to each loader stays the definition; this table only says which
module registers which name (``tests/test_imports.py`` checks they agree).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xai._registry import Registry

if TYPE_CHECKING:
    from xai.datasets._base import DatasetLoader

#: name -> "module:loader" of every bundled dataset.
DATASET_TABLE: dict[str, str] = {
    "adult": "xai.datasets._adult:load_adult",
    "cartpole-states": "xai.datasets._control:load_cartpole_states",
    "compas": "xai.datasets._compas:load_compas",
    "dates": "xai.datasets._dates:load_dates",
    "digits": "xai.datasets._digits:load_digits32",
    "digits-marked": "xai.datasets._shortcut:load_digits_marked",
    "digits-rows": "xai.datasets._digits:load_digit_rows",
    "digits-shortcut": "xai.datasets._shortcut:load_digits_shortcut",
    "german": "xai.datasets._german:load_german",
    "googlenews-analogies": "xai.datasets._analogies:load_googlenews_analogies",
    "mountaincar-states": "xai.datasets._control:load_mountaincar_states",
    "pydoc-cbow": "xai.datasets._pydoc:load_pydoc_cbow",
    "pydoc-lm": "xai.datasets._pydoc_lm:load_pydoc_lm",
    "pydoc-skipgram": "xai.datasets._pydoc:load_pydoc_skipgram",
    "sentence-pairs": "xai.datasets._sentences:load_sentence_pairs",
    "sentiment-text": "xai.datasets._text:load_sentiment_text",
    "shapes-det": "xai.datasets._shapes:load_shapes_det",
    "shapes-seg": "xai.datasets._shapes:load_shapes_seg",
    "shapes-vqa": "xai.datasets._vqa:load_shapes_vqa",
    "sr-patches": "xai.datasets._photos:load_sr_patches",
    "style-content": "xai.datasets._photos:load_style_content",
}

DATASETS: Registry[DatasetLoader] = Registry("dataset", lazy=DATASET_TABLE)
