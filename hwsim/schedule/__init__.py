"""Schedulers: policies that turn a graph, its costs and a hardware profile into a :class:`Schedule`."""

from __future__ import annotations

from collections.abc import Sequence

from hwsim.cost.inference import LayerCost
from hwsim.model.graph import Graph
from hwsim.schedule.base import Policy, Step
from hwsim.schedule.batching import sub_batched
from hwsim.schedule.paper import schedule_paper
from hwsim.spec.hardware import HardwareSpec


# strict and optimized import the planner when they first run: `hwsim estimate` with paper starts without it
def _strict(graph: Graph, costs: tuple[LayerCost, ...], hardware: HardwareSpec) -> list[Step]:
    from hwsim.schedule.strict import schedule_strict

    return schedule_strict(graph, costs, hardware)


def _optimized(graph: Graph, costs: tuple[LayerCost, ...], hardware: HardwareSpec) -> list[Step]:
    from hwsim.schedule.optimized import schedule_optimized

    return schedule_optimized(graph, costs, hardware)


def _folded_costs(costs: tuple[LayerCost, ...], hardware: HardwareSpec, steps: Sequence[Step]) -> tuple[LayerCost, ...]:
    from hwsim.schedule.optimized import folded_costs

    return folded_costs(costs, hardware, steps)


POLICIES: dict[str, Policy] = {
    "paper": Policy("paper", schedule_paper),
    "strict": Policy("strict", sub_batched(_strict, "largest")),
    "optimized": Policy("optimized", sub_batched(_optimized, "fastest"), _folded_costs),
}
"""``paper`` runs a batch whole (it reproduces the appendix and ignores capacity); ``strict`` in the
largest sub-batches that fit, ``optimized`` in the fastest (:mod:`hwsim.schedule.batching`); the
costs ``optimized`` schedules have their batch norms folded."""


def scheduled_costs(
    policy: str, costs: tuple[LayerCost, ...], hardware: HardwareSpec, steps: Sequence[Step]
) -> tuple[LayerCost, ...]:
    """The layer costs a policy's ``steps`` refer to (what the validator and the energy walk check them
    against): ``optimized`` folds the batch norms its steps do not compute into their convs."""
    return POLICIES[policy].scheduled_costs(costs, hardware, steps)
