"""Static word embeddings: word2vec skip-gram and CBOW trained here, and pretrained GoogleNews vectors.

``skipgram`` and ``cbow`` (Mikolov et al. 2013) learn input and output embeddings of the
pydoc corpus (:mod:`xai.datasets._pydoc`) with negative sampling: for a centre word (or
the mean of the context's input embeddings, CBOW) ``h`` and a true word ``o``,

    loss = -log sigma(u_o . h) - sum_{k=1..K} log sigma(-u_{n_k} . h),  n_k ~ unigram^0.75.

The module's output is ``h @ U^T`` ``(B, V)``: one score per vocabulary word, so the targets
adapter ``class_logit`` explains "the dot product between the input's embedding and the
output embedding of word k". Inputs are integer word ids: gradients exist from the output
of the first of ``layers``, the input embedding, on.

``googlenews`` wraps Bolukbasi et al.'s GoogleNews word2vec vectors that ship in
``xai/datasets/data/googlenews.npz``; it answers analogy questions ``a : b :: c : ?``
(3CosAdd: the cosine of every word to ``b - a + c``, unit vectors). Its vectors are a
non-persistent buffer read from the shipped file, so ``zoo/googlenews/weights.safetensors``
holds only a per-dimension gain (ones: the vectors as published) and the softmax scale
fitted on the train questions (1.4 kB): the entry loads, evaluates and audits like any
other, without a second 3.9 MB copy of the vectors in ``zoo/``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xai._provenance import sha256_array
from xai.datasets import Dataset, WordVectors, load_word_vectors
from xai.datasets._pydoc import pydoc_analogies, pydoc_corpus
from xai.zoo._entry import ZooEntry, register_model
from xai.zoo._train import TrainContext, seed_everything
from xai.zoo.handle import class_logit

__all__ = [
    "AnalogyModel",
    "PretrainedEmbedding",
    "Word2Vec",
    "analogy_accuracy",
    "nearest_neighbours",
    "negative_sampling_loss",
]

NEGATIVES = 5
PROBE_WORDS = ("list", "exception", "class", "integer", "import", "true", "loop", "dictionary")


class Word2Vec(nn.Module):
    """Input embeddings, mean over the context, and output embeddings (no bias).

    ``x`` is ``(B, C)`` word ids; ids equal to ``V`` (the vocabulary size) are padding and
    left out of the mean. Skip-gram is the case ``C = 1`` (the centre word).

    Examples
    --------
    >>> model = Word2Vec(("a", "b", "c"), np.array([5, 3, 1]), dim=4)
    >>> model(torch.tensor([[0], [2]])).shape
    torch.Size([2, 3])
    """

    # buffers (register_buffer), declared for the type checker
    noise: torch.Tensor

    def __init__(self, words: Sequence[str], counts: np.ndarray, dim: int) -> None:
        super().__init__()
        self.words = tuple(words)
        vocab = len(self.words)
        self.in_embed = nn.Embedding(vocab + 1, dim, padding_idx=vocab)  # row V: padding
        self.output = nn.Linear(dim, vocab, bias=False)  # weight (V, dim): output embeddings
        with torch.no_grad():  # word2vec's initialisation: small uniform inputs, zero outputs
            self.in_embed.weight.uniform_(-0.5 / dim, 0.5 / dim)
            self.in_embed.weight[vocab].zero_()
            self.output.weight.zero_()
        noise = torch.as_tensor(counts, dtype=torch.float64) ** 0.75
        self.register_buffer("noise", (noise / noise.sum()).float(), persistent=False)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Mean input embedding of the non-padding ids of each row ``(B, dim)``."""
        embedded = self.in_embed(x)  # (B, C, dim)
        real = (x != len(self.words)).unsqueeze(-1).to(embedded.dtype)  # (B, C, 1)
        return (embedded * real).sum(1) / real.sum(1).clamp_min(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``h . u_w`` of every vocabulary word ``(B, V)`` for word ids ``(B, C)``."""
        return self.output(self.hidden(x))

    def word_vectors(self) -> WordVectors:
        """The input embeddings as static word vectors (what WEAT and direct bias read)."""
        vectors = self.in_embed.weight.detach()[: len(self.words)].float().cpu().numpy()
        return WordVectors(name=type(self).__name__, words=self.words, vectors=vectors,
                           sha256=sha256_array(vectors), vocab_size=len(self.words))


def negative_sampling_loss(module: Word2Vec, x: torch.Tensor, y: torch.Tensor, negatives: int = NEGATIVES,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean negative-sampling loss of rows ``(x, y)`` (see the module docstring)."""
    h = module.hidden(x)  # (B, dim)
    noise = torch.multinomial(module.noise.cpu(), len(y) * negatives, replacement=True,
                              generator=generator).view(len(y), negatives).to(h.device)  # (B, K)
    weight = module.output.weight  # (V, dim)
    positive = (h * weight[y]).sum(-1)  # (B,)
    negative = torch.einsum("bd,bkd->bk", h, weight[noise])  # (B, K)
    return -(F.logsigmoid(positive) + F.logsigmoid(-negative).sum(-1)).mean()


def _unit(vectors: torch.Tensor) -> torch.Tensor:
    return F.normalize(vectors.float(), dim=-1)


@torch.no_grad()
def analogy_accuracy(vectors: torch.Tensor, questions: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Whether 3CosAdd answers each question: ``argmax_w cos(w, b - a + c)`` over ``w`` not in ``{a, b, c}``.

    ``vectors`` is ``(V, D)``, ``questions`` ``(N, 4)`` ids ``(a, b, c, d)``; returns ``(N,)`` bools.
    """
    unit = _unit(vectors)  # (V, D)
    hits = []
    for start in range(0, len(questions), batch_size):
        q = questions[start:start + batch_size]
        query = unit[q[:, 1]] - unit[q[:, 0]] + unit[q[:, 2]]  # (B, D)
        scores = _unit(query) @ unit.T  # (B, V)
        scores.scatter_(1, q[:, :3], -math.inf)
        hits.append(scores.argmax(1) == q[:, 3])
    return torch.cat(hits) if hits else torch.zeros(0, dtype=torch.bool)


@torch.no_grad()
def nearest_neighbours(wv: WordVectors, words: Sequence[str], k: int = 5) -> dict[str, list[str]]:
    """The ``k`` nearest words by cosine (the word itself left out) of each known word."""
    unit = _unit(torch.from_numpy(wv.vectors))
    out = {}
    for word in words:
        if word not in wv:
            continue
        scores = unit @ unit[wv.index[word]]
        scores[wv.index[word]] = -math.inf
        out[word] = [wv.words[i] for i in scores.topk(k).indices.tolist()]
    return out


# --------------------------------------------------------------------------- skip-gram and CBOW


def _questions(words: Sequence[str]) -> tuple[torch.Tensor, list[str]]:
    index = {w: i for i, w in enumerate(words)}
    items = pydoc_analogies()
    ids = torch.tensor([[index[w] for w in q] for _, q in items], dtype=torch.int64).view(-1, 4)
    return ids, [section for section, _ in items]


def _evaluate_word2vec(module: nn.Module, test: Dataset, device: torch.device) -> dict[str, float]:
    """Held-out metrics, deterministic (the negatives come from a generator seeded 0)."""
    assert isinstance(module, Word2Vec)
    was_training = module.training
    module.eval()
    generator = torch.Generator().manual_seed(0)
    loss_sum, top10, count = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, len(test), 4096):
            x = test.x[start:start + 4096].to(device)
            y = test.y[start:start + 4096].to(device)
            loss_sum += float(negative_sampling_loss(module, x, y, generator=generator)) * len(y)
            top10 += int((module(x).topk(10, dim=1).indices == y[:, None]).any(1).sum())
            count += len(y)
    module.train(was_training)
    questions, sections = _questions(module.words)
    hits = analogy_accuracy(module.in_embed.weight.detach()[: len(module.words)].cpu(), questions)
    metrics = {
        "heldout_ns_loss": loss_sum / count,
        "heldout_top10_accuracy": top10 / count,
        "analogy_accuracy": float(hits.float().mean()),
        "analogy_questions": float(len(hits)),
    }
    for section in sorted(set(sections)):
        picked = torch.tensor([s == section for s in sections])
        metrics[f"analogy_accuracy.{section}"] = float(hits[picked].float().mean())
    return metrics


def _loss(module: nn.Module, batch: Dataset) -> torch.Tensor:
    assert isinstance(module, Word2Vec)
    return negative_sampling_loss(module, batch.x, batch.y)


def _train_word2vec(module: nn.Module, ctx: TrainContext, recipe: dict[str, float], label: str
                    ) -> dict[str, object]:
    assert isinstance(module, Word2Vec)
    generator = seed_everything(ctx.seed)
    untrained = _evaluate_word2vec(module, ctx.test, ctx.device)
    module.to(ctx.device).train()
    epochs, batch_size = int(recipe["epochs"]), int(recipe["batch_size"])
    optimiser = torch.optim.Adam(module.parameters(), lr=recipe["lr"])
    steps = epochs * math.ceil(len(ctx.train) / batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1 - step / steps)  # word2vec's decay
    x_all, y_all = ctx.train.x, ctx.train.y
    running = math.nan
    with ctx.progress() as progress:
        task = progress.add_task(label, total=epochs, status="")
        for _ in range(epochs):
            order = torch.randperm(len(x_all), generator=generator)
            total = 0.0
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                loss = negative_sampling_loss(module, x_all[idx].to(ctx.device), y_all[idx].to(ctx.device))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                scheduler.step()
                total += float(loss.detach()) * len(idx)
            running = total / len(order)
            progress.update(task, advance=1, status=f"loss {running:.4f}")
    module.eval()
    metrics: dict[str, object] = dict(_evaluate_word2vec(module, ctx.test, ctx.device))
    counts = torch.bincount(ctx.train.y, minlength=len(module.words))
    most_common = counts.topk(10).indices
    metrics.update({
        "train_ns_loss": running,
        "untrained_heldout_ns_loss": untrained["heldout_ns_loss"],
        "unigram_heldout_top10_accuracy": float(torch.isin(ctx.test.y, most_common).float().mean()),
        "random_analogy_accuracy": 1 / (len(module.words) - 3),
        "nearest_neighbours": nearest_neighbours(module.word_vectors(), PROBE_WORDS),
    })
    return metrics


def _build(dim: int) -> Word2Vec:
    corpus = pydoc_corpus()
    return Word2Vec(corpus.words, corpus.counts, dim)


def _register_word2vec(name: str, architecture: str, recipe: dict[str, float], floor: float, context: str) -> None:
    def build() -> Word2Vec:
        return _build(int(recipe["dim"]))

    def train(module: nn.Module, ctx: TrainContext) -> dict[str, object]:
        return _train_word2vec(module, ctx, recipe, name)

    register_model(
        ZooEntry(
            name=name,
            family="word2vec",
            task="embedding",
            modality="text",
            dataset=f"pydoc-{name}",
            build=build,
            train=train,  # the card keeps non-numeric results apart
            input_shape=None,
            class_names=(),
            layers=("in_embed", "output"),
            metric="heldout_ns_loss",
            floor=floor,
            higher_is_better=False,
            paper="https://arxiv.org/abs/1310.4546",
            description=f"word2vec {architecture} with negative sampling on Python's pydoc topics "
                        f"({int(recipe['dim'])}-d, {context})",
            recipe=dict(recipe),
            loss=_loss,
            evaluate=_evaluate_word2vec,
            targets=class_logit,  # h . u_k: the input's embedding against word k's output embedding
        )
    )


_register_word2vec("skipgram", "skip-gram", {"dim": 64, "epochs": 5, "lr": 0.005, "batch_size": 256,
                                             "negatives": NEGATIVES}, floor=3.0,
                   context="a centre word predicts each word within 2")
_register_word2vec("cbow", "CBOW", {"dim": 64, "epochs": 10, "lr": 0.005, "batch_size": 128,
                                    "negatives": NEGATIVES}, floor=3.0,
                   context="the mean of the 4 surrounding words predicts the centre")


# --------------------------------------------------------------------------- pretrained GoogleNews


class PretrainedEmbedding(nn.Module):
    """Frozen word vectors (a non-persistent buffer) times a learnable per-dimension gain.

    The gain starts at ones (the vectors as published); it gives the module a parameter
    at the embedding's output, so gradients reach it as they would in a fine-tuned model.
    """

    # buffers (register_buffer), declared for the type checker
    vectors: torch.Tensor

    def __init__(self, vectors: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("vectors", torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)),
                             persistent=False)
        self.gain = nn.Parameter(torch.ones(vectors.shape[1]))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Vectors of ``ids`` ``(..., D)``."""
        return self.vectors[ids] * self.gain

    def table(self) -> torch.Tensor:
        """Every word's vector ``(V, D)``."""
        return self.vectors * self.gain


class AnalogyModel(nn.Module):
    """Scores every word as the answer of ``a : b :: c : ?`` (3CosAdd), times a fitted scale.

    ``x`` is ``(B, 3)`` ids of ``(a, b, c)``; the output ``(B, V)`` is
    ``exp(log_scale) * cos(w, b^ - a^ + c^)`` (hats: unit vectors). The answer is the
    highest-scoring word other than ``a``, ``b`` and ``c``.
    """

    def __init__(self, name: str = "googlenews") -> None:
        super().__init__()
        wv = load_word_vectors(name)
        self.words = wv.words
        self.source = wv
        self.embed = PretrainedEmbedding(wv.vectors)
        self.log_scale = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled cosines ``(B, V)`` for questions ``(B, 3)``."""
        e = F.normalize(self.embed(x), dim=-1)  # (B, 3, D)
        query = F.normalize(e[:, 1] - e[:, 0] + e[:, 2], dim=-1)  # (B, D)
        keys = F.normalize(self.embed.table(), dim=-1)  # (V, D)
        return self.log_scale.exp() * (query @ keys.T)  # (B, V)

    def word_vectors(self) -> WordVectors:
        """The vectors (times the gain) as static word vectors; the shipped file's own when the gain is ones."""
        if bool((self.embed.gain == 1).all()):
            return self.source
        vectors = self.embed.table().detach().cpu().numpy()
        return WordVectors(name=self.source.name, words=self.words, vectors=vectors,
                           sha256=sha256_array(vectors), vocab_size=len(self.words))


def _evaluate_analogies(module: nn.Module, test: Dataset, device: torch.device) -> dict[str, float]:
    assert isinstance(module, AnalogyModel)
    questions = torch.cat([test.x, test.y[:, None]], dim=1)
    hits = analogy_accuracy(module.embed.table().detach().cpu(), questions)
    loss_sum = 0.0
    with torch.no_grad():
        for start in range(0, len(test), 1024):
            logits = module(test.x[start:start + 1024].to(device))
            loss_sum += float(F.cross_entropy(logits, test.y[start:start + 1024].to(device), reduction="sum"))
    metrics = {"analogy_accuracy": float(hits.float().mean()), "heldout_cross_entropy": loss_sum / len(test),
               "analogy_questions": float(len(test))}
    sections = test.groups["section"].to_numpy() if "section" in test.groups else np.array([])
    for section in sorted(set(sections)):
        picked = torch.from_numpy(sections == section)
        metrics[f"analogy_accuracy.{section}"] = float(hits[picked].float().mean())
    return metrics


_SCALE_STEPS = 20


def _train_analogies(module: nn.Module, ctx: TrainContext) -> dict[str, object]:
    """Fit only the softmax scale (cross-entropy on the train questions); the vectors stay as shipped."""
    assert isinstance(module, AnalogyModel)
    seed_everything(ctx.seed)
    with torch.no_grad():
        cosines = module(ctx.train.x) / module.log_scale.exp()  # (N, V) at scale 1
    optimiser = torch.optim.LBFGS([module.log_scale], lr=1.0, max_iter=_SCALE_STEPS, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad(set_to_none=True)
        loss = F.cross_entropy(module.log_scale.exp() * cosines, ctx.train.y)
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        loss = F.cross_entropy(module.log_scale.exp() * cosines, ctx.train.y)
    metrics: dict[str, object] = dict(_evaluate_analogies(module, ctx.test, ctx.device))
    metrics.update({
        "train_cross_entropy": float(loss.detach()),
        "scale": float(module.log_scale.detach().exp()),
        "random_analogy_accuracy": 1 / (len(module.words) - 3),
        "nearest_neighbours": nearest_neighbours(module.word_vectors(),
                                                 ("doctor", "nurse", "programmer", "homemaker", "king")),
    })
    return metrics


register_model(
    ZooEntry(
        name="googlenews",
        family="word2vec",
        task="embedding",
        modality="text",
        dataset="googlenews-analogies",
        build=AnalogyModel,
        train=_train_analogies,
        input_shape=(3,),
        class_names=(),
        layers=("embed",),
        metric="analogy_accuracy",
        floor=0.6,
        paper="https://arxiv.org/abs/1607.06520",
        description="pretrained GoogleNews word2vec (Mikolov et al. 2013), Bolukbasi et al.'s subset "
                    "and the WEAT words it lacks, 7,117 words shipped as float16; answers analogies by 3CosAdd",
        recipe={"vectors": "xai/datasets/data/googlenews.npz", "fitted": "softmax scale only (L-BFGS)",
                "max_iter": _SCALE_STEPS},
        evaluate=_evaluate_analogies,
        targets=class_logit,  # the scaled cosine of word k to b - a + c
    )
)
