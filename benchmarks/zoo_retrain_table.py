"""Compare a freshly trained zoo (``xai zoo train --all --zoo-dir DIR``) with the committed one.

Prints, per entry, the train seconds of the fresh run, its headline metric next to the
committed card's, and whether the weights are bit-identical (same sha256): the table of
issue 3's budget (each entry < 5 min, the whole zoo < 30 min on 2 cores) and its
reproducibility check (same seed, same card).

Usage:
    /usr/bin/time -v python -m xai zoo train --all --zoo-dir /tmp/zoo_fresh --device cpu
    python benchmarks/zoo_retrain_table.py /tmp/zoo_fresh
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("fresh", type=Path, help="zoo folder written by `xai zoo train --all --zoo-dir`")
    parser.add_argument("--committed", type=Path, default=REPO / "zoo")
    args = parser.parse_args()
    rows, total, worst = [], 0.0, ("", 0.0)
    for card_path in sorted(args.fresh.glob("*/card.json")):
        fresh = json.loads(card_path.read_text())
        committed_path = args.committed / fresh["name"] / "card.json"
        committed = json.loads(committed_path.read_text()) if committed_path.exists() else None
        seconds = float(fresh["train_seconds"])
        total += seconds
        worst = max(worst, (fresh["name"], seconds), key=lambda p: p[1])
        metric, value = fresh["headline"]["metric"], float(fresh["headline"]["value"])
        before = float(committed["headline"]["value"]) if committed else float("nan")
        same = committed is not None and fresh.get("weights_sha256") == committed.get("weights_sha256")
        rows.append(f"| `{fresh['name']}` | {seconds:.1f} | {metric} | {value:.4f} | {before:.4f} | "
                    f"{abs(value - before):.4f} | {'yes' if same else 'no'} |")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}\n")
    print("| entry | train s | headline | fresh | committed | abs diff | same weights |")
    print("|---|---:|---|---:|---:|---:|---|")
    print("\n".join(rows))
    print(f"\n{len(rows)} entries, sum of train seconds {total:.0f} s ({total / 60:.1f} min); "
          f"slowest {worst[0]} {worst[1]:.0f} s")


if __name__ == "__main__":
    main()
