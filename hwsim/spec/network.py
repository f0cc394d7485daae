"""The network description: layers, reusable blocks with arguments, and repeats.

The file is validated in two steps. The outer structure (name, input, blocks, layers) is checked
here as it stands; each layer entry is checked by :mod:`hwsim.model.expand` after block arguments are
substituted, against the model of its op in :data:`LAYER_MODELS`, so a ``$filters`` in a block
template is validated with the value it takes at each use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, StrictBool, StrictInt, field_validator

from hwsim.ops import Op
from hwsim.spec.names import name_problem, text_problem
from hwsim.spec.validate import validate
from hwsim.spec.yamlio import Document, load_yaml

# Strict: YAML's `true` or "3" where a count belongs is a mistake to report, not a value to coerce.
PositiveInt = Annotated[StrictInt, Field(gt=0)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
IntPair = PositiveInt | tuple[PositiveInt, PositiveInt]
PaddingMode = Literal["same", "valid"] | NonNegativeInt


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _LayerBase(_Strict):
    name: str | None = Field(None, description="stable human name; generated from the op when absent")
    inputs: tuple[str, ...] | None = Field(None, description="producers by name; default: the previous layer")

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str | None) -> str | None:
        if name is not None and (not name or "." in name or name == "input"):
            raise ValueError(f"layer names are non-empty, without '.', and not 'input': {name!r}")
        return name


class ConvLayer(_LayerBase):
    op: Literal["conv"]
    filters: PositiveInt
    kernel: IntPair
    stride: IntPair = 1
    padding: PaddingMode = "same"
    groups: PositiveInt = 1
    bias: StrictBool = True


class DwConvLayer(_LayerBase):
    op: Literal["dwconv"]
    kernel: IntPair
    stride: IntPair = 1
    padding: PaddingMode = "same"
    multiplier: PositiveInt = 1
    bias: StrictBool = True


class BatchNormLayer(_LayerBase):
    op: Literal["batchnorm"]
    eps: FiniteFloat = Field(1e-5, gt=0)
    momentum: FiniteFloat = Field(0.1, gt=0, le=1, description="running = (1-m)*running + m*batch")


class PoolLayer(_LayerBase):
    op: Literal["maxpool", "avgpool"]
    size: IntPair
    stride: IntPair | None = Field(None, description="default: the pool size")
    padding: PaddingMode = "valid"


class DenseLayer(_LayerBase):
    op: Literal["dense"]
    units: PositiveInt
    bias: StrictBool = True


class DropoutLayer(_LayerBase):
    op: Literal["dropout"]
    rate: FiniteFloat = Field(0.5, ge=0, lt=1)


class LrnLayer(_LayerBase):
    op: Literal["lrn"]
    size: PositiveInt = Field(5, description="channels in the window, centred: odd")
    alpha: FiniteFloat = Field(1e-4, gt=0)
    beta: FiniteFloat = Field(0.75, gt=0)
    k: FiniteFloat = Field(2.0, gt=0)

    @field_validator("size")
    @classmethod
    def _odd(cls, size: int) -> int:
        if size % 2 == 0:
            raise ValueError(f"size must be odd (a window centred on its channel), got {size}")
        return size


class PlainLayer(_LayerBase):
    op: Literal["relu", "global_avg_pool", "flatten", "softmax"]


class MergeLayer(_LayerBase):
    op: Literal["add", "concat"]
    inputs: tuple[str, ...] = Field(min_length=2)


LayerSpec = (
    ConvLayer
    | DwConvLayer
    | BatchNormLayer
    | PoolLayer
    | DenseLayer
    | DropoutLayer
    | LrnLayer
    | PlainLayer
    | MergeLayer
)

LAYER_MODELS: dict[Op, type[_LayerBase]] = {
    Op.CONV: ConvLayer,
    Op.DWCONV: DwConvLayer,
    Op.BATCHNORM: BatchNormLayer,
    Op.MAXPOOL: PoolLayer,
    Op.AVGPOOL: PoolLayer,
    Op.DENSE: DenseLayer,
    Op.DROPOUT: DropoutLayer,
    Op.LRN: LrnLayer,
    Op.RELU: PlainLayer,
    Op.GLOBAL_AVG_POOL: PlainLayer,
    Op.FLATTEN: PlainLayer,
    Op.SOFTMAX: PlainLayer,
    Op.ADD: MergeLayer,
    Op.CONCAT: MergeLayer,
}
assert set(LAYER_MODELS) == set(Op), "every op needs a layer model"


MAX_SIZE = 1_000_000
"""The largest size or count a network file takes: an image side or channel count, filters, units, a kernel,
a stride, a padding. More can only be a mistake (docs/limits.md)."""
Size = Annotated[StrictInt, Field(gt=0, le=MAX_SIZE)]


class UseEntry(BaseModel):
    """``{use: dw, repeat: 3, name: stage2, filters: 128}``: the extra keys are the block's arguments."""

    model_config = ConfigDict(extra="allow", frozen=True)
    use: str
    repeat: PositiveInt = 1
    name: str | None = None
    inputs: tuple[str, ...] | None = None

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str | None) -> str | None:
        if name is not None and (problem := name_problem(name)):
            raise ValueError(problem)
        return name

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


RESERVED_ARGS = frozenset(UseEntry.model_fields)
"""Keys of a ``use`` entry itself, so not available as block argument names."""


class BlockSpec(_Strict):
    args: tuple[str, ...] = ()
    layers: list[dict[str, Any]] = Field(min_length=1)

    @field_validator("args")
    @classmethod
    def _distinct_free_names(cls, args: tuple[str, ...]) -> tuple[str, ...]:
        for arg in args:
            if arg in RESERVED_ARGS:
                raise ValueError(f"{arg!r} is a key of every use entry and cannot name an argument")
            if args.count(arg) > 1:
                raise ValueError(f"argument {arg!r} is listed twice")
        return args


class NetworkSpec(_Strict):
    """A network file as written. Layer entries stay raw dicts until expansion (see module doc)."""

    name: str
    description: str = ""
    input: tuple[Size, Size, Size] = Field(description="H, W, C of one image")
    blocks: dict[str, BlockSpec] = {}
    layers: list[dict[str, Any]] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _visible_name(cls, name: str) -> str:
        if problem := text_problem(name):
            raise ValueError(problem)
        return name

    @field_validator("blocks")
    @classmethod
    def _block_names(cls, blocks: dict[str, BlockSpec]) -> dict[str, BlockSpec]:
        for name in blocks:  # a block's name prefixes the layers of an unnamed use
            if problem := name_problem(name):
                raise ValueError(f"block {problem}")
        return blocks


def load_network_document(path: str | Path) -> tuple[NetworkSpec, Document]:
    """Read and validate the outer structure of a network file; also return the document for line numbers."""
    doc = load_yaml(path)
    return validate(NetworkSpec, doc.data, doc), doc
