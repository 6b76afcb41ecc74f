"""Time attention rollout on the pretrained MiniLM against one forward pass that returns attentions.

Anchors (same process, same batch of real English sentences, interleaved with the
measured runs, under ``torch.no_grad``):

- ``transformers``: Hugging Face's ``BertModel`` loaded from the same wheel folder,
  called with ``output_attentions=True`` (eager attention, the implementation that
  returns attention probabilities);
- ``ours+hooks``: our hand-written encoder with the attention modules hooked
  (``AttentionRecorder``).

Measured: ``AttentionRollout.relevance`` in ``rollout`` mode (forward with hooks, padding
masks, head fusion, residual, the 6-layer product and the mean-pooled row), plus ``grad``
mode (forward and backward) and ``flow`` mode (a few sentences) for information.
Target (issue 4): rollout <= 1.5x one forward pass with attentions.

Sentences: the first ``--samples`` sentences of 8 to 40 words of Python's own
documentation text (``pydoc_data.topics``, stdlib), padded to the longest.

Usage: PYTHONPATH=$PWD python benchmarks/bench_rollout_minilm.py [--samples 64] [--repeats 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from xai.explain import AttentionRecorder, create_explainer
from xai.zoo import load_model
from xai.zoo.bert import minilm_dir

REPO = Path(__file__).resolve().parents[1]


def real_sentences(n: int) -> list[str]:
    from pydoc_data.topics import topics

    text = " ".join(topics[k] for k in sorted(topics))
    found = []
    for raw in re.split(r"(?<=[.!?])\s+", text):
        sentence = " ".join(raw.split())
        if 8 <= len(sentence.split()) <= 40 and sentence[0].isupper() and "*" not in sentence:
            found.append(sentence)
        if len(found) == n:
            break
    return found


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
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--flow-samples", type=int, default=2)
    args = parser.parse_args()
    from transformers import AutoModel

    handle = load_model("minilm", zoo_dir=REPO / "zoo")
    handle.module.eval()
    hf = AutoModel.from_pretrained(str(minilm_dir()), attn_implementation="eager").eval()
    texts = real_sentences(args.samples)
    ids = handle.preprocess(texts)  # (B, T)
    mask = (ids != 0).long()
    target = handle.predict_targets(ids)

    with torch.no_grad():  # the anchors compute the same thing: attention probabilities per layer
        theirs = hf(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
        with AttentionRecorder(handle.module, handle.attention) as rec:
            handle.module(ids)
    real_queries = mask.bool()[:, None, :, None].expand(-1, theirs[0].shape[1], -1, ids.shape[1])  # (B, H, T, T)
    gap = max(float((a - b)[real_queries].abs().max()) for a, b in zip(theirs, rec.attentions, strict=True))

    def hf_anchor() -> None:
        with torch.no_grad():
            hf(input_ids=ids, attention_mask=mask, output_attentions=True)

    def our_anchor() -> None:
        with torch.no_grad(), AttentionRecorder(handle.module, handle.attention):
            handle.module(ids)

    rows = []
    rollout = create_explainer("attention-rollout", handle, mode="rollout")
    for name, anchor in (("transformers output_attentions", hf_anchor), ("ours + hooks", our_anchor)):
        a, b, ratio = paired(anchor, lambda: rollout.relevance(ids), args.repeats)
        rows.append(("mode=rollout", name, args.samples, a, b, ratio))
    grad = create_explainer("attention-rollout", handle, mode="grad")
    a, b, ratio = paired(hf_anchor, lambda: grad.relevance(ids, target), max(3, args.repeats // 3))
    rows.append(("mode=grad", "transformers output_attentions", args.samples, a, b, ratio))
    flow = create_explainer("attention-rollout", handle, mode="flow")
    few = ids[:args.flow_samples]
    few = few[:, : int((few != 0).sum(1).max())]
    a, b, _ = paired(hf_anchor, lambda: flow.relevance(few), 3)
    rows.append(("mode=flow", "transformers output_attentions", len(few), a, b, (b / len(few)) / (a / args.samples)))

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.samples} sentences padded to "
          f"{ids.shape[1]} tokens ({int(mask.sum())} real); anchor and method interleaved, median of "
          f"{args.repeats} pairs (grad: {max(3, args.repeats // 3)}, flow: 3)")
    print(f"largest gap between transformers' and our attention probabilities (real tokens): {gap:.1e}")
    print()
    print(f"| run | anchor | sentences | anchor s ({args.samples}) | run s | x anchor | target | met |")
    print("|---|---|---:|---:|---:|---:|---|---|")
    for mode, anchor_name, n, a, b, ratio in rows:
        target_cell, met = ("<= 1.5x", "yes" if ratio <= 1.5 else "NO") if mode == "mode=rollout" else ("-", "-")
        per = " per sentence" if n != args.samples else ""
        print(f"| {mode} | {anchor_name} | {n} | {a:.4f} | {b:.4f} | {ratio:.2f}{per} | {target_cell} | {met} |")


if __name__ == "__main__":
    main()
