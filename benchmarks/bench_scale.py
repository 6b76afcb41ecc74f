"""Prediction audits at scale: ``xai fairness --data`` against a bare pyarrow + bincount pass (issue 15).

For each size (default 20M and 200M rows) the script writes a parquet file of predictions
(``label`` and ``prediction`` int8, ``sex`` and ``region`` dictionary-encoded strings with
2 and 8 groups, 1M-row row groups) into a temporary folder, then times, interleaved in the
same run, each as its own fresh Python process (imports included):

- the anchor: a bare pass that streams the four columns with ``pyarrow.parquet.iter_batches``
  and adds ``np.bincount`` counts of (sex, region, label, prediction) per batch;
- ``python -m xai fairness --data FILE --y-true label --y-pred prediction -s sex,region
  --n-boot 1000 --json`` (the streamed count engine, 1,000 bootstrap resamples included).

Wall time is the median of ``--repeats`` runs; peak RSS is each child's own ``ru_maxrss``
(``os.wait4``). The cost of 1,000 resamples is measured in process on the file's count
table (``audit_counts`` with ``n_boot=1000`` minus ``n_boot=0``, median of 5), for the
multinomial draws the report uses and for the Poisson draws.

Usage::

    python benchmarks/bench_scale.py --sizes 20000000,200000000 --repeats 3 --ray
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]

BARE = r"""
import sys
import numpy as np
import pyarrow.parquet as pq
path = sys.argv[1]
total = None
with pq.ParquetFile(path, read_dictionary=["sex", "region"]) as f:
    for b in f.iter_batches(batch_size=1 << 20, columns=["label", "prediction", "sex", "region"]):
        sex, region = b.column("sex"), b.column("region")
        n_region = len(region.dictionary)
        code = ((sex.indices.to_numpy().astype(np.int64) * n_region + region.indices.to_numpy()) * 2
                + b.column("label").to_numpy()) * 2 + b.column("prediction").to_numpy()
        counts = np.bincount(code, minlength=len(sex.dictionary) * n_region * 4)
        total = counts if total is None else total + counts
print(int(total.sum()))
"""


def write_file(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` rows of label, prediction and two dictionary-encoded group columns, 1M-row row groups."""
    rng = np.random.default_rng(seed)
    sexes = pa.array(["female", "male"])
    regions = pa.array([f"region-{i}" for i in range(8)])
    chunk = 1 << 20
    schema = pa.schema([("label", pa.int8()), ("prediction", pa.int8()),
                        ("sex", pa.dictionary(pa.int32(), pa.string())),
                        ("region", pa.dictionary(pa.int32(), pa.string()))])
    with pq.ParquetWriter(path, schema, compression="snappy") as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            sex = rng.integers(0, 2, n, dtype=np.int32)
            region = rng.integers(0, 8, n, dtype=np.int32)
            label = (rng.random(n) < 0.3 + 0.05 * sex).astype(np.int8)
            flip = rng.random(n) < 0.1 + 0.01 * region
            prediction = np.where(flip, 1 - label, label).astype(np.int8)
            writer.write_batch(pa.record_batch(
                [pa.array(label), pa.array(prediction), pa.DictionaryArray.from_arrays(sex, sexes),
                 pa.DictionaryArray.from_arrays(region, regions)], schema=schema))


