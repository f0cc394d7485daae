"""An independent check of a schedule's program: capacity, placement and byte accounting.

It replays every step's events, repeated ones unrolled (:class:`hwsim.schedule.base.Repeat`), in
program order against a model of the two memories, one boolean cell per (image, row, channel) of
every map and per channel of every layer's weights (shared by the images), and recomputes every size
from the layer shapes. Sub-batches run one after another (:mod:`hwsim.schedule.batching`) touch their
own images' cells:

- capacity: after every event, the resident bytes are within the internal memory;
- placement: a load reads data that is in external memory (the image, weights, or rows stored
  before); a compute reads resident, already computed rows covering its receptive field, and
  writes rows allocated for it; a store writes resident, computed rows; nothing is allocated twice;
- accounting: every event's bytes are its region's size; each step's transfers are exactly its
  loads and stores, at their size over the link (a map the link codes at its coded size, recomputed
  from the layer costs' ratios, :mod:`hwsim.cost.coding`), and its transfer time is those bytes over
  the attained bandwidth, plus a setup each; every layer's output is computed whole, once, with its
  ops counted once. A layer that accumulates its input's rows (global average pooling) may compute
  its output in parts, each adding the input rows it names: every input row is added once, and the
  output counts as computed when all have been. A layer run in passes over its input channels
  (:class:`hwsim.schedule.order.InputPasses`) computes its output in parts too, each adding the input
  channels it names (read from its receptive field, with their weights laid out by input channel,
  :mod:`hwsim.schedule.slices`): every output cell's passes add its input channels in order, each once,
  and it counts as computed when the last is added.

Weights kept on chip across images (steady state) are resident before the first event and count
against the capacity throughout; nothing may load or free them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np

from hwsim.cost.coding import link_bytes
from hwsim.cost.inference import LayerCost
from hwsim.model.graph import INPUT
from hwsim.model.regions import accumulates, input_channels, input_regions, input_rows
from hwsim.schedule.base import Action, Event, Region, Schedule, Step, TensorId, map_of, weights_of
from hwsim.schedule.program import transfer_seconds
from hwsim.schedule.slices import by_input, column, passable, rows_of
from hwsim.spec.hardware import HardwareSpec


class Rule(str, Enum):
    CAPACITY = "capacity"
    PLACEMENT = "placement"
    ACCOUNTING = "accounting"


@dataclass(frozen=True)
class Violation:
    rule: Rule
    step: str
    message: str

    def __str__(self) -> str:
        return f"{self.step}: {self.rule.value}: {self.message}"


class _Tensor:
    """Cells of one tensor, one per (image, row, channel): resident internally, present externally, computed.

    Weights serve every image of the batch: they have one image.
    """

    def __init__(self, images: int, rows: int, channels: int, cell_bytes: int, external: bool) -> None:
        self.images = images
        self.cell_bytes = cell_bytes
        self.internal = np.zeros((images, rows, channels), dtype=bool)
        self.external = np.full((images, rows, channels), external)
        self.valid = np.full((images, rows, channels), external)
        self.computed = np.zeros((images, rows, channels), dtype=np.int32)

    def where(self, e: Event) -> tuple[slice, slice, slice]:
        images = slice(*e.images) if e.images is not None and self.images > 1 else slice(0, self.images)
        return images, slice(*e.region.rows), slice(*e.region.channels)

    def bytes(self, e: Event) -> int:
        images = e.images[1] - e.images[0] if e.images is not None and self.images > 1 else self.images
        return images * _cells(e.region) * self.cell_bytes


def _cells(region: Region) -> int:
    return max(region.rows[1] - region.rows[0], 0) * max(region.channels[1] - region.channels[0], 0)


def validate(schedule: Schedule, costs: tuple[LayerCost, ...], hardware: HardwareSpec) -> list[Violation]:
    """Every way ``schedule`` breaks the rules of the module docstring (empty: it is sound)."""
    capacity = hardware.memory.internal.capacity
    bandwidth, setup = hardware.memory.external.effective_bandwidth, hardware.memory.external.setup
    by_name = {c.name: c for c in costs}
    batch = costs[0].batch
    link = {map_of(c.name): c.output_link for c in costs if c.output_link < 1.0}
    link.update({map_of(INPUT): c.input_link for c in costs if c.input_link < 1.0 and INPUT in c.layer.inputs})
    tensors: dict[TensorId, _Tensor] = {}
    added: dict[str, np.ndarray] = {}
    """Per layer that accumulates its input: how often each (image, input row, channel) was added; per layer
    run in passes over its input channels: the input channels each (image, row, channel) has added so far."""
    for c in costs:
        h, _, ch = c.layer.output_shape
        tensors[map_of(c.name)] = _Tensor(batch, h, ch, c.output_bytes // (batch * h * ch), external=False)
        if c.weight_bytes:
            tensors[weights_of(c.name)] = _Tensor(1, 1, ch, c.weight_bytes // ch, external=True)
        if accumulates(c.layer):
            added[c.name] = np.zeros((batch, c.layer.input_shape[0], ch), dtype=np.int32)
        for name, shape, size in zip(c.layer.inputs, c.layer.input_shapes, c.input_bytes):
            if name == INPUT and map_of(INPUT) not in tensors:
                tensors[map_of(INPUT)] = _Tensor(
                    batch, shape[0], shape[2], size // (batch * shape[0] * shape[2]), external=True
                )
    violations: list[Violation] = []
    resident = 0
    for c in costs:
        if c.weights_resident and c.weight_bytes:
            kept = tensors[weights_of(c.name)]
            kept.internal[:] = True
            resident += kept.internal.size * kept.cell_bytes
    ops: dict[str, float] = {c.name: 0.0 for c in costs}
    for e, step_name in schedule.events():

        def fail(rule: Rule, message: str) -> None:
            violations.append(Violation(rule, step_name, message))  # noqa: B023 (called before the loop moves on)

        t = tensors.get(e.region.tensor)
        if t is None and e.region.tensor.by_input:
            t = _by_input(e.region.tensor, by_name, tensors)
        if t is None:
            fail(Rule.PLACEMENT, f"{e.action.value} of unknown tensor {e.region.tensor}")
            continue
        where = t.where(e)
        size = t.bytes(e)
        if e.action is not Action.COMPUTE and e.bytes != size:
            fail(Rule.ACCOUNTING, f"{e.action.value} {e.region} accounts {e.bytes} B, its size is {size} B")
        if e.action in (Action.LOAD, Action.ALLOC, Action.RESIDENT):
            if t.internal[where].any():
                fail(Rule.PLACEMENT, f"{e.action.value} {e.region}: part of it is already resident")
            if e.action is Action.LOAD and not t.external[where].all():
                fail(Rule.PLACEMENT, f"load {e.region}: not in external memory")
            if e.action is Action.RESIDENT and e.region.tensor != map_of(INPUT):
                fail(Rule.PLACEMENT, f"only the input image may start resident, not {e.region.tensor!r}")
            resident += int((~t.internal[where]).sum()) * t.cell_bytes
            t.internal[where] = True
            if e.action is Action.ALLOC:
                t.valid[where] = False
            if resident > capacity:
                fail(Rule.CAPACITY, f"{e.action.value} {e.region}: {resident:,} B resident > {capacity:,.0f} B")
        elif e.action is Action.STORE:
            if not (t.internal[where] & t.valid[where]).all():
                fail(Rule.PLACEMENT, f"store {e.region}: not resident and computed")
            t.external[where] = True
        elif e.action is Action.FREE:
            if not t.internal[where].all():
                fail(Rule.PLACEMENT, f"free {e.region}: not all resident")
            resident -= int(t.internal[where].sum()) * t.cell_bytes
            t.internal[where] = False
        elif e.action is Action.COMPUTE:
            _check_compute(e, by_name, tensors, added, fail)
            ops[e.layer] = ops.get(e.layer, 0.0) + e.ops
    for step in schedule.steps:
        moved = sum(
            link_bytes(e.bytes, link.get(e.region.tensor, 1.0)) * e.instances
            for e in step.events
            if e.action in (Action.LOAD, Action.STORE)
        )
        if moved != step.bytes_moved:
            violations.append(
                Violation(
                    Rule.ACCOUNTING, step.name, f"events move {moved:,} B, the step's transfers {step.bytes_moved:,} B"
                )
            )
        expected = transfer_seconds(step.events, bandwidth, setup, link)
        if not math.isclose(step.transfer_s, expected, rel_tol=1e-9, abs_tol=1e-15):
            violations.append(
                Violation(
                    Rule.ACCOUNTING,
                    step.name,
                    f"transfer time {step.transfer_s} s for {moved:,} B at {bandwidth:,.0f} B/s "
                    f"and {setup:g} s a transfer",
                )
            )
    for c in costs:
        computed = tensors[map_of(c.name)].computed
        if (computed != 1).any():
            violations.append(
                Violation(
                    Rule.ACCOUNTING,
                    c.name,
                    f"{int((computed == 0).sum())} cells never computed, "
                    f"{int((computed > 1).sum())} computed more than once",
                )
            )
        if c.name in added and accumulates(c.layer) and (added[c.name] != 1).any():
            violations.append(
                Violation(Rule.ACCOUNTING, c.name, "input rows not added exactly once to the running sum")
            )
        if not math.isclose(ops[c.name], c.ops, rel_tol=1e-9, abs_tol=1e-6):
            violations.append(
                Violation(Rule.ACCOUNTING, c.name, f"computes count {ops[c.name]:,.0f} ops, the layer {c.ops:,}")
            )
    return violations


def _check_compute(
    e: Event,
    by_name: dict[str, LayerCost],
    tensors: dict[TensorId, _Tensor],
    added: dict[str, np.ndarray],
    fail: Callable[[Rule, str], None],
) -> None:
    cost = by_name.get(e.layer)
    if cost is None or e.region.tensor != map_of(e.layer):
        fail(Rule.PLACEMENT, f"compute of {e.layer!r} writes {e.region.tensor}")
        return
    out = tensors[map_of(e.layer)]
    where = out.where(e)
    if not out.internal[where].all():
        fail(Rule.PLACEMENT, f"compute {e.region}: output rows not allocated")
    layer = cost.layer
    if not accumulates(layer):
        if e.part is not None:
            _check_pass(e, cost, tensors, added, fail)
            return
        if e.layer in added and added[e.layer][where].any():  # whole, where other images' cells ran in passes
            fail(Rule.PLACEMENT, f"compute {e.region} of {e.layer}: cells its passes over input channels compute")
    if e.part is not None:  # part of a running sum: the input rows it names, in the channels its output reads
        if e.layer not in added or e.part.tensor != map_of(layer.inputs[0]):
            fail(Rule.PLACEMENT, f"compute {e.region} adds {e.part}, but {e.layer} does not accumulate it")
            return
        channels = input_channels(layer, e.region.channels)[0]
        assert channels is not None
        needed = [Region(e.part.tensor, e.part.rows, channels)]
    else:
        needed = [
            Region(map_of(name), *rc)
            for name, rc in zip(layer.inputs, input_regions(layer, e.region.rows, e.region.channels))
            if rc is not None and _cells(Region(map_of(name), *rc))
        ]
    if cost.weight_bytes:
        needed.append(Region(weights_of(e.layer), (0, 1), e.region.channels))
    for region in needed:
        t = tensors[region.tensor]
        cells = t.where(e._replace(region=region))
        if not (t.internal[cells] & t.valid[cells]).all():
            fail(Rule.PLACEMENT, f"compute {e.region} reads {region}, which is not all resident and computed")
    if e.layer in added and accumulates(layer):  # a running sum: computed once every input row is added
        sums, own = added[e.layer], slice(*e.region.channels)
        sums[where[0], slice(*e.part.rows) if e.part is not None else slice(None), own] += 1
        if e.part is not None and not (sums[where[0], :, own] == 1).all():
            return
    out.valid[where] = True
    out.computed[where] += 1


def validate_steps(steps: list[Step], costs: tuple[LayerCost, ...], hardware: HardwareSpec) -> list[Violation]:
    """:func:`validate` for a policy's bare steps."""
    return validate(Schedule("", "", hardware.name, "", 1, "", tuple(steps)), costs, hardware)


