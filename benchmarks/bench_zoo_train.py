"""Train zoo entries in one process and report each card's train seconds against LeNet-5.

Anchor, trained in the same run: ``lenet`` (the foundation's entry, about 15 s on 2
cores), so a busy machine slows anchor and entries alike and the ratio stays meaningful.
Weights go to a temporary folder; the committed zoo is not touched unless ``--zoo-dir``.
Target (issue 3): every entry under 5 minutes on 2 cores.

Usage: python benchmarks/bench_zoo_train.py [NAME ...] [--zoo-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile

import torch

from xai.zoo import get_entry, train_entry

DEFAULT = ("rnn", "lstm", "gru", "resnet", "googlenet", "vit")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*", default=list(DEFAULT))
    parser.add_argument("--zoo-dir", default=None, help="keep the weights and cards here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        anchor = train_entry("lenet", seed=0, device="cpu", zoo_dir=tmp)["train_seconds"]
        cards = [train_entry(n, seed=0, device="cpu", zoo_dir=args.zoo_dir or tmp) for n in args.names]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}; anchor lenet {anchor:.1f} s\n")
    print("| entry | params | epochs | held-out accuracy (floor) | train s | x lenet |")
    print("|---|---:|---:|---|---:|---:|")
    for card in cards:
        entry = get_entry(card["name"])
        print(f"| `{card['name']}` | {card['params']:,} | {entry.recipe['epochs']} | "
              f"{card['headline']['value']:.4f} ({entry.floor}) | {card['train_seconds']:.1f} | "
              f"{card['train_seconds'] / anchor:.2f} |")


if __name__ == "__main__":
    main()
