"""Slice discovery at scale: wall time, recall and false discoveries on the planted benchmark.

    PYTHONPATH=. python benchmarks/bench_slices.py                   # 10M rows x 20 attributes (BENCHMARKS.md)
    PYTHONPATH=. python benchmarks/bench_slices.py --rows 1000000    # quicker
    PYTHONPATH=. python benchmarks/bench_slices.py --streamed        # also from a parquet file, streamed

The planted benchmark (``xai/fairness/_planted.py``): 20 attributes (15 categorical with 2 to 6
levels of unequal frequency, 5 numeric cut in quartile bins), base error rate 0.2, and
``--planted`` slices of 1 to 3 conditions covering 0.5% to 3% of the rows each, whose error rate
is 5 points higher or lower. Discovery searches every slice of up to 3 attributes (1,350
combinations of columns, about 75,000 slices) at FDR 5% with ``min_gap`` 0.01. Recall: share
of the planted slices among the findings; FDP: share of findings whose population gap (from the
known error probabilities of these rows) is at most ``min_gap``, the test's null.

The anchor, in the same run on ``--anchor-rows`` rows: counting each of the 1,350 combinations
with its own ``np.bincount`` pass (the counting alone, no tests), against the whole discovery.
Null data (no planted slice, ``min_gap`` 0): how many of ``--null-seeds`` runs report any slice.

``--streamed`` writes the same rows to parquet and runs the search as ``xai fairness --data F
--slices`` does (:mod:`xai.fairness.slice_scan`, two passes in batches) in a process of its own:
its wall time and peak RSS, and whether its findings equal the in-memory ones.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from xai.fairness._planted import planted_slices, score_findings
from xai.fairness.slices import _plan, block_budget, discover_slices, encode_columns


def naive_counts(columns: dict, cell: np.ndarray, max_order: int = 3) -> int:
    """One bincount pass per combination of columns (the straightforward way); returns the passes."""
    coded = encode_columns(columns)
    passes = 0
    for r in range(1, max_order + 1):
        for combo in itertools.combinations(range(len(coded)), r):
            code = np.zeros(cell.shape[0], dtype=np.int64)
            for c in combo:
                code *= len(coded[c].levels)
                code += coded[c].codes
            np.bincount(code * 4 + cell, minlength=int(np.prod([len(coded[c].levels) for c in combo])) * 4)
            passes += 1
    return passes


_STREAM = """
import json, sys, time
from xai.fairness.slice_scan import scan_slices
start, cpu = time.perf_counter(), time.process_time()
found = scan_slices(sys.argv[1], y_true="y", y_pred="pred", columns=sys.argv[2].split(","), progress=False,
                    options={"alpha": 0.05, "min_gap": 0.01, "max_findings": 10**7})
# VmHWM, not ru_maxrss: a child forked from the parent keeps the parent's peak in ru_maxrss across exec
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu, "peak_mb": peak / 1024,
                  "findings": [[f.description, f.metric, f.size] for f in found.findings]}))