def _by_input(tensor: TensorId, by_name: dict[str, LayerCost], tensors: dict[TensorId, _Tensor]) -> _Tensor | None:
    """The cells of a layer's weights laid out by input channel, made when first touched (they are many)."""
    cost = by_name.get(tensor.layer)
    if cost is None or not passable(cost):
        return None
    layout = column(cost)
    tensors[tensor] = _Tensor(1, layout.height, cost.layer.output_shape[2], layout.unit, external=True)
    return tensors[tensor]


def _check_pass(
    e: Event,
    cost: LayerCost,
    tensors: dict[TensorId, _Tensor],
    added: dict[str, np.ndarray],
    fail: Callable[[Rule, str], None],
) -> None:
    """A pass over input channels ``e.part.channels``: it reads their receptive field and their weights, and
    adds them next to each output cell's sum (the output counts as computed once all are added)."""
    layer = cost.layer
    assert e.part is not None
    if not passable(cost) or e.part.tensor != map_of(layer.inputs[0]):
        fail(Rule.PLACEMENT, f"compute {e.region} of {e.layer} adds {e.part}, which is not a pass over its input")
        return
    out = tensors[map_of(e.layer)]
    where = out.where(e)
    inputs = e.part.channels
    needed = [
        Region(e.part.tensor, input_rows(layer, e.region.rows)[0], inputs),
        Region(by_input(e.layer), rows_of(cost, inputs), e.region.channels),
    ]
    for region in needed:
        t = tensors.get(region.tensor) or _by_input(region.tensor, {e.layer: cost}, tensors)
        assert t is not None
        cells = t.where(e._replace(region=region))
        if not (t.internal[cells] & t.valid[cells]).all():
            fail(Rule.PLACEMENT, f"compute {e.region} reads {region}, which is not all resident and computed")
    if e.layer not in added:
        added[e.layer] = np.zeros(out.computed.shape, dtype=np.int32)
    sums = added[e.layer]
    if not (sums[where] == inputs[0]).all():
        fail(Rule.ACCOUNTING, f"compute {e.region} adds input channels {inputs} out of turn")
        return
    sums[where] = inputs[1]
    if inputs[1] == layer.input_shape[2]:
        out.valid[where] = True
        out.computed[where] += 1
