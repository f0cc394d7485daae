"""The ``strict`` policy: the paper's steps and serial timing, with real capacity.

Each of the paper's steps (a layer, or a batch norm with its ReLU) runs on its own: whatever it
holds at once (its input, output and weights, or bands and weight chunks of them) fits the
internal memory together. An output that only the next step reads stays internal when it fits
beside that step's work; otherwise it is stored band by band and loaded back. Nothing overlaps:
every transfer and every computation waits for the one before, as in the paper.
"""

from __future__ import annotations

from hwsim.cost.inference import LayerCost
from hwsim.model.graph import Graph
from hwsim.schedule.base import Step
from hwsim.schedule.paper import paper_steps
from hwsim.schedule.program import Program, finish
from hwsim.schedule.tiling import Segment, run
from hwsim.spec.hardware import HardwareSpec


def schedule_strict(graph: Graph, costs: tuple[LayerCost, ...], hardware: HardwareSpec) -> list[Step]:
    segments = [Segment((group,), ((),)) for group in paper_steps(graph, costs)]
    program = Program(costs)
    run(program, segments, hardware.memory.internal.capacity, prefetch=False)
    return finish(program, hardware, overlap=False)
