"""The Python API that the CLI wraps: load, estimate, summarise. Anything the CLI does, a notebook can."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hwsim import bundled
from hwsim.bound import lower_bound
from hwsim.costs import COUNTINGS, EXACT, Counting, LayerCost, graph_costs
from hwsim.errors import InputError
from hwsim.expand import load_network as _load_network
from hwsim.graph import Graph
from hwsim.schedule import POLICIES
from hwsim.schedule.base import Schedule
from hwsim.spec.hardware import HardwareSpec, Precision
from hwsim.spec.hardware import load_hardware as _load_hardware


def load_network(name_or_path: str | Path) -> Graph:
    """A network file, or a bundled network by name (``hairnet``), expanded into its layer graph."""
    return _load_network(bundled.resolve("networks", name_or_path))


def load_hardware(name_or_path: str | Path) -> HardwareSpec:
    """A hardware profile, or a bundled one by name (``paper-accelerator``)."""
    return _load_hardware(bundled.resolve("hardware", name_or_path))


def counting_named(name: str) -> Counting:
    try:
        return COUNTINGS[name]
    except KeyError:
        raise InputError(f"unknown counting {name!r}; choose one of {', '.join(COUNTINGS)}") from None


@dataclass(frozen=True)
class Estimate:
    """A schedule together with what it was computed from."""

    graph: Graph
    hardware: HardwareSpec
    costs: tuple[LayerCost, ...]
    schedule: Schedule

    def summary(self) -> dict[str, float | int]:
        s = self.schedule
        bound = lower_bound(self.costs, self.hardware).total_s
        return {
            "total_time_s": s.total_s,
            "latency_per_image_s": s.total_s / s.batch,
            "lower_bound_s": bound,
            "efficiency": bound / s.total_s if s.total_s else 1.0,
            "transfer_time_s": s.transfer_s,
            "compute_time_s": s.compute_s,
            "params": self.graph.params,
            "macs": sum(c.macs for c in self.costs),
            "ops": sum(c.ops for c in self.costs),
            "bytes_moved": s.bytes_moved,
            "batch": s.batch,
            "images_per_s": s.batch / s.total_s if s.total_s else float("inf"),
        }


def estimate(
    graph: Graph,
    hardware: HardwareSpec,
    policy: str = "paper",
    counting: Counting | str = EXACT,
    batch: int = 1,
    precision: Precision | str | None = None,
) -> Estimate:
    """Cost every layer of ``graph`` and schedule it on ``hardware`` with ``policy``."""
    if policy not in POLICIES:
        raise InputError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    if batch < 1:
        raise InputError(f"batch must be at least 1, got {batch}")
    counting = counting_named(counting) if isinstance(counting, str) else counting
    precision = Precision(precision) if precision is not None else hardware.precision
    costs = graph_costs(graph, hardware, counting, batch, precision)
    steps = POLICIES[policy](graph, costs, hardware)
    schedule = Schedule(policy, graph.name, hardware.name, counting.name, batch, precision.value, tuple(steps))
    return Estimate(graph, hardware, costs, schedule)
