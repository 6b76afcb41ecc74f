"""Exact Shapley values of an encoder-decoder's source tokens against captum's sampling.

``source_shapley`` enumerates all ``2^n`` coalitions of a row's real source tokens and
scores every generated token from that one batch. The anchor is what captum offers for
the same question: ``ShapleyValueSampling`` (``permutations`` orders, one generated token
per call); its exact ``ShapleyValues`` would need n! = 3,628,800 orders for a 10-token date.
Reported: wall seconds of each on the same rows (the ratio is the figure to read) and the
sampling's error against the exact values.

Usage: PYTHONPATH=. python benchmarks/bench_seq2seq_shapley.py [--rows 8] [--permutations 64]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from xai.datasets import load_dataset
from xai.explain import cross_attention
from xai.explain.cross_attention import source_shapley
from xai.zoo import load_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--permutations", type=int, default=64)
    args = parser.parse_args()
    module = load_model("seq2seq-dates").module
    src = load_dataset("dates", "test").x[:args.rows]
    pad = module.tokenizer.pad_id
    generated = module.generate(src)
    start = time.perf_counter()
    exact = source_shapley(module, src, generated, pad, pad_id=pad)
    exact_s = time.perf_counter() - start
    cross_attention.EXACT_SHAPLEY_PLAYERS = 0  # every row through captum's ShapleyValueSampling
    start = time.perf_counter()
    sampled = source_shapley(module, src, generated, pad, pad_id=pad, permutations=args.permutations)
    sampled_s = time.perf_counter() - start
    error = (sampled - exact).abs()
    players = [int((row != pad).sum()) for row in src]
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"load {os.getloadavg()[0]:.1f}; {args.rows} dates of {min(players)}-{max(players)} tokens, "
          f"{generated.shape[1]} generated tokens each\n")
    print("| Shapley values | wall s | x exact | max abs error | mean abs error |")
    print("|---|---:|---:|---:|---:|")
    print(f"| exact, all 2^n coalitions in one batch (ours) | {exact_s:.2f} | 1.00 | 0 | 0 |")
    print(f"| captum ShapleyValueSampling, {args.permutations} permutations per token | {sampled_s:.2f} | "
          f"{sampled_s / exact_s:.2f} | {error.max():.3f} | {error[exact != 0].mean():.3f} |")


if __name__ == "__main__":
    main()
