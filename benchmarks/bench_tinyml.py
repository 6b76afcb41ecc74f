"""Size, CPU latency and accuracy of lenet's TinyML variants against the original, in one run.

Anchor: the committed ``lenet`` itself, timed interleaved with each variant in the same
process (one CPU thread, the fastest of ``--repeats`` rounds), so load on the shared
machine hits both and the ratio is what to read. For ``lenet-int8``, ``lenet-qat`` and
``lenet-dynint8`` two modules are timed: the real ``torch.ao`` int8 model (x86/fbgemm
kernels, what one deploys) and the float simulation the zoo loads for explainers; for
``lenet-structured50`` the network with its dead channels removed (and the dense one).
Sizes are the committed safetensors files and their zlib-compressed bytes (where zeros of
a pruned model pay off).

Usage: python benchmarks/bench_tinyml.py [--batch 64] [--repeats 60]
"""

from __future__ import annotations

import argparse
import os
import platform
import zlib

import torch

from xai.datasets import load_dataset
from xai.zoo import load_model, read_card
from xai.zoo._store import WEIGHTS_FILE, entry_dir, single_cpu_thread
from xai.zoo.tinyml import (
    COMPRESSED_FROM,
    ORIGINAL,
    count_nonzero,
    cpu_latency,
    remove_pruned_channels,
    to_torch_dynamic,
    to_torch_int8,
)

#: variant -> what one deploys of it (timed as the variant; the stored module as "simulation")
DEPLOYED = {"lenet-int8": to_torch_int8, "lenet-qat": to_torch_int8, "lenet-dynint8": to_torch_dynamic,
            "lenet-structured50": remove_pruned_channels}


def _size(name: str) -> tuple[int, int]:
    blob = (entry_dir(name) / WEIGHTS_FILE).read_bytes()
    return len(blob), len(zlib.compress(blob, 9))


def _accuracy(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.inference_mode():
        return float((module(x).argmax(1) == y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=60)
    args = parser.parse_args()
    test = load_dataset("digits", "test")
    x = test.x[:args.batch]
    original = load_model(ORIGINAL).module
    base_bytes, base_gz = _size(ORIGINAL)
    base_acc = _accuracy(original, test.x, test.y)
    rows = []
    with single_cpu_thread():
        for name in COMPRESSED_FROM:
            module = load_model(name).module
            timed = {"variant": module, "original": original}
            if name in DEPLOYED:
                timed = {"variant": DEPLOYED[name](module), "simulation": module, "original": original}
            seconds = cpu_latency(timed, x, repeats=args.repeats)
            size, gz = _size(name)
            rows.append((name, module, size, gz, seconds))
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"engine {torch.backends.quantized.engine}, load average {os.getloadavg()[0]:.1f}; batch {args.batch}, "
          f"1 thread, thread CPU time, fastest of {args.repeats} interleaved rounds\n")
    print("| entry | params | non-zero | safetensors bytes (x lenet) | zlib bytes (x lenet) | "
          "latency ms (x lenet) | accuracy (change) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    params = sum(p.numel() for p in original.parameters())
    print(f"| `{ORIGINAL}` (anchor) | {params:,} | {count_nonzero(original):,} | {base_bytes:,} | {base_gz:,} | "
          f"- | {base_acc:.4f} |")
    for name, module, size, gz, seconds in rows:
        acc = _accuracy(module, test.x, test.y)
        latency = f"{1000 * seconds['variant']:.2f} ({seconds['variant'] / seconds['original']:.2f})"
        if "simulation" in seconds:
            latency += f"; as stored {seconds['simulation'] / seconds['original']:.2f}"
        print(f"| `{name}` | {sum(p.numel() for p in module.parameters()):,} | {count_nonzero(module):,} | "
              f"{size:,} ({size / base_bytes:.2f}) | {gz:,} ({gz / base_gz:.2f}) | {latency} | "
              f"{acc:.4f} ({acc - base_acc:+.4f}) |")
    card = read_card("protonet")["metrics"]
    print(f"\nprotonet: 5-way 5-shot on unseen digits 5-9 {card['episode_accuracy']:.4f} "
          f"+- {card['episode_accuracy_ci95']:.4f} (raw 8x8 pixel prototypes {card['pixel_episode_accuracy']:.4f}); "
          f"10-digit accuracy {card['accuracy']:.4f}")


if __name__ == "__main__":
    main()
