"""Sub-batches: a batch run as several smaller batches one after another, for any policy.

A batch of ``B`` images shares its weights, but its maps are ``B`` times larger: on a small
internal memory a whole batch may not fit at all, or spill more map bytes than the shared weights
save. A compiler then splits it: ``k`` sub-batches of ``b`` images and, when ``b`` does not divide
``B``, one of the remaining ``B mod b``, each scheduled by the policy on its own and run after the
one before (weights are loaded once per sub-batch). :func:`sub_batched` wraps a policy with a choice
of ``b`` among ``B`` and the powers of two below it (1 always among them):

- ``fastest``: the ``b`` whose sub-batches take the least time in all (``optimized``);
- ``largest``: the largest ``b`` that fits (``strict``: the paper's serial method with real
  capacity, not an optimizer; it batches as much as the memory allows).

Sizes are tried from 1 up until one does not fit: what a sub-batch must hold at least grows with
its images, so no larger one would.

The sub-batches' programs are concatenated into one: every event keeps its step and gets a fresh
sequence number, a time offset by the sub-batches before it and the images it covers
(:attr:`Event.images`), so the validator replays and the trace draws every sub-batch. A step that
every sub-batch has (the same steps, in order) is reported once, with all its sub-batches' events
and their transfers and times added up.
"""

from __future__ import annotations

from dataclasses import replace

from hwsim.cost.inference import LayerCost, layer_cost
from hwsim.model.graph import Graph
from hwsim.schedule.base import ALLOC, COMPUTE, FREE, LOAD, RESIDENT, Event, Policy, Step
from hwsim.schedule.program import transfers_of
from hwsim.schedule.tiling import CapacityError
from hwsim.spec.hardware import HardwareSpec


def candidate_sizes(batch: int) -> list[int]:
    """``batch`` and the powers of two below it, largest first: ``[16, 8, 4, 2, 1]``, ``[12, 8, 4, 2, 1]``."""
    sizes, b = [batch], 1
    while b < batch:
        sizes.append(b)
        b *= 2
    return sorted(set(sizes), reverse=True)


