"""Train zoo entries with changed recipes, in parallel, and print time and headline per trial.

How the zoo's recipes were cut to fit issue 3's budget (the whole zoo under 30 minutes on
2 cores): each trial trains one entry from scratch (seed 0, one CPU thread, as
``xai zoo train`` does) into its own scratch folder, with some recipe values replaced,
and reports its train seconds and headline metric against the entry's floor. Trials run
in separate processes, ``--jobs`` at a time (on a 2-core box keep ``--jobs 1``: two
trials at once slow each other, so their seconds mean nothing).

A trial is ``NAME`` or ``NAME:key=value,key=value``; a nested recipe value is
``part.key=value`` (``latent-diffusion:denoiser.steps=800``). Entries that use others
(``ZooEntry.uses``) read them from ``--uses-from`` (the committed zoo by default).

``--seeds`` repeats every trial over several seeds, and ``--threads`` trains on more than
one torch thread (a different summation order: a float-level perturbation of the same
recipe). Together they show how far a headline moves when nothing but rounding changes.

Usage:
    python benchmarks/zoo_recipe_trials.py espcn:epochs=30 vqa:epochs=8 --jobs 1
    python benchmarks/zoo_recipe_trials.py fusion-early fusion-early:epochs=9 --seeds 0 1 2 3 --jobs 2
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse_trial(text: str) -> tuple[str, dict[str, object]]:
    """``"espcn:epochs=30,lr=3e-3"`` -> ``("espcn", {"epochs": 30, "lr": 0.003})``."""
    name, _, rest = text.partition(":")
    overrides: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value
    return name, overrides


def _apply(recipe: dict, overrides: dict[str, object]) -> None:
    for dotted, value in overrides.items():
        *parents, key = dotted.split(".")
        target = recipe
        for part in parents:
            target = target[part]
        if key not in target:
            raise KeyError(f"recipe has no {dotted!r}: {sorted(target)}")
        target[key] = value


def run_trial(text: str, uses_from: str, device: str, seed: int = 0, threads: int = 1) -> dict[str, object]:
    """Train one trial in a fresh folder; return its card's time and headline."""
    import torch

    from xai.zoo import get_entry
    from xai.zoo._store import train_entry

    torch.set_num_threads(threads)
    name, overrides = parse_trial(text)
    entry = get_entry(name)
    _apply(entry.recipe, overrides)  # the recipe dicts are the ones the train functions read
    with tempfile.TemporaryDirectory(prefix="trial-") as folder:
        for used in entry.uses:
            shutil.copytree(Path(uses_from) / used, Path(folder) / used)
        card = train_entry(name, seed=seed, device=device, zoo_dir=folder)
    return {"trial": text, "seed": seed, "threads": threads, "seconds": round(float(card["train_seconds"]), 1),
            "metric": card["headline"]["metric"], "value": card["headline"]["value"],
            "floor": entry.floor, "metrics": card["metrics"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("trials", nargs="+")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--uses-from", default=str(REPO / "zoo"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the results here (one JSON list)")
    args = parser.parse_args()
    results: list[dict[str, object]] = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run_trial, t, args.uses_from, args.device, seed, args.threads): t
                   for t in args.trials for seed in args.seeds}
        for future in as_completed(futures):
            try:
                results.append(future.result())
            except Exception as error:  # one failed trial must not lose the others
                results.append({"trial": futures[future], "error": repr(error)})
            print(json.dumps(results[-1], default=str), flush=True)
            if args.json:  # written as they finish: a run cut short keeps what it has
                args.json.write_text(json.dumps(results, indent=2, default=str))
    results.sort(key=lambda r: (args.trials.index(str(r["trial"])), r.get("seed", 0)))
    print("\n| trial | seed | threads | train s | headline | value | floor |\n|---|---:|---:|---:|---|---:|---:|")
    for r in results:
        if "error" in r:
            print(f"| `{r['trial']}` | | | - | error | {r['error']} | |")
        else:
            print(f"| `{r['trial']}` | {r['seed']} | {r['threads']} | {r['seconds']} | {r['metric']} "
                  f"| {float(r['value']):.4f} | {r['floor']} |")


if __name__ == "__main__":
    main()