def measure(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB, the child's own ``ru_maxrss`` from ``os.wait4``) and stdout of one process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode:
            raise SystemExit(f"{argv[:4]} failed ({child.returncode}): {err.read().decode()[-2000:]}")
        return wall, usage.ru_maxrss / 1024, out.read().decode()


def bootstrap_cost(path: Path) -> dict[str, float]:
    """Seconds 1,000 resamples add to a report of the file's count table (median of 5)."""
    sys.path.insert(0, str(ROOT))
    from xai.fairness import _engine
    from xai.fairness.stream import audit_counts, scan_predictions

    table = scan_predictions(path, y_true="label", y_pred="prediction", sensitive=["sex", "region"],
                             progress=False)

    def timed(fn) -> float:
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
        return statistics.median(runs)

    base = timed(lambda: audit_counts(table, n_boot=0))
    full = timed(lambda: audit_counts(table, n_boot=1000))
    poisson = timed(lambda: [_engine.poisson_bootstrap_cells(table.feature_cells(f)[2], n_boot=1000, seed=0)
                             for f in (*table.features, None)])
    multinomial = timed(lambda: [_engine.bootstrap_cells(table.feature_cells(f)[2], n_boot=1000, seed=0)
                                 for f in (*table.features, None)])
    return {"report": full - base, "poisson_draws": poisson, "multinomial_draws": multinomial,
            "cells": int(table.cells.size)}


def ray_cost(path: Path) -> dict[str, float]:
    """Wall seconds of the local engine and of ``--engine ray`` on a local 2-CPU cluster (warm), in process."""
    import ray

    sys.path.insert(0, str(ROOT))
    from xai.fairness._ray import scan_predictions_ray
    from xai.fairness.stream import scan_predictions

    args = {"y_true": "label", "y_pred": "prediction", "sensitive": ["sex", "region"]}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        scan_predictions_ray(path, **args)  # warm: workers started and importing xai
        start = time.perf_counter()
        remote = scan_predictions_ray(path, **args)
        ray_s = time.perf_counter() - start
    finally:
        ray.shutdown()
    start = time.perf_counter()
    local = scan_predictions(path, progress=False, **args)
    local_s = time.perf_counter() - start
    return {"local_s": local_s, "ray_s": ray_s, "equal": bool(remote.same_counts(local, rtol=1e-12))}


MODEL_SPEC = """
title = "bench-model"
explain = [{{ method = "saliency", samples = 8 }}]
[model]
name = "tests.datasets._user_models:table_mlp"
weights = "mlp.safetensors"
[data]
path = "{table}"
sensitive = ["sex", "race"]
[[probe]]
name = "group-metrics"
options = {{ n_boot = 1000 }}
"""


def write_table(path: Path, rows: int, seed: int = 0) -> None:
    """A feature table: a, b, c (float32), sex and race (dictionary strings), label (int8); 1M-row row groups."""
    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, rows, 1 << 20):
        n = min(1 << 20, rows - start)
        a, b, c = (rng.normal(size=n).astype(np.float32) for _ in range(3))
        batch = pa.table({
            "a": a, "b": b, "c": c,
            "sex": pa.DictionaryArray.from_arrays(rng.integers(0, 2, n).astype(np.int8), ["F", "M"]),
            "race": pa.DictionaryArray.from_arrays(rng.choice(4, n, p=[.5, .3, .15, .05]).astype(np.int8),
                                                   ["a", "b", "c", "d"]),
            "label": (a + 0.5 * rng.normal(size=n) > 0).astype(np.int8)})
        writer = writer or pq.ParquetWriter(path, batch.schema)
        writer.write_table(batch, row_group_size=1 << 20)
    if writer is not None:
        writer.close()


