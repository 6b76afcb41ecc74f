from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.torch import save_file
from typer.testing import CliRunner

from xai.cli import app

from ..fairness._text_models import NameBiased

runner = CliRunner()


def test_explain_bert_mini_with_lig_gives_token_scores_and_a_heat_map(tmp_path):
    result = runner.invoke(app, ["explain", "bert-mini", "-m", "layer-integrated-gradients", "-n", "2",
                                 "--option", "steps=16", "--json", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    attributions = np.array(doc["attributions"])
    assert attributions.shape == (2, 16) and doc["modality"] == "text"
    assert doc["tokens"][0][0] == "[CLS]" and len(doc["tokens"][0]) <= 16
    assert (attributions[0, len(doc["tokens"][0]):] == 0).all()  # padding
    html = (tmp_path / "explain-layer-integrated-gradients.html").read_text()
    assert html.count('<span class="tok') == sum(len(t) for t in doc["tokens"])  # specials are "tok special"
    assert ">" + doc["tokens"][1][1] + "</span>" in html


def test_bias_eec_flags_a_model_biased_on_one_name(tmp_path):
    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in NameBiased().state_dict().items()}, weights)
    args = ["bias", "eec", "tests.fairness._text_models:name_biased", "--weights", str(weights),
            "--data", "sentiment-text", "--axis", "name_group", "--score", "log-odds"]
    result = runner.invoke(app, [*args, "--option", "min_gap=0.01", "--json"])
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)["tables"][0]
    assert table["feature"] == "name_group"
    assert table["overall"]["mean_difference"] == pytest.approx(1 / 20, abs=1e-6)  # 1 of 20 names, +1 log-odds
    assert table["overall"]["flagged"] == 1.0
    text = runner.invoke(app, args)
    assert text.exit_code == 0 and "mean difference (african-american - european-american)" in text.stdout
    bad = runner.invoke(app, [*args[:-4], "--axis", "religion"])
    assert bad.exit_code == 2 and "unknown template-bias axis 'religion'" in bad.output
