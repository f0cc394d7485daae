"""Seeded mini-batches: one shuffled pass over a dataset per call."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from hwsim.training.data.dataset import Dataset


def iterate_batches(
    dataset: Dataset, batch_size: int, rng: np.random.Generator | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(images (B, H, W, C), labels (B,))`` covering every sample exactly once.

    With ``rng`` the order is ``rng.permutation(N)`` (one draw per epoch, so saving
    ``rng.bit_generator.state`` before the call replays the epoch exactly); without it the
    order is the dataset's. The last batch holds the remainder and may be smaller.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = np.arange(len(dataset)) if rng is None else rng.permutation(len(dataset))
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        yield dataset.images[indices], dataset.labels[indices]
