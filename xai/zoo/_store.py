"""Trained zoo on disk: ``<zoo>/<name>/weights.safetensors`` and ``card.json``."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from xai._device import resolve_device, single_cpu_thread  # noqa: F401  (single_cpu_thread: re-export)
from xai._io import atomic_write_bytes, atomic_write_text
from xai._provenance import package_versions, sha256_file
from xai.datasets import load_dataset
from xai.errors import DataError, ModelLoadError
from xai.zoo._cards import CARD_FILE, WEIGHTS_FILE, ZOO_ENV, entry_dir, is_trained, read_card, zoo_root
from xai.zoo._entry import ZooEntry, get_entry
from xai.zoo._train import TrainContext, evaluate_entry, seed_everything


def load_state_into(module: torch.nn.Module, path: Path) -> None:
    """Load safetensors weights into ``module``; name the file and tensors on mismatch."""
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a readable safetensors file ({exc})") from None
    check_state_dict(module, state, path)
    module.load_state_dict(state)


def check_state_dict(module: torch.nn.Module, state: dict[str, torch.Tensor],
                     path: Path | str) -> None:
    """Raise :class:`ModelLoadError` listing missing, unexpected and mis-shaped tensors."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
    if unexpected:
        problems.append("unexpected " + ", ".join(unexpected[:8])
                        + (" ..." if len(unexpected) > 8 else ""))
    if shapes:
        problems.append("shape mismatch " + ", ".join(shapes[:8]))
    if problems:
        raise ModelLoadError(f"{path} does not match {type(module).__name__}: "
                             + "; ".join(problems))


@contextmanager
def _zoo_env(zoo_dir: str | Path) -> Iterator[None]:
    """``$XAI_ZOO_DIR`` set to ``zoo_dir`` for the duration (restored afterwards)."""
    before = os.environ.get(ZOO_ENV)
    os.environ[ZOO_ENV] = str(zoo_dir)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ZOO_ENV, None)
        else:
            os.environ[ZOO_ENV] = before


def training_order(names: list[str]) -> list[str]:
    """``names`` with every entry after the entries it uses (``ZooEntry.uses``) that are also listed.

    Stable: otherwise the given order. A cycle is an error.
    """
    wanted, done, out = set(names), set(), []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done:
            return
        if name in path:
            raise DataError(f"zoo entries use each other in a cycle: {' -> '.join((*path, name))}")
        for dependency in get_entry(name).uses:
            if dependency in wanted:
                visit(dependency, (*path, name))
        done.add(name)
        out.append(name)

    for name in names:
        visit(name, ())
    return out


