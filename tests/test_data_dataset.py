"""Dataset type, seeded split, standardisation and the mini-batch iterator."""

import numpy as np
import pytest

from hwsim.training.data import Dataset, channel_statistics, iterate_batches, split, standardize


def numbered_dataset(n: int) -> Dataset:
    """Image i is filled with the value i, so every image can be traced through splits and batches."""
    images = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 2, 2, 3)).copy()
    return Dataset(images, np.arange(n, dtype=np.int64) % 3, ("a", "b", "c"))


def test_split_is_a_seeded_partition():
    data = numbered_dataset(50)
    train, validation = split(data, 0.2, np.random.default_rng(7))
    assert (len(train), len(validation)) == (40, 10)
    ids = np.concatenate([train.images[:, 0, 0, 0], validation.images[:, 0, 0, 0]])
    assert sorted(ids) == list(range(50))
    assert np.array_equal(train.labels, train.images[:, 0, 0, 0].astype(np.int64) % 3)
    again, _ = split(data, 0.2, np.random.default_rng(7))
    other, _ = split(data, 0.2, np.random.default_rng(8))
    assert np.array_equal(train.images, again.images)
    assert not np.array_equal(train.images, other.images)


def test_split_rejects_a_fraction_outside_0_to_1():
    with pytest.raises(ValueError, match="validation_fraction"):
        split(numbered_dataset(4), 1.0, np.random.default_rng(0))


@pytest.mark.parametrize("batch_size", [1, 7, 50, 64])
def test_batches_cover_every_sample_exactly_once_per_epoch(batch_size):
    data = numbered_dataset(50)
    rng = np.random.default_rng(3)
    epochs = []
    for _ in range(2):
        batches = list(iterate_batches(data, batch_size, rng))
        assert all(len(images) == len(labels) <= batch_size for images, labels in batches)
        seen = np.concatenate([images[:, 0, 0, 0] for images, _ in batches])
        assert sorted(seen) == list(range(50))
        labels = np.concatenate([labels for _, labels in batches])
        assert np.array_equal(labels, seen.astype(np.int64) % 3)
        epochs.append(seen)
    if batch_size < 50:
        assert not np.array_equal(epochs[0], epochs[1]), "each epoch should draw a new order"


def test_batches_replay_from_a_saved_generator_state():
    data = numbered_dataset(30)
    rng = np.random.default_rng(11)
    list(iterate_batches(data, 8, rng))  # epoch 1
    state = rng.bit_generator.state
    epoch2 = [images[:, 0, 0, 0] for images, _ in iterate_batches(data, 8, rng)]
    resumed = np.random.default_rng(0)
    resumed.bit_generator.state = state
    replayed = [images[:, 0, 0, 0] for images, _ in iterate_batches(data, 8, resumed)]
    assert all(np.array_equal(a, b) for a, b in zip(epoch2, replayed, strict=True))


def test_batches_without_generator_keep_dataset_order():
    seen = np.concatenate([images[:, 0, 0, 0] for images, _ in iterate_batches(numbered_dataset(10), 4)])
    assert list(seen) == list(range(10))


def test_standardize_with_training_statistics_gives_zero_mean_unit_std():
    rng = np.random.default_rng(0)
    images = (rng.uniform(size=(20, 4, 4, 3)) * [1.0, 0.5, 0.2] + [0.0, 0.3, 0.7]).astype(np.float32)
    data = Dataset(images, np.zeros(20, dtype=np.int64), ("only",))
    mean, std = channel_statistics(data)
    standardized = standardize(data, mean, std)
    assert standardized.images.dtype == np.float32
    np.testing.assert_allclose(standardized.images.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(standardized.images.std(axis=(0, 1, 2)), 1.0, atol=1e-4)
