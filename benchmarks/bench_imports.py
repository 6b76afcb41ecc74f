"""Start-up cost of the CLI and the fairness engine: wall time and peak RSS per fresh interpreter.

Runs, in one go and interleaved (so machine noise hits every row alike): ``xai --help``,
``xai zoo list``, ``import xai.fairness.metrics``, and the anchors ``python -c pass`` and
``python -c "import torch"``. Each is a fresh subprocess importing this checkout; peak RSS
is the child's own ``ru_maxrss`` (``os.wait4``). Ratios are against ``import torch``.
Targets (issue 12, 2 cores): ``xai --help`` <= 0.4x ``import torch`` and <= 200 MB RSS;
the fairness engine import loads no torch (checked here too).

``--before DIR`` adds the same ``xai`` rows run against another checkout (e.g. the main
branch before lazy loading), measured in the same run.

Usage: python benchmarks/bench_imports.py [--repeats 5] [--before DIR --before-label TEXT]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def measure(argv: list[str], root: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one fresh interpreter running ``argv``."""
    env = {**os.environ, "PYTHONPATH": str(root), "XAI_ZOO_DIR": str(root / "zoo"), "COLUMNS": "120"}
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, *argv], cwd=root, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage (RUSAGE_CHILDREN would be the max so far)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    error = child.stderr.read().decode() if child.stderr else ""
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {child.returncode}:\n{error}")
    return wall, usage.ru_maxrss / 1024  # Linux reports KiB


def loads_torch(module: str) -> bool:
    """Whether importing ``module`` in a fresh interpreter loads torch or captum."""
    probe = f"import sys, {module}; print(any(m.split('.')[0] in ('torch', 'captum') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    return done.stdout.strip() == "True"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another checkout to time the same xai rows against")
    parser.add_argument("--before-label", default="before", help="how the --before rows are named")
    args = parser.parse_args()
    rows: list[tuple[str, list[str], Path]] = [
        ("`python -c pass`", ["-c", "pass"], REPO),
        ("`python -c \"import torch\"` (anchor)", ["-c", "import torch"], REPO),
        ("`xai --help`", ["-m", "xai", "--help"], REPO),
        ("`xai zoo list`", ["-m", "xai", "zoo", "list"], REPO),
        ("`import xai.fairness.metrics`", ["-c", "import xai.fairness.metrics"], REPO),
    ]
    if args.before is not None:
        rows += [(f"{label}, {args.before_label}", argv, args.before.resolve())
                 for label, argv, _ in rows[2:]]
    load_before = os.getloadavg()
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in rows}
    for _ in range(args.repeats):
        for label, argv, root in rows:
            samples[label].append(measure(argv, root))
    load_after = os.getloadavg()
    median = {label: (statistics.median(w for w, _ in s), statistics.median(m for _, m in s))
              for label, s in samples.items()}
    anchor = median[rows[1][0]][0]
    help_s, help_mb = median["`xai --help`"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
          f"median of {args.repeats}, rows interleaved; load average (1/5/15 min) "
          f"{' '.join(f'{x:.2f}' for x in load_before)} before, {' '.join(f'{x:.2f}' for x in load_after)} after")
    print()
    print("| run | median s | x import torch | peak RSS MB | target | met |")
    print("|---|---:|---:|---:|---|---|")
    for label, _, _ in rows:
        wall, mb = median[label]
        target, met = "-", "-"
        if label == "`xai --help`":
            target = "<= 0.4x, <= 200 MB"
            met = "yes" if help_s <= 0.4 * anchor and help_mb <= 200 else "NO"
        print(f"| {label} | {wall:.2f} | {wall / anchor:.2f} | {mb:.0f} | {target} | {met} |")
    engine = not loads_torch("xai.fairness._engine") and not loads_torch("xai.fairness.metrics")
    print(f"| `import xai.fairness._engine` / `.metrics` load torch or captum | - | - | - | no | "
          f"{'yes' if engine else 'NO'} |")


if __name__ == "__main__":
    main()
