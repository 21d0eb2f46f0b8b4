"""TOPSIS over 100,000 offers and 5 criteria: the vectorised ranking against the same
algorithm written as plain Python loops, in one run. Goal: at most 10 ms.

    .venv/bin/python bench/topsis.py [--offers 100000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpubroker.core.topsis import Criterion, topsis
from tests.core.test_topsis import reference

CRITERIA = [
    Criterion("price_per_hour", 0.35, benefit=False),
    Criterion("fp16_tflops", 0.25, benefit=True),
    Criterion("gpu_memory_gb", 0.2, benefit=True),
    Criterion("bandwidth_gbs", 0.1, benefit=True),
    Criterion("vcpus", 0.1, benefit=True),
]


def main(offers: int, repeat: int) -> None:
    rng = np.random.default_rng(7)
    matrix = rng.uniform([0.1, 10, 8, 300, 2], [40, 2500, 192, 8000, 256], size=(offers, len(CRITERIA)))
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        ranking = topsis(matrix, CRITERIA)
        ranking.top(50)  # the first page
        timings.append(time.perf_counter() - started)
    rows = matrix.tolist()
    started = time.perf_counter()
    expected = reference(rows, [c.weight for c in CRITERIA], [c.benefit for c in CRITERIA])
    plain = time.perf_counter() - started
    assert np.allclose(ranking.closeness, expected)
    ours = statistics.median(timings)
    print(f"TOPSIS, {offers:,} offers x {len(CRITERIA)} criteria (rank all, order the first 50)")
    print(f"{'variant':<36}{'ms':>10}")
    print(f"{'gpubroker (numpy), median of ' + str(repeat):<36}{ours * 1000:>10.2f}")
    print(f"{'plain Python loops, one run':<36}{plain * 1000:>10.1f}")
    print(f"{'speed-up':<36}{plain / ours:>9.0f}x")
    print(f"{'goal: at most 10 ms':<36}{'met' if ours <= 0.010 else 'MISSED':>10}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    main(args.offers, args.repeat)
