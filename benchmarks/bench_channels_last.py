"""Channels-last (NHWC) vs the default layout for training zoo entries on one CPU thread.

Why some recipes set ``channels_last``: oneDNN's convolutions run faster on NHWC tensors
for the conv stems of the VQA models and ESPCN. For each entry, one training epoch on the
first ``--rows`` training rows through the entry's own loop (``fit_classifier``, or the
ESPCN loop), default then channels-last, repeated ``--repeats`` times interleaved; the
ratio is best channels-last over best default (noise only adds time).

Usage:
    python benchmarks/bench_channels_last.py --repeats 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from xai.datasets import load_dataset  # noqa: E402
from xai.zoo import get_entry, vision  # noqa: E402
from xai.zoo._train import TrainContext, fit_classifier, seed_everything  # noqa: E402

CLASSIFIERS = ("vqa", "fusion-early", "fusion-film", "fusion-intermediate", "vqa-transformer",
               "lenet", "resnet", "googlenet")


def _epoch_seconds(name: str, channels_last: bool, rows: int) -> float:
    entry = get_entry(name)
    train, test = load_dataset(entry.dataset, "train"), load_dataset(entry.dataset, "test")
    ctx = TrainContext(train=train.head(rows), test=test.head(64), seed=0, device=torch.device("cpu"))
    seed_everything(0)
    module = entry.build()
    start = time.perf_counter()
    if name == "espcn":
        before = dict(vision._RECIPE)
        vision._RECIPE.update(epochs=1, channels_last=channels_last)
        try:
            vision._train_espcn(module, ctx)
        finally:
            vision._RECIPE.clear()
            vision._RECIPE.update(before)
    else:
        fit_classifier(module, ctx, epochs=1, lr=float(entry.recipe["lr"]),
                       batch_size=int(entry.recipe["batch_size"]),
                       weight_decay=float(entry.recipe.get("weight_decay", 0.0)), channels_last=channels_last)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("entries", nargs="*", default=["espcn", *CLASSIFIERS])
    args = parser.parse_args()
    torch.set_num_threads(1)  # as `xai zoo train` trains
    print(f"torch {torch.__version__}, 1 thread, one epoch of {args.rows} rows, best of {args.repeats}\n")
    print("| entry | default s | channels-last s | ratio |\n|---|---:|---:|---:|")
    for name in args.entries:
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):
            for layout in (False, True):
                times[layout].append(_epoch_seconds(name, layout, args.rows))
        default, nhwc = min(times[False]), min(times[True])
        print(f"| `{name}` | {default:.2f} | {nhwc:.2f} | {nhwc / default:.2f} |", flush=True)


if __name__ == "__main__":
    main()