"""


def streamed(planted: object, found: object) -> dict:
    """The streamed search on the same rows written to parquet, in its own process."""
    import pandas as pd

    columns = planted.columns  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "planted.parquet"
        # row groups of 2**20 rows, as writers of large files make them: a reader holds one group at a time
        pd.DataFrame({"y": planted.y_true, "pred": planted.y_pred, **columns}).to_parquet(  # type: ignore[attr-defined]
            path, row_group_size=1 << 20)
        size_mb = path.stat().st_size / 1e6
        run = subprocess.run([sys.executable, "-c", _STREAM, str(path), ",".join(columns)], capture_output=True,
                             text=True, check=True)
    out = json.loads(run.stdout)
    out["file_mb"] = size_mb
    out["same"] = out["findings"] == [[f.description, f.metric, f.size] for f in found.findings]  # type: ignore[attr-defined]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--attributes", type=int, default=20)
    parser.add_argument("--planted", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--anchor-rows", type=int, default=1_000_000)
    parser.add_argument("--null-rows", type=int, default=1_000_000)
    parser.add_argument("--null-seeds", type=int, default=5)
    parser.add_argument("--streamed", action="store_true", help="also stream the rows from parquet (own process)")
    args = parser.parse_args()

    start = time.perf_counter()
    planted = planted_slices(args.rows, n_attributes=args.attributes, n_planted=args.planted, seed=args.seed)
    generate = time.perf_counter() - start
    load_before = os.getloadavg()
    start, cpu_start = time.perf_counter(), time.process_time()
    found = discover_slices(planted.y_true, planted.y_pred, planted.columns, alpha=0.05, min_gap=0.01,
                            max_findings=10**7)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    score = score_findings(found, planted)
    plan = _plan([len(c.levels) for c in planted.coded], 3, 4, block_budget(args.rows))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    stream = streamed(planted, found) if args.streamed else None

    anchor = planted_slices(args.anchor_rows, n_attributes=args.attributes, n_planted=args.planted, seed=args.seed)
    cell = (anchor.y_true.astype(np.int64) * 2 + anchor.y_pred)
    start = time.perf_counter()
    combos = naive_counts(anchor.columns, cell)
    naive = time.perf_counter() - start
    start = time.perf_counter()
    discover_slices(anchor.y_true, anchor.y_pred, anchor.columns, alpha=0.05, min_gap=0.01)
    blocked = time.perf_counter() - start

    null_hits = 0
    for seed in range(args.null_seeds):
        null = planted_slices(args.null_rows, n_attributes=args.attributes, n_planted=0, seed=1000 + seed)
        result = discover_slices(null.y_true, null.y_pred, null.columns, alpha=0.05, min_gap=0.0)
        null_hits += result.count_significant > 0

    print(f"| rows x attributes | {args.rows:,} x {args.attributes} |")
    print("|---|---|")
    print(f"| slices tested (up to 3 attributes, >= 30 rows) | {found.n_tested:,} |")
    print(f"| passes over the rows (blocks of columns) | {len(plan.blocks)} (instead of {combos:,}) |")
    print(f"| discovery wall time; CPU time of the process | {wall:.1f} s; {cpu:.1f} s ({args.rows / cpu / 1e6:.2f} M "
          f"rows per CPU second; generating the data {generate:.1f} s, not counted) |")
    print(f"| load average (1/5/15 min) before the discovery, {os.cpu_count()} CPUs | "
          f"{' '.join(f'{x:.1f}' for x in load_before)} |")
    print(f"| peak RSS of the process | {peak_mb:,.0f} MB |")
    print(f"| planted slices (0.5%..3% of rows, +-5 points) | {len(planted.slices)}; realised shares "
          f"{min(planted.shares):.2%}..{max(planted.shares):.2%} |")
    print(f"| recall at FDR 5% | {score['recall']:.0%} ({int(round(score['recall'] * len(planted.slices)))} "
          f"of {len(planted.slices)}) |")
    print(f"| findings (distinct); false (population gap <= 0.01) | {int(score['discoveries']):,}; "
          f"{int(score['false'])} (FDP {score['fdp']:.3f}); {found.n_redundant:,} redundant left out |")
    print(f"| anchor at {args.anchor_rows:,} rows: one bincount per combination ({combos:,} passes, counting "
          f"only) vs the whole discovery | {naive:.1f} s vs {blocked:.1f} s ({naive / blocked:.1f}x) |")
    if stream is not None:
        print(f"| streamed from parquet ({stream['file_mb']:.0f} MB, batches, own process): wall; CPU; peak RSS "
              f"| {stream['wall']:.1f} s; {stream['cpu']:.1f} s; {stream['peak_mb']:,.0f} MB |")
        print(f"| streamed findings equal the in-memory ones | {'yes' if stream['same'] else 'NO'} |")
    print(f"| null data ({args.null_rows:,} rows, min_gap 0): runs with any finding | {null_hits} of "
          f"{args.null_seeds} |")


if __name__ == "__main__":
    main()
