"""The paper's scheduler, exactly as DESIGN.md reads it back from the appendix.

- a feature map is internal when it alone fits the internal memory (each map judged on its own);
  the network's input image counts as internal; weights are always loaded from external memory;
- transfer time = bytes of the step's external tensors / bandwidth; compute time = ops / the
  throughput of the unit that runs each op; step time = transfer + compute (no overlap);
- a ReLU that directly follows a batch norm is one step with it (the appendix's BN_RELU rows).

It ignores co-residency (erratum 6): ``peak_internal_bytes`` shows where that overflows.
"""

from __future__ import annotations

from hwsim.costs import LayerCost
from hwsim.graph import INPUT, Graph
from hwsim.ops import Op
from hwsim.schedule.base import Direction, Location, Schedule, Step, Transfer
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
    bandwidth = hardware.memory.external.bandwidth
    steps = []
    for group in paper_steps(graph, costs):
        first, last = group[0], group[-1]
        in_locs = [
            Location.INTERNAL if name == INPUT else _location(size <= capacity)
            for name, size in zip(first.layer.inputs, first.input_bytes)
        ]
        out_loc = _location(last.output_bytes <= capacity)
        weight_bytes = sum(c.weight_bytes for c in group)
        transfers = [
            Transfer(name, Direction.LOAD, size)
            for name, size, loc in zip(first.layer.inputs, first.input_bytes, in_locs)
            if loc is Location.EXTERNAL
        ]
        transfers += [Transfer(f"{c.name}.weights", Direction.LOAD, c.weight_bytes) for c in group if c.weight_bytes]
        if out_loc is Location.EXTERNAL:
            transfers.append(Transfer(last.name, Direction.STORE, last.output_bytes))
        transfer_s = sum(t.bytes for t in transfers) / bandwidth
        compute_s = sum(c.ops / hardware.compute[c.unit].throughput for c in group)
        internal = sum(size for size, loc in zip(first.input_bytes, in_locs) if loc is Location.INTERNAL)
        internal += last.output_bytes if out_loc is Location.INTERNAL else 0
        steps.append(
            Step(
                name="+".join(c.name for c in group) if len(group) == 1 else f"{first.name}+{last.name.rsplit('.', 1)[-1]}",
                layers=tuple(c.name for c in group),
                op="+".join(c.layer.op.value for c in group),
                input_shape=first.layer.input_shape,
                output_shape=last.layer.output_shape,
                unit="+".join(dict.fromkeys(c.unit for c in group)),
                macs=sum(c.macs for c in group),
                ops=sum(c.ops for c in group),
                input_bytes=sum(first.input_bytes),
                output_bytes=last.output_bytes,
                weight_bytes=weight_bytes,
                input_loc="+".join(dict.fromkeys(loc.value for loc in in_locs)),
                output_loc=out_loc.value,
                weight_loc=Location.EXTERNAL.value,
                transfers=tuple(transfers),
                transfer_s=transfer_s,
                compute_s=compute_s,
                total_s=transfer_s + compute_s,
                peak_internal_bytes=internal,
            )
        )
    return steps
