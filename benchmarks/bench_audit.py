"""Time ``xai audit`` cold (training both default models) and warm (committed zoo).

Anchor, measured in the same run: the bare import of torch + captum + fairlearn, the
start-up cost any tool built on them pays. Targets (issue 2, 2 cores): cold <= 90 s,
warm <= 20 s.

Usage: python benchmarks/bench_audit.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(command: list[str], **env: str) -> float:
    import os

    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, capture_output=True,
                   env={**os.environ, **env})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    anchor, warm, cold = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            anchor.append(timed([sys.executable, "-c", "import torch, captum, fairlearn"]))
            warm.append(timed([sys.executable, "-m", "xai", "audit", "-q", "-o", f"{tmp}/warm{i}",
                               "--device", "cpu", "--zoo-dir", str(REPO / "zoo")]))
            cold.append(timed([sys.executable, "-m", "xai", "audit", "-q", "-o", f"{tmp}/cold{i}",
                               "--device", "cpu", "--zoo-dir", f"{tmp}/zoo{i}"]))
    a, w, c = (statistics.median(x) for x in (anchor, warm, cold))
    print(f"machine: {platform.machine()}, {__import__('os').cpu_count()} CPUs, "
          f"python {platform.python_version()}; median of {args.repeats}")
    print()
    print("| run | median s | x anchor | target | met |")
    print("|---|---|---|---|---|")
    print(f"| anchor: import torch, captum, fairlearn | {a:.2f} | 1.00 | - | - |")
    print(f"| `xai audit` warm (committed zoo) | {w:.2f} | {w / a:.2f} | <= 20 s | {'yes' if w <= 20 else 'NO'} |")
    print(f"| `xai audit` cold (trains lenet + adult-mlp) | {c:.2f} | {c / a:.2f} | <= 90 s | "
          f"{'yes' if c <= 90 else 'NO'} |")


if __name__ == "__main__":
    main()
