"""A schedule as Chrome trace-event JSON (Perfetto, chrome://tracing): one track per compute unit, one for the bus.

Each load, store and compute of the schedule's program (repeated work unrolled) is a complete event
(``ph: X``) on the track of the resource it uses, at the time the simulation gave it, in microseconds. A
batch run in sub-batches shows them one after another, each event with the images it covers. With the
steps' energies, a counter track ``energy (mJ)`` climbs, part by part, as each step ends (docs/energy.md). A bus
event's ``bytes`` are what crosses the link: a map the link codes (:mod:`hwsim.cost.coding`) at its coded size,
with its size on chip beside it as ``bytes_on_chip``, so the bus track adds up to the schedule's bytes moved.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from hwsim.schedule.base import Action, Event, Schedule, TensorId
from hwsim.schedule.energy import EnergyParts
from hwsim.schedule.program import BUS, wire_bytes

PROCESS = 1


def trace_events(
    schedule: Schedule, energy: Sequence[EnergyParts] | None = None, link: dict[TensorId, float] | None = None
) -> dict[str, Any]:
    """The trace document: ``traceEvents`` with a named thread per resource, and the energy counter when
    ``energy`` (one :class:`EnergyParts` per step, :attr:`Estimate.step_energy`) is given. ``link``: the maps the
    external link codes and their ratios (:func:`hwsim.schedule.program.link_ratios` of the run's costs)."""
    link = link or {}
    timed = [(e, step) for e, step in schedule.events() if e.action in (Action.LOAD, Action.STORE, Action.COMPUTE)]
    tracks = [BUS, *dict.fromkeys(e.unit for e, _ in timed if e.action is Action.COMPUTE)]
    tid = {name: i + 1 for i, name in enumerate(tracks)}
    events: list[dict[str, Any]] = [
        {
            "ph": "M",
            "pid": PROCESS,
            "name": "process_name",
            "args": {"name": f"{schedule.network} on {schedule.hardware} ({schedule.policy})"},
        },
        *({"ph": "M", "pid": PROCESS, "tid": tid[t], "name": "thread_name", "args": {"name": t}} for t in tracks),
    ]
    for e, step in timed:
        track = e.unit if e.action is Action.COMPUTE else BUS
        r = e.region
        events.append(
            {
                "ph": "X",
                "pid": PROCESS,
                "tid": tid[track],
                "name": f"{e.action.value} {r.tensor}" if track == BUS else e.layer,
                "cat": e.action.value,
                "ts": e.start_s * 1e6,
                "dur": (e.end_s - e.start_s) * 1e6,
                "args": {
                    "step": step,
                    "rows": list(r.rows),
                    "channels": list(r.channels),
                    **({"images": list(e.images)} if e.images is not None else {}),
                    **(_bus_bytes(e, link) if track == BUS else {"ops": e.ops}),
                },
            }
        )
    if energy is not None:
        events += energy_counter(schedule, energy)
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def _bus_bytes(e: Event, link: dict[TensorId, float]) -> dict[str, int]:
    on_link = wire_bytes(e, link)
    return {"bytes": on_link} if on_link == e.bytes else {"bytes": on_link, "bytes_on_chip": e.bytes}


def energy_counter(schedule: Schedule, energy: Sequence[EnergyParts]) -> list[dict[str, Any]]:
    """Counter events (``ph: C``) of the energy spent so far, in mJ by part, at the end of every step."""
    ends = [max((e.last_end_s for e in step.events), default=0.0) for step in schedule.steps]
    spent = EnergyParts()
    counters = [_counter(0.0, spent)]
    for end_s, parts in sorted(zip(ends, energy), key=lambda pair: pair[0]):  # overlapped steps end out of order
        spent = spent + parts
        counters.append(_counter(end_s, spent))
    return counters


def _counter(at_s: float, spent: EnergyParts) -> dict[str, Any]:
    parts = {"compute": spent.compute_j, "internal": spent.internal_j, "external": spent.external_j}
    parts["static"] = spent.static_j
    return {
        "ph": "C",
        "pid": PROCESS,
        "name": "energy (mJ)",
        "ts": at_s * 1e6,
        "args": {name: joules * 1e3 for name, joules in parts.items()},
    }


def to_trace_json(
    schedule: Schedule, energy: Sequence[EnergyParts] | None = None, link: dict[TensorId, float] | None = None
) -> str:
    return json.dumps(trace_events(schedule, energy, link)) + "\n"
