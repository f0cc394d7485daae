"""Training data for the reference: a generated default set, CIFAR-10 from a folder, splits and batches."""

from hwsim.training.data.batches import iterate_batches
from hwsim.training.data.cifar import Cifar10, CifarFormat, detect_cifar10_format, load_cifar10
from hwsim.training.data.dataset import MIN_STD, Dataset, channel_statistics, split, standardize
from hwsim.training.data.synthetic import SYNTHETIC_CLASS_NAMES, generate_shapes

__all__ = [
    "MIN_STD",
    "SYNTHETIC_CLASS_NAMES",
    "Cifar10",
    "CifarFormat",
    "Dataset",
    "channel_statistics",
    "detect_cifar10_format",
    "generate_shapes",
    "iterate_batches",
    "load_cifar10",
    "split",
    "standardize",
]
