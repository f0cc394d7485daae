"""Fingerprints of every bundled network's schedules, to show a speed-up left them unchanged.

For each bundled network x profile x policy x batch it records the summary (steps, events, bytes, total time)
and a hash of every step's full record (placements, transfers, times, notes and its events with their regions,
repeats and times, floats exactly as ``repr`` writes them). Run it on the code before a change and after it,
then compare:

    python benchmarks/schedule_fingerprint.py --write before.json
    python benchmarks/schedule_fingerprint.py --check before.json

``--check`` prints every run whose fingerprint differs (or that now fails where it did not) and exits 1 if any.
The script runs itself with ``PYTHONHASHSEED=0``, so that no order of a set of map names (which Python's string
hashing varies from process to process) can make two runs differ; the one such order found, a segment's resident
inputs, now follows the segment (every bundled network, strict and optimized, two profiles, batch 1 and 4: the
same steps under two hash seeds).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

from hwsim import api
from hwsim.bundled import bundled_names
from hwsim.errors import InputError

HARDWARE = ("paper-accelerator", "edge-npu", "coral-edge-tpu", "eyeriss-v1")
POLICIES = ("paper", "strict", "optimized")
BATCHES = (1, 4)


def fingerprint(network: str, hardware: str, policy: str, batch: int) -> dict[str, object]:
    """The run's summary and a hash of its steps' full records, or the error it raised."""
    graph, hw = api.load_network(network), api.load_hardware(hardware)
    try:
        schedule = api.estimate(graph, hw, policy, batch=batch).schedule
    except InputError as error:
        return {"error": str(error)}
    return {
        "steps": len(schedule.steps),
        "events": sum(e.instances for step in schedule.steps for e in step.events),
        "bytes": schedule.bytes_moved,
        "total_s": repr(schedule.total_s),
        "hash": hashlib.sha256("\n".join(repr(step) for step in schedule.steps).encode()).hexdigest(),
    }


def fingerprints(networks: list[str]) -> dict[str, dict[str, object]]:
    return {
        f"{network} {hardware} {policy} b{batch}": fingerprint(network, hardware, policy, batch)
        for network in networks
        for hardware in HARDWARE
        for policy in POLICIES
        for batch in BATCHES
    }


def main() -> int:
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", type=Path, help="write the fingerprints to this JSON file")
    action.add_argument("--check", type=Path, help="compare with fingerprints written before")
    parser.add_argument("networks", nargs="*", help="bundled networks (default: all)")
    args = parser.parse_args()
    networks = args.networks or sorted(bundled_names("networks"))
    found = fingerprints(networks)
    if args.write:
        args.write.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
        print(f"{len(found)} runs written to {args.write}")
        return 0
    before = json.loads(args.check.read_text())
    changed = [key for key in found if key in before and found[key] != before[key]]
    for key in changed:
        print(f"{key}: was {before[key]}, now {found[key]}")
    compared = sum(key in before for key in found)
    print(f"{compared} runs compared, {len(changed)} changed")
    return 1 if changed or not compared else 0


if __name__ == "__main__":
    sys.exit(main())
