"""Does this host divide float64 numbers the same way in every process? No xai code runs.

Why it exists: two whole-zoo retrains on the 2-core CI box gave bit-identical weights for
34 of 40 entries, and a fairness interval once differed in its 11th digit between two CLI
calls that resample the same counts. IEEE 754 division is correctly rounded, so ``a / b``
has exactly one right answer on any healthy CPU, whatever the SIMD width or alignment.

Each of ``--processes`` fresh Python processes (``--parallel`` at a time) imports numpy
only, divides 2,000 pairs of integers in 1..999 with one vectorised ``num / den`` for
``--seconds``, and compares every quotient with Python's scalar division of the same pair.
A quotient that disagrees is then judged against the exact quotient computed by integer
arithmetic (``fractions``, no floating point), so the report says which side was wrong.

Usage:
    python benchmarks/host_float_check.py --processes 60 --seconds 4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction


def _exact(num: int, den: int) -> float:
    # shifted past 2**53 so CPython divides the integers exactly instead of using the FPU
    return float(Fraction(num << 80, den << 80))


def worker(seconds: float) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    num = rng.integers(1, 1000, 2000).astype(np.float64)
    den = rng.integers(1, 1000, 2000).astype(np.float64)
    scalar = np.array([a / b for a, b in zip(num.tolist(), den.tolist(), strict=True)])
    rounds = wrong = 0
    examples: list[dict] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        quotient = num / den
        bad = np.flatnonzero(quotient != scalar)
        wrong += len(bad)
        rounds += 1
        for i in bad[: 3 - len(examples)]:
            n, d = int(num[i]), int(den[i])
            examples.append({"pair": f"{n}/{d}", "vector": repr(float(quotient[i])), "scalar": repr(float(scalar[i])),
                             "exact": repr(_exact(n, d)), "vector_is_exact": float(quotient[i]) == _exact(n, d)})
    return {"rounds": rounds, "quotients": rounds * len(num), "wrong": wrong, "examples": examples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=60)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.seconds)))
        return

    def one(_: int) -> dict:
        done = subprocess.run([sys.executable, __file__, "--worker", "--seconds", str(args.seconds)],
                              capture_output=True, text=True, check=True)
        return json.loads(done.stdout)

    with ThreadPoolExecutor(args.parallel) as pool:
        results = list(pool.map(one, range(args.processes)))
    affected = [r for r in results if r["wrong"]]
    quotients = sum(r["quotients"] for r in results)
    print("| processes | affected | quotients | wrong | wrong in affected processes |")
    print("|---|---|---|---|---|")
    share = (f"{sum(r['wrong'] for r in affected) / sum(r['quotients'] for r in affected):.2e}"
             if affected else "-")
    print(f"| {len(results)} | {len(affected)} | {quotients:,} | {sum(r['wrong'] for r in results):,} | {share} |")
    for r in affected:
        for example in r["examples"]:
            print(f"  {example['pair']}: vector {example['vector']}, scalar {example['scalar']}, "
                  f"exact {example['exact']}, vector correct: {example['vector_is_exact']}")


if __name__ == "__main__":
    main()
