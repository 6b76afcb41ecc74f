"""Users' own data (xai/datasets/_user.py): numbers equal the same computation done by hand on the same rows."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from fairlearn.metrics import MetricFrame, demographic_parity_difference, equalized_odds_difference
from PIL import Image
from safetensors.torch import save_file
from sklearn.metrics import accuracy_score
from typer.testing import CliRunner

from tests.datasets import _user_models as models
from xai.audit import AuditSpec, parse_spec, run_audit
from xai.cli import app
from xai.datasets._user import DataSource, open_source
from xai.errors import DataError, XaiError

MODELS = "tests.datasets._user_models"
runner = CliRunner()


def write_folder(root: Path, n: int = 12, seed: int = 0) -> pd.DataFrame:
    """``root/{cat,dog}/<i>.png`` of varied sizes; returns the group manifest (path, skin, label)."""
    rng = np.random.default_rng(seed)
    rows = []
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            size = (10 + i % 3, 9 + i % 4)
            pixels = (rng.random((*size, 3)) * 255).astype(np.uint8)
            if label == "dog":
                pixels[..., 0] = np.maximum(pixels[..., 0], 200)
            Image.fromarray(pixels).save(root / label / f"{i}.png")
            rows.append((f"{label}/{i}.png", rng.choice(["light", "dark"]), label))
    return pd.DataFrame(rows, columns=["path", "skin", "label"])


def save_weights(module: torch.nn.Module, path: Path) -> Path:
    save_file(module.state_dict(), str(path))
    return path


def decode_by_hand(files: list[Path], size: tuple[int, int], mean: Any = 0.0, std: Any = 1.0,
                   resample: Image.Resampling = Image.Resampling.BILINEAR) -> torch.Tensor:
    mean, std = np.asarray(mean, np.float32).reshape(-1, 1, 1), np.asarray(std, np.float32).reshape(-1, 1, 1)
    out = []
    for file in files:
        image = Image.open(file).convert("RGB").resize((size[1], size[0]), resample)
        out.append((np.asarray(image, np.float32).transpose(2, 0, 1) / 255.0 - mean) / std)
    return torch.as_tensor(np.stack(out)).float()


def group_table(result, feature: str):
    tables = [t for f in result.fairness for t in f.tables if t.feature == feature]
    assert len(tables) == 1
    return tables[0]


def assert_group_metrics(table, y_true, y_pred, groups) -> None:
    frame = MetricFrame(metrics=accuracy_score, y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    for group, value in frame.by_group.items():
        assert table.by_group["accuracy"][group] == pytest.approx(value, abs=1e-9)
    assert table.disparities["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y_true, y_pred, sensitive_features=groups), abs=1e-9)
    assert table.disparities["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y_true, y_pred, sensitive_features=groups), abs=1e-9)


def spec(text: str, folder: Path) -> AuditSpec:
    return parse_spec(text).resolve_paths(folder)


@pytest.fixture()
def photos(tmp_path):
    manifest = write_folder(tmp_path / "photos")
    manifest[["path", "skin"]].to_csv(tmp_path / "groups.csv", index=False)
    save_weights(models.image_cnn(), tmp_path / "cnn.safetensors")
    return tmp_path, manifest


def test_image_folder_with_side_file_equals_hand_computation(photos):
    folder, manifest = photos
    result = run_audit(spec(f'''
title = "cnn"
explain = []
[model]
name = "{MODELS}:image_cnn"
weights = "cnn.safetensors"
[data]
path = "photos"
side = "groups.csv"
id = "path"
sensitive = ["skin"]
size = [8, 8]
mean = [0.5]
std = [0.25]
[[probe]]
name = "group-metrics"
options = {{ n_boot = 0, min_group_size = 1 }}
''', folder), slug="cnn")
    assert result.data.rows == 24 and result.model.modality == "image"
    # by hand: ImageFolder order (sorted classes, sorted files), the same decode, the model's own predictions
    files = [folder / "photos" / p for p in sorted(manifest["path"], key=lambda p: (p.split("/")[0], p))]
    rel = [f.relative_to(folder / "photos").as_posix() for f in files]
    x = decode_by_hand(files, (8, 8), 0.5, 0.25)
    model = models.image_cnn().eval()
    with torch.no_grad():
        y_pred = model(x).argmax(1).numpy()
    y_true = np.array([0 if r.startswith("cat/") else 1 for r in rel])
    skin = manifest.set_index("path").loc[rel, "skin"].to_numpy()
    assert result.performance["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-9)
    assert_group_metrics(group_table(result, "skin"), y_true, y_pred, skin)


def test_manifest_matches_the_folder_and_samples_decode_only_their_rows(photos, monkeypatch):
    folder, manifest = photos
    manifest.to_csv(folder / "photos" / "manifest.csv", index=False)
    opened = open_source(DataSource(path=folder / "photos" / "manifest.csv", sensitive=("skin",), size=(8, 8)))
    assert opened.kind == "manifest" and opened.class_names == ("cat", "dog")
    whole = opened.load()
    files = [folder / "photos" / p for p in manifest["path"]]
    assert torch.allclose(whole.x, decode_by_hand(files, (8, 8)), atol=1e-6)
    assert whole.groups["skin"].tolist() == manifest["skin"].tolist()
    opens: list[str] = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda fp, *a, **k: (opens.append(str(fp)), real_open(fp, *a, **k))[1])
    few = opened.load(samples=5, seed=3)
    assert len(few) == 5 and len(opens) == 5  # only the sampled rows are decoded
    index = torch.randperm(len(manifest), generator=torch.Generator().manual_seed(3))[:5].sort().values
    assert torch.equal(few.x, whole.x[index]) and torch.equal(few.y, whole.y[index])


def test_images_are_decoded_batch_by_batch(photos, monkeypatch):
    folder, _ = photos
    opened = open_source(DataSource(path=folder / "photos", size=(8, 8), batch_size=5))
    alive: list[int] = []
    live = [0]
    real_open = Image.open

    class Tracked:
        def __init__(self, image):
            self.image = image

        def __enter__(self):
            live[0] += 1
            alive.append(live[0])
            return self.image.__enter__()

        def __exit__(self, *exc):
            live[0] -= 1
            return self.image.__exit__(*exc)

    monkeypatch.setattr(Image, "open", lambda fp, *a, **k: Tracked(real_open(fp, *a, **k)))
    data = opened.load()
    assert len(data) == 24 and max(alive) == 1  # one open file at a time; pixels go straight into x


def test_manifest_paths_stay_inside_its_folder(photos, tmp_path):
    folder, manifest = photos
    outside = tmp_path / "secret.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(outside)
    inner = folder / "photos"
    for bad, said in (("../secret.png", "leaves the manifest's folder"), (str(outside), "is absolute")):
        frame = manifest.copy()
        frame.loc[0, "path"] = bad
        frame.to_csv(inner / "m.csv", index=False)
        with pytest.raises(DataError, match=said):
            open_source(DataSource(path=inner / "m.csv"))
        allowed = open_source(DataSource(path=inner / "m.csv", allow_outside_paths=True))
        assert allowed.frame["_file"].iloc[0].endswith("secret.png")
    (inner / "cat" / "link.png").symlink_to(outside)
    with pytest.raises(DataError, match="links outside the folder"):
        open_source(DataSource(path=inner))


def test_feature_table_equals_fairlearn_on_the_model_predictions(tmp_path):
    rng = np.random.default_rng(5)
    n = 300
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n),
                          "sex": rng.choice(["F", "M"], n), "label": rng.integers(0, 2, n)})
    frame.to_parquet(tmp_path / "table.parquet")
    save_weights(models.table_mlp(), tmp_path / "mlp.safetensors")
    result = run_audit(spec(f'''
title = "mlp"
explain = []
[model]
name = "{MODELS}:table_mlp"
weights = "mlp.safetensors"
[data]
path = "table.parquet"
sensitive = ["sex"]
[[probe]]
name = "group-metrics"
options = {{ n_boot = 0, min_group_size = 1 }}
''', tmp_path), slug="mlp")
    with torch.no_grad():
        y_pred = models.table_mlp()(torch.tensor(frame[["a", "b", "c"]].to_numpy(np.float32))).argmax(1).numpy()
    assert result.model.modality == "tabular"
    assert_group_metrics(group_table(result, "sex"), frame["label"].to_numpy(), y_pred, frame["sex"].to_numpy())


def test_preprocess_function_encodes_text_columns(tmp_path):
    rng = np.random.default_rng(6)
    n = 120
    frame = pd.DataFrame({"city": rng.choice(models.CITIES, n), "age": rng.integers(18, 80, n),
                          "group": rng.choice(["x", "y"], n), "label": rng.choice(["no", "yes"], n)})
    frame.to_csv(tmp_path / "people.csv", index=False)
    with pytest.raises(DataError, match=r"feature columns 'city' are not numeric.*preprocess"):
        open_source(DataSource(path=tmp_path / "people.csv", sensitive=("group",)))
    opened = open_source(DataSource(path=tmp_path / "people.csv", sensitive=("group",),
                                    preprocess=f"{MODELS}:encode_city"))
    data = opened.load()
    assert data.class_names == ("no", "yes")
    assert np.array_equal(data.x.numpy(), models.encode_city(frame))
    assert data.y.tolist() == (frame["label"] == "yes").astype(int).tolist()


def test_text_table_is_tokenized_by_the_model(tmp_path):
    texts = ["good film", "bad film", "very good", "not good film", "very bad", "film"] * 10
    frame = pd.DataFrame({"review": texts, "label": [1, 0, 1, 0, 0, 1] * 10, "lang": ["en", "fr"] * 30})
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    save_weights(models.text_bag(), tmp_path / "bag.safetensors")
    result = run_audit(spec(f'''
title = "bag"
explain = []
[model]
name = "{MODELS}:text_bag"
weights = "bag.safetensors"
[data]
path = "reviews.csv"
text = "review"
sensitive = ["lang"]
[[probe]]
name = "group-metrics"
options = {{ n_boot = 0, min_group_size = 1 }}
''', tmp_path), slug="bag")
    model = models.text_bag().eval()
    with torch.no_grad():
        y_pred = model(model.tokenizer.encode(texts)).argmax(1).numpy()
    assert_group_metrics(group_table(result, "lang"), frame["label"].to_numpy(), y_pred, frame["lang"].to_numpy())


def test_side_file_problems_are_named(photos):
    folder, manifest = photos
    manifest[["path", "skin"]].iloc[1:].to_csv(folder / "short.csv", index=False)
    with pytest.raises(DataError, match=r"short.csv: no row with path = 'cat/0.png' \(1 of 24"):
        open_source(DataSource(path=folder / "photos", side=folder / "short.csv", id="path", sensitive=("skin",)))
    pd.concat([manifest, manifest.iloc[:1]])[["path", "skin"]].to_csv(folder / "dup.csv", index=False)
    with pytest.raises(DataError, match="appears more than once"):
        open_source(DataSource(path=folder / "photos", side=folder / "dup.csv", id="path", sensitive=("skin",)))
    with pytest.raises(XaiError, match=r"unknown sensitive column .* 'race'; known: .*skin"):
        open_source(DataSource(path=folder / "photos", side=folder / "groups.csv", id="path", sensitive=("race",)))


# -- bad input on the command line: one line, exit 2, no report ------------------------------------------


def cli(*args: str, cwd: Path):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(app, list(args))
    finally:
        os.chdir(old)


def one_line_error(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_bad_input_is_one_line_exit_2_and_no_report(photos):
    folder, manifest = photos
    cnn = ["--weights", "cnn.safetensors"]
    (folder / "empty").mkdir()
    one_line_error(cli("fairness", f"{MODELS}:image_cnn", *cnn, "--data", "empty", "-s", "skin", "-o", "out",
                       cwd=folder), "empty: no images found")
    save_weights(models.image_cnn3(), folder / "cnn3.safetensors")
    one_line_error(cli("explain", f"{MODELS}:image_cnn3", "--weights", "cnn3.safetensors", "--data", "photos",
                       "-m", "saliency", "-o", "out", cwd=folder),
                   "outputs of shape (4, 3)", "one score per class of 2")
    manifest.to_csv(folder / "photos" / "m.csv", index=False)
    one_line_error(cli("fairness", f"{MODELS}:image_cnn", *cnn, "--data", "photos/m.csv", "--label", "kind",
                       "-s", "skin", "-o", "out", cwd=folder),
                   "unknown column in m.csv 'kind'", "known: label, path, skin")
    (folder / "photos" / "dog" / "broken.png").write_bytes(b"not a png")
    pd.concat([manifest, pd.DataFrame([{"path": "dog/broken.png", "skin": "dark", "label": "dog"}])]
              )[["path", "skin"]].to_csv(folder / "groups.csv", index=False)
    one_line_error(cli("fairness", f"{MODELS}:image_cnn", *cnn, "--data", "photos", "--strict", "--side",
                       "groups.csv", "--id", "path", "-s", "skin", "-o", "out", cwd=folder),
                   "cannot decode image dog/broken.png")
    assert not (folder / "out" / "index.html").exists()
    # without --strict the file is skipped and named in the report's notes
    ok = cli("fairness", f"{MODELS}:image_cnn", *cnn, "--data", "photos", "--side", "groups.csv", "--id", "path",
             "-s", "skin", "-o", "out", cwd=folder)
    assert ok.exit_code == 0, ok.output
    page = json.loads(next((folder / "out").glob("fairness-*.json")).read_text())
    assert page["data"]["rows"] == 24
    assert any("dog/broken.png" in note and "skipped 1 image" in note for note in page["notes"])


def test_text_table_without_a_tokenizer_and_text_features_fail_before_work(tmp_path):
    pd.DataFrame({"review": ["good", "bad"] * 5, "label": [1, 0] * 5, "lang": ["en"] * 10}).to_csv(
        tmp_path / "r.csv", index=False)
    save_weights(models.table_mlp(), tmp_path / "mlp.safetensors")
    one_line_error(cli("fairness", f"{MODELS}:table_mlp", "--weights", "mlp.safetensors", "--data", "r.csv",
                       "--text", "review", "-s", "lang", cwd=tmp_path), "text table", "has no tokenizer")
    one_line_error(cli("fairness", f"{MODELS}:table_mlp", "--weights", "mlp.safetensors", "--data", "r.csv",
                       "-s", "lang", cwd=tmp_path), "feature columns 'review' are not numeric")
    one_line_error(cli("fairness", "adult-mlp", "--data", "nope/", "-s", "sex", cwd=tmp_path),
                   "--data nope/: no such file or folder")


# -- Python: xai.audit(model=<module | path>, data=<folder | DataFrame | path>, sensitive=[...]) -------------------


def test_python_audit_takes_a_module_with_a_folder_and_a_path_with_a_dataframe(photos, tmp_path):
    import xai

    folder, manifest = photos
    module = models.image_cnn()
    all_groups = [{"name": "group-metrics", "options": {"min_group_size": 1}}]  # a few rows per group: rank all
    result = xai.audit(module, folder / "photos", sensitive=["skin"], explain=[], probe=all_groups,
                       data_options={"side": folder / "groups.csv", "id": "path", "size": 8})
    rel = sorted(manifest["path"], key=lambda p: (p.split("/")[0], p))
    x = decode_by_hand([folder / "photos" / p for p in rel], (8, 8))
    with torch.no_grad():
        y_pred = module.eval()(x).argmax(1).numpy()
    y_true = np.array([0 if r.startswith("cat/") else 1 for r in rel])
    assert_group_metrics(group_table(result, "skin"), y_true, y_pred, manifest.set_index("path").loc[rel, "skin"])

    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"a": rng.normal(size=90), "b": rng.normal(size=90), "c": rng.normal(size=90),
                          "sex": rng.choice(["F", "M"], 90), "y": rng.integers(0, 2, 90)})
    weights = save_weights(models.table_mlp(), tmp_path / "t.safetensors")
    result = xai.audit(f"{MODELS}:table_mlp", frame, weights=weights, label="y", sensitive=["sex"], explain=[],
                       probe=all_groups)
    with torch.no_grad():
        pred = models.table_mlp()(torch.tensor(frame[["a", "b", "c"]].to_numpy(np.float32))).argmax(1).numpy()
    assert_group_metrics(group_table(result, "sex"), frame["y"].to_numpy(), pred, frame["sex"].to_numpy())
    with pytest.raises(XaiError, match="unknown column in DataFrame 'label'; known: a, b, c, sex, y"):
        xai.audit(f"{MODELS}:table_mlp", frame, weights=weights, sensitive=["sex"])


def test_explain_and_sanity_on_an_image_folder_equal_captum_on_the_same_rows(photos):
    from captum.attr import Saliency

    folder, _ = photos
    done = cli("explain", f"{MODELS}:image_cnn", "--weights", "cnn.safetensors", "--data", "photos", "-m",
               "saliency", "-n", "3", "--seed", "4", "--json", cwd=folder)
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    files = sorted((folder / "photos").glob("*/*.png"), key=lambda p: (p.parent.name, p.name))
    index = torch.randperm(len(files), generator=torch.Generator().manual_seed(4))[:3].sort().values
    first = Image.open(files[0])
    x = decode_by_hand([files[i] for i in index], (first.height, first.width))  # the first image's size
    model = models.image_cnn().eval()
    predicted = model(x).argmax(1)
    expected = Saliency(model).attribute(x.clone().requires_grad_(True), target=predicted, abs=True)
    assert np.allclose(np.array(document["attributions"]), expected.detach().numpy(), atol=1e-6)
    assert document["labels"] == [0 if files[i].parent.name == "cat" else 1 for i in index]
    sanity = cli("sanity", f"{MODELS}:image_cnn", "--weights", "cnn.safetensors", "--data", "photos", "-m",
                 "saliency", "-n", "4", "--json", cwd=folder)
    assert sanity.exit_code == 0, sanity.output


def test_a_sensitive_typo_lists_the_table_columns(tmp_path):
    pd.DataFrame({"a": [1.0, 2.0], "sex": ["F", "M"], "label": [0, 1]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(XaiError, match=r"unknown sensitive column in t.csv 'gender'; known: a, label, sex"):
        open_source(DataSource(path=tmp_path / "t.csv", sensitive=("gender",)))


def test_hostile_data_files_are_never_unpickled(tmp_path):
    from tests._hostile import marker_pickle

    marker = tmp_path / "pwned"
    for name in ("data.pkl", "data.pickle", "data.npy"):
        (tmp_path / name).write_bytes(marker_pickle(marker))
        with pytest.raises(DataError, match="must be .csv or .parquet"):
            open_source(DataSource(path=tmp_path / name))
    for name in ("data.csv", "data.parquet", "side.csv"):
        (tmp_path / name).write_bytes(marker_pickle(marker))
    with pytest.raises(DataError):
        open_source(DataSource(path=tmp_path / "data.parquet"))
    with pytest.raises(XaiError):
        open_source(DataSource(path=tmp_path / "data.csv"))
    with pytest.raises(XaiError):
        open_source(DataSource(path=tmp_path / "data.csv", side=tmp_path / "side.csv", id="x"))
    assert not marker.exists()


def test_a_zoo_model_takes_the_geometry_and_classes_of_its_own(lenet, tmp_path):
    for digit in ("3", "7"):
        (tmp_path / "digits" / digit).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((20, 20, 3), 40 * i, np.uint8)).save(tmp_path / "digits" / digit / f"{i}.png")
    opened = open_source(DataSource(path=tmp_path / "digits"))
    opened.check_classes(lenet)  # folder names "3" and "7" are lenet's classes 3 and 7
    data = opened.load(lenet)
    assert data.class_names == lenet.class_names and data.y.tolist() == [3, 3, 3, 7, 7, 7]
    assert tuple(data.x.shape) == (6, *lenet.input_shape)  # grey 32 x 32, from the model's input shape
    (tmp_path / "pets" / "cat").mkdir(parents=True)
    (tmp_path / "pets" / "dog").mkdir(parents=True)
    for name in ("cat", "dog"):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "pets" / name / "0.png")
    with pytest.raises(DataError, match=r"the data has 2 classes \(cat, dog\) but lenet scores 10"):
        open_source(DataSource(path=tmp_path / "pets")).check_classes(lenet)


def test_large_decodes_go_to_a_memory_mapped_file_with_the_same_numbers(photos, monkeypatch):
    import xai.datasets._user as user

    folder, _ = photos
    (folder / "photos" / "dog" / "zz-broken.png").write_bytes(b"not a png")
    source = DataSource(path=folder / "photos", size=(8, 8))
    in_memory = open_source(source).load()
    monkeypatch.setattr(user, "MEMMAP_BYTES", 0)
    maps: list[np.memmap] = []
    real_memmap = np.memmap
    monkeypatch.setattr(np, "memmap", lambda *a, **k: maps.append(real_memmap(*a, **k)) or maps[-1])
    mapped = open_source(source).load()
    assert len(maps) == 1 and mapped.x.data_ptr() == maps[0].ctypes.data  # the images live in the mapped file
    assert len(mapped) == len(in_memory) == 24  # the broken file skipped, the rows after it moved up
    assert torch.equal(mapped.x, in_memory.x) and torch.equal(mapped.y, in_memory.y)


def test_the_model_sources_image_config_sets_size_mean_std_and_interpolation(photos):
    from xai.zoo import ModelHandle

    folder, _ = photos
    handle = ModelHandle.from_module(models.image_cnn(), classes=("cat", "dog"), input_shape=(3, 8, 8))
    handle.image_config = SimpleNamespace(input_size=(3, 6, 5), mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3),
                                          interpolation="bicubic")  # what timm/torchvision/HF sources carry
    data = open_source(DataSource(path=folder / "photos")).load(handle)
    files = sorted((folder / "photos").glob("*/*.png"), key=lambda p: (p.parent.name, p.name))
    expected = decode_by_hand(files, (6, 5), (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), Image.Resampling.BICUBIC)
    assert torch.allclose(data.x, expected, atol=1e-5)
    spec_wins = open_source(DataSource(path=folder / "photos", size=(4, 4), mean=(0.0,), std=(1.0,))).load(handle)
    assert torch.allclose(spec_wins.x, decode_by_hand(files, (4, 4), resample=Image.Resampling.BICUBIC), atol=1e-6)
