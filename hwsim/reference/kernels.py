"""Which kernel executes which op."""

from __future__ import annotations

import numpy as np

from hwsim.model.graph import Layer
from hwsim.ops import Op
from hwsim.reference.base import Kernel
from hwsim.reference.elementwise import (
    Add,
    ChannelShuffle,
    Clip,
    Concat,
    Dropout,
    Elu,
    Flatten,
    Gelu,
    HardSigmoid,
    HardSwish,
    Identity,
    LeakyRelu,
    Mish,
    Mul,
    PRelu,
    Relu,
    Scale,
    Sigmoid,
    Slice,
    Softmax,
    Softplus,
    Tanh,
)
from hwsim.reference.linear import Conv, Dense
from hwsim.reference.normalization import BatchNorm, LayerNorm, Lrn
from hwsim.reference.pooling import AvgPool, GlobalAvgPool, GlobalMaxPool, MaxPool
from hwsim.reference.resize import Pad, Upsample
from hwsim.reference.transposed import ConvTranspose

KERNELS: dict[Op, type[Kernel]] = {
    Op.CONV: Conv,
    Op.DWCONV: Conv,
    Op.DENSE: Dense,
    Op.BATCHNORM: BatchNorm,
    Op.LRN: Lrn,
    Op.RELU: Relu,
    Op.DROPOUT: Dropout,
    Op.ADD: Add,
    Op.CONCAT: Concat,
    Op.FLATTEN: Flatten,
    Op.SOFTMAX: Softmax,
    Op.MAXPOOL: MaxPool,
    Op.AVGPOOL: AvgPool,
    Op.GLOBAL_AVG_POOL: GlobalAvgPool,
    Op.UPSAMPLE: Upsample,
    Op.CLIP: Clip,
    Op.LEAKY_RELU: LeakyRelu,
    Op.SIGMOID: Sigmoid,
    Op.HARD_SIGMOID: HardSigmoid,
    Op.HARD_SWISH: HardSwish,
    Op.MUL: Mul,
    Op.PAD: Pad,
    Op.IDENTITY: Identity,
    Op.SLICE: Slice,
    Op.CHANNEL_SHUFFLE: ChannelShuffle,
    Op.SCALE: Scale,
    Op.GELU: Gelu,
    Op.LAYER_NORM: LayerNorm,
    Op.CONV_TRANSPOSE: ConvTranspose,
    Op.TANH: Tanh,
    Op.ELU: Elu,
    Op.SELU: Elu,
    Op.SOFTPLUS: Softplus,
    Op.MISH: Mish,
    Op.PRELU: PRelu,
    Op.GLOBAL_MAX_POOL: GlobalMaxPool,
}
assert set(KERNELS) == set(Op), "every op needs a reference kernel"


def make_kernel(layer: Layer, rng: np.random.Generator) -> Kernel:
    return KERNELS[layer.op](layer, rng)