def train_entry(
    name: str,
    *,
    seed: int = 0,
    device: str = "auto",
    zoo_dir: str | Path | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Train zoo entry ``name`` from scratch, save weights and card, return the card.

    Training runs on one CPU thread (see :func:`single_cpu_thread`). A pretrained entry
    (``entry.pretrained``) is not trained: its packaged weights are evaluated and only the
    card is written (see :func:`card_pretrained_entry`).
    """
    entry = get_entry(name)
    if entry.pretrained is not None:
        return card_pretrained_entry(name, seed=seed, device=device, zoo_dir=zoo_dir)
    if zoo_dir is not None:  # entries it uses (entry.uses) are read from the zoo being written
        with _zoo_env(zoo_dir):
            return train_entry(name, seed=seed, device=device, console=console)
    torch_device = resolve_device(device)
    train, test = load_dataset(entry.dataset, "train"), load_dataset(entry.dataset, "test")
    seed_everything(seed)
    module = entry.build()
    ctx = TrainContext(train=train, test=test, seed=seed, device=torch_device, console=console)
    start = time.perf_counter()
    with single_cpu_thread():
        metrics = entry.train(module, ctx)
    seconds = time.perf_counter() - start
    module.cpu().eval()
    folder = entry_dir(name, zoo_dir)
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    atomic_write_bytes(folder / WEIGHTS_FILE, save(state, metadata={"name": name}))
    card = build_card(entry, module, metrics, seed=seed, seconds=seconds, train_rows=len(train),
                      test_rows=len(test), weights_sha256=sha256_file(folder / WEIGHTS_FILE),
                      device=str(torch_device))
    atomic_write_text(folder / CARD_FILE, json.dumps(card, indent=2) + "\n")
    return card


def _expected_seconds(name: str, zoo_dir: str | Path | None) -> float:
    """The train seconds of the entry's existing card (0 when there is none): for scheduling only."""
    for folder in (zoo_dir, None):
        try:
            return float(read_card(name, folder).get("train_seconds", 0.0))
        except ModelLoadError:
            continue
    return 0.0


def critical_path_seconds(order: list[str], seconds: dict[str, float]) -> dict[str, float]:
    """For each entry, its own seconds plus the longest chain of entries in ``order`` that wait on it.

    ``lenet`` (8 s) that ``dcgan`` (200 s) uses scores 208 s: starting it early lets the GAN
    start early, which longest-first by its own 8 s would not.
    """
    tail: dict[str, float] = {}
    for name in reversed(order):  # users come after the entries they use
        users = [tail[m] for m in order if name in get_entry(m).uses and m in tail]
        tail[name] = seconds[name] + max(users, default=0.0)
    return tail


def _train_in_worker(name: str, seed: int, device: str, zoo_dir: str | None) -> dict[str, Any]:
    return train_entry(name, seed=seed, device=device, zoo_dir=zoo_dir)


def train_entries(
    names: list[str],
    *,
    jobs: int = 1,
    seed: int = 0,
    device: str = "auto",
    zoo_dir: str | Path | None = None,
    console: Console | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Train ``names`` (each after the listed entries it uses); return the cards in training order.

    ``jobs > 1`` trains that many entries at once, each in its own process on one CPU
    thread: the same seeded, single-threaded recipe as ``jobs=1``, so the same weights bit for
    bit on a sound CPU (BENCHMARKS.md: the 2-core CI box's vector division is not always
    sound, ``benchmarks/host_float_check.py``); only wall time changes. An
    entry starts once the entries it uses are written; among the ready ones, the one with the
    longest chain of work still behind it (:func:`critical_path_seconds`, from the existing
    cards) starts first, so a short entry that others wait for is not left to the end.
    ``on_done(card)`` is called as each entry finishes.
    """
    order = training_order(names)
    if jobs <= 1:
        cards = []
        for name in order:
            cards.append(train_entry(name, seed=seed, device=device, zoo_dir=zoo_dir, console=console))
            if on_done is not None:
                on_done(cards[-1])
        return cards
    wanted = set(order)
    needs = {n: {u for u in get_entry(n).uses if u in wanted} for n in order}
    priority = critical_path_seconds(order, {n: _expected_seconds(n, zoo_dir) for n in order})
    folder = None if zoo_dir is None else str(zoo_dir)
    done: dict[str, dict[str, Any]] = {}
    pending = list(order)
    # spawn: a forked child of a process whose OpenMP pool already ran can hang
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        running: dict[Future[dict[str, Any]], str] = {}
        try:
            while pending or running:
                ready = sorted((n for n in pending if needs[n] <= done.keys()), key=lambda n: -priority[n])
                for name in ready[:jobs - len(running)]:
                    pending.remove(name)
                    running[pool.submit(_train_in_worker, name, seed, device, folder)] = name
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    done[name] = future.result()  # a failed entry raises here; the rest is cancelled
                    if on_done is not None:
                        on_done(done[name])
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return [done[n] for n in order]


def reproduce_entries(
    names: list[str],
    *,
    jobs: int = 1,
    device: str = "auto",
    zoo_dir: str | Path | None = None,
    console: Console | None = None,
) -> list[dict[str, Any]]:
    """Retrain ``names`` from their cards' seeds in a scratch folder and compare with the cards.

    The zoo is left untouched: each entry is trained into a temporary folder that holds
    copies of the entries it uses (so a pruned variant is compared against the same parent).
    One row per entry: the card's and the retrained headline, their difference, the largest
    difference over all shared metrics, and whether the weights are bit-identical.
    """
    for name in names:
        get_entry(name)  # unknown names fail before anything is read
    committed = {name: read_card(name, zoo_dir) for name in names}
    used = {u for name in names for u in get_entry(name).uses if u not in names}
    for name in sorted(used):
        if not is_trained(name, zoo_dir):
            users = ", ".join(n for n in names if name in get_entry(n).uses)
            raise ModelLoadError(f"{users} uses zoo entry {name!r}, which is not trained in {zoo_root(zoo_dir)}")
    with tempfile.TemporaryDirectory(prefix="xai-reproduce-") as scratch:
        for name in used:
            if entry_dir(name, zoo_dir).is_dir():  # a pretrained entry may live in its package only
                shutil.copytree(entry_dir(name, zoo_dir), Path(scratch) / name)
        seeds = {int(card.get("seed", 0)) for card in committed.values()}
        cards = []
        for seed in sorted(seeds):  # cards trained with different seeds retrain in groups
            group = [n for n in names if int(committed[n].get("seed", 0)) == seed]
            cards += train_entries(group, jobs=jobs, seed=seed, device=device, zoo_dir=scratch, console=console)
    rows = []
    for card in cards:
        old = committed[card["name"]]
        shared = [k for k in old.get("metrics", {}) if k in card["metrics"]
                  and isinstance(old["metrics"][k], int | float) and isinstance(card["metrics"][k], int | float)]
        rows.append({
            "name": card["name"],
            "metric": card["headline"]["metric"],
            "card": old["headline"]["value"],
            "retrained": card["headline"]["value"],
            "difference": card["headline"]["value"] - old["headline"]["value"],
            "largest_metric_difference": max((abs(card["metrics"][k] - old["metrics"][k]) for k in shared),
                                             default=0.0),
            "weights_identical": card.get("weights_sha256") == old.get("weights_sha256"),
            "train_seconds": card.get("train_seconds"),
        })
    return rows


def card_pretrained_entry(name: str, *, seed: int = 0, device: str = "auto",
                          zoo_dir: str | Path | None = None) -> dict[str, Any]:
    """Evaluate a pretrained entry's packaged weights on held-out data and write its card only.

    ``train_seconds`` is then the evaluation time (nothing is trained); the card's
    ``weights_sha256`` is the packaged weights file's and ``pretrained`` names its source.
    """
    entry = get_entry(name)
    if entry.pretrained is None:
        raise ModelLoadError(f"zoo entry {name!r} is not pretrained")
    torch_device = resolve_device(device)
    train, test = load_dataset(entry.dataset, "train"), load_dataset(entry.dataset, "test")
    seed_everything(seed)
    module = entry.build()
    digest = entry.pretrained.load(module)
    start = time.perf_counter()
    with single_cpu_thread():
        module.to(torch_device).eval()
        metrics = evaluate_entry(entry, module, test, torch_device)
    seconds = time.perf_counter() - start
    module.cpu()
    card = build_card(entry, module, metrics, seed=seed, seconds=seconds, train_rows=len(train),
                      test_rows=len(test), weights_sha256=digest, device=str(torch_device))
    card["pretrained"] = {"source": entry.pretrained.source, "package": entry.pretrained.package}
    atomic_write_text(entry_dir(name, zoo_dir) / CARD_FILE, json.dumps(card, indent=2) + "\n")
    return card


def build_card(entry: ZooEntry, module: torch.nn.Module, metrics: Mapping[str, object], *,
               seed: int, seconds: float, train_rows: int, test_rows: int,
               weights_sha256: str, device: str) -> dict[str, Any]:
    """The model card (JSON-ready).

    Numbers of ``metrics`` go to ``"metrics"``; anything else a recipe reports (nearest
    neighbours of probe words, ...) goes to ``"details"``.
    """
    numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
    details = {k: v for k, v in metrics.items() if k not in numbers}
    card: dict[str, Any] = {
        "name": entry.name,
        "family": entry.family,
        "task": entry.task,
        "architecture": type(module).__name__,
        "params": sum(p.numel() for p in module.parameters()),
        "dataset": entry.dataset,
        "split": {"train_rows": train_rows, "test_rows": test_rows,
                  "held_out": "test split of the dataset (fixed, independent of the seed)"},
        "metrics": {k: round(v, 6) for k, v in numbers.items()},
        "headline": {"metric": entry.metric, "value": round(numbers[entry.metric], 6),
                     "floor": entry.floor},
        "seed": seed,
        "recipe": entry.recipe,
        "train_seconds": round(seconds, 2),
        "train_device": device,
        "weights_sha256": weights_sha256,
        "layers": list(entry.layers),
        "classes": list(entry.class_names),
        "paper": entry.paper,
        "description": entry.description,
        "versions": package_versions(),
    }
    if entry.attention:
        card["attention"] = list(entry.attention)
    if details:
        card["details"] = details
    return card
