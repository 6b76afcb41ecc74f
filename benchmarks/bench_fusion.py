"""Early, FiLM, intermediate (concatenation) and late (averaged predictions) fusion on ``shapes-vqa``, side by side.

Accuracy (overall and per question type) is re-evaluated from the committed weights;
training seconds come from each card. Anchor, measured in the same run: the forward pass
of the FiLM variant over the test split on one CPU thread; each variant's forward time
is printed as a ratio to it.

Usage: PYTHONPATH=$PWD python benchmarks/bench_fusion.py
"""

from __future__ import annotations

import statistics
import time

import torch

from xai.datasets import load_dataset
from xai.datasets._vqa import QUESTION_TYPES
from xai.zoo import load_model, read_card
from xai.zoo._train import predict_logits
from xai.zoo.multimodal import vqa_accuracy

VARIANTS = ("fusion-early", "fusion-film", "fusion-intermediate", "fusion-late", "vqa", "vqa-bow")


def forward_seconds(module: torch.nn.Module, x: torch.Tensor, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict_logits(module, x, torch.device("cpu"))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    torch.set_num_threads(1)
    test = load_dataset("shapes-vqa", "test")
    handles = {n: load_model(n) for n in VARIANTS}
    anchor = forward_seconds(handles["fusion-film"].module, test.x)
    kinds = " | ".join(f"acc {k}" for k in QUESTION_TYPES)
    print(f"| entry | fusion | accuracy | {kinds} | train s | params | forward s | ratio |")
    print("|---|---|---:|" + "---:|" * len(QUESTION_TYPES) + "---:|---:|---:|---:|")
    for name, handle in handles.items():
        card = read_card(name)
        metrics = vqa_accuracy(handle.module, test, torch.device("cpu"))
        seconds = forward_seconds(handle.module, test.x)
        per_kind = " | ".join(f"{metrics[f'accuracy_{k}']:.3f}" for k in QUESTION_TYPES)
        print(f"| `{name}` | {card['recipe']['fusion']} | {metrics['accuracy']:.3f} | {per_kind} | "
              f"{card['train_seconds']:.0f} | {card['params']} | {seconds:.3f} | {seconds / anchor:.2f} |")


if __name__ == "__main__":
    main()
