"""The memory the NumPy reference will take, estimated from the shapes alone, and the budget that refuses a run
before it allocates anything.

The reference keeps every layer's output until the step ends, plus what each kernel saves for its backward
(im2col columns of a conv, batch norm's x-hat, dropout masks, ...); at its peak it also holds one layer's
temporaries (the padded input, the columns and their gradient). Parameters come with their gradients and
the optimizer's slots. :func:`step_bytes` adds these up per layer; it errs on the high side, and
``tests/test_hostile.py`` checks it against what tracemalloc sees NumPy allocate.

The budget is ``--max-memory`` where a command has it, else the environment variable ``HWSIM_MAX_MEMORY``,
else :data:`DEFAULT_MAX_MEMORY`; docs/limits.md lists it with every other limit.
"""

from __future__ import annotations

import os

from hwsim.errors import InputError
from hwsim.model.graph import Graph, Layer
from hwsim.ops import (
    ConvAttrs,
    ConvTransposeAttrs,
    Op,
    PoolAttrs,
    UpsampleAttrs,
    depthwise_transposed_gradient,
    elements,
)
from hwsim.units import format_quantity, parse_quantity

DEFAULT_MAX_MEMORY = "4 GB"
"""What the reference may take unless told otherwise: a sixth of a 24 GB machine shared by a few people, enough
to verify AlexNet (about 1.5 GB estimated) or HairNet at 224x224 on a batch of 16, or to train on all of CIFAR-10."""
ENVIRONMENT = "HWSIM_MAX_MEMORY"
FLOAT_BYTES = 4
"""The reference computes in float32."""
BOOKKEEPING_BYTES = 2_000_000
"""Python's own objects while a step runs: the op ledger, the kernels, the dicts of arrays."""
_WINDOW_OPS = frozenset({Op.CONV, Op.DWCONV, Op.MAXPOOL, Op.AVGPOOL})
PARAMETER_COPIES = {"adam": 4, "sgd": 3, None: 1}
"""Copies of the parameters alive at once: the parameters, their gradients and the optimizer's slots
(Adam: m and v; SGD: velocity); inference only the parameters. A step also holds three temporaries the
size of the largest parameter (Adam's scratch and the updated array)."""


def memory_limit(given: str | float | None = None) -> float:
    """The budget in bytes: ``given`` (``4 GB``, ``512MiB``, or a number of bytes), else ``HWSIM_MAX_MEMORY``,
    else :data:`DEFAULT_MAX_MEMORY`."""
    source, value = (
        ("--max-memory", given)
        if given is not None
        else (ENVIRONMENT, os.environ[ENVIRONMENT])
        if os.environ.get(ENVIRONMENT)
        else ("default", DEFAULT_MAX_MEMORY)
    )
    try:
        return parse_quantity(value, "bytes")
    except ValueError as err:
        raise InputError(f"{source}: {err}") from None


def _window_elements(layer: Layer) -> tuple[int, int]:
    """(padded input, im2col columns) per image of a windowed layer: what its forward and backward copy."""
    h, w, c = layer.input_shape
    attrs = layer.attrs
    assert isinstance(attrs, (ConvAttrs, PoolAttrs))
    size = attrs.kernel
    p = attrs.padding
    ho, wo, _ = layer.output_shape
    return (h + p.top + p.bottom) * (w + p.left + p.right) * c, ho * wo * c * size[0] * size[1]


def _saved_and_peak(layer: Layer) -> tuple[int, int]:
    """Elements per image that ``layer`` keeps from its training forward to its backward, and the most it
    holds on top of that while it runs (its temporaries)."""
    out, inp = elements(layer.output_shape), elements(layer.input_shape)
    if layer.op in _WINDOW_OPS:
        padded, columns = _window_elements(layer)
        depthwise = layer.op is Op.DWCONV or (
            isinstance(layer.attrs, ConvAttrs) and layer.input_shape[2] == layer.attrs.groups
        )
        saved = padded if depthwise else columns if layer.op is Op.CONV else out
        if layer.op is Op.AVGPOOL or (depthwise and depthwise_transposed_gradient(layer)):
            columns = 0  # no column copy in either pass
        return saved, out + inp + padded + columns
    if isinstance(layer.attrs, ConvTransposeAttrs):
        # the input regrouped for the backward; the columns (and their regrouped copy, or dy's windows copied)
        # and the full map before the crop
        (kh, kw), (fh, fw) = layer.attrs.kernel, layer.attrs.full(layer.input_shape[:2])
        columns = inp // layer.input_shape[2] * layer.output_shape[2] * kh * kw
        return inp, out + inp + 2 * columns + fh * fw * layer.output_shape[2]
    if isinstance(layer.attrs, UpsampleAttrs) and layer.attrs.mode == "bilinear":
        return 0, inp + 6 * out  # a pass's gathers and products; its backward's products, gathered by target
    saved = {
        Op.BATCHNORM: out,
        Op.DROPOUT: out,
        Op.LRN: 3 * out,
        Op.LEAKY_RELU: out,  # the slope
        Op.HARD_SIGMOID: out,  # the line before the clip
        Op.HARD_SWISH: 3 * out,  # alpha * x, the line, the hard sigmoid
        Op.GELU: 3 * out,  # the CDF; for tanh also x² and the tanh
        Op.LAYER_NORM: out,  # x-hat
        Op.ELU: out,  # where x > 0
        Op.SELU: out,
        Op.SOFTPLUS: 3 * out,  # exp(x), 1 + exp(x), where x is above the threshold
        Op.MISH: 4 * out,  # softplus's three, and tanh of it
        Op.PRELU: 2 * out,  # where x > 0, the slope of each element
        Op.GLOBAL_MAX_POOL: 2 * out,  # each channel's winner (an index)
    }.get(layer.op, 0)
    return saved, out + 2 * inp


def step_bytes(graph: Graph, batch: int, optimizer: str | None) -> int:
    """Bytes the reference holds at the peak of one step on ``batch`` images: a training step (forward,
    backward, ``optimizer`` ``adam`` or ``sgd``), or an inference forward when ``optimizer`` is None."""
    kept, peak, largest_parameter = elements(graph.input_shape), 0, 0
    for layer in graph.layers:
        saved, temporaries = _saved_and_peak(layer)
        kept += elements(layer.output_shape) + saved  # inference too: a conv keeps its columns either way
        peak = max(peak, temporaries)
        largest_parameter = max(largest_parameter, layer.params)
    parameters = PARAMETER_COPIES[optimizer] * graph.params + sum(layer.state for layer in graph.layers)
    return BOOKKEEPING_BYTES + FLOAT_BYTES * (batch * (kept + peak) + parameters + 3 * largest_parameter)


def check_budget(what: str, needed: int, limit: float) -> None:
    """Refuse ``what`` when it ``needed`` more bytes than ``limit``, saying how to raise the limit."""
    if needed > limit:
        suggestion = format_quantity(needed * 1.25, "B").replace(" ", "")
        raise InputError(
            f"{what} would take about {format_quantity(needed, 'B')} of memory, more than the limit of "
            f"{format_quantity(limit, 'B')}; raise it with --max-memory {suggestion} or {ENVIRONMENT}={suggestion}"
        )
