"""Time attention rollout on the zoo's ViT against one forward pass with attentions captured.

Anchor (same process, same batch, interleaved with the measured runs): one forward pass
of the ViT on 256 digits with the attention modules hooked (``AttentionRecorder``), under ``torch.no_grad``. Measured:
``AttentionRollout.attribute`` (forward + rollout + CLS row + upsampling to 32x32) in
``rollout`` mode, plus ``grad`` mode (one forward and one backward) and ``flow`` mode for
information. Target (issue 4): rollout <= 1.5x the anchor.

Usage: PYTHONPATH=$PWD python benchmarks/bench_rollout.py [--samples 256] [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from xai.datasets import load_dataset
from xai.explain import AttentionRecorder, create_explainer
from xai.zoo import load_model

REPO = Path(__file__).resolve().parents[1]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired(anchor: Callable[[], object], fn: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """Median anchor seconds, median seconds and median per-pair ratio, runs interleaved (shared noise)."""
    anchor(), fn()  # warm-up
    pairs = [(timed(anchor), timed(fn)) for _ in range(repeats)]
    return (statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs),
            statistics.median(b / a for a, b in pairs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--flow-samples", type=int, default=16)
    args = parser.parse_args()
    handle = load_model("vit", zoo_dir=REPO / "zoo")
    handle.module.eval()
    data = load_dataset("digits", "test")
    x = data.x[:args.samples]
    target = handle.predict(x).argmax(1)

    def anchor() -> None:
        with torch.no_grad(), AttentionRecorder(handle.module, handle.attention):
            handle.module(x)

    rows = []
    for mode in ("rollout", "grad"):
        explainer = create_explainer("attention-rollout", handle, mode=mode)
        a, b, ratio = paired(anchor, lambda e=explainer: e.attribute(x, target), args.repeats)
        rows.append((f"attention-rollout mode={mode}", args.samples, a, b, ratio))
    flow = create_explainer("attention-rollout", handle, mode="flow")
    xf, tf = x[:args.flow_samples], target[:args.flow_samples]
    a, b, _ = paired(anchor, lambda: flow.attribute(xf, tf), 3)
    rows.append(("attention-rollout mode=flow", len(xf), a, b, (b / len(xf)) / (a / args.samples)))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; anchor and method interleaved, median of {args.repeats} "
          f"pairs (flow: 3)")
    print()
    print("| run | samples | anchor s (256) | run s | x anchor | target | met |")
    print("|---|---:|---:|---:|---:|---|---|")
    for name, n, a, b, ratio in rows:
        target_cell, met = ("<= 1.5x", "yes" if ratio <= 1.5 else "NO") if name.endswith("=rollout") else ("-", "-")
        per = " per sample" if n != args.samples else ""
        print(f"| {name} | {n} | {a:.4f} | {b:.4f} | {ratio:.2f}{per} | {target_cell} | {met} |")

if __name__ == "__main__":
    main()
