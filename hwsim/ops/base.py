"""What every op declares, and the vocabulary those declarations are written in.

An op is one :class:`OpTraits` entry (in the module of its family, registered in :mod:`hwsim.ops`):
the YAML entry that writes it, how its output shape and parameters follow from its attributes, what
it costs (exact and paper counts, training forward, backward), which unit runs it, and how its
output rows and channels read its inputs' rows and channels. The expander, the cost model, the
hardware profile and the schedulers read these traits instead of keeping sets of ops of their own.

This stage sits below all of them: at run time it imports nothing from hwsim but errors and units
(``Layer`` is named in annotations only), so every stage can read it.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

if TYPE_CHECKING:
    from hwsim.model.graph import Layer

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
    UPSAMPLE = "upsample"
    CLIP = "clip"
    LEAKY_RELU = "leaky_relu"
    SIGMOID = "sigmoid"
    HARD_SIGMOID = "hard_sigmoid"
    HARD_SWISH = "hard_swish"
    MUL = "mul"
    PAD = "pad"
    IDENTITY = "identity"
    SLICE = "slice"
    CHANNEL_SHUFFLE = "channel_shuffle"
    SCALE = "scale"
    GELU = "gelu"
    LAYER_NORM = "layer_norm"
    CONV_TRANSPOSE = "conv_transpose"
    TANH = "tanh"
    ELU = "elu"
    SELU = "selu"
    SOFTPLUS = "softplus"
    MISH = "mish"
    PRELU = "prelu"
    GLOBAL_MAX_POOL = "global_max_pool"


def elements(shape: Shape) -> int:
    h, w, c = shape
    return h * w * c


class ShapeError(ValueError):
    """A layer does not fit the shape of its input(s)."""


# ---- attributes: the network's friendly YAML, normalised once -------------------------------------


@dataclass(frozen=True)
class Attrs:
    """A layer's attributes in one explicit, normalised form (per-side padding, kernel as height and
    width), so costs, schedulers and the NumPy reference never re-derive them. One subclass per op family."""


@dataclass(frozen=True)
class NoAttrs(Attrs):
    """Ops with nothing to configure."""


# Strict: YAML's `true` or "3" where a count belongs is a mistake to report, not a value to coerce.
PositiveInt = Annotated[StrictInt, Field(gt=0)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
IntPair = PositiveInt | tuple[PositiveInt, PositiveInt]


def pair(value: int | tuple[int, int]) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``: a kernel, stride or size written once for height and width."""
    return (value, value) if isinstance(value, int) else (value[0], value[1])


class LayerEntry(BaseModel):
    """One layer entry of a network file, validated by its op's model after block arguments are substituted."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    op: str
    name: str | None = Field(None, description="stable human name; generated from the op when absent")
    inputs: tuple[str, ...] | None = Field(None, description="producers by name; default: the previous layer")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str | None) -> str | None:
        if name is not None and (not name or "." in name or name == "input"):
            raise ValueError(f"layer names are non-empty, without '.', and not 'input': {name!r}")
        return name

    @abstractmethod
    def attrs(self, input_shape: Shape) -> Attrs:
        """The normalised attributes of this entry, given the shape of its (first) input."""


class PlainEntry(LayerEntry):
    """An op with nothing to configure: its entry is ``{op: relu}``."""

    def attrs(self, input_shape: Shape) -> Attrs:
        return NoAttrs()


# ---- how output rows and channels read input rows and channels (tiling and streaming) --------------


class Rows(Enum):
    """Which input rows an output row reads."""

    SAME = "same"
    """Row r of the output reads row r of every input."""
    WINDOW = "window"
    """The rows under its window: ``attrs.kernel``, ``attrs.stride`` and ``attrs.padding`` (a :class:`Window`)."""
    WHOLE = "whole"
    """Every output row reads every input row."""
    SCALE = "scale"
    """Row r reads the rows its source coordinate lies between, ``attrs.source_rows``: r // f for nearest
    upsampling, the two rows around (r + 1/2) / f - 1/2 for bilinear."""
    BROADCAST = "broadcast"
    """Row r reads row r of every input, except an input one row high, whose row every output row reads."""
    PADDED = "padded"
    """Row r reads row r - top, or for a border row of reflect or edge padding the row it copies
    (``attrs.source_rows``)."""
    ACCUMULATE = "accumulate"
    """The output has one row, a running reduction over every input row: it can be computed in parts,
    each adding some input rows as they arrive (global average pooling streams as a running sum)."""
    TRANSPOSED = "transposed"
    """A window run backwards (a transposed convolution): input row i adds to the rows i * stride - top +
    k * dilation for each tap k, so row r reads the rows i with r = i * stride - top + k * dilation for some k
    (``attrs.extent``, ``attrs.stride``, ``attrs.padding``). Some rows read none (stride above the extent)."""


class Channels(Enum):
    """Which input channels an output channel reads."""

    SAME = "same"
    """Channel c of the output reads channel c of every input."""
    GROUPS = "groups"
    """The input channels of its group (``attrs.groups``)."""
    ALL = "all"
    """Every input channel."""
    NEIGHBOURS = "neighbours"
    """The ``attrs.size`` channels centred on it, clipped at the edges."""
    STACKED = "stacked"
    """The inputs' channels one after another: channel c reads one channel of one input."""
    BROADCAST = "broadcast"
    """Channel c reads channel c of every input, except an input one channel wide, whose channel every
    output channel reads."""