def sub_batched(policy: Policy, choose: str) -> Policy:
    """``policy`` with each batch run in sub-batches of the size ``choose`` (``fastest`` or ``largest``) picks."""
    if choose not in ("fastest", "largest"):
        raise ValueError(f"unknown sub-batch choice {choose!r}")

    def schedule(graph: Graph, costs: tuple[LayerCost, ...], hardware: HardwareSpec) -> list[Step]:
        batch = costs[0].batch
        if batch == 1:
            return policy(graph, costs, hardware)
        sub_costs: dict[int, tuple[LayerCost, ...]] = {batch: costs}
        runs: dict[int, list[Step] | None] = {0: []}
        refusal: list[CapacityError] = []

        def run(size: int) -> list[Step] | None:
            """The policy's steps for ``size`` images (None: they do not fit); each size is scheduled once."""
            if size not in runs:
                if size not in sub_costs:
                    sub_costs[size] = tuple(
                        layer_cost(c.layer, hardware, c.counting, size, c.precision, c.weights_resident) for c in costs
                    )
                try:
                    runs[size] = policy(graph, sub_costs[size], hardware)
                except CapacityError as error:
                    runs[size] = None
                    refusal.append(error)
            return runs[size]

        # every size from 1 up, until one does not fit: what a sub-batch must hold at least (a band's
        # rows of its maps, with a chunk of weights) grows with its images, so no larger size fits either
        best: tuple[float, int] | None = None
        for size in reversed(candidate_sizes(batch)):
            whole, rest = run(size), run(batch % size)
            if whole is None or rest is None:
                break
            total_s = batch // size * _total_s(whole) + _total_s(rest)
            if best is None or choose == "largest" or total_s < best[0]:
                best = (total_s, size)
        if best is None:
            raise refusal[0]
        size, remainder = best[1], batch % best[1]
        plan = [(run(size), size)] * (batch // size) + ([(run(remainder), remainder)] if remainder else [])
        return _concatenate(costs, plan, sub_costs)  # type: ignore[arg-type]

    schedule.__doc__ = policy.__doc__
    return schedule


def _total_s(steps: list[Step]) -> float:
    return sum(s.total_s for s in steps)


def _concatenate(
    costs: tuple[LayerCost, ...], runs: list[tuple[list[Step], int]], sub_costs: dict[int, tuple[LayerCost, ...]]
) -> list[Step]:
    """One schedule of sub-batches run one after another; ``runs`` are (steps, images) in order."""
    if len(runs) == 1:
        return runs[0][0]
    batch, size = costs[0].batch, runs[0][1]
    # the cost table counts a batch's per-batch constants (a batch norm's sqrt(var + eps) per
    # channel) once: its sub-batches share the batch's ops, so every layer's ops add up to its cost
    scale: dict[str, float] = {}
    for i, c in enumerate(costs):
        parts = sum(sub_costs[images][i].ops for _, images in runs)
        if parts != c.ops:
            scale[c.name] = c.ops / parts
    new = tuple.__new__
    names = [s.name for s in runs[0][0]]
    slots: list[list[tuple[Step, list[Event]]]] = [[] for _ in names]
    prepared: dict[int, list[list[tuple]]] = {}  # per distinct run: its steps' events, ops scaled
    seq, clock, first = 0, 0.0, 0
    for steps, images in runs:
        if id(steps) not in prepared:
            prepared[id(steps)] = _prepared(steps, scale)
        # the remainder's schedule may be cut into other steps: then they are reported apart
        targets = slots if [s.name for s in steps] == names else [[] for _ in steps]
        if targets is not slots:
            slots.extend(targets)
        span = (first, first + images)
        for step, events, target in zip(steps, prepared[id(steps)], targets):
            target.append(
                (
                    step,
                    [
                        new(Event, (a, r, b, layer, reads, unit, ops, seq + q, clock + start, clock + end, span))
                        for a, r, b, layer, reads, unit, ops, q, start, end in events
                    ],
                )
            )
        seq += sum(len(s.events) for s in steps)
        clock += _total_s(steps)
        first += images
    where = f"in {batch // size} sub-batches of {size}" + (f" and one of {batch % size}" if batch % size else "")
    return [_merge(parts, where, size) for parts in slots]


def _prepared(steps: list[Step], scale: dict[str, float]) -> list[list[tuple]]:
    """Every step's events as plain tuples (without ``images``), compute ops scaled; checks the run ends empty."""
    resident = 0
    prepared = []
    for step in steps:
        events = []
        for e in step.events:
            if e.action is COMPUTE:
                events.append((*e[:6], e.ops * scale.get(e.layer, 1.0), *e[7:10]))
                continue
            if e.action is LOAD or e.action is ALLOC or e.action is RESIDENT:
                resident += e.bytes
            elif e.action is FREE:
                resident -= e.bytes
            events.append(e[:10])
        prepared.append(events)
    assert resident == 0, "a sub-batch must leave internal memory empty for the next one"
    return prepared


def _merge(parts: list[tuple[Step, list[Event]]], where: str, size: int) -> Step:
    """One report step for the same step of several sub-batches: their events, transfers and times added up."""
    steps = [step for step, _ in parts]
    events = tuple(e for _, shifted in parts for e in shifted)
    first = steps[0]
    note = f"{first.note}; " if first.note else ""
    transfers = transfers_of(list(events))
    return replace(
        first,
        macs=sum(s.macs for s in steps),
        ops=sum(s.ops for s in steps),
        input_bytes=sum(s.input_bytes for s in steps),
        output_bytes=sum(s.output_bytes for s in steps),
        transfers=transfers,
        transfer_s=sum(s.transfer_s for s in steps),
        compute_s=sum(s.compute_s for s in steps),
        total_s=sum(s.total_s for s in steps),
        peak_internal_bytes=max(s.peak_internal_bytes for s in steps),
        note=f"{note}batch run {where}, weights loaded once per sub-batch",
        events=events,
        sub_batch=size,
    )
