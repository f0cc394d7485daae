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

The sub-batches' programs are concatenated into one: the k identical sub-batches are one repeated
block (:class:`hwsim.schedule.base.Repeat`: each runs after the one before, on the next images), the
remainder's events follow with the images they cover (:attr:`Event.images`), so the validator replays
and the trace draws every sub-batch while the schedule stays as small as one sub-batch's. A step that
every sub-batch has (the same steps, in order) is reported once, with all its sub-batches' events and
their transfers and times added up.
"""

from __future__ import annotations

from dataclasses import replace

from hwsim.cost.inference import LayerCost, recost
from hwsim.cost.subbatch import candidate_sizes
from hwsim.model.graph import Graph
from hwsim.schedule.base import (
    ALLOC,
    COMPUTE,
    FREE,
    LOAD,
    RESIDENT,
    CapacityError,
    Event,
    Repeat,
    Scheduler,
    Step,
    TensorId,
)
from hwsim.schedule.program import link_ratios, transfers_of
from hwsim.spec.hardware import HardwareSpec


def sub_batched(policy: Scheduler, choose: str) -> Scheduler:
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
                    sub_costs[size] = tuple(recost(c, hardware, batch=size) for c in costs)
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
            if rest and _computed(rest) != _computed(whole):
                continue  # one table of costs describes every sub-batch: they must fold the same batch norms
            total_s = batch // size * _total_s(whole) + _total_s(rest)
            if best is None or choose == "largest" or total_s < best[0]:
                best = (total_s, size)
        if best is None:
            raise refusal[0]
        size, remainder = best[1], batch % best[1]
        whole, rest = run(size), run(remainder) if remainder else None
        assert whole is not None
        if size == batch:
            return whole
        return _concatenate(costs, sub_costs, whole, size, rest)

    schedule.__doc__ = policy.__doc__
    return schedule


def _computed(steps: list[Step]) -> set[str]:
    """The layers ``steps`` compute (``optimized`` may fold a batch norm for one size and not another)."""
    return {e.layer for step in steps for e in step.events if e.action is COMPUTE}


def _total_s(steps: list[Step]) -> float:
    return sum(s.total_s for s in steps)


def _concatenate(
    costs: tuple[LayerCost, ...],
    sub_costs: dict[int, tuple[LayerCost, ...]],
    whole: list[Step],
    size: int,
    rest: list[Step] | None,
) -> list[Step]:
    """One schedule of ``batch // size`` sub-batches of ``size`` images (the steps ``whole``), one after
    another, then the remainder's (the steps ``rest``)."""
    batch = costs[0].batch
    k, remainder = batch // size, batch % size
    # the cost table counts a batch's per-batch constants (a batch norm's sqrt(var + eps) per
    # channel) once: its sub-batches share the batch's ops, so every layer's ops add up to its cost
    scale: dict[str, float] = {}
    for i, c in enumerate(costs):
        parts = k * sub_costs[size][i].ops + (sub_costs[remainder][i].ops if remainder else 0)
        if parts != c.ops:
            scale[c.name] = c.ops / parts
    _check_empty(whole)
    events = sum(e.instances for step in whole for e in step.events)
    every = Repeat(k, _total_s(whole), events, images=size)
    outer: dict[int, Repeat] = {}

    def around(repeat: Repeat | None) -> Repeat:
        """``repeat``'s chain with the sub-batches outermost."""
        if repeat is None:
            return every
        if id(repeat) not in outer:
            outer[id(repeat)] = replace(repeat, outer=around(repeat.outer))
        return outer[id(repeat)]

    def scaled(e: Event) -> float:
        return e.ops * scale.get(e.layer, 1.0) if e.action is COMPUTE else e.ops

    slots: list[list[tuple[Step, int, list[Event]]]] = [
        [(step, k, [e._replace(ops=scaled(e), images=(0, size), repeat=around(e.repeat)) for e in step.events])]
        for step in whole
    ]
    if rest is not None:
        _check_empty(rest)
        offset, clock = k * events, k * _total_s(whole)
        shifted = [
            [
                e._replace(
                    ops=scaled(e),
                    seq=e.seq + offset,
                    start_s=e.start_s + clock,
                    end_s=e.end_s + clock,
                    images=(k * size, batch),
                )
                for e in step.events
            ]
            for step in rest
        ]
        if [s.name for s in rest] == [s.name for s in whole]:  # the remainder's schedule may be cut otherwise
            for slot, step, moved in zip(slots, rest, shifted):
                slot.append((step, 1, moved))
        else:
            slots += [[(step, 1, moved)] for step, moved in zip(rest, shifted)]
    where = f"in {k} sub-batches of {size}" + (f" and one of {remainder}" if remainder else "")
    link = link_ratios(costs)
    return [_merge(parts, where, size, link) for parts in slots]


def _check_empty(steps: list[Step]) -> None:
    """A sub-batch must leave internal memory empty for the next one."""
    resident = 0
    for step in steps:
        for e in step.events:
            if e.action is LOAD or e.action is ALLOC or e.action is RESIDENT:
                resident += e.bytes * e.instances
            elif e.action is FREE:
                resident -= e.bytes * e.instances
    assert resident == 0, "a sub-batch must leave internal memory empty for the next one"


def _merge(parts: list[tuple[Step, int, list[Event]]], where: str, size: int, link: dict[TensorId, float]) -> Step:
    """One report step for the same step of several sub-batches: their events, transfers and times added up
    (each part a step, how many sub-batches ran it, and its events)."""
    first = parts[0][0]
    events = tuple(e for _, _, moved in parts for e in moved)
    note = f"{first.note}; " if first.note else ""
    transfers = transfers_of(list(events), link)
    return replace(
        first,
        macs=sum(s.macs * k for s, k, _ in parts),
        ops=sum(s.ops * k for s, k, _ in parts),
        input_bytes=sum(s.input_bytes * k for s, k, _ in parts),
        output_bytes=sum(s.output_bytes * k for s, k, _ in parts),
        transfers=transfers,
        transfer_s=sum(s.transfer_s * k for s, k, _ in parts),
        compute_s=sum(s.compute_s * k for s, k, _ in parts),
        total_s=sum(s.total_s * k for s, k, _ in parts),
        peak_internal_bytes=max(s.peak_internal_bytes for s, _, _ in parts),
        note=f"{note}batch run {where}, weights loaded once per sub-batch",
        events=events,
        sub_batch=size,
    )