class Chunks(Enum):
    """Whether a step can run on a chunk of its output channels at a time, its weights streamed in chunks."""

    NO = "no"
    FIRST = "first"
    """Only as the step's first layer: a chunk of its outputs reads all its inputs (conv, dense)."""
    ANY = "any"
    """Anywhere in the step: output channel c reads input channel c alone (channel-local)."""


class Unit(str, Enum):
    """The compute unit that runs an op unless the hardware profile assigns it elsewhere."""

    MATRIX = "matrix"
    VECTOR = "vector"


# ---- cost rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GradientFlow:
    """What one layer's backward must produce, given the graph around it."""

    input_grads: tuple[bool, ...]
    """Per input: whether a gradient flows into it (not for the network input)."""
    readers: int
    """How many inputs of layers on the gradient path read this layer's output."""
    feeds_loss: bool
    """This is the output softmax under the cross-entropy loss."""


ShapeRule = Callable[[Attrs, tuple[Shape, ...]], Shape]
"""(attrs, input shapes) -> output shape; raises :class:`ShapeError` with the numbers when it cannot apply."""
ParamRule = Callable[[Attrs, tuple[Shape, ...]], tuple[int, int]]
"""(attrs, input shapes) -> (trainable parameters, non-trainable state)."""
CostRule = Callable[["Layer", int], tuple[int, int]]
"""(layer, batch) -> (MACs, ops) of the inference forward for the whole batch."""
TrainingRule = Callable[["Layer", int, GradientFlow], int]
"""(layer, batch, flow) -> backward ops for the whole batch."""
ForwardTrainRule = Callable[["Layer", int, "GradientFlow | None"], int]
"""Like :data:`TrainingRule`; ``flow`` is None for a layer the loss does not depend on."""


def outputs(layer: Layer, batch: int) -> int:
    """Output elements of the whole batch: ``N`` in the rules' docstrings."""
    return elements(layer.output_shape) * batch


def per_output(ops_per_element: Callable[[Layer], int]) -> CostRule:
    """A rule without MACs charging ``ops_per_element(layer)`` per output element."""
    return lambda layer, batch: (0, ops_per_element(layer) * outputs(layer, batch))


def per_input(ops_per_element: int) -> CostRule:
    """A rule without MACs charging ``ops_per_element`` per element of the (first) input."""
    return lambda layer, batch: (0, ops_per_element * elements(layer.input_shape) * batch)


def backward_per_output(ops_per_element: Callable[[Layer], int]) -> TrainingRule:
    return lambda layer, batch, flow: ops_per_element(layer) * outputs(layer, batch)


def same_shape(attrs: Attrs, inputs: tuple[Shape, ...]) -> Shape:
    return inputs[0]


def no_params(attrs: Attrs, inputs: tuple[Shape, ...]) -> tuple[int, int]:
    return 0, 0


# ---- the entry ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OpTraits:
    """Everything the rest of hwsim asks of one op. Every field without a default must be given."""

    op: Op
    layer: type[LayerEntry]
    """The model of its YAML entry; its ``attrs`` builds the normalised attributes."""
    shape: ShapeRule
    params: ParamRule
    exact: CostRule
    """The arithmetic the NumPy reference performs (``hwsim verify`` checks it by execution)."""
    backward: TrainingRule
    """The backward's ops, without summing the gradients of several readers (the cost model adds those)."""
    unit: Unit
    rows: Rows
    channels: Channels
    chunks: Chunks
    streams: bool
    """It can join a segment streamed row by row through line buffers (its rows are local, or accumulate)."""
    fuses: bool
    """It can run on its producer's output as it is produced: one step with it, no map of its own (a merge
    fuses into the step producing one of its inputs and reads the others where they are)."""
    many_inputs: bool = False
    """It reads two or more maps (add, concat); every other op reads exactly one."""
    whole_input: bool = False
    """Each output element is computed from every element of its input: a dependence, which ``rows`` and
    ``channels`` only over-approximate (flatten is whole for scheduling, yet moves each element once). Such a
    layer is a barrier for the lower bound (:mod:`hwsim.cost.cut`)."""
    paper: CostRule | None = None
    """The paper appendix's convention, where it differs from exact (None: counted exactly under ``paper`` too)."""
    forward_train: ForwardTrainRule | None = None
    """The training forward, where it computes more than inference (None: the exact inference rule)."""
