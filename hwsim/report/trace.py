"""A schedule as Chrome trace-event JSON (Perfetto, chrome://tracing): one track per compute unit, one for the bus.

Each load, store and compute of the schedule's program (repeated work unrolled) is a complete event
(``ph: X``) on the track of the resource it uses, at the time the simulation gave it, in microseconds. A batch run in
sub-batches shows them one after another, each event with the images it covers.
"""

from __future__ import annotations

import json
from typing import Any

from hwsim.schedule.base import Action, Schedule
from hwsim.schedule.program import BUS

PROCESS = 1


def trace_events(schedule: Schedule) -> dict[str, Any]:
    """The trace document: ``traceEvents`` with a named thread per resource."""
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
                    **({"bytes": e.bytes} if track == BUS else {"ops": e.ops}),
                },
            }
        )
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def to_trace_json(schedule: Schedule) -> str:
    return json.dumps(trace_events(schedule)) + "\n"
