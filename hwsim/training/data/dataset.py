"""The labelled image set every loader returns, and the seeded train/validation split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Labelled images.

    ``images``: float32 ``(N, H, W, C)``, in [0, 1] as loaded, or standardised.
    ``labels``: int64 ``(N,)``, each in ``range(len(class_names))``.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        assert self.images.ndim == 4 and self.images.dtype == np.float32, self.images.shape
        assert self.labels.shape == (len(self.images),) and self.labels.dtype == np.int64
        assert len(self.labels) == 0 or 0 <= self.labels.min() <= self.labels.max() < self.num_classes

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of one image."""
        _, height, width, channels = self.images.shape
        return height, width, channels

    def subset(self, indices: np.ndarray) -> Dataset:
        """The samples at ``indices`` (int ``(M,)``), in that order."""
        return Dataset(self.images[indices], self.labels[indices], self.class_names)


def split(dataset: Dataset, validation_fraction: float, rng: np.random.Generator) -> tuple[Dataset, Dataset]:
    """Shuffle with ``rng`` and return ``(train, validation)``; validation has ``round(N * fraction)`` samples."""
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    order = rng.permutation(len(dataset))
    num_validation = round(len(dataset) * validation_fraction)
    return dataset.subset(order[num_validation:]), dataset.subset(order[:num_validation])


def channel_statistics(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over all pixels, each float32 ``(C,)``."""
    images = dataset.images.reshape(-1, dataset.images.shape[-1]).astype(np.float64)
    return images.mean(axis=0).astype(np.float32), images.std(axis=0).astype(np.float32)


MIN_STD = 1e-6
"""A channel whose standard deviation is below this (a constant channel) is divided by this instead."""


def standardize(dataset: Dataset, mean: np.ndarray, std: np.ndarray) -> Dataset:
    """``(images - mean) / std`` per channel; take ``mean, std`` from the training set only."""
    images = (dataset.images - mean) / np.maximum(std, MIN_STD)
    return Dataset(images.astype(np.float32), dataset.labels, dataset.class_names)
