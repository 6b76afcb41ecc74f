"""Check that the zoo and the explainers run on a CUDA device and agree with the CPU.

The test suite runs on CPU-only machines (CI has no GPU); this is the one prepared check
for a machine with one. For every zoo entry it:

1. re-evaluates the committed weights on the device and compares the headline metric
   with the card (computed on the CPU);
2. takes one training step on the device (finite loss, weights change);
3. backpropagates the targets adapter to the input (or the first layer for token ids).

Then it compares integrated gradients (our explainer) on the device with the CPU, and
times a batched IG on both. Prints a markdown table; ``--json`` writes every row.

Usage:
    python benchmarks/device_check.py --device cuda --json /tmp/device_check.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from xai.datasets import load_dataset  # noqa: E402
from xai.explain import create_explainer  # noqa: E402
from xai.zoo import get_entry, list_models, load_model, read_card  # noqa: E402
from xai.zoo._train import evaluate_entry, training_loss  # noqa: E402


def _to(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not isinstance(value, str):
        return type(value)(_to(v, device) for v in value)
    return value


def dataset_to(data, device):
    """The dataset with every tensor field (annotations too) on ``device``."""
    changes = {f.name: _to(getattr(data, f.name), device) for f in dataclasses.fields(data)
               if f.name not in ("groups",)}
    return dataclasses.replace(data, **changes)


def check_entry(name: str, device: torch.device) -> dict[str, object]:
    row: dict[str, object] = {"entry": name}
    entry = get_entry(name)
    card = read_card(name, REPO / "zoo")
    handle = load_model(name, zoo_dir=REPO / "zoo", device="cpu")
    test = load_dataset(entry.dataset, "test")
    handle.module.to(device).eval()
    start = time.perf_counter()
    metrics = evaluate_entry(entry, handle.module, test, device)
    row["eval_s"] = round(time.perf_counter() - start, 2)
    metric = card["headline"]["metric"]
    row.update(metric=metric, card=float(card["headline"]["value"]), device_value=float(metrics[metric]))
    row["abs_diff"] = abs(row["device_value"] - row["card"])
    # one training step on the device
    module = handle.module.train()
    batch = dataset_to(test.head(4), device)
    before = {k: v.detach().clone() for k, v in module.state_dict().items()}
    loss = training_loss(entry, module, batch)
    loss.backward()
    torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=0.1).step()
    row["step_finite"] = bool(torch.isfinite(loss).item())
    row["step_changed"] = any(not torch.equal(before[k], v) for k, v in module.state_dict().items())
    # targets adapter: a gradient reaches the input (or the first layer's output for ids)
    module.eval()
    small = test.head(3)
    if small.x.is_floating_point():
        x = small.x.to(device).clone().requires_grad_()
        handle.forward_target(x, small.y.to(device)).sum().backward()
        grad = x.grad
    else:
        seen = []

        def keep(_module, _inputs, out):  # returns None: the output stays as it is
            out.retain_grad()
            seen.append(out)

        hook = handle.get_layer(handle.layers[0]).register_forward_hook(keep)
        try:
            handle.forward_target(small.x.to(device), small.y.to(device)).sum().backward()
        finally:
            hook.remove()
        grad = seen[0].grad
    row["target_grad"] = bool(grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0)
    return row


def ig_cpu_vs_device(device: torch.device, samples: int) -> dict[str, object]:
    """Our batched integrated gradients on lenet: CPU vs device attributions and time."""
    out: dict[str, object] = {}
    data = load_dataset("digits", "test").head(samples)
    results = {}
    for where in ("cpu", str(device)):
        handle = load_model("lenet", zoo_dir=REPO / "zoo", device="cpu")
        handle.module.to(where)
        explainer = create_explainer("integrated-gradients", handle, steps=50)
        explainer.explain(data.head(8), target="label")  # warm-up (CUDA context, kernels)
        if where != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        results[where] = explainer.explain(data, target="label", batch_size=64)
        if where != "cpu":
            torch.cuda.synchronize()
        out[f"ig_{where}_s"] = round(time.perf_counter() - start, 3)
    a, b = results["cpu"].attributions, results[str(device)].attributions
    out["ig_max_abs_diff"] = float(np.abs(a - b).max())
    out["ig_max_abs"] = float(np.abs(a).max())
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("device_check: no CUDA device visible")
    rows = []
    for name in list_models():
        try:
            rows.append(check_entry(name, device))
        except Exception as error:  # report every entry, not just the first failure
            rows.append({"entry": name, "error": f"{type(error).__name__}: {error}",
                         "trace": traceback.format_exc(limit=3)})
        print(json.dumps(rows[-1], default=str), flush=True)
    ig = ig_cpu_vs_device(device, args.samples)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"\n{name}, torch {torch.__version__}\n")
    print("| entry | headline | card (CPU) | on device | abs diff | eval s | train step | target grad |")
    print("|---|---|---:|---:|---:|---:|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| `{r['entry']}` | error: {r['error'][:120]} | | | | | | |")
        else:
            step = "ok" if r["step_finite"] and r["step_changed"] else "FAIL"
            print(f"| `{r['entry']}` | {r['metric']} | {r['card']:.4f} | {r['device_value']:.4f} | "
                  f"{r['abs_diff']:.4f} | {r['eval_s']} | {step} | {'ok' if r['target_grad'] else 'FAIL'} |")
    print(f"\nIG on lenet ({args.samples} digits, 50 steps): {json.dumps(ig)}")
    if args.json:
        args.json.write_text(json.dumps({"device": name, "rows": rows, "ig": ig}, indent=2, default=str))


if __name__ == "__main__":
    main()
