"""Wall time to generate the default shapes dataset (6,000 images), beside a baseline of the same size.

The baseline, measured in the same run, is drawing the same number of uniform random images with
NumPy: the least any generator of 32x32x3 float32 images must spend. Run: python benchmarks/bench_data.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from hwsim.training.data import generate_shapes

REPEATS = 5
IMAGES = 6000


def median_time(work: object) -> float:
    times = []
    for seed in range(REPEATS):
        start = time.perf_counter()
        work(seed)  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    generate_shapes(100, seed=0)  # warm up imports and the allocator
    shapes = median_time(lambda seed: generate_shapes(IMAGES, seed=seed))
    uniform = median_time(lambda seed: np.random.default_rng(seed).random((IMAGES, 32, 32, 3), dtype=np.float32))
    print(f"generate_shapes({IMAGES:,}): {shapes:.3f} s (median of {REPEATS})")
    print(f"uniform noise of the same size: {uniform:.3f} s; ratio {shapes / uniform:.0f}x")


if __name__ == "__main__":
    main()
