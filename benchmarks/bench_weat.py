"""Time ``xai bias weat`` on every shipped WEAT test against its anchors, in the same run.

Process rows (each a fresh ``python``): the anchor is ``import xai.cli`` (the CLI's own
start-up: torch, captum, fairlearn), then ``xai bias weat`` on all ten shipped tests
(100,000 partitions each, exact where fewer) and with ``--json -o`` (JSON + HTML report).
In-process rows: loading the shipped vectors, WEAT on all tests, and, with ``--original``,
reading Bolukbasi's full 32 MB word2vec binary (26,423 words) with our reader and WEAT on it.

Usage: python benchmarks/bench_weat.py [--repeats 3] [--original GoogleNews-vectors-negative300-bolukbasi.bin]
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


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    return time.perf_counter() - start


def in_process(fn, repeats: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--original", type=Path, default=None)
    args = parser.parse_args()
    anchor, run, report = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            anchor.append(timed([sys.executable, "-c", "import xai.cli"]))
            run.append(timed([sys.executable, "-m", "xai", "bias", "weat"]))
            report.append(timed([sys.executable, "-m", "xai", "bias", "weat", "--json", "-o", f"{tmp}/r{i}"]))
    a, r, o = (statistics.median(x) for x in (anchor, run, report))

    from xai.datasets import load_word_vectors
    from xai.fairness.embedding import read_word_vectors, weat

    def load() -> None:
        load_word_vectors.cache_clear()
        load_word_vectors("googlenews-weat")

    shipped = load_word_vectors("googlenews-weat")
    rows = [("load shipped vectors (`load_word_vectors`, 363 words, float16 npz)", in_process(load, args.repeats)),
            ("`weat()` on all shipped tests, 100,000 partitions", in_process(lambda: weat(shipped), args.repeats))]
    if args.original is not None:
        rows.append(("read the original 32 MB word2vec binary (`read_word_vectors`)",
                     in_process(lambda: read_word_vectors(args.original), args.repeats)))
        full = read_word_vectors(args.original)
        rows.append(("`weat()` on all tests, original float32 vectors", in_process(lambda: weat(full), args.repeats)))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
          f"median of {args.repeats}")
    print()
    print("| run | median s | x anchor |")
    print("|---|---|---|")
    print(f"| anchor: `python -c 'import xai.cli'` (CLI start-up) | {a:.2f} | 1.00 |")
    print(f"| `xai bias weat` (all 10 shipped tests) | {r:.2f} | {r / a:.2f} |")
    print(f"| `xai bias weat --json -o DIR` (+ JSON and HTML) | {o:.2f} | {o / a:.2f} |")
    for name, seconds in rows:
        print(f"| in process: {name} | {seconds:.3f} | {seconds / a:.3f} |")


if __name__ == "__main__":
    main()
