"""Training data for the reference: a generated default set, CIFAR-10 from a folder, splits and batches."""

from hwsim.data.batches import iterate_batches
from hwsim.data.cifar import Cifar10, CifarFormat, detect_cifar10_format, load_cifar10
from hwsim.data.dataset import Dataset, channel_statistics, split, standardize
from hwsim.data.synthetic import SYNTHETIC_CLASS_NAMES, generate_shapes

__all__ = [
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
