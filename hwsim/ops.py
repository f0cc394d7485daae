"""Op kinds and their normalised attributes: the vocabulary shared by graph, costs and reference.

The network YAML is friendly (``padding: same``, ``kernel: 3``); the graph stores every layer's
attributes in one explicit, normalised form (per-side padding, kernel as height and width), so
costs, schedulers and the NumPy reference never re-derive them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

Shape = tuple[int, int, int]
"""A feature map per image, as (H, W, C). Batch is a run option, never part of a shape."""


class Op(str, Enum):
    CONV = "conv"
    DWCONV = "dwconv"
    BATCHNORM = "batchnorm"
    RELU = "relu"
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    GLOBAL_AVG_POOL = "global_avg_pool"
    DENSE = "dense"
    FLATTEN = "flatten"
    SOFTMAX = "softmax"
    DROPOUT = "dropout"
    LRN = "lrn"
    ADD = "add"
    CONCAT = "concat"


MULTI_INPUT_OPS = frozenset({Op.ADD, Op.CONCAT})


@dataclass(frozen=True)
class Padding:
    """Zeros (or -inf for max pooling) added on each side of the map."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0


@dataclass(frozen=True)
class ConvAttrs:
    """conv and dwconv. A depthwise conv is a conv with ``groups == C_in``."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: Padding
    groups: int
    out_channels: int
    bias: bool


@dataclass(frozen=True)
class PoolAttrs:
    """maxpool and avgpool. Average pooling divides by the full window area (padding counts as zeros)."""

    size: tuple[int, int]
    stride: tuple[int, int]
    padding: Padding


@dataclass(frozen=True)
class DenseAttrs:
    units: int
    bias: bool


@dataclass(frozen=True)
class LrnAttrs:
    """Across-channel local response normalisation (AlexNet): x / (k + alpha/size * sum x^2)^beta.

    The sum runs over ``size`` neighbouring channels centred on c, truncated at the edges.
    """

    size: int
    alpha: float
    beta: float
    k: float


@dataclass(frozen=True)
class DropoutAttrs:
    rate: float


@dataclass(frozen=True)
class BatchNormAttrs:
    eps: float
    momentum: float


@dataclass(frozen=True)
class NoAttrs:
    """Ops with nothing to configure: relu, global_avg_pool, flatten, softmax, add, concat."""


Attrs = ConvAttrs | PoolAttrs | DenseAttrs | LrnAttrs | DropoutAttrs | BatchNormAttrs | NoAttrs
