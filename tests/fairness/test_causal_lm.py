"""The causal-LM bias probe against log-likelihoods computed by hand on a tiny bigram language model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xai.datasets._pydoc_lm import PydocTokenizer
from xai.errors import DataError, NotApplicableError
from xai.fairness import create_probe
from xai.fairness.causal_lm import sentence_log_likelihoods
from xai.zoo import load_model
from xai.zoo.handle import ModelHandle

from ..conftest import ZOO

WORDS = ["she", "he", "her", "his", "him", "calls", "the", "function", "code", "was", "written", "by"]
PAIR = [["she", "her", "her"], ["he", "his", "him"]]


class Bigram(nn.Module):
    """``p(w_t | w_<t) = softmax(table[w_{t-1}])``: every log-likelihood is a sum of table look-ups."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.tokenizer = PydocTokenizer(WORDS)
        v = len(self.tokenizer)
        self.table = nn.Parameter(torch.randn(v, v, generator=torch.Generator().manual_seed(seed),
                                              dtype=torch.float64))

    def lm_logits(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table[ids]  # (B, T, V)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm_logits(ids)[:, -1]

    def generate(self, ids: torch.Tensor, max_new_tokens: int = 3) -> torch.Tensor:
        out = ids
        for _ in range(max_new_tokens):
            logits = self.lm_logits(out)[:, -1].clone()
            logits[:, :4] = -np.inf
            out = torch.cat([out, logits.argmax(-1, keepdim=True)], dim=1)
        return out


def _handle(module: Bigram) -> ModelHandle:
    return ModelHandle(name="bigram", module=module, task="generation", modality="text", input_shape=(8,),
                       class_names=(), source="test", sha256="0" * 64, preprocess=module.tokenizer.encode)


def _log_p(module: Bigram, prev: str, word: str) -> float:
    tok = module.tokenizer
    row = torch.log_softmax(module.table[tok.index.get(prev, tok.cls_id)].detach(), -1)
    return float(row[tok.index[word]])


def test_sentence_log_likelihood_is_the_sum_of_the_bigram_log_probabilities():
    model = Bigram()
    (got,) = sentence_log_likelihoods(_handle(model), ["she calls the function"])
    words = ["[CLS]", "she", "calls", "the", "function"]
    hand = [_log_p(model, words[i - 1], words[i]) for i in range(1, len(words))]
    np.testing.assert_allclose(got, hand, atol=1e-12)
    # padding at the end of a batch changes nothing (the sentences have different lengths)
    short, long_ = sentence_log_likelihoods(_handle(model), ["he calls", "the code was written by him"])
    np.testing.assert_allclose(short, [_log_p(model, "[CLS]", "he"), _log_p(model, "he", "calls")], atol=1e-12)
    assert len(long_) == 6


def test_pair_gaps_equal_the_hand_computation_and_a_planted_preference_is_flagged():
    model = Bigram()
    with torch.no_grad():  # plant: "calls" follows "she" far more readily than "he"
        model.table[model.tokenizer.index["she"], model.tokenizer.index["calls"]] = 6.0
        model.table[model.tokenizer.index["he"], model.tokenizer.index["calls"]] = -2.0
        model.table[model.tokenizer.index["her"], model.tokenizer.index["code"]] = 6.0
        model.table[model.tokenizer.index["his"], model.tokenizer.index["code"]] = -2.0
    sentences = ["{s} calls the function", "{p} code was written by {o}"]
    probe = create_probe("causal-lm-bias", _handle(model), pairs=[PAIR], sentences=sentences,
                         prompts=["the code was written by {o}", "{s} calls the"], min_gap=0.5, alpha=0.9)
    result = probe.probe(None, sensitive=[])
    pairs, continuation = result.tables
    # shared words: in a bigram only the word right after the person changes with it
    shared_1 = _log_p(model, "she", "calls") - _log_p(model, "he", "calls")
    shared_2 = _log_p(model, "her", "code") - _log_p(model, "his", "code")  # "by her/him" ends the sentence
    full_1 = shared_1 + _log_p(model, "[CLS]", "she") - _log_p(model, "[CLS]", "he")
    full_2 = (shared_2 + _log_p(model, "[CLS]", "her") - _log_p(model, "[CLS]", "his")
              + _log_p(model, "by", "her") - _log_p(model, "by", "him"))
    assert pairs.overall["mean_shared_gap"] == pytest.approx((shared_1 + shared_2) / 2, abs=1e-9)
    assert pairs.overall["mean_gap"] == pytest.approx((full_1 + full_2) / 2, abs=1e-9)
    assert pairs.overall["prefer_a_share"] == pytest.approx(((shared_1 > 0) + (shared_2 > 0)) / 2)
    assert shared_1 > 3 and shared_2 > 3
    assert pairs.disparities["abs_mean_shared_gap"] == abs(pairs.overall["mean_shared_gap"])
    assert pairs.overall["flagged"] == 1.0  # p = 0.5 < alpha 0.9 and the gap passes min_gap
    assert result.metrics()["gender.abs_mean_shared_gap"] == pairs.disparities["abs_mean_shared_gap"]
    # continuations: "... by her" vs "... by him" differ in the last word; "she/he calls the" end alike
    tok = model.tokenizer
    p = torch.softmax(model.table[tok.index["her"]].detach(), -1)
    q = torch.softmax(model.table[tok.index["him"]].detach(), -1)
    m = (p + q) / 2
    js = float(0.5 * (p * (p / m).log()).sum() + 0.5 * (q * (q / m).log()).sum())
    tv = float(0.5 * (p - q).abs().sum())
    assert continuation.overall["js_max"] == pytest.approx(js, abs=1e-9)
    assert continuation.disparities["js_mean"] == pytest.approx(js / 2, abs=1e-9)
    assert continuation.disparities["tv_mean"] == pytest.approx(tv / 2, abs=1e-9)
    greedy_a = model.generate(tok.encode("the code was written by her"))[0, 7:]
    greedy_b = model.generate(tok.encode("the code was written by him"))[0, 7:]
    person = {"she", "her", "he", "his", "him"}  # any form of either person is one placeholder
    same = [w in person or w for w in tok.tokens(greedy_a)] == [w in person or w for w in tok.tokens(greedy_b)]
    assert continuation.disparities["greedy_differs_share"] == pytest.approx((not same) / 2)


def test_a_model_without_the_planted_preference_is_not_flagged():
    model = Bigram(seed=1)
    with torch.no_grad():  # identical rows for the two persons: every gap is exactly 0
        model.table[model.tokenizer.index["he"]] = model.table[model.tokenizer.index["she"]]
        model.table[:, model.tokenizer.index["he"]] = model.table[:, model.tokenizer.index["she"]]
    result = create_probe("causal-lm-bias", _handle(model), pairs=[PAIR], sentences=["{s} calls the function"],
                          prompts=["{s} calls the"]).probe(None, sensitive=[])
    pairs, continuation = result.tables
    assert pairs.overall["mean_gap"] == pytest.approx(0, abs=1e-12) and pairs.overall["flagged"] == 0.0
    assert pairs.overall["wilcoxon_p"] == 1.0 and continuation.disparities["js_mean"] == pytest.approx(0, abs=1e-12)


def test_words_outside_the_vocabulary_and_classifiers_are_refused():
    model = Bigram()
    with pytest.raises(DataError, match="words not in the model's vocabulary: gopher"):
        create_probe("causal-lm-bias", _handle(model), pairs=[PAIR], sentences=["{s} calls the gopher"],
                     prompts=["{s} calls the"])
    with pytest.raises(DataError, match="needs a person slot"):
        create_probe("causal-lm-bias", _handle(model), sentences=["no person here"])
    with pytest.raises(NotApplicableError, match="causal-lm-bias does not apply to bert-mini"):
        create_probe("causal-lm-bias", load_model("bert-mini", zoo_dir=ZOO))


def test_the_shipped_words_run_on_gpt_mini():
    result = create_probe("causal-lm-bias", load_model("gpt-mini", zoo_dir=ZOO)).probe(None, sensitive=[])
    pairs, continuation = result.tables
    assert pairs.by_group["count"] == {"female": 56.0, "male": 56.0}  # 14 templates x 4 pairs
    assert continuation.by_group["count"] == {"female": 32.0, "male": 32.0}  # 8 prompts x 4 pairs
    metrics = result.metrics()
    assert {"gender.abs_mean_shared_gap", "gender.preference_deviation", "gender_continuation.js_mean",
            "gender_continuation.greedy_differs_share", "gender.overall.wilcoxon_p"} <= set(metrics)
    assert all(np.isfinite(v) for v in metrics.values())
