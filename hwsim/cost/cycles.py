"""Compute cycles of a layer on a systolic array, counted the way SCALE-Sim v3 counts them.

A convolution (and a dense layer, a 1x1 convolution of a 1x1 map) is a matrix product per group: an
ifmap operand of ``P x W`` (P output pixels of every image, W = kh x kw x C_in / groups the window)
times a filter operand of ``W x F`` (F = C_out / groups). A dataflow places two of these dimensions
on the array's R rows and C columns and streams the third through it in time:

============  ============  ===========  ========  ====================
dataflow      rows (Sr)     columns (Sc) time (T)  cycles per fold
============  ============  ===========  ========  ====================
os            P             F            W         R + C + T - 2
ws            W             F            P         2R + C + T - 2
is            W             P            F         2R + C + T - 2
============  ============  ===========  ========  ====================

``folds = ceil(Sr / R) x ceil(Sc / C)``; every fold pays the whole fill and drain, a partial fold as
much as a full one, and folds do not overlap. A grouped convolution runs its groups one after another,
a depthwise one channel by channel (C groups of a 1-channel, ``multiplier``-filter convolution), as
SCALE-Sim simulates a depthwise layer: C single-channel layers, each with its own fill and drain.
So ``cycles = groups x folds x cycles per fold``.

SCALE-Sim reports one cycle less per layer it simulates: its "compute cycles" are the index of the
cycle of the last output write, counted from 0 (benchmarks/scalesim/README.md reads the forms off its
code; ``tests/test_cycles.py`` checks every layer of the committed runs against them).

A layer without a matrix view (element-wise ops a profile assigns to its array) runs at the array's
peak, 2 x R x C ops a cycle. Row stationary (``rs``, Eyeriss) is not a matrix-view dataflow: its cycles come
from a mapping of the convolution itself (:mod:`hwsim.cost.rowstationary`). Pure functions of a layer's cost
and a unit's geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwsim.cost.inference import LayerCost
from hwsim.model.graph import Layer
from hwsim.ops import ConvAttrs, ConvTransposeAttrs, Op
from hwsim.spec.hardware import ComputeUnit, Dataflow


@dataclass(frozen=True)
class MatrixView:
    """A layer as ``groups`` independent products of a ``pixels x window`` by a ``window x filters`` matrix."""

    groups: int
    pixels: int
    window: int
    filters: int

    @property
    def macs(self) -> int:
        return self.groups * self.pixels * self.window * self.filters


def matrix_view(layer: Layer, batch: int) -> MatrixView | None:
    """The matrix view of a conv, depthwise conv, transposed conv or dense layer over ``batch`` images; None for
    other ops. A transposed conv is its scatter's product: every input pixel's channels of a group by the group's
    kernel taps times output channels."""
    if layer.op is Op.DENSE:
        return MatrixView(1, batch, layer.input_shape[2], layer.output_shape[2])
    if layer.op is Op.CONV_TRANSPOSE:
        t = layer.attrs
        assert isinstance(t, ConvTransposeAttrs)
        h, w, c = layer.input_shape
        return MatrixView(
            t.groups, h * w * batch, c // t.groups, t.kernel[0] * t.kernel[1] * (t.out_channels // t.groups)
        )
    if layer.op not in (Op.CONV, Op.DWCONV):
        return None
    a = layer.attrs
    assert isinstance(a, ConvAttrs)
    ho, wo, co = layer.output_shape
    window = a.kernel[0] * a.kernel[1] * (layer.input_shape[2] // a.groups)
    return MatrixView(a.groups, ho * wo * batch, window, co // a.groups)


def spatial_and_temporal(view: MatrixView, dataflow: Dataflow) -> tuple[int, int, int]:
    """(Sr, Sc, T): what the dataflow maps onto the array's rows, onto its columns, and streams in time."""
    p, w, f = view.pixels, view.window, view.filters
    if dataflow is Dataflow.OS:
        return p, f, w
    if dataflow is Dataflow.WS:
        return w, f, p
    if dataflow is Dataflow.IS:
        return w, p, f
    raise ValueError(f"unknown dataflow {dataflow!r}")


def folds(view: MatrixView, rows: int, cols: int, dataflow: Dataflow) -> int:
    """How many times one group's operands are mapped onto the array, one after another."""
    sr, sc, _ = spatial_and_temporal(view, dataflow)
    return math.ceil(sr / rows) * math.ceil(sc / cols)


def cycles_per_fold(view: MatrixView, rows: int, cols: int, dataflow: Dataflow) -> int:
    """Fill, stream and drain of one fold: ``R + C + T - 2`` (os), ``2R + C + T - 2`` (ws, is: the
    stationary operand is loaded first, R cycles)."""
    t = spatial_and_temporal(view, dataflow)[2]
    return (rows if dataflow is Dataflow.OS else 2 * rows) + cols + t - 2


def view_cycles(view: MatrixView, rows: int, cols: int, dataflow: Dataflow) -> int:
    """``groups x folds x cycles per fold``."""
    return view.groups * folds(view, rows, cols, dataflow) * cycles_per_fold(view, rows, cols, dataflow)


def layer_cycles(cost: LayerCost, unit: ComputeUnit) -> int:
    """Cycles ``cost``'s layer (its whole batch) keeps ``unit``'s array busy; the unit must have an array."""
    assert unit.array is not None and unit.dataflow is not None, "cycles need an array and a dataflow"
    rows, cols = unit.array
    if unit.dataflow is Dataflow.RS:
        assert unit.row_stationary is not None
        from hwsim.cost.rowstationary import layer_mapping  # Eyeriss's mapping, imported by the profiles that use it

        mapping = layer_mapping(cost.layer, cost.batch, unit.array, unit.row_stationary, cost.precision.bytes)
        return math.ceil(cost.ops / (2 * rows * cols)) if mapping is None else mapping.cycles
    view = matrix_view(cost.layer, cost.batch)
    if view is None:
        return math.ceil(cost.ops / (2 * rows * cols))
    return view_cycles(view, rows, cols, unit.dataflow)


def layer_rate(cost: LayerCost, unit: ComputeUnit) -> float:
    """The ops per second ``unit`` attains on ``cost``'s layer: its peak throughput without an array (exactly
    the profile's figure, so such profiles time as before), else the layer's ops over its cycles at the clock."""
    if unit.array is None or cost.ops == 0:
        return unit.throughput
    assert unit.clock is not None
    return cost.ops * unit.clock / layer_cycles(cost, unit)


def layer_seconds(cost: LayerCost, unit: ComputeUnit) -> float:
    """How long ``unit`` computes ``cost``'s layer, dispatch aside."""
    return cost.ops / layer_rate(cost, unit) if cost.ops else 0.0


def utilization(macs: int, cycles: int, unit: ComputeUnit) -> float:
    """MACs over the array's capacity in those cycles, ``MACs / (R x C x cycles)`` (NaN without cycles)."""
    return macs / (unit.macs_per_cycle * cycles) if cycles and unit.macs_per_cycle else math.nan
