"""Generation attribution (llm-attribution) and causal rollout: captum called directly, and hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xai.errors import DataError, NotApplicableError
from xai.explain.llm import CaptumTokenizer, CausalLMAdapter, GenerationAttribution, causal_rollout
from xai.explain.rollout import rollout
from xai.zoo import load_model

from ..conftest import ZOO

PROMPT = "the method returns"


@pytest.fixture(scope="module")
def gpt():
    return load_model("gpt-mini", zoo_dir=ZOO)


@pytest.fixture(scope="module")
def result(gpt):
    return GenerationAttribution.run(gpt, None, {"prompts": [PROMPT], "max_new_tokens": 3, "shapley_samples": 8,
                                                 "ig_steps": 16}, seed=3)


def test_tokenizer_adapter_speaks_captums_tokenizer_protocol(gpt):
    from captum.attr._core.llm_attr import _convert_ids_to_pretty_tokens

    tok = CaptumTokenizer(gpt.module.tokenizer)
    ids = tok.encode(PROMPT)
    assert ids[0] == gpt.module.tokenizer.cls_id and tok.convert_ids_to_tokens(ids[1:]) == PROMPT.split()
    assert tok.encode(PROMPT, return_tensors="pt").tolist() == [ids]
    assert tok.encode(PROMPT, add_special_tokens=False) == ids[1:]
    assert tok.convert_tokens_to_ids(["method", "no-such-word"]) == [ids[2], gpt.module.tokenizer.unk_id]
    assert tok(PROMPT, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"] == [
        (0, 3), (4, 10), (11, 18)]
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")  # captum warns when the offsets do not round-trip
        assert _convert_ids_to_pretty_tokens(torch.tensor(ids[1:]), tok) == PROMPT.split()


def test_result_equals_captums_llm_attribution_called_directly(gpt, result):
    from captum.attr import (
        FeatureAblation,
        LayerIntegratedGradients,
        LLMAttribution,
        LLMGradientAttribution,
        ShapleyValueSampling,
        TextTokenInput,
    )

    (prompt,) = result.prompts
    tok = CaptumTokenizer(gpt.module.tokenizer)
    adapter = CausalLMAdapter(gpt.module)
    target = torch.tensor(tok.convert_tokens_to_ids(list(prompt.generated_tokens)))
    unk, cls = gpt.module.tokenizer.unk_id, gpt.module.tokenizer.cls_id

    def text_input():
        return TextTokenInput(PROMPT, tok, baselines=unk, skip_tokens=[cls])

    gpt.module.eval()
    fa = LLMAttribution(FeatureAblation(adapter), tok)
    direct = fa.attribute(text_input(), target=target, use_cached_outputs=False, forward_in_tokens=False)
    assert direct.input_tokens == list(prompt.prompt_tokens) == PROMPT.split()
    np.testing.assert_allclose(prompt.scores["feature-ablation"], direct.token_attr.numpy(), rtol=1e-5, atol=1e-6)
    # captum's token-by-token generation loop gives the same numbers (the model keeps no cache)
    by_tokens = fa.attribute(text_input(), target=target, use_cached_outputs=False, forward_in_tokens=True)
    np.testing.assert_allclose(by_tokens.token_attr.numpy(), direct.token_attr.numpy(), rtol=1e-5, atol=1e-5)
    torch.manual_seed(3)
    direct = LLMAttribution(ShapleyValueSampling(adapter), tok).attribute(
        text_input(), target=target, use_cached_outputs=False, forward_in_tokens=False, n_samples=8)
    np.testing.assert_allclose(prompt.scores["shapley"], direct.token_attr.numpy(), rtol=1e-5, atol=1e-6)
    lig = LayerIntegratedGradients(adapter, gpt.module.token_embed)
    direct = LLMGradientAttribution(lig, tok).attribute(text_input(), target=target, n_steps=16)
    np.testing.assert_allclose(prompt.scores["layer-ig"], direct.token_attr.numpy(), rtol=1e-4, atol=1e-5)


def test_feature_ablation_is_the_log_prob_drop_when_a_prompt_word_becomes_unk(gpt, result):
    (prompt,) = result.prompts
    tok = gpt.module.tokenizer
    ids = [tok.cls_id, *(tok.index[w] for w in PROMPT.split())]
    generated = [tok.index[w] for w in prompt.generated_tokens]

    def log_probs(prefix):
        full = torch.tensor([prefix + generated])
        with torch.no_grad():
            log_p = torch.log_softmax(gpt.module.lm_logits(full).double(), -1)[0]
        return np.array([float(log_p[len(prefix) - 1 + k, g]) for k, g in enumerate(generated)])

    original = log_probs(ids)
    np.testing.assert_allclose(prompt.log_probs, original, atol=1e-5)
    for j in range(1, len(ids)):
        ablated = ids.copy()
        ablated[j] = tok.unk_id
        np.testing.assert_allclose(prompt.scores["feature-ablation"][:, j - 1], original - log_probs(ablated),
                                   atol=1e-4)
    # greedy: each generated word is the arg-max after its prefix (special tokens excluded)
    full = torch.tensor([ids + generated])
    with torch.no_grad():
        logits = gpt.module.lm_logits(full)[0, len(ids) - 1:-1]
    logits[:, :tok.unk_id + 1] = -np.inf
    assert logits.argmax(-1).tolist() == generated


def test_metrics_are_the_documented_summaries(result):
    (prompt,) = result.prompts
    metrics = result.metrics()
    fa = np.abs(prompt.scores["feature-ablation"])
    assert metrics["feature-ablation.last_token_share"] == pytest.approx(float(np.mean(fa[:, -1] / fa.sum(1))))
    assert metrics["generated_log_prob"] == pytest.approx(float(prompt.log_probs.mean()))
    assert {"shapley.agreement", "layer-ig.agreement", "rollout.last_token_share"} <= set(metrics)
    assert result.methods == ("feature-ablation", "shapley", "layer-ig", "rollout")
    assert prompt.scores["rollout"].shape == (3, 3) and (prompt.scores["rollout"] >= 0).all()


def test_gpt_minis_attention_is_causal(gpt):
    from xai.explain.rollout import AttentionRecorder

    ids = gpt.module.tokenizer.encode(["the method returns a list of values"])
    with torch.no_grad(), AttentionRecorder(gpt.module, gpt.attention) as rec:
        logits = gpt.module.lm_logits(ids)
    for attention in rec.checked():
        assert torch.all(attention.triu(1) == 0)
        torch.testing.assert_close(attention.sum(-1), torch.ones(attention.shape[:-1]))
    with torch.no_grad():  # a later word never changes an earlier position's logits
        torch.testing.assert_close(gpt.module.lm_logits(ids[:, :4]), logits[:, :4], rtol=1e-5, atol=1e-5)


def _causal_stochastic(generator, b, h, t):
    a = torch.rand(b, h, t, t, generator=generator, dtype=torch.float64).tril()
    return a / a.sum(-1, keepdim=True)


def test_causal_rollout_equals_a_hand_computation():
    # two layers, one sample, two heads, three tokens: written out with numpy
    gen = torch.Generator().manual_seed(0)
    layers = [_causal_stochastic(gen, 1, 2, 3) for _ in range(2)]
    hand = np.eye(3)
    for a in layers:
        m = a[0].numpy().mean(0) + np.eye(3)
        m = m / m.sum(1, keepdims=True)
        hand = m @ hand
    got = causal_rollout(layers)[0].numpy()
    np.testing.assert_allclose(got, hand, atol=1e-12)
    assert np.allclose(np.triu(got, 1), 0) and np.allclose(got.sum(1), 1)
    # without discarding and with mean fusion it is plain rollout (the attention is causal already)
    np.testing.assert_allclose(got, rollout(layers)[0].numpy(), atol=1e-12)


def test_causal_rollout_discards_only_inside_the_causal_mask():
    # T = 3 has 6 causal entries: ratio 0.34 zeroes floor(2.04) = 2 of them (the smallest), never a structural 0
    a = torch.tensor([[[[1.0, 0, 0], [0.3, 0.7, 0], [0.05, 0.15, 0.8]]]], dtype=torch.float64)
    got = causal_rollout([a], discard_ratio=0.34)[0].numpy()
    kept = np.array([[1.0, 0, 0], [0.3, 0.7, 0], [0, 0, 0.8]]) + np.eye(3)
    np.testing.assert_allclose(got, kept / kept.sum(1, keepdims=True), atol=1e-12)
    # max fusion stays causal too
    two = torch.cat([a, a.flip(-1).tril()], dim=1)
    assert np.allclose(np.triu(causal_rollout([two], head_fusion="max")[0].numpy(), 1), 0)


def test_it_refuses_a_classifier_and_a_bad_baseline(gpt):
    with pytest.raises(NotApplicableError, match="llm-attribution does not apply to bert-mini"):
        GenerationAttribution.run(load_model("bert-mini", zoo_dir=ZOO), None, {"prompts": ["she feels happy"]})
    with pytest.raises(DataError, match="baseline token 'zzz' is not in gpt-mini's vocabulary"):
        GenerationAttribution.run(gpt, None, {"prompts": [PROMPT], "baseline": "zzz"})
    with pytest.raises(DataError, match="llm-attribution: option max_new_tokens"):
        GenerationAttribution.parse_options({"max_new_tokens": 0})


GPT_SPEC = '''title = "gpt-mini generation"
explain = []
probe = []
[model]
name = "gpt-mini"
[data]
samples = 8
[[llm]]
samples = 1
prompt_words = 3
max_new_tokens = 2
methods = ["feature-ablation"]
'''


def test_llm_section_runs_in_an_audit_and_reaches_metrics_json_and_page():
    from xai.audit.metrics import audit_metrics
    from xai.audit.runner import run_audit
    from xai.audit.spec import parse_spec
    from xai.errors import SpecError
    from xai.report.html import render_audit_page

    with pytest.raises(SpecError, match=r"^a.toml: llm\.0\.max_new_tokens: .*line 11"):
        parse_spec(GPT_SPEC.replace("max_new_tokens = 2", "max_new_tokens = 0"), "a.toml")
    audit = run_audit(parse_spec(GPT_SPEC), slug="gpt-llm")
    (result,) = audit.section("llm")
    (prompt,) = result.prompts
    assert len(prompt.prompt_tokens) == 3 and len(prompt.generated_tokens) == 2
    assert result.methods == ("feature-ablation", "rollout")
    metrics = audit_metrics(audit)
    assert {"llm.generated_log_prob", "llm.feature-ablation.last_token_share", "llm.rollout.agreement"} <= set(metrics)
    doc = audit.to_dict()
    assert doc["llm"][0]["prompts"][0]["generated_tokens"] == list(prompt.generated_tokens)
    page = render_audit_page(audit)
    assert 'id="llm"' in page and 'href="#llm"' in page and page.count('class="llm"') == 1
    assert page.count('class="llm-attr"') == 2  # one table per method


def test_the_partial_escapes_prompts_and_tokens(result):
    import dataclasses

    from xai.report.llm import render_html

    hostile = "<script>alert(1)</script>"
    (prompt,) = result.prompts
    changed = dataclasses.replace(result, model=hostile, prompts=(dataclasses.replace(
        prompt, prompt=hostile, prompt_tokens=(hostile, *prompt.prompt_tokens[1:])),))
    html = render_html(changed)
    assert "<script>" not in html
    assert html.count("&lt;script&gt;") == 2 + len(result.methods)  # title, prompt, each table's column header
    assert html.count('class="llm-attr"') == len(result.methods)


class ToySeq2Seq(torch.nn.Module):
    """An encoder-decoder in miniature: the decoder reads its input tokens plus the mean of the encoded source."""

    def __init__(self) -> None:
        from xai.datasets import WordTokenizer

        super().__init__()
        self.tokenizer = WordTokenizer(["one", "two", "three", "four", "uno", "dos", "tres"])
        g = torch.Generator().manual_seed(0)
        v = len(self.tokenizer)
        self.embed = torch.nn.Embedding(v, 8)
        self.decoder_embed = torch.nn.Embedding(v, 8)
        self.out = torch.nn.Linear(8, v)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def encode_decode_logits(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        memory = self.embed(source).mean(1, keepdim=True)  # (B, 1, 8)
        return self.out(torch.tanh(self.decoder_embed(target) + memory))  # (B, T_target, V)


def test_an_encoder_decoder_plugs_into_captum_through_its_adapter():
    from xai.zoo.handle import ModelHandle

    model = ToySeq2Seq().eval()
    tok = model.tokenizer
    handle = ModelHandle(name="toy-seq2seq", module=model, task="generation", modality="text", input_shape=(4,),
                         class_names=(), source="test", sha256="0" * 64, layers=("embed",),
                         preprocess=tok.encode)
    with pytest.raises(DataError, match="layer-ig needs a decoder-only model; toy-seq2seq is an encoder-decoder"):
        GenerationAttribution.run(handle, None, {"prompts": ["one two three"], "methods": ["layer-ig"]})
    result = GenerationAttribution.run(handle, None, {"prompts": ["one two three"], "max_new_tokens": 2,
                                                      "methods": ["feature-ablation", "shapley"],
                                                      "shapley_samples": 200})
    (prompt,) = result.prompts
    assert result.methods == ("feature-ablation", "shapley") and "no causal rollout" in result.notes[0]
    source = [tok.cls_id, *(tok.index[w] for w in ("one", "two", "three"))]
    generated = [tok.index[w] for w in prompt.generated_tokens]

    def log_probs(src):
        with torch.no_grad():  # the decoder reads [CLS] (its start token), then the generated words
            logits = model.encode_decode_logits(torch.tensor([src]), torch.tensor([[tok.cls_id, *generated[:-1]]]))
        log_p = torch.log_softmax(logits.double(), -1)[0]
        return np.array([float(log_p[k, g]) for k, g in enumerate(generated)])

    original = log_probs(source)
    np.testing.assert_allclose(prompt.log_probs, original, atol=1e-6)
    for j in range(1, len(source)):  # ablating source word j: the drop of each generated word's log-probability
        ablated = source.copy()
        ablated[j] = tok.unk_id
        np.testing.assert_allclose(prompt.scores["feature-ablation"][:, j - 1], original - log_probs(ablated),
                                   atol=1e-5)
    # Shapley values are efficient: each row sums to the log-prob change from the all-[UNK] source
    unk = [tok.cls_id] + [tok.unk_id] * 3
    np.testing.assert_allclose(prompt.scores["shapley"].sum(1), original - log_probs(unk), atol=1e-5)