def model_audit_cost(folder: Path, rows: int, repeats: int) -> dict[str, float]:
    """``xai audit`` of a table MLP on a generated table: streamed (``--engine local``) and rows in memory."""
    from safetensors.torch import save_file

    sys.path.insert(0, str(ROOT))
    from tests.datasets._user_models import table_mlp

    path = folder / f"table-{rows}.parquet"
    if not path.exists():
        write_table(path, rows)
    save_file(table_mlp().state_dict(), str(folder / "mlp.safetensors"))
    spec = folder / f"model-{rows}.toml"
    spec.write_text(MODEL_SPEC.format(table=path.name))
    argv = [sys.executable, "-m", "xai", "audit", str(spec), "-o", str(folder / "reports"), "--json",
            "--device", "cpu"]
    streamed, memory = [], []
    for _ in range(repeats):
        wall, rss, out = measure([*argv, "--engine", "local"])
        assert json.loads(out)["audits"], out
        streamed.append((wall, rss))
        wall, rss, out = measure(argv)
        memory.append((wall, rss))
    return {"rows": rows, "file_mb": path.stat().st_size / 1e6,
            "stream_s": statistics.median(w for w, _ in streamed), "stream_rss_mb": max(r for _, r in streamed),
            "memory_s": statistics.median(w for w, _ in memory), "memory_rss_mb": max(r for _, r in memory)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20000000,200000000", help="comma-separated row counts")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None, help="folder for the generated files (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the results here")
    parser.add_argument("--ray", action="store_true", help="also time --engine ray on the first size")
    parser.add_argument("--model-sizes", default="",
                        help="comma-separated row counts of a generated feature table for `xai audit` of a table "
                             "MLP, streamed (--engine local) against the rows in memory (none: skipped)")
    parser.add_argument("--skip-predictions", action="store_true", help="only the model audit rows")
    args = parser.parse_args()
    sizes = [] if args.skip_predictions else [int(s) for s in args.sizes.split(",")]
    model_rows = []
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="xai-bench-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    load_before = os.getloadavg()
    try:
        for rows in sizes:
            path = folder / f"preds-{rows}.parquet"
            if not path.exists():
                start = time.perf_counter()
                write_file(path, rows)
                print(f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - start:.1f} s",
                      file=sys.stderr)
            bare_argv = [sys.executable, "-c", BARE, str(path)]
            xai_argv = [sys.executable, "-m", "xai", "fairness", "--data", str(path), "--y-true", "label",
                        "--y-pred", "prediction", "-s", "sex,region", "--n-boot", "1000", "--json"]
            bare, ours = [], []
            for _ in range(args.repeats):  # interleaved: both see the same machine
                wall, rss, out = measure(bare_argv)
                assert int(out) == rows, out
                bare.append((wall, rss))
                wall, rss, out = measure(xai_argv)
                document = json.loads(out)
                assert document["tables"][0]["overall"]["count"] == rows
                ours.append((wall, rss))
            boot = bootstrap_cost(path)
            row = {
                "rows": rows, "file_mb": path.stat().st_size / 1e6,
                "bare_s": statistics.median(w for w, _ in bare), "bare_rss_mb": max(r for _, r in bare),
                "xai_s": statistics.median(w for w, _ in ours), "xai_rss_mb": max(r for _, r in ours),
                "boot_report_s": boot["report"], "poisson_s": boot["poisson_draws"],
                "multinomial_s": boot["multinomial_draws"], "cells": boot["cells"],
            }
            row["ratio"] = row["xai_s"] / row["bare_s"]
            if args.ray and rows == sizes[0]:
                row["ray"] = ray_cost(path)
            results.append(row)
            print(json.dumps(row), file=sys.stderr)
        for rows in [int(s) for s in args.model_sizes.split(",") if s]:
            model_rows.append(model_audit_cost(folder, rows, args.repeats))
            print(json.dumps(model_rows[-1]), file=sys.stderr)
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(folder, ignore_errors=True)
    load_after = os.getloadavg()
    print(f"Command: `python benchmarks/bench_scale.py --sizes {args.sizes} --repeats {args.repeats}"
          f"{' --ray' if args.ray else ''}{' --skip-predictions' if args.skip_predictions else ''}"
          f"{f' --model-sizes {args.model_sizes}' if args.model_sizes else ''}`")
    print(f"({platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, python "
          f"{platform.python_version()}, pyarrow {pa.__version__}; median of {args.repeats}, interleaved; "
          f"load average {' '.join(f'{v:.2f}' for v in load_before)} before, "
          f"{' '.join(f'{v:.2f}' for v in load_after)} after; the machine is shared with other sessions)\n")
    if not results:
        print("(prediction files skipped)")
    print("| rows | file MB | bare pass s | `xai fairness --data` s | ratio (target <= 2x) | bare RSS MB | "
          "xai RSS MB (target <= 400) | 1,000 resamples add s (target <= 0.2) | Poisson draws s | "
          "multinomial draws s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['rows']:,} | {r['file_mb']:.0f} | {r['bare_s']:.2f} | {r['xai_s']:.2f} | {r['ratio']:.2f}x | "
              f"{r['bare_rss_mb']:.0f} | {r['xai_rss_mb']:.0f} | {r['boot_report_s']:.3f} | {r['poisson_s']:.4f} | "
              f"{r['multinomial_s']:.4f} |")
    for r in results:
        if "ray" in r:
            ray_row = r["ray"]
            ratio = ray_row["ray_s"] / ray_row["local_s"]
            print(f"\nRay engine, local 2-CPU cluster (warm), {r['rows']:,} rows in process: local engine "
                  f"{ray_row['local_s']:.2f} s, Ray {ray_row['ray_s']:.2f} s ({ratio:.2f}x); "
                  f"same count table to 1e-12: {'yes' if ray_row['equal'] else 'NO'}")
    if model_rows:
        print("\nModel audit of a table MLP on a generated feature table (3 features, 2 sensitive columns; "
              "group-metrics with 1,000 resamples, saliency on 8 rows), `xai audit --json` as its own process:\n")
        print("| rows | file MB | streamed (`--engine local`) s | streamed RSS MB | rows in memory s | "
              "in memory RSS MB |")
        print("|---:|---:|---:|---:|---:|---:|")
        for m in model_rows:
            print(f"| {m['rows']:,} | {m['file_mb']:.0f} | {m['stream_s']:.2f} | {m['stream_rss_mb']:.0f} | "
                  f"{m['memory_s']:.2f} | {m['memory_rss_mb']:.0f} |")
    if args.json_out:
        document = {"predictions": results, "model": model_rows} if model_rows else results
        Path(args.json_out).write_text(json.dumps(document, indent=1))


if __name__ == "__main__":
    main()
