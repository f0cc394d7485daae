"""The generated default dataset: deterministic, balanced, and only separable by spatial form.

The probes are linear discriminant analysis (closed form, so the tests are fast and exact; unlike
one-vs-all least squares it does not mask classes lying between others): one on the mean colour per
channel, one on raw pixels, one on random convolution filters followed by global average pooling.
Train and test sets come from different seeds.
"""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from hwsim.training.data import SYNTHETIC_CLASS_NAMES, generate_shapes

CHANCE = 1 / len(SYNTHETIC_CLASS_NAMES)


def linear_probe_accuracy(train_features, train_labels, test_features, test_labels, shrinkage=1e-2):
    """Test accuracy of LDA (shared covariance, shrunk towards identity) on standardised ``(N, F)`` features."""
    mean, std = train_features.mean(axis=0), train_features.std(axis=0) + 1e-6
    x_train, x_test = (train_features - mean) / std, (test_features - mean) / std
    class_means = np.stack([x_train[train_labels == k].mean(axis=0) for k in range(len(SYNTHETIC_CLASS_NAMES))])
    within = x_train - class_means[train_labels]
    covariance = within.T @ within / len(x_train) + shrinkage * np.eye(x_train.shape[1])
    directions = np.linalg.solve(covariance, class_means.T)  # (F, K)
    scores = x_test @ directions - 0.5 * np.sum(class_means.T * directions, axis=0)
    return float(np.mean(scores.argmax(axis=1) == test_labels))


def mean_colour(images):
    return images.mean(axis=(1, 2))


def random_conv_features(images, num_filters=32, kernel=5, chunk=250):
    """Random ``kernel``-square filters, rectified both ways and averaged over positions: ``(N, 2F)``."""
    filters = np.random.default_rng(0).standard_normal((kernel * kernel * 3, num_filters)).astype(np.float32)
    features = []
    for start in range(0, len(images), chunk):
        windows = sliding_window_view(images[start : start + chunk], (kernel, kernel), axis=(1, 2))
        responses = windows.reshape(*windows.shape[:3], -1) @ filters  # (n, H', W', F)
        responses -= responses.mean(axis=(1, 2), keepdims=True)
        features.append(np.c_[np.maximum(responses, 0).mean(axis=(1, 2)), np.maximum(-responses, 0).mean(axis=(1, 2))])
    return np.concatenate(features)


def test_same_seed_same_images_other_seed_other_images():
    first, again, other = generate_shapes(200, seed=5), generate_shapes(200, seed=5), generate_shapes(200, seed=6)
    assert np.array_equal(first.images, again.images) and np.array_equal(first.labels, again.labels)
    assert not np.array_equal(first.images, other.images)
    assert not np.array_equal(first.labels, other.labels)


def test_images_are_float32_nhwc_in_unit_range_with_balanced_classes():
    data = generate_shapes(1000, seed=0)
    assert data.images.shape == (1000, 32, 32, 3) and data.images.dtype == np.float32
    assert data.images.min() >= 0.0 and data.images.max() <= 1.0
    assert data.labels.dtype == np.int64 and data.class_names == SYNTHETIC_CLASS_NAMES
    assert np.array_equal(np.bincount(data.labels), np.full(10, 100))


def test_mean_colour_does_not_tell_the_classes_apart():
    train, test = generate_shapes(3000, seed=0), generate_shapes(1000, seed=1)
    accuracy = linear_probe_accuracy(mean_colour(train.images), train.labels, mean_colour(test.images), test.labels)
    assert accuracy < CHANCE + 0.06, accuracy


def test_mean_colour_probe_does_catch_a_colour_coded_dataset():
    """The probe above has the power to fail: tint each class its own hue and it succeeds."""
    train, test = generate_shapes(3000, seed=0), generate_shapes(1000, seed=1)
    # Ten hues on a circle around grey: each is an extreme point, so one linear score per class can win.
    hue = 2 * np.pi * np.arange(10) / 10
    red_green, blue_yellow = np.array([1, -1, 0]) / np.sqrt(2), np.array([1, 1, -2]) / np.sqrt(6)
    palette = (0.5 + 0.4 * (np.cos(hue)[:, None] * red_green + np.sin(hue)[:, None] * blue_yellow)).astype(np.float32)

    def tinted(data):
        return 0.2 * data.images + 0.8 * palette[data.labels][:, None, None, :]

    accuracy = linear_probe_accuracy(mean_colour(tinted(train)), train.labels, mean_colour(tinted(test)), test.labels)
    assert accuracy > 0.8, accuracy


@pytest.mark.slow
def test_raw_pixels_are_not_linearly_separable():
    train, test = generate_shapes(2000, seed=0), generate_shapes(1000, seed=1)

    def flat(data):
        return data.images.reshape(len(data), -1)

    accuracy = linear_probe_accuracy(flat(train), train.labels, flat(test), test.labels, shrinkage=1.0)
    assert accuracy < 0.3, accuracy


@pytest.mark.slow  # features of every image computed (1.2 s)
def test_convolution_features_with_global_pooling_do_tell_the_classes_apart():
    """Even untrained 5x5 filters + GAP + a linear read-out far beat chance: the signal is spatial."""
    train, test = generate_shapes(2000, seed=0), generate_shapes(1000, seed=1)
    accuracy = linear_probe_accuracy(
        random_conv_features(train.images), train.labels, random_conv_features(test.images), test.labels
    )
    assert accuracy > 0.35, accuracy  # 0.46 measured; chance is 0.1
