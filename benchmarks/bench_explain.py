"""Attribution pipeline against its anchors, as ratios measured in the same run.

1. Batched Integrated Gradients through ``create_explainer(...).explain`` (targets, batches,
   completeness gap, result object) vs raw ``captum.attr.IntegratedGradients`` on the same
   model, inputs, targets and batches. Target: <= 1.05x.
2. Our ``grad-cam`` (captum LayerGradCam + upsampling, full ``explain``) vs pytorch-grad-cam's
   ``GradCAM`` (the ``bench`` extra) on lenet's conv2, predicted classes, same batch.
   Target: <= 1.0x.
3. Peak RSS (``resource.getrusage`` in fresh subprocesses) when the number of explained
   samples grows 10x with streamed batches. Target: within 10%.

Usage: python benchmarks/bench_explain.py [--repeats 7] [--samples 128]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from xai.datasets import load_dataset  # noqa: E402
from xai.explain import create_explainer  # noqa: E402
from xai.zoo import load_model  # noqa: E402


def interleaved(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` seconds of each callable (timeit's convention: noise only adds
    time), alternating them so the shared machine's load hits both alike."""
    for fn in runs.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def bench_ig(handle, data, repeats: int, steps: int = 32, batch: int = 64) -> dict[str, float]:
    """Our pipeline vs raw captum producing the same outputs (targets, attributions, gaps)."""
    from captum.attr import IntegratedGradients

    def ours():
        return create_explainer("integrated-gradients", handle, steps=steps).explain(data, batch_size=batch)

    def raw(delta: bool = True):
        model = handle.module
        with torch.no_grad():
            targets = model(data.x).argmax(1)
        ig = IntegratedGradients(model)
        return [ig.attribute(data.x[i:i + batch], baselines=torch.zeros_like(data.x[i:i + batch]),
                             target=targets[i:i + batch], n_steps=steps, return_convergence_delta=delta)
                for i in range(0, len(data), batch)]

    return interleaved({"ours": ours, "anchor": raw, "anchor_no_delta": lambda: raw(False)}, repeats)


def bench_gradcam(handle, data, repeats: int) -> dict[str, float]:
    """The CAM step on given targets, and both whole pipelines on predicted classes."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    targets = handle.predict(data.x).argmax(1)

    def ours_step():
        return create_explainer("grad-cam", handle, layer="conv2").attribute_all(data.x, targets,
                                                                              batch_size=len(data))

    def theirs_step():
        with GradCAM(model=handle.module, target_layers=[handle.module.conv2]) as cam:
            return cam(input_tensor=data.x, targets=[ClassifierOutputTarget(int(t)) for t in targets])

    def ours_pipeline():
        return create_explainer("grad-cam", handle, layer="conv2").explain(data, batch_size=len(data))

    def theirs_pipeline():
        with GradCAM(model=handle.module, target_layers=[handle.module.conv2]) as cam:
            return cam(input_tensor=data.x, targets=None)  # None: the predicted class, same forward

    return interleaved({"ours": ours_step, "anchor": theirs_step, "ours_pipeline": ours_pipeline,
                        "anchor_pipeline": theirs_pipeline}, repeats)


_RSS_CHILD = """
import json, resource, sys
sys.path.insert(0, {repo!r})
from xai.datasets import load_dataset
from xai.explain import create_explainer
from xai.zoo import load_model
handle = load_model("lenet", zoo_dir={zoo!r})
data = load_dataset("digits", "all").head({n})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open("/proc/self/clear_refs", "w") as f:  # reset the high-water mark (Linux)
    f.write("5")
create_explainer("integrated-gradients", handle, steps=32).explain(data, batch_size=32)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({{"before_kib": before, "peak_kib": after, "explain_hwm_kib": hwm}}))
"""


def rss(n: int) -> dict[str, int]:
    code = _RSS_CHILD.format(repo=str(REPO), zoo=str(REPO / "zoo"), n=n)
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--samples", type=int, default=128)
    args = parser.parse_args()
    torch.manual_seed(0)
    handle = load_model("lenet", zoo_dir=REPO / "zoo")
    data = load_dataset("digits", "all").head(args.samples)
    ig = bench_ig(handle, data, args.repeats)
    cam = bench_gradcam(handle, data, args.repeats)
    small, large = rss(180), rss(1797)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, CPU; best of {args.repeats}, {args.samples} digits")
    print()
    print("| comparison | ours s | anchor s | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    rows = (("IG batched (32 steps, batch 64): `explain` vs raw captum IG, same outputs (targets, attributions, "
             "convergence delta)", ig["ours"], ig["anchor"], 1.05),
            ("IG, same, vs raw captum IG without the convergence delta (info)",
             ig["ours"], ig["anchor_no_delta"], None),
            ("grad-cam on lenet conv2, given targets: ours vs pytorch-grad-cam GradCAM",
             cam["ours"], cam["anchor"], 1.0),
            ("grad-cam whole pipeline, predicted class: `explain` (separate predict pass) vs GradCAM(targets=None) "
             "(info)", cam["ours_pipeline"], cam["anchor_pipeline"], None))
    for label, ours, anchor, target in rows:
        ratio = ours / anchor
        met = "-" if target is None else ("yes" if ratio <= target else "NO")
        print(f"| {label} | {ours:.3f} | {anchor:.3f} | {ratio:.2f}x | {'-' if target is None else f'<= {target}x'} "
              f"| {met} |")
    growth = large["peak_kib"] / small["peak_kib"]
    hwm = large["explain_hwm_kib"] / small["explain_hwm_kib"]
    print(f"| peak RSS (getrusage), IG on 1797 vs 180 digits (batch 32) | {large['peak_kib'] / 1024:.0f} MiB | "
          f"{small['peak_kib'] / 1024:.0f} MiB | {growth:.3f}x | <= 1.10x | {'yes' if growth <= 1.10 else 'NO'} |")
    print(f"| peak RSS of the explain phase alone (VmHWM after clear_refs) | "
          f"{large['explain_hwm_kib'] / 1024:.0f} MiB | {small['explain_hwm_kib'] / 1024:.0f} MiB | {hwm:.3f}x | "
          f"<= 1.10x | {'yes' if hwm <= 1.10 else 'NO'} |")
    print()
    print(f"getrusage peak before explaining (imports, model, data): {small['before_kib'] / 1024:.0f} MiB (180), "
          f"{large['before_kib'] / 1024:.0f} MiB (1797)")

if __name__ == "__main__":
    main()
