"""Group metrics and bootstrap intervals: our count-table engine vs fairlearn's MetricFrame.

1,000,000 rows, 2 sensitive features (sex x race: 8 intersectional groups), 4 metrics
(accuracy, selection rate, TPR, FPR). Anchor, in the same run: ``MetricFrame`` on the
same arrays. Bootstrap: 1,000 resamples with our engine (all rows) against
``MetricFrame(n_boot=..., ci_quantiles=...)`` timed at two subsample sizes and
extrapolated linearly in rows to 1,000,000 rows and in resamples to 1,000.
Targets (issue 5, 2 cores): >= 20x faster group metrics; 1,000 resamples < 5 s.

Usage: python benchmarks/bench_fairness.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

import fairlearn
import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from sklearn.metrics import accuracy_score

from xai.fairness.metrics import bootstrap_intervals, group_frame

METRICS = ("accuracy", "selection_rate", "true_positive_rate", "false_positive_rate")
FAIRLEARN = {"accuracy": accuracy_score, "selection_rate": selection_rate,
             "true_positive_rate": true_positive_rate, "false_positive_rate": false_positive_rate}


def make_data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["Female", "Male"], dtype=object), rows, p=[0.33, 0.67])
    race = rng.choice(np.array(["Black", "Asian", "White", "Other"], dtype=object), rows, p=[.1, .05, .8, .05])
    y = (rng.random(rows) < 0.25).astype(np.int64)
    p = (rng.random(rows) < np.where(y == 1, 0.65, 0.08) + np.where(sex == "Male", 0.05, 0)).astype(np.int64)
    return y, p, pd.DataFrame({"sex": sex, "race": race})


def best(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def ours(y, p, sf):
    return group_frame(y_true=y, y_pred=p, sensitive_features=sf, metrics=METRICS)


def theirs(y, p, sf, **boot):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MetricFrame(metrics=FAIRLEARN, y_true=y, y_pred=p, sensitive_features=sf, **boot)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--sub-rows", type=int, nargs=2, default=(50_000, 100_000))
    parser.add_argument("--sub-boot", type=int, default=4)
    args = parser.parse_args()
    y, p, sf = make_data(args.rows)

    t_ours, frame = best(lambda: ours(y, p, sf), args.repeats)
    t_mf, mf = best(lambda: theirs(y, p, sf), 1)
    gap = max(abs(frame.values(m) - mf.by_group[m].to_numpy(float)).max() for m in METRICS)
    assert gap < 1e-9, gap

    def boot():
        return bootstrap_intervals(ours(y, p, sf), n_boot=args.n_boot, seed=0,
                                   derived=("demographic_parity_difference", "equalized_odds_difference"))

    t_boot, _ = best(boot, args.repeats)

    # MetricFrame's bootstrap resamples rows: per-resample cost grows with rows; fit a + b * rows
    per_resample = []
    for rows in args.sub_rows:
        ys, ps, sfs = y[:rows], p[:rows], sf.iloc[:rows]
        t_plain, _ = best(lambda: theirs(ys, ps, sfs), 1)  # noqa: B023
        t_sub, _ = best(lambda: theirs(ys, ps, sfs, n_boot=args.sub_boot, ci_quantiles=[0.025, 0.975],  # noqa: B023
                                       random_state=0), 1)
        per_resample.append((t_sub - t_plain) / args.sub_boot)
    (r1, r2), (c1, c2) = args.sub_rows, per_resample
    slope = (c2 - c1) / (r2 - r1)
    at_full = max(c2 + slope * (args.rows - r2), c2)  # never below the measured cost
    t_mf_boot = at_full * args.n_boot

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"fairlearn {fairlearn.__version__}, numpy {np.__version__}; median of {args.repeats}")
    print(f"data: {args.rows:,} rows, sex x race = {len(frame.groups)} groups, metrics: {', '.join(METRICS)}; "
          f"max |ours - MetricFrame| = {gap:.1e}")
    print(f"MetricFrame n_boot, seconds per resample: {c1:.3f} at {r1:,} rows, {c2:.3f} at {r2:,} rows "
          f"-> {at_full:.2f} at {args.rows:,} rows (linear fit)")
    print()
    print("| run | seconds | speed-up vs MetricFrame | target | met |")
    print("|---|---|---|---|---|")
    print(f"| MetricFrame, 4 metrics x 8 groups (anchor) | {t_mf:.3f} | 1.0x | - | - |")
    print(f"| ours: group_frame, same numbers | {t_ours:.3f} | {t_mf / t_ours:.0f}x | >= 20x | "
          f"{'yes' if t_mf / t_ours >= 20 else 'NO'} |")
    print(f"| MetricFrame n_boot={args.n_boot} (extrapolated from {r1:,}/{r2:,}-row subsamples) | "
          f"{t_mf_boot:.0f} | 1.0x | - | - |")
    print(f"| ours: group_frame + bootstrap_intervals, n_boot={args.n_boot}, all rows | {t_boot:.3f} | "
          f"{t_mf_boot / t_boot:.0f}x | < 5 s | {'yes' if t_boot < 5 else 'NO'} |")


if __name__ == "__main__":
    main()
