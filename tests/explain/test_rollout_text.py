"""Attention rollout on the pretrained MiniLM: real sentences in, per-token relevance out."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from xai.cli import app
from xai.datasets import load_dataset
from xai.errors import DataError
from xai.explain import create_explainer, token_relevance
from xai.explain.rollout import discard_lowest, rollout
from xai.zoo import load_model

from ..conftest import ZOO

runner = CliRunner()
SENTENCE = "The nurse said she would help."
LONGER = "A considerably longer sentence, so that the first one gets padded in the batch."


@pytest.fixture(scope="module")
def minilm():
    return load_model("minilm", zoo_dir=ZOO)


def _hooked_attentions(handle, ids):
    maps = []
    hooks = [handle.get_layer(n).register_forward_hook(lambda _m, _i, out: maps.append(out.detach()))
             for n in handle.attention]
    try:
        with torch.no_grad():
            handle.module(ids)
    finally:
        for h in hooks:
            h.remove()
    return [m.double().numpy() for m in maps]


def test_text_rollout_equals_rollout_by_hand_from_hooked_attentions(minilm):
    ids = minilm.preprocess([SENTENCE])  # (1, T), no padding
    product = np.eye(ids.shape[1])
    for a in _hooked_attentions(minilm, ids):  # numpy, layer by layer
        fused = a[0].mean(0) + np.eye(ids.shape[1])  # (T, T): heads averaged, residual added
        product = (fused / fused.sum(1, keepdims=True)) @ product
    tokens = minilm.module.tokenizer.tokens(ids[0])
    mean_pool = token_relevance(minilm, [SENTENCE])  # MiniLM mean-pools: mean of the rows
    assert mean_pool.tokens == (tuple(tokens),) and mean_pool.options["pool"] == "mean"
    np.testing.assert_allclose(mean_pool.relevance[0], product.mean(0), rtol=1e-5, atol=1e-6)
    assert sum(mean_pool.relevance[0]) == pytest.approx(1.0, abs=1e-5)  # rollout rows are stochastic
    cls = token_relevance(minilm, [SENTENCE], pool="cls")
    np.testing.assert_allclose(cls.relevance[0], product[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options", [{"mode": "rollout", "discard_ratio": 0.3, "head_fusion": "max"},
                                     {"mode": "grad"}, {"mode": "flow", "pool": "cls"}])
def test_padding_is_excluded_a_padded_sentence_scores_as_alone(minilm, options):
    alone = token_relevance(minilm, [SENTENCE], **options)
    batch = token_relevance(minilm, [SENTENCE, LONGER], **options)
    assert batch.tokens[0] == alone.tokens[0]  # the padding tokens are dropped
    assert "[PAD]" not in batch.tokens[0]
    np.testing.assert_allclose(batch.relevance[0], alone.relevance[0], rtol=1e-4, atol=1e-6)
    # the explainer's attributions have the input's (B, T) shape, 0 on padding
    ids = minilm.preprocess([SENTENCE, LONGER])
    explainer = create_explainer("attention-rollout", minilm, **options)
    scores = explainer.relevance(ids, minilm.predict_targets(ids))
    assert scores.shape == ids.shape and (scores[ids == 0] == 0).all()


def test_masked_discard_counts_only_real_entries_by_hand():
    # 2 real tokens + 1 padding: floor(0.5 * 2 * 2) = 2 lowest real entries (0.2, 0.3) zeroed.
    a = torch.tensor([[[0.8, 0.2, 0.0], [0.3, 0.7, 0.0], [0.1, 0.1, 0.8]]], dtype=torch.float64)
    mask = torch.tensor([[True, True, False]])
    kept = torch.tensor([[[0.8, 0.0, 0.0], [0.0, 0.7, 0.0], [0.1, 0.1, 0.8]]], dtype=torch.float64)
    torch.testing.assert_close(discard_lowest(a, 0.5, mask), kept)
    # rollout with the mask: padding row/column zeroed, then + I and normalised
    out = rollout([a[:, None]], discard_ratio=0.5, mask=mask)[0]
    torch.testing.assert_close(out, torch.eye(3, dtype=torch.float64))  # [[1.8, 0], [0, 1.7]] normalised
    unpadded = rollout([a[:, None, :2, :2]], discard_ratio=0.5)[0]
    torch.testing.assert_close(out[:2, :2], unpadded)


def test_grad_mode_compare_explains_a_similarity_and_options_are_checked(minilm):
    result = token_relevance(minilm, ["A man plays the guitar."], mode="grad", compare="Someone is making music.")
    assert result.explained == ("cosine similarity to 'Someone is making music.'",)
    top_token, _ = result.top(0, 1)[0]
    assert top_token == "guitar"
    assert all(v >= 0 for v in result.relevance[0])  # (∇A ⊙ A)^+ only adds relevance
    dims = token_relevance(minilm, [SENTENCE], mode="grad", target=5)
    assert dims.explained == ("dim 5 of the output",)
    with pytest.raises(DataError, match="compare"):
        token_relevance(minilm, [SENTENCE], compare="x")  # not grad mode
    with pytest.raises(DataError, match="option pool: Input should be .cls. or .mean."):
        token_relevance(minilm, [SENTENCE], pool="max")


def test_cli_text_rollout_json_and_escaped_heat_map(tmp_path):
    nasty = "<script>alert(1)</script> & [bold]fish[/bold]"
    ok = runner.invoke(app, ["rollout", "minilm", "--text", SENTENCE, "--text", nasty, "--json",
                             "-o", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.stdout)
    assert [s["text"] for s in doc["samples"]] == [SENTENCE, nasty]
    first = doc["samples"][0]["tokens"]
    assert [t["token"] for t in first] == ["[CLS]", "the", "nurse", "said", "she", "would", "help", ".", "[SEP]"]
    page = (tmp_path / "rollout-text-rollout.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    saved = json.loads((tmp_path / "rollout-text-rollout.json").read_text())  # the page's audit JSON
    assert saved["tokens"][0]["texts"] == [SENTENCE, nasty] and saved["data"]["rows"] == 2
    assert 'class="verdict-box' in page and 'id="provenance"' in page
    assert 'href="rollout-text-rollout.html"' in (tmp_path / "index.html").read_text()
    table = runner.invoke(app, ["rollout", "minilm", "--text", nasty, "--mode", "flow"])
    assert table.exit_code == 0, table.output
    assert "[bold]fish[/bold]" in table.stdout  # shown literally, not as rich markup
    samples = runner.invoke(app, ["rollout", "minilm", "-n", "2", "--json"])  # dataset sentences
    assert samples.exit_code == 0, samples.output
    assert len(json.loads(samples.stdout)["samples"]) == 2
    assert load_dataset("sentence-pairs", "test").modality == "text"


def test_audit_page_of_a_text_embedding_model_shows_its_own_metric(tmp_path):
    result = runner.invoke(app, ["explain", "minilm", "--method", "attention-rollout", "-n", "2",
                                 "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "explain-attention-rollout.html").read_text()
    assert "spearman" in page and "Accuracy" not in page


def test_cli_rollout_reads_your_own_text_table(tmp_path):
    sentences = ["tanisha made me feel glad at first but then furious", "this boy feels scared at first but then proud",
                 "the situation makes my brother feel not annoyed"]
    import pandas as pd

    pd.DataFrame({"review": sentences, "label": [0, 1, 1]}).to_csv(tmp_path / "reviews.csv", index=False)
    own = runner.invoke(app, ["rollout", "bert-mini", "--data", str(tmp_path / "reviews.csv"), "--text-column",
                              "review", "-n", "3", "--json", "-o", str(tmp_path / "out")])
    assert own.exit_code == 0, own.output
    given = runner.invoke(app, ["rollout", "bert-mini", *[a for s in sentences for a in ("--text", s)], "--json"])
    assert given.exit_code == 0, given.output
    mine, theirs = json.loads(own.stdout)["samples"], json.loads(given.stdout)["samples"]
    # the table's rows, tokenized by the model's own tokenizer, explained as the same sentences given inline
    assert [s["text"] for s in mine] == sentences == [s["text"] for s in theirs]
    for a, b in zip(mine, theirs, strict=True):
        assert [t["token"] for t in a["tokens"]] == [t["token"] for t in b["tokens"]]
        assert np.allclose([t["relevance"] for t in a["tokens"]], [t["relevance"] for t in b["tokens"]], atol=1e-6)
    saved = json.loads((tmp_path / "out" / "rollout-text-rollout.json").read_text())
    assert saved["data"]["name"] == "reviews.csv" and saved["data"]["rows"] == 3
    both = runner.invoke(app, ["rollout", "bert-mini", "--data", str(tmp_path / "reviews.csv"), "--text", "x"])
    assert both.exit_code == 2 and "not both" in both.output
    missing = runner.invoke(app, ["rollout", "bert-mini", "--data", str(tmp_path / "reviews.csv"),
                                  "--text-column", "nope"])
    assert missing.exit_code == 2 and "nope" in missing.output
