"""The ``strict`` policy: the paper's steps and serial timing, with real capacity.

Each of the paper's steps (a layer, or a batch norm with its ReLU) runs on its own, in bands of its
output rows, and whatever it holds at once (bands of its inputs and output, its weights or chunks of
them, and the maps kept beside it for later steps) fits the internal memory together. Which maps stay
internal between steps, and which are spilled, is the planner's choice (:mod:`hwsim.schedule.planner`):
a map read by several later steps stays while room allows. Nothing overlaps: every transfer and every
computation waits for the one before, as in the paper.
"""

from __future__ import annotations

from hwsim.cost.inference import LayerCost
from hwsim.model.graph import Graph
from hwsim.schedule.base import Step
from hwsim.schedule.paper import paper_steps
from hwsim.schedule.planner import STRICT, plan_program
from hwsim.schedule.program import finish
from hwsim.spec.hardware import HardwareSpec


def schedule_strict(graph: Graph, costs: tuple[LayerCost, ...], hardware: HardwareSpec) -> list[Step]:
    program = plan_program(costs, paper_steps(graph, costs), {}, hardware.memory.internal.capacity, STRICT)
    return finish(program, hardware, overlap=False)
