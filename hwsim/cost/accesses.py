"""What a layer on a systolic array reads and writes below the schedule's events: SRAM, PE registers, links.

The schedule charges a compute for reading its operand regions from internal memory once. An array reads
them as its dataflow streams them, and keeps the rest in its PEs (docs/energy.md). Per group of the
layer's matrix view (:mod:`hwsim.cost.cycles`: an ``P x W`` ifmap operand, a ``W x F`` filter operand),
on ``R x C`` PEs, every MAC consumes one value of each operand and one partial sum, each delivered one
of three ways: from the PE's own register (the operand the dataflow keeps stationary), from the
neighbouring PE (an operand or partial sum streaming through), or from the SRAM at the array's edge.

SRAM traffic, as SCALE-Sim v3's compute model counts it (``compute/systolic_compute_{os,ws,is}.py``,
``get_ifmap_requests`` and friends; ``benchmarks/scalesim/access_counts.py`` checks every committed layer):

========  ==========================  ==========================  ===========================
dataflow  ifmap values read           filter values read          outputs written
========  ==========================  ==========================  ===========================
os        ceil(F / C) x P x W         ceil(P / R) x W x F         P x F
ws        ceil(F / C) x P x W         W x F                       ceil(W / R) x P x F
is        P x W                       ceil(P / C) x W x F         ceil(W / R) x P x F
========  ==========================  ==========================  ===========================

The ifmap operand is the im2col matrix: an input value under k windows is read k times. Under ws and
is the window is cut into ``ceil(W / R)`` row folds, each writing a partial sum of every output; hwsim
also reads the earlier folds' partial sums back to add to them (``(ceil(W / R) - 1) x P x F`` reads),
which SCALE-Sim does not count. Partial sums are counted at the run's precision.

Below the SRAM, per MAC: the stationary operand is a register read (os keeps the partial sum, read
and written per MAC); each streaming operand and partial sum arrives from the neighbouring PE unless
it came from the SRAM, so its hops are the MACs less its SRAM reads (for a partial sum, less the
outputs written). Loading a stationary operand is a register write per value read for it.
Row stationary (``rs``) counts its own (:mod:`hwsim.cost.rowstationary`). Pure functions of a view, an array and
a dataflow.
"""

from __future__ import annotations

import math

from hwsim.cost.cycles import MatrixView, matrix_view
from hwsim.cost.inference import LayerCost
from hwsim.cost.movement import NO_ACCESSES, ArrayAccesses
from hwsim.cost.rowstationary import layer_mapping
from hwsim.spec.hardware import ComputeUnit, Dataflow


def view_accesses(view: MatrixView, rows: int, cols: int, dataflow: Dataflow) -> ArrayAccesses:
    """The accesses of all ``view.groups`` groups, one after another (the table in the module's docstring)."""
    p, w, f = view.pixels, view.window, view.filters
    macs = p * w * f
    if dataflow is Dataflow.OS:
        ifmap, filters, outputs, psums = math.ceil(f / cols) * p * w, math.ceil(p / rows) * w * f, p * f, 0
        register = 2 * macs  # the partial sum, read and written by every MAC
        inter_pe = (macs - ifmap) + (macs - filters)
    elif dataflow is Dataflow.WS:
        folds = math.ceil(w / rows)
        ifmap, filters, outputs, psums = math.ceil(f / cols) * p * w, w * f, folds * p * f, (folds - 1) * p * f
        register = macs + filters  # a weight read by every MAC; each weight written once as it is loaded
        inter_pe = (macs - ifmap) + (macs - outputs)
    elif dataflow is Dataflow.IS:
        folds = math.ceil(w / rows)
        ifmap, filters, outputs, psums = p * w, math.ceil(p / cols) * w * f, folds * p * f, (folds - 1) * p * f
        register = macs + ifmap
        inter_pe = (macs - filters) + (macs - outputs)
    else:
        raise ValueError(f"unknown dataflow {dataflow!r}")
    g = view.groups
    return ArrayAccesses(g * macs, g * ifmap, g * filters, g * psums, g * outputs, g * register, g * inter_pe)


def layer_accesses(cost: LayerCost, unit: ComputeUnit) -> ArrayAccesses:
    """What ``cost``'s layer (its whole batch at once) moves on ``unit``'s array; nothing for an op without a
    matrix view (it has no operands an array streams)."""
    assert unit.array is not None and unit.dataflow is not None, "accesses need an array and a dataflow"
    if unit.dataflow is Dataflow.RS:
        assert unit.row_stationary is not None
        mapping = layer_mapping(cost.layer, cost.batch, unit.array, unit.row_stationary, cost.precision.bytes)
        return NO_ACCESSES if mapping is None else mapping.movement
    view = matrix_view(cost.layer, cost.batch)
    if view is None:
        return NO_ACCESSES
    return view_accesses(view, *unit.array, unit.dataflow)
