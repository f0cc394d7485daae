"""One run: cost every layer, schedule it with a policy, and keep what the schedule was made from.

The stage above the scheduler: studies (compare, sweep, reproduce) and reports build on
:class:`Estimate`; :mod:`hwsim.api` re-exports it for users.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

from hwsim.cost.bound import lower_bound
from hwsim.cost.coding import MapZeros, code_maps
from hwsim.cost.cut import cut_bound
from hwsim.cost.cycles import layer_cycles
from hwsim.cost.inference import COUNTINGS, EXACT, Counting, LayerCost, graph_costs, layer_cost
from hwsim.cost.steady import resident_bytes
from hwsim.cost.steady import steady_state as steady_state_of
from hwsim.errors import InputError
from hwsim.model.graph import INPUT, Graph
from hwsim.ops import elements
from hwsim.schedule import POLICIES, scheduled_costs
from hwsim.schedule.base import COMPUTE, CapacityError, Direction, Location, Schedule, Step
from hwsim.schedule.energy import EnergyParts, counted_events, counted_steps, schedule_energy
from hwsim.spec.energy import area_mm2, energy_table
from hwsim.spec.hardware import HardwareSpec, Precision
from hwsim.units import format_quantity

if TYPE_CHECKING:
    from hwsim.cost.movement import ArrayAccesses

MAX_TENSOR_BYTES = 10**12
"""One map of one image, or one layer's weights, beyond 1 TB: more than any accelerator's memory, so a mistake
(a padding or a size off by orders of magnitude); refused before any policy runs (docs/limits.md)."""


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
    steady_state: bool = False
    """Repeated inference: the weights of costs marked ``weights_resident`` stayed on chip (hwsim.cost.steady)."""
    map_zeros: MapZeros = None
    """The maps' zero fractions the run was given (hwsim.cost.coding): what a link that codes maps sizes them by."""

    @property
    def link_note(self) -> str:
        """What the report says about maps on the external link: empty unless the link codes maps or zero fractions
        were given, so that a run without either reports as before."""
        coding = self.hardware.memory.external.map_coding
        if coding is None:
            return "" if self.map_zeros is None else "zero fractions given, but the link does not code maps: maps raw"
        if self.map_zeros is None:
            return f"the link codes maps ({coding}), but no zero fractions were given: maps raw"
        coded = sum(c.output_link < 1.0 for c in self.costs) + any(c.input_link < 1.0 for c in self.costs)
        return f"maps run-length coded on the link ({coding}) at the zero fractions given: {coded} maps; weights raw"

    @cached_property
    def scheduled_costs(self) -> tuple[LayerCost, ...]:
        """The layer costs the schedule's steps refer to (``optimized`` folds batch norms into their convs)."""
        return scheduled_costs(self.schedule.policy, self.costs, self.hardware, self.schedule.steps)

    @property
    def has_array(self) -> bool:
        """Whether a unit of the profile is a systolic array, so the run has cycles and utilisation to report."""
        return any(unit.array is not None for unit in self.hardware.compute.values())

    def _sub_batch_costs(self) -> dict[str, list[LayerCost]]:
        """Per layer on an array, as the schedule ran it: its cost for each sub-batch, one after another."""
        s, hw = self.schedule, self.hardware
        sizes = [s.sub_batch] * (s.batch // s.sub_batch) + ([s.batch % s.sub_batch] if s.batch % s.sub_batch else [])
        return {
            c.name: [layer_cost(c.layer, hw, c.counting, size, c.precision) for size in sizes]
            for c in self.scheduled_costs
            if hw.compute[c.unit].array is not None
        }

    @cached_property
    def layer_cycles(self) -> dict[str, int]:
        """Per layer on an array: the cycles it keeps the array busy over the whole batch, sub-batch by sub-batch
        (each pays its own fills and drains), as the schedule ran it."""
        units = self.hardware.compute
        return {
            name: sum(layer_cycles(c, units[c.unit]) for c in parts) for name, parts in self._sub_batch_costs().items()
        }

    @cached_property
    def step_cycles(self) -> tuple[int, ...]:
        """Per step, in order: the cycles its layers keep an array busy (0 for a step on no array)."""
        return tuple(sum(self.layer_cycles.get(name, 0) for name in step.layers) for step in self.schedule.steps)

    @cached_property
    def step_utilization(self) -> tuple[float, ...]:
        """Per step: MACs over what its arrays could do in its cycles, MACs / (rows x cols x cycles); NaN off arrays."""
        macs = {c.name: c.macs for c in self.scheduled_costs}
        pes = {c.name: self.hardware.compute[c.unit].macs_per_cycle for c in self.costs}
        result = []
        for step in self.schedule.steps:
            on_array = [name for name in step.layers if name in self.layer_cycles]
            capacity = sum(pes[name] * self.layer_cycles[name] for name in on_array)
            result.append(sum(macs[name] for name in on_array) / capacity if capacity else math.nan)
        return tuple(result)

    @cached_property
    def step_energy(self) -> tuple[EnergyParts, ...]:
        """Every step's energy (:mod:`hwsim.schedule.energy`), in the order of ``schedule.steps``; with an
        ``energy.array`` section, each compute also pays its share of its layer's :meth:`below_events_energy`."""
        s = self.schedule
        costs = self.scheduled_costs
        table = energy_table(self.hardware, s.precision)
        steps = schedule_energy(s, costs, table)
        if not table.register_j:
            return steps
        below = self.below_events_energy
        ops = {c.name: c.ops for c in costs}
        return tuple(
            parts + _compute_share(step, below, ops).times(count)
            for parts, (step, count) in zip(steps, counted_steps(s))
        )

    @cached_property
    def layer_accesses(self) -> dict[str, ArrayAccesses]:
        """Per layer on an array: what it moves in the SRAM, PE registers and links (hwsim.cost.accesses), sub-batch
        by sub-batch."""
        from hwsim.cost.accesses import NO_ACCESSES, layer_accesses  # arrays only: a run without one needs none of it

        units = self.hardware.compute
        return {
            name: sum((layer_accesses(c, units[c.unit]) for c in parts), NO_ACCESSES)
            for name, parts in self._sub_batch_costs().items()
        }

    @cached_property
    def below_events_energy(self) -> dict[str, EnergyParts]:
        """Per layer on an array, what the schedule's events leave out (docs/energy.md): its PE registers and links
        (``compute``), and its internal-memory traffic as the dataflow streams it less the operands and output the
        events charge once (``internal``; negative when the array reads less than whole operands)."""
        table = energy_table(self.hardware, self.schedule.precision)
        parts = self._sub_batch_costs()
        result = {}
        for name, accesses in self.layer_accesses.items():
            unit, costs = parts[name][0].unit, parts[name]
            value = costs[0].precision.bytes
            read_once = sum(sum(c.input_bytes) + c.weight_bytes for c in costs)
            written_once = sum(c.output_bytes for c in costs)
            result[name] = EnergyParts(
                compute_j=accesses.register * table.register_j[unit] + accesses.inter_pe * table.inter_pe_j[unit],
                internal_j=(accesses.sram_reads * value - read_once) * table.internal_read_j_per_byte
                + (accesses.output_writes * value - written_once) * table.internal_write_j_per_byte,
            )
        return result

    @property
    def energy(self) -> EnergyParts:
        return sum(self.step_energy, EnergyParts())

    def summary(self, bounds: bool = True) -> dict[str, float | int]:
        """The run's figures by name. ``bounds=False`` leaves out the lower bounds and the efficiencies against
        them, which cost the graph again: a sweep bounds all its points at once (:func:`hwsim.studies.sweep.run`)."""
        s = self.schedule
        energy = self.energy
        per_image = energy.total_j / s.batch
        summary: dict[str, float | int] = {
            "total_time_s": s.total_s,
            "latency_per_image_s": s.total_s / s.batch,
        }
        if bounds:
            bound = lower_bound(self.costs, self.hardware).total_s
            cut = cut_bound(self.costs, self.hardware).total_s
            summary |= {
                "lower_bound_s": bound,
                "efficiency": bound / s.total_s if s.total_s else 1.0,
                "lower_bound_cut_s": cut,
                "efficiency_cut": cut / s.total_s if s.total_s else 1.0,
            }
        return summary | {
            "transfer_time_s": s.transfer_s,
            "compute_time_s": s.compute_s,
            "params": self.graph.params,
            "macs": sum(c.macs for c in self.costs),
            "ops": sum(c.ops for c in self.costs),
            "bytes_moved": s.bytes_moved,
            "batch": s.batch,
            "sub_batch": s.sub_batch,
            "images_per_s": s.batch / s.total_s if s.total_s else float("inf"),
            "energy_j": energy.total_j,
            "energy_compute_j": energy.compute_j,
            "energy_internal_j": energy.internal_j,
            "energy_external_j": energy.external_j,
            "energy_static_j": energy.static_j,
            "energy_per_image_j": per_image,
            "edp_js": per_image * s.total_s / s.batch,
            "area_mm2": area_mm2(self.hardware, s.precision),
            **(self._array_summary() if self.has_array else {}),
            **(self._steady_summary() if self.steady_state else {}),
        }

    def _array_summary(self) -> dict[str, float | int]:
        """Cycles and utilisation of the profile's (first) array: ``compute_cycles`` its layers keep it busy,
        ``cycles`` the run's wall time at its clock, ``utilization`` the MACs over what it could do in its compute
        cycles, ``utilization_overall`` over what it could do in the wall time."""
        unit = next(u for u in self.hardware.compute.values() if u.array is not None)
        assert unit.clock is not None
        busy = sum(self.layer_cycles.values())
        macs = sum(c.macs for c in self.scheduled_costs if c.name in self.layer_cycles)
        cycles = round(self.schedule.total_s * unit.clock)
        return {
            "compute_cycles": busy,
            "cycles": cycles,
            "utilization": macs / (unit.macs_per_cycle * busy) if busy else math.nan,
            "utilization_overall": macs / (unit.macs_per_cycle * cycles) if cycles else math.nan,
        }

    def _steady_summary(self) -> dict[str, float | int]:
        kept = [c for c in self.costs if c.weights_resident]
        return {
            "steady_state": 1,
            "resident_weight_bytes": resident_bytes(self.costs),
            "resident_weight_layers": len(kept),
        }


def _compute_share(step: Step, below: dict[str, EnergyParts], ops: dict[str, int]) -> EnergyParts:
    """A step's share of its layers' :attr:`Estimate.below_events_energy`: each compute pays its ops' share."""
    total = EnergyParts()
    for event, count in counted_events(step):
        if event.action is COMPUTE and event.layer in below and ops[event.layer]:
            share = event.ops * count / ops[event.layer]
            parts = below[event.layer]
            total = total + EnergyParts(compute_j=parts.compute_j * share, internal_j=parts.internal_j * share)
    return total


def cost_run(
    graph: Graph,
    hardware: HardwareSpec,
    policy: str,
    counting: Counting | str,
    batch: int,
    precision: Precision | str | None,
) -> tuple[tuple[LayerCost, ...], Counting, Precision]:
    """Check a run's options and cost every layer: what :func:`estimate` and a sweep share."""
    if policy not in POLICIES:
        raise InputError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    if batch < 1:
        raise InputError(f"batch must be at least 1, got {batch}")
    counting = counting_named(counting) if isinstance(counting, str) else counting
    precision = Precision(precision) if precision is not None else hardware.precision
    check_tensor_sizes(graph, precision)
    return graph_costs(graph, hardware, counting, batch, precision), counting, precision


def check_tensor_sizes(graph: Graph, precision: Precision) -> None:
    """Refuse a network with a map (per image) or a layer's weights over :data:`MAX_TENSOR_BYTES`."""
    tensors = [(graph.layers[0], "input image", elements(graph.input_shape))] if graph.layers else []
    for layer in graph.layers:
        tensors += [(layer, "output map", elements(layer.output_shape)), (layer, "weights", layer.params)]
    for layer, what, count in tensors:
        size = count * precision.bytes
        if size > MAX_TENSOR_BYTES:
            raise InputError(
                f"{layer.name}: its {what} would hold {format_quantity(size, 'B')} at {precision.value}, "
                f"more than the {format_quantity(MAX_TENSOR_BYTES, 'B')} hwsim takes for one tensor",
                layer.where,
            )


def estimate(
    graph: Graph,
    hardware: HardwareSpec,
    policy: str = "paper",
    counting: Counting | str = EXACT,
    batch: int = 1,
    precision: Precision | str | None = None,
    steady_state: bool | None = None,
    map_zeros: MapZeros = None,
) -> Estimate:
    """Cost every layer of ``graph`` and schedule it on ``hardware`` with ``policy``.

    ``map_zeros``: the fraction of zeros in the maps (one for all, or per layer's output map and ``input``), a
    property of the data: a profile whose link codes maps (``memory.external.map_coding``) moves each map at its
    coded size (:mod:`hwsim.cost.coding`); a map without one moves raw.

    ``steady_state`` (default: the profile's ``steady_state``) models repeated inference: the weights that fit
    stay on chip from image to image and are never loaded (:mod:`hwsim.cost.steady`); the rest of the schedule
    has the internal memory they leave.
    """
    costs, counting, precision = cost_run(graph, hardware, policy, counting, batch, precision)
    costs = coded_costs(costs, hardware, precision, map_zeros)
    steady = hardware.steady_state if steady_state is None else steady_state
    if steady:
        costs, steps = _steady_schedule(graph, costs, hardware, policy)
        steps = [_kept_weights_noted(step, costs) for step in steps]
    else:
        steps = POLICIES[policy](graph, costs, hardware)
    schedule = Schedule(policy, graph.name, hardware.name, counting.name, batch, precision.value, tuple(steps))
    _check_external_capacity(costs, schedule, hardware)
    return Estimate(graph, hardware, costs, schedule, steady, map_zeros)


def _steady_schedule(
    graph: Graph, costs: tuple[LayerCost, ...], hardware: HardwareSpec, policy: str
) -> tuple[tuple[LayerCost, ...], list[Step]]:
    """The steady-state costs (weights kept marked) and their schedule. The weights are kept beside the whole
    batch's maps; ``optimized`` also tries keeping them beside one image's, which a batch then shares with one
    image alone, run in sub-batches as small as one image (:mod:`hwsim.cost.steady`), and keeps the faster: a
    batch is never slower per image than one image."""
    choices = [steady_state_of(costs, hardware)]
    if policy == "optimized" and costs[0].batch > 1:
        one_image = steady_state_of(costs, hardware, one_image=True)
        if [c.weights_resident for c in one_image[0]] != [c.weights_resident for c in choices[0][0]]:
            choices.append(one_image)
    best: tuple[float, tuple[LayerCost, ...], list[Step]] | None = None
    refusal: list[CapacityError] = []
    for kept, scheduled_on in choices:
        try:
            steps = POLICIES[policy](graph, kept, scheduled_on)
        except CapacityError as error:
            refusal.append(error)
            continue
        total_s = sum(step.total_s for step in steps)
        if best is None or total_s < best[0]:
            best = (total_s, kept, steps)
    if best is None:
        raise refusal[0]
    return best[1], best[2]


def coded_costs(
    costs: tuple[LayerCost, ...], hardware: HardwareSpec, precision: Precision, map_zeros: MapZeros
) -> tuple[LayerCost, ...]:
    """The layers' costs with each map's bytes over the link at its zero fraction in ``map_zeros``, where the
    profile's link codes maps (``memory.external.map_coding``); as they were where it does not, or none is given.
    The fractions are checked either way: a run given wrong ones is refused whatever the profile."""
    if map_zeros is None:
        return costs
    coded = code_maps(costs, precision.bytes, map_zeros)
    return coded if hardware.memory.external.map_coding is not None else costs


def _kept_weights_noted(step: Step, costs: tuple[LayerCost, ...]) -> Step:
    """A step whose weights stayed on chip says so: its weights are internal, and its note names them."""
    kept = {c.name for c in costs if c.weights_resident}
    mine = [name for name in step.layers if name in kept]
    if not mine:
        return step
    weighted = [c.name for c in costs if c.name in step.layers and c.weight_bytes]
    note = (
        "weights on chip (steady state)" if mine == weighted else f"weights of {', '.join(mine)} on chip (steady state)"
    )
    return replace(step, weights_at=Location.INTERNAL, note=f"{step.note}; {note}" if step.note else note)


def fixed_external_bytes(costs: tuple[LayerCost, ...]) -> int:
    """What the run keeps in external memory whatever its schedule: every weight and the input images."""
    weights = sum(c.weight_bytes for c in costs)
    images = sum(size for c in costs for name, size in zip(c.layer.inputs, c.input_bytes) if name == INPUT)
    return weights + images


def external_footprint_bytes(costs: tuple[LayerCost, ...], schedule: Schedule) -> int:
    """What the run keeps in external memory, counted as if all of it were there at once.

    Every weight, the input images, and every map the schedule stores (a map stored band by band
    counts once in full). An upper bound on the peak, so a profile that passes it surely fits.
    """
    stored = sum(t.bytes for step in schedule.steps for t in step.transfers if t.direction is Direction.STORE)
    return fixed_external_bytes(costs) + stored


def external_capacity_error(network: str, policy: str, needed: int, capacity: float) -> InputError:
    """The refusal of a run that keeps ``needed`` bytes in an external memory of ``capacity``."""
    return InputError(
        f"{network} with policy {policy} keeps up to {needed:,} B in external memory "
        f"(weights, images and stored maps), more than its capacity of {capacity:,.0f} B",
        field="memory.external.capacity",
    )


def _check_external_capacity(costs: tuple[LayerCost, ...], schedule: Schedule, hardware: HardwareSpec) -> None:
    capacity = hardware.memory.external.capacity
    if capacity is None:
        return
    needed = external_footprint_bytes(costs, schedule)
    if needed > capacity:
        raise external_capacity_error(schedule.network, schedule.policy, needed, capacity)
