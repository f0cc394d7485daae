"""The paper's scheduler, exactly as DESIGN.md reads it back from the appendix.

- a feature map is internal when it alone fits the internal memory (each map judged on its own);
  the network's input image counts as internal; weights are always loaded from external memory;
- transfer time = bytes of the step's external tensors / bandwidth; compute time = ops / the
  throughput of the unit that runs each op; step time = transfer + compute (no overlap);
- a ReLU that directly follows a batch norm is one step with it (the appendix's BN_RELU rows).

It ignores co-residency (erratum 6): every tensor a step uses passes through internal memory, so
``peak_internal_bytes`` and the validator show where that overflows.
"""

from __future__ import annotations

from hwsim.cost.inference import LayerCost
from hwsim.model.graph import INPUT, Graph
from hwsim.ops import Op
from hwsim.schedule.base import Action, Location, Step, weights_of
from hwsim.schedule.program import Program, StepPlan, finish
from hwsim.spec.hardware import HardwareSpec


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


def _location(fits: bool) -> Location:
    return Location.INTERNAL if fits else Location.EXTERNAL


def schedule_paper(graph: Graph, costs: tuple[LayerCost, ...], hardware: HardwareSpec) -> list[Step]:
    capacity = hardware.memory.internal.capacity
    groups = paper_steps(graph, costs)
    group_of = {c.name: i for i, group in enumerate(groups) for c in group}

    def last_read(tensor: str) -> int:
        """The last group that reads ``tensor`` (-1: none)."""
        return max((group_of[c.name] for c in graph.consumers(tensor)), default=-1)

    program = Program(costs)
    internal: set[str] = set()  # maps the paper keeps internal, until their last reader
    for index, group in enumerate(groups):
        first, last = group[0], group[-1]
        in_locs = [
            Location.INTERNAL if name == INPUT else _location(size <= capacity)
            for name, size in zip(first.layer.inputs, first.input_bytes)
        ]
        out_loc = _location(last.output_bytes <= capacity)
        step = program.begin(
            StepPlan(
                group,
                "+".join(dict.fromkeys(loc.value for loc in in_locs)),
                out_loc.value,
            )
        )
        loaded = []
        for name, loc in zip(first.layer.inputs, in_locs):
            if name == INPUT and name not in internal:
                program.occupy(step, Action.RESIDENT, program.full(INPUT))
                internal.add(INPUT)
            elif loc is Location.EXTERNAL:
                program.occupy(step, Action.LOAD, program.full(name))
                loaded.append(name)
        loaded += [weights_of(c.name) for c in group if c.weight_bytes]
        for c in group:
            if c.weight_bytes:
                program.occupy(step, Action.LOAD, program.full(weights_of(c.name)))
        for previous, c in zip((None, *group), group):
            program.occupy(step, Action.ALLOC, program.full(c.name))
            whole = program.full(c.name)
            program.compute(step, c, whole.rows, whole.channels)
            if previous is not None:  # an intermediate of the group (batchnorm before its ReLU)
                program.free(step, program.full(previous.name))
        if out_loc is Location.EXTERNAL:
            program.store(step, program.full(last.name))
            loaded.append(last.name)
        else:
            internal.add(last.name)
        for name in loaded:
            program.free(step, program.full(name))
        for name in sorted(n for n in internal if last_read(n) <= index):  # read for the last time, or never
            program.free(step, program.full(name))
            internal.discard(name)
    return finish(program, hardware, overlap=False)
