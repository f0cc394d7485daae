"""Train a layer graph on the NumPy reference: seeded, mini-batched, validated every epoch, resumable.

A :class:`Run` holds everything that changes while training (model, optimizer, shuffling RNG,
epoch, history); :mod:`hwsim.training.checkpoint` saves it, and a run restored from a checkpoint continues
exactly as the uninterrupted run would have, bit for bit.

    run = start_run(graph, TrainSettings(OptimizerSettings("adam", 0.001)), train_set)
    train(run, train_set, validation_set, epochs=5)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from hwsim.errors import InputError
from hwsim.model.graph import Graph
from hwsim.ops import elements
from hwsim.reference import SGD, Adam, Model
from hwsim.reference.memory import FLOAT_BYTES, step_bytes
from hwsim.training.data import (
    MIN_STD,
    Dataset,
    channel_statistics,
    generate_shapes,
    iterate_batches,
    load_cifar10,
    split,
    standardize,
)

OPTIMIZERS = ("adam", "sgd")
DEFAULT_LEARNING_RATES = {"adam": 0.001, "sgd": 0.01}
EVALUATION_BATCH = 256
DEFAULT_IMAGES = 3000
"""Generated images per run (2,700 to train on): seconds per epoch for hairnet-cifar10-small (docs/experiments.md)."""
MAX_GENERATED_IMAGES = 1_000_000
"""At most this many generated images (12 GB as float32 32x32x3): more would take hours to draw and exhaust memory;
the memory budget (:mod:`hwsim.reference.memory`) refuses far fewer unless raised."""
CIFAR10_IMAGES = 60_000
"""Images read from a CIFAR-10 folder, whatever part of them is used: its training and test batches are read
together, as bytes and then as float32."""
CIFAR10_TRAINING_IMAGES, CIFAR10_TEST_IMAGES = 50_000, 10_000
DATA_COPIES = 4
"""Copies of the images used alive at once while a run starts: the training and validation split, their
standardised copies, and the float64 pass of the channel statistics (two copies' worth); generated images
take one more while they are drawn."""


def _check_generated(num_images: int) -> None:
    if num_images > MAX_GENERATED_IMAGES:
        raise InputError(f"at most {MAX_GENERATED_IMAGES:,} generated images, got {num_images:,}")


@dataclass(frozen=True)
class OptimizerSettings:
    """Which optimizer, with its hyperparameters; ``momentum`` is SGD's, ``beta1/beta2/eps`` Adam's."""

    name: str
    learning_rate: float
    momentum: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise InputError(f"unknown optimizer {self.name!r}; choose one of {', '.join(OPTIMIZERS)}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise InputError(f"learning rate must be a finite number > 0, got {self.learning_rate}")
        if not (math.isfinite(self.momentum) and 0 <= self.momentum < 1):
            raise InputError(f"momentum must be a finite number in [0, 1), got {self.momentum}")

    def build(self) -> Adam | SGD:
        if self.name == "adam":
            return Adam(self.learning_rate, self.beta1, self.beta2, self.eps)
        return SGD(self.learning_rate, self.momentum)

    def describe(self) -> str:
        if self.name == "adam":
            return f"Adam (alpha {self.learning_rate:g})"
        return f"SGD (lr {self.learning_rate:g}" + (f", momentum {self.momentum:g})" if self.momentum else ")")


@dataclass(frozen=True)
class DataSource:
    """Where the images come from: the CIFAR-10 batches in ``folder``, or else the generated set.

    ``num_images`` takes the first that many training images (all of CIFAR-10's when None); the
    generated set is made with ``seed``. The test part is CIFAR-10's test batch, or a generated
    set from another seed, which training on ``seed`` never sees.
    """

    folder: str | None = None
    num_images: int | None = DEFAULT_IMAGES
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_images is not None and self.num_images < 2:
            raise InputError(f"need at least 2 images (one to train on, one to validate), got {self.num_images}")
        if self.folder is None and self.num_images is not None:
            _check_generated(self.num_images)
        if self.seed < 0:
            raise InputError(f"data seed must be 0 or more, got {self.seed}")

    def training_set(self) -> Dataset:
        if self.folder is None:
            return generate_shapes(self.num_images or DEFAULT_IMAGES, self.seed)
        images = load_cifar10(self.folder).train
        return images if self.num_images is None else images.subset(np.arange(min(self.num_images, len(images))))

    def test_set(self, num_images: int | None = None, seed: int | None = None) -> Dataset:
        """CIFAR-10's test batch (its first ``num_images``), or a generated set with ``seed``
        (default ``self.seed + 1``)."""
        if self.folder is None:
            count = self.test_images(num_images)
            if seed is not None and seed < 0:
                raise InputError(f"data seed must be 0 or more, got {seed}")
            return generate_shapes(count, self.seed + 1 if seed is None else seed)
        images = load_cifar10(self.folder).test
        return images if num_images is None else images.subset(np.arange(min(num_images, len(images))))

    def training_images(self) -> int:
        """How many images :meth:`training_set` holds (at most: a cut-down CIFAR-10 folder has fewer)."""
        if self.folder is None:
            return self.num_images or DEFAULT_IMAGES
        return min(self.num_images or CIFAR10_TRAINING_IMAGES, CIFAR10_TRAINING_IMAGES)

    def test_images(self, num_images: int | None = None) -> int:
        """How many images :meth:`test_set` holds (at most); a generated count beyond the limit is refused."""
        if self.folder is not None:
            return min(num_images or CIFAR10_TEST_IMAGES, CIFAR10_TEST_IMAGES)
        count = num_images or self.num_images or DEFAULT_IMAGES
        _check_generated(count)
        return count

    def describe(self) -> str:
        if self.folder is None:
            return f"generated shapes ({self.num_images} images, seed {self.seed})"
        return f"CIFAR-10 from {self.folder}" + (f" (first {self.num_images} images)" if self.num_images else "")


@dataclass(frozen=True)
class TrainSettings:
    """What fixes a run besides the network: same network and settings, same run, bit for bit."""

    optimizer: OptimizerSettings
    data: DataSource = DataSource()
    batch_size: int = 64
    seed: int = 0
    validation_fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {self.batch_size}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise InputError(f"validation fraction must be in (0, 1), got {self.validation_fraction}")
        if self.seed < 0:
            raise InputError(f"seed must be 0 or more, got {self.seed}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainSettings:
        nested = {"optimizer": OptimizerSettings(**values["optimizer"]), "data": DataSource(**values["data"])}
        return cls(**{**values, **nested})


@dataclass(frozen=True)
class EpochMetrics:
    """One row of the learning curve. ``seconds`` is wall time, the only column that is not reproducible."""

    epoch: int
    train_loss: float
    train_accuracy: float
    validation_loss: float
    validation_accuracy: float
    seconds: float


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and standard deviation ``(C,)`` of the training split, applied to every input."""

    mean: np.ndarray
    std: np.ndarray

    def apply(self, dataset: Dataset) -> Dataset:
        return standardize(dataset, self.mean, self.std)


@dataclass
class Run:
    """The mutable state of a training run: what a checkpoint saves and restores."""

    graph: Graph
    settings: TrainSettings
    model: Model
    optimizer: Adam | SGD
    rng: np.random.Generator
    normalization: Normalization
    epoch: int = 0
    history: list[EpochMetrics] = field(default_factory=list)


BatchCallback = Callable[[int, int, float, float], None]
"""Called after every batch with (batches done, batches in the epoch, running loss, running accuracy)."""


def seeds(seed: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """Independent streams for the validation split and for the shuffling, both from ``seed``."""
    split_seed, shuffle_seed = np.random.SeedSequence(seed).spawn(2)
    return split_seed, shuffle_seed


def load_split(settings: TrainSettings) -> tuple[Dataset, Dataset]:
    """``(train, validation)`` from ``settings.data``, unstandardised; the same settings always give the same split.

    Both must hold at least one image: an empty validation split gives an accuracy of nan.
    """
    split_seed, _ = seeds(settings.seed)
    images = settings.data.training_set()
    train_set, validation_set = split(images, settings.validation_fraction, np.random.default_rng(split_seed))
    if not (len(train_set) and len(validation_set)):
        raise InputError(
            f"{len(images)} images with a validation fraction of {settings.validation_fraction:g} leave "
            f"{len(train_set)} to train on and {len(validation_set)} to validate; each needs at least one "
            f"(use more images or another fraction)"
        )
    return train_set, validation_set


def start_run(graph: Graph, settings: TrainSettings, train_set: Dataset) -> Run:
    """A fresh run: weights from ``settings.seed``, normalisation from ``train_set``'s statistics."""
    _check_fits(graph, train_set)
    _, shuffle_seed = seeds(settings.seed)
    mean, std = channel_statistics(train_set)
    std = np.maximum(std, np.float32(MIN_STD))  # what standardize divides by: never a 0 in a checkpoint
    return Run(
        graph,
        settings,
        Model(graph, seed=settings.seed),
        settings.optimizer.build(),
        np.random.default_rng(shuffle_seed),
        Normalization(mean, std),
    )


def run_bytes(graph: Graph, settings: TrainSettings) -> int:
    """Bytes a training run of ``graph`` holds at its peak, from the shapes and settings alone: while it starts,
    the images (:func:`data_bytes`); then the split and its standardised copy, with the larger of a training
    step on a batch and a forward on a batch of the validation split (each kernel's saved arrays are
    replaced as the next pass reaches it, so the two do not add up)."""
    images = settings.data.training_images()
    validation = max(round(images * settings.validation_fraction), 1)
    step = step_bytes(graph, min(settings.batch_size, max(images - validation, 1)), settings.optimizer.name)
    evaluation = step_bytes(graph, min(EVALUATION_BATCH, validation), None)
    kept = 2 * FLOAT_BYTES * images * elements(graph.input_shape)  # the split and its standardised copy
    return max(data_bytes(graph, settings.data, images), kept + max(step, evaluation))


def data_bytes(graph: Graph, source: DataSource, used: int) -> int:
    """Bytes the images take while a run starts: ``used`` images of ``graph``'s input size (see
    :data:`DATA_COPIES`), and for CIFAR-10 every batch as read (see :data:`CIFAR10_IMAGES`)."""
    per_image = elements(graph.input_shape)
    if source.folder is None:
        return (DATA_COPIES + 1) * FLOAT_BYTES * used * per_image
    return CIFAR10_IMAGES * per_image * (1 + FLOAT_BYTES) + DATA_COPIES * FLOAT_BYTES * used * per_image


def single_threaded_blas() -> threadpool_limits:
    """Limit BLAS to one thread while the reference runs.

    Its matrix products are small (a batch of 32x32 maps times a few dozen channels), so threads
    buy little, and on a loaded machine they fight: on our 2 cores, with other work running, a
    training step of hairnet-cifar10-narrow took 66 ms per image with OpenBLAS's default threads
    and 6.6 ms with one (hairnet-cifar10: 193 vs 57 ms).
    """
    return threadpool_limits(limits=1, user_api="blas")


def train(
    run: Run,
    train_set: Dataset,
    validation_set: Dataset,
    epochs: int,
    on_batch: BatchCallback | None = None,
    on_epoch: Callable[[Run], None] | None = None,
) -> list[EpochMetrics]:
    """Train ``epochs`` more epochs on the unstandardised sets; returns (and appends to the history) their metrics.

    ``on_epoch`` runs after each epoch (to write a checkpoint and the metrics), so an interrupted
    run loses at most the epoch in progress.
    """
    _check_fits(run.graph, train_set)
    train_set, validation_set = run.normalization.apply(train_set), run.normalization.apply(validation_set)
    new = []
    with single_threaded_blas():
        for _ in range(epochs):
            new.append(_epoch(run, train_set, validation_set, on_batch))
            if on_epoch:
                on_epoch(run)
    return new


def _epoch(run: Run, train_set: Dataset, validation_set: Dataset, on_batch: BatchCallback | None) -> EpochMetrics:
    """Train one epoch, validate, and append the metrics to the run's history."""
    started = time.perf_counter()
    train_loss, train_accuracy = _train_epoch(run, train_set, on_batch)
    validation_loss, validation_accuracy = _evaluate_standardized(run.model, validation_set)
    run.epoch += 1
    metrics = EpochMetrics(
        run.epoch, train_loss, train_accuracy, validation_loss, validation_accuracy, time.perf_counter() - started
    )
    run.history.append(metrics)
    return metrics


def _train_epoch(run: Run, train_set: Dataset, on_batch: BatchCallback | None) -> tuple[float, float]:
    """One shuffled pass; mean loss and accuracy over its samples as trained (batch statistics)."""
    num_batches = -(-len(train_set) // run.settings.batch_size)
    loss_sum, correct, seen = 0.0, 0, 0
    # A diverging run (the point of the batch-norm experiment) overflows; its loss becomes nan or inf.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for index, (images, labels) in enumerate(iterate_batches(train_set, run.settings.batch_size, run.rng), start=1):
            loss, grads = run.model.loss_and_grads(images, labels)
            correct += int(np.sum(_training_probabilities(run.model).argmax(axis=-1) == labels))
            run.optimizer.step(run.model.params, grads)
            loss_sum += loss * len(labels)
            seen += len(labels)
            if on_batch:
                on_batch(index, num_batches, loss_sum / seen, correct / seen)
    return loss_sum / seen, correct / seen


def _training_probabilities(model: Model) -> np.ndarray:
    """The softmax output ``(N, K)`` of the last training forward pass.

    ``Model.loss_and_grads`` does not return it, and a second forward would cost a third of a step
    and move the batch norm running statistics again; the model keeps its last output.
    """
    p = model.last_output
    return p.reshape(len(p), -1)


def predict(model: Model, normalization: Normalization, dataset: Dataset) -> np.ndarray:
    """Class probabilities ``(N, K)`` for an unstandardised ``dataset``, in inference mode."""
    return _probabilities(model, normalization.apply(dataset))


def evaluate(model: Model, normalization: Normalization, dataset: Dataset) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on an unstandardised ``dataset``, in inference mode."""
    return _evaluate_standardized(model, normalization.apply(dataset))


def _evaluate_standardized(model: Model, dataset: Dataset) -> tuple[float, float]:
    if len(dataset) == 0:
        return float("nan"), float("nan")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        p = _probabilities(model, dataset)
        picked = p[np.arange(len(dataset)), dataset.labels].astype(np.float64)
        loss = float(-np.mean(np.log(picked)))
    return loss, float(np.mean(p.argmax(axis=-1) == dataset.labels))


def _probabilities(model: Model, dataset: Dataset) -> np.ndarray:
    _check_fits(model.graph, dataset)
    with single_threaded_blas():
        batches = [model.forward(images) for images, _ in iterate_batches(dataset, EVALUATION_BATCH)]
    return np.concatenate(batches).reshape(len(dataset), -1) if batches else np.zeros((0, dataset.num_classes))


def _check_fits(graph: Graph, dataset: Dataset) -> None:
    """Refuse data the network cannot take: other image size, or more classes than outputs."""
    if dataset.image_shape != tuple(graph.input_shape):
        raise InputError(
            f"{graph.name} takes {_shape(graph.input_shape)} images, the data has {_shape(dataset.image_shape)}"
        )
    outputs = graph.output.output_shape
    if outputs[:2] != (1, 1) or outputs[2] != dataset.num_classes:
        raise InputError(
            f"{graph.name} ends in {_shape(outputs)} outputs, "
            f"the data has {dataset.num_classes} classes (needs 1x1x{dataset.num_classes})"
        )


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))
