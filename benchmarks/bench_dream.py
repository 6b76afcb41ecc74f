"""Time activation maximisation against its anchor: one forward+backward pass x steps.

For each model the anchor is ``steps`` plain forward+backward passes of a (1, C, H, W)
input through the model (gradient with respect to the input, one CPU thread, as dream's
loop runs), timed in the same process; ``xai dream``'s defaults are 128 steps and the
top-8 test images. The last line runs ``xai dream lenet --layer conv2 --channel 3`` as a
subprocess (Python start and imports included) next to ``xai --version`` (start and
imports only).

Usage: ``PYTHONPATH=$PWD python benchmarks/bench_dream.py [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch

from xai.explain.dream import dream
from xai.zoo import load_model
from xai.zoo._store import single_cpu_thread

CASES = (("lenet", "conv2", 3), ("resnet", "layer2", 3), ("googlenet", "inception3a", 3), ("vit", "blocks.1", 3))


def _anchor(module: torch.nn.Module, shape: tuple[int, ...], steps: int) -> float:
    x = torch.rand((1, *shape), requires_grad=True)
    start = time.perf_counter()
    with single_cpu_thread():
        for _ in range(steps):
            (grad,) = torch.autograd.grad(module(x).sum(), [x])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=128)
    args = parser.parse_args()
    print("| model | layer | anchor s (fwd+bwd x steps) | dream s (defaults) | ratio | gain |")
    print("|---|---|---:|---:|---:|---:|")
    for name, layer, channel in CASES:
        handle = load_model(name)
        handle.module.eval()
        _anchor(handle.module, handle.input_shape, 4)  # warm-up
        dream(handle, layer, channel=channel, steps=4, top_k=0)
        anchors, dreams, gain = [], [], float("nan")
        for _ in range(args.repeats):
            anchors.append(_anchor(handle.module, handle.input_shape, args.steps))
            start = time.perf_counter()
            result = dream(handle, layer, channel=channel, steps=args.steps)
            dreams.append(time.perf_counter() - start)
            gain = result.gain
        a, d = statistics.median(anchors), statistics.median(dreams)
        print(f"| `{name}` | {layer} ch {channel} | {a:.3f} | {d:.3f} | {d / a:.2f} | {gain:.1f} |")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    walls, imports = [], []
    for _ in range(args.repeats):
        for command, into in ((["--version"], imports),
                              (["dream", "lenet", "--layer", "conv2", "--channel", "3"], walls)):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "xai", *command], check=True, capture_output=True, env=env)
            into.append(time.perf_counter() - start)
    print(f"\n`xai dream lenet --layer conv2 --channel 3` (subprocess, median of {args.repeats}): "
          f"{statistics.median(walls):.2f} s; `xai --version` (start + imports): {statistics.median(imports):.2f} s")


if __name__ == "__main__":
    main()
