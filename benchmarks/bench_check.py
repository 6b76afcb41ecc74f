"""Time ``xai check audits/`` (this repository's own CI gate) on the committed zoo.

Anchors, measured in the same run: the bare import of torch + captum + fairlearn, and
``xai audit`` on the same specs (the audits without gating), so the ratio shows what the
gates, baselines, JUnit and Markdown add. Target (issue 6, 2 cores): under 10 minutes.

Usage: python benchmarks/bench_check.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(command: list[str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "XAI_ZOO_DIR": str(REPO / "zoo")})
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    anchor, audit, check = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            anchor.append(timed([sys.executable, "-c", "import torch, captum, fairlearn"]))
            audit.append(timed([sys.executable, "-m", "xai", "audit", "audits/", "-q", "--device", "cpu",
                                "-o", f"{tmp}/audit{i}"]))
            check.append(timed([sys.executable, "-m", "xai", "check", "audits/", "-q", "--device", "cpu",
                                "-o", f"{tmp}/check{i}", "--junit", f"{tmp}/junit{i}.xml",
                                "--summary", f"{tmp}/summary{i}.md"]))
    a, u, c = (statistics.median(x) for x in (anchor, audit, check))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
          f"median of {args.repeats}")
    print()
    print("| run | median s | x anchor | target | met |")
    print("|---|---|---|---|---|")
    print(f"| anchor: import torch, captum, fairlearn | {a:.2f} | 1.00 | - | - |")
    print(f"| `xai audit audits/` (same audits, no gates) | {u:.2f} | {u / a:.2f} | - | - |")
    print(f"| `xai check audits/` (+ gates, JUnit, Markdown) | {c:.2f} | {c / a:.2f} | < 600 s | "
          f"{'yes' if c < 600 else 'NO'} |")


if __name__ == "__main__":
    main()
