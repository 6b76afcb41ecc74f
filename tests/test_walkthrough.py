"""The README's new-user walkthrough, run as written: your model + an image folder + a group manifest -> CI gate."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fairlearn.metrics import MetricFrame
from PIL import Image
from safetensors.torch import load_file, save_file
from sklearn.metrics import accuracy_score

REPO = Path(__file__).resolve().parents[1]

MODEL = '''\
import torch
from torch import nn


def build() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 2))
'''


def commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- walkthrough:start[^>]*-->\s*```bash\n(.*?)```\s*<!-- walkthrough:end -->", text, re.S)
    assert block, "README.md has no walkthrough block between its markers"
    lines = [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert 0 < len(lines) < 10
    return lines


def write_project(folder: Path) -> pd.DataFrame:
    """What the user has: mymodel.py, trained weights, photos/<class>/*.png and groups.csv."""
    (folder / "mymodel.py").write_text(MODEL)
    rng = np.random.default_rng(0)
    rows, images, labels = [], [], []
    for label, name in enumerate(("cat", "dog")):
        (folder / "photos" / name).mkdir(parents=True)
        for i in range(16):
            pixels = (rng.random((16, 16, 3)) * 120).astype(np.uint8)
            pixels[..., label] += 120  # cats are redder, dogs greener: learnable
            Image.fromarray(pixels).save(folder / "photos" / name / f"{i:02d}.png")
            rows.append((f"{name}/{i:02d}.png", rng.choice(["light", "dark"])))
            images.append(pixels.transpose(2, 0, 1) / 255.0)
            labels.append(label)
    groups = pd.DataFrame(rows, columns=["path", "skin"])
    groups.to_csv(folder / "groups.csv", index=False)
    sys.path.insert(0, str(folder))
    try:
        import mymodel  # the user's own module, as written above
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("mymodel", None)
    torch.manual_seed(0)
    model = mymodel.build()
    x, y = torch.tensor(np.stack(images), dtype=torch.float32), torch.tensor(labels)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    save_file(model.state_dict(), str(folder / "model.safetensors"))
    with torch.no_grad():
        groups["pred"] = model(x).argmax(1).numpy()
    groups["label"] = labels
    return groups


def run_lines(lines: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # `xai` is this checkout's code (the README's `export PYTHONPATH` must not hide it)
    python, repo = shlex.quote(sys.executable), shlex.quote(str(REPO))
    script = f'set -e\nxai() {{ PYTHONPATH="$PYTHONPATH:{repo}" {python} -m xai "$@"; }}\n'
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GITHUB_STEP_SUMMARY")}
    return subprocess.run(["bash", "-c", script + "\n".join(lines)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.mark.slow
def test_walkthrough_runs_as_written_and_gates_a_regression(tmp_path):
    truth = write_project(tmp_path)
    lines = commands()
    done = run_lines(lines, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS:" in done.stdout
    for rel in ("audits/mymodel.toml", "reports/baselines/mymodel.json", ".github/workflows/xai-audit.yml",
                "reports/index.html", "reports/junit.xml", "reports/summary.md"):
        assert (tmp_path / rel).is_file(), rel
    page = json.loads((tmp_path / "reports" / "mymodel.json").read_text())
    table = next(t for f in page["fairness"] for t in f["tables"] if t["feature"] == "skin")
    by_hand = MetricFrame(metrics=accuracy_score, y_true=truth["label"], y_pred=truth["pred"],
                          sensitive_features=truth["skin"]).by_group
    for group, value in by_hand.items():
        assert table["by_group"]["accuracy"][group] == pytest.approx(value, abs=1e-9)
    assert page["performance"]["accuracy"] == pytest.approx(float((truth["label"] == truth["pred"]).mean()))
    assert page["performance"]["accuracy"] > 0.8  # the walkthrough's model learned something

    # a later commit ships weights that call everything a cat: the CI gate fails
    state = load_file(str(tmp_path / "model.safetensors"))
    state["4.weight"] = torch.zeros_like(state["4.weight"])
    state["4.bias"] = torch.tensor([1.0, 0.0])
    save_file(state, str(tmp_path / "model.safetensors"))
    gate = run_lines([lines[0], lines[-1]], tmp_path)  # the environment line and the CI command
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert "FAIL:" in gate.stdout and "accuracy" in gate.stdout
