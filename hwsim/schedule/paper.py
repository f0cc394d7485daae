"""The paper's scheduler, exactly as DESIGN.md reads it back from the appendix.

- a feature map is internal when it alone fits the internal memory (each map judged on its own);
  the network's input image counts as internal; weights are always loaded from external memory;
- transfer time = bytes of the step's external tensors / bandwidth; compute time = ops / the
  throughput of the unit that runs each op; step time = transfer + compute (no overlap);
- a ReLU that directly follows a batch norm is one step with it (the appendix's BN_RELU rows).

It ignores co-residency (erratum 6): every tensor a step uses passes through internal memory, so
``peak_internal_bytes`` and the validator show where that overflows.

The placement is :func:`crosses_bus` over what each step may move (:func:`loads`, :func:`store`),
for one capacity or an array of them: :mod:`hwsim.studies.sweep_paper` evaluates this same
placement over many hardware points at once.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, NamedTuple

from hwsim.cost.inference import LayerCost
from hwsim.model.graph import INPUT, Graph
from hwsim.ops import Op
from hwsim.schedule.base import Action, Location, Step, TensorId, map_of, weights_of
from hwsim.schedule.program import Program, StepPlan, finish
from hwsim.spec.hardware import HardwareSpec

if TYPE_CHECKING:
    import numpy as np


def paper_steps(graph: Graph, costs: tuple[LayerCost, ...]) -> list[tuple[LayerCost, ...]]:
    """Group layers as the appendix does: each alone, but batchnorm + the ReLU that reads it together."""
    groups: list[tuple[LayerCost, ...]] = []
    for cost in costs:
        previous = groups[-1][-1] if groups else None
        if (
            previous is not None
            and cost.layer.op is Op.RELU
            and previous.layer.op is Op.BATCHNORM
            and cost.layer.inputs == (previous.name,)
            and len(groups[-1]) == 1
            and len(graph.consumers(previous.name)) == 1
        ):
            groups[-1] = (previous, cost)
        else:
            groups.append((cost,))
    return groups


class Kind(Enum):
    """What a step moves, which decides whether it crosses the bus."""

    IMAGE = "image"
    """The network's input: internal from the start, never moved."""
    MAP = "map"
    """A feature map: moved when it alone does not fit the internal memory."""
    WEIGHTS = "weights"
    """A layer's weights: always loaded."""


class Move(NamedTuple):
    """A tensor a step may move over the bus, and its bytes."""

    tensor: TensorId
    bytes: int
    kind: Kind


IMAGE, MAP, WEIGHTS = Kind.IMAGE, Kind.MAP, Kind.WEIGHTS
"""The members looked up once: ``Kind.MAP`` is an enum class attribute lookup, and every step asks several."""


def loads(group: tuple[LayerCost, ...]) -> list[Move]:
    """What a step may load, in program order: its input maps (the image among them), then its weights."""
    new = tuple.__new__  # without the named tuple's constructor call, as in :mod:`hwsim.schedule.program`
    layer, sizes = group[0].layer, group[0].input_bytes
    moves = [new(Move, (map_of(t), size, IMAGE if t == INPUT else MAP)) for t, size in zip(layer.inputs, sizes)]
    moves += [new(Move, (weights_of(c.name), c.weight_bytes, WEIGHTS)) for c in group if c.weight_bytes]
    return moves


def store(group: tuple[LayerCost, ...]) -> Move:
    """What a step may store: its output."""
    return Move(map_of(group[-1].name), group[-1].output_bytes, MAP)


def crosses_bus(move: Move, capacity: float | np.ndarray) -> bool | np.ndarray:
    """The paper's placement of ``move`` at one internal capacity or at an array of them: weights
    always cross the bus, a map when it alone does not fit (each judged on its own), the image never."""
    kind = move.kind
    if kind is MAP:
        return move.bytes > capacity
    return kind is WEIGHTS


def _location(crosses: bool) -> Location:
    return Location.EXTERNAL if crosses else Location.INTERNAL


def schedule_paper(graph: Graph, costs: tuple[LayerCost, ...], hardware: HardwareSpec) -> list[Step]:
    capacity = hardware.memory.internal.capacity
    groups = paper_steps(graph, costs)
    group_of = {c.name: i for i, group in enumerate(groups) for c in group}
    # per map, the last group that reads it (-1: none)
    last_read = {t: max((group_of[c.name] for c in graph.consumers(t)), default=-1) for t in (INPUT, *group_of)}
    program = Program(costs)
    internal: set[str] = set()  # maps the paper keeps internal, until their last reader
    for index, group in enumerate(groups):
        first, last = group[0], group[-1]
        moves, output = loads(group), store(group)
        crossing = [bool(crosses_bus(move, capacity)) for move in moves]
        in_locs = [_location(crosses) for crosses in crossing[: len(first.layer.inputs)]]
        out_loc = _location(bool(crosses_bus(output, capacity)))
        step = program.begin(StepPlan(group, tuple(in_locs), out_loc))
        loaded = []
        for move, crosses in zip(moves, crossing):
            if move.kind is IMAGE and INPUT not in internal:
                program.occupy(step, Action.RESIDENT, program.full(map_of(INPUT)))
                internal.add(INPUT)
            elif crosses:
                program.occupy(step, Action.LOAD, program.full(move.tensor))
                loaded.append(move.tensor)
        for previous, c in zip((None, *group), group):
            whole = program.full(map_of(c.name))
            program.occupy(step, Action.ALLOC, whole)
            program.compute(step, c, whole.rows, whole.channels)
            if previous is not None:  # an intermediate of the group (batchnorm before its ReLU)
                program.free(step, program.full(map_of(previous.name)))
        if out_loc is Location.EXTERNAL:
            program.store(step, program.full(map_of(last.name)))
            loaded.append(map_of(last.name))
        else:
            internal.add(last.name)
        for tensor in loaded:
            program.free(step, program.full(tensor))
        for name in sorted(n for n in internal if last_read[n] <= index):  # read for the last time, or never
            program.free(step, program.full(map_of(name)))
            internal.discard(name)
    return finish(program, hardware, overlap=False)
