"""A seeded mutation fuzzer over the bundled networks and hardware profiles, and the promise it checks.

Every case takes a bundled network and profile, applies one mutation (a field deleted, a type swapped,
an extreme number, an unknown key, an odd name, inputs that form a cycle, blocks that nest or recurse,
a shape, a unit, an op-to-unit map) and sometimes a second one to the text (truncated, tagged, a line
doubled), then runs ``hwsim estimate`` on it in-process. Whatever the input, hwsim must exit 0 with a
whole output file, or exit 2 with one line on stderr and nothing written; never a traceback, never
longer than :data:`CASE_SECONDS`, never more memory than :data:`CASE_MEMORY_BYTES` beyond what the
process already holds. ``tests/test_fuzz.py`` runs a few seconds of it by default and more under the
``slow`` mark; ``benchmarks/fuzz.py`` runs any number of cases and prints the counts.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import resource
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from hwsim.cli import main

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = {path.stem: yaml.safe_load(path.read_text()) for path in sorted((ROOT / "networks").glob("*.yaml"))}
HARDWARE = {path.stem: yaml.safe_load(path.read_text()) for path in sorted((ROOT / "hardware").glob("*.yaml"))}

CASE_SECONDS = 20.0
"""No case may take longer (a loaded 2-core machine; each takes well under a second)."""
CASE_MEMORY_BYTES = 2 * 2**30
"""Address space a case may add to the process (its soft RLIMIT_AS while cases run)."""

EXTREMES: list[Any] = [
    0,
    -1,
    1,
    2**31,
    2**63,
    10**400,
    -(10**400),
    1_000_000,
    1_000_001,
    float("inf"),
    float("-inf"),
    float("nan"),
    1e-300,
    0.5,
]
ODD_NAMES = ["", " ", "\t", "input", ".x", "x.", "a.b", "x" * 300, "é", "0", "stem", "relu"]
OTHER_TYPES: list[Any] = ["3", 3, 3.5, True, None, [1, 2], {"a": 1}, "same", [], {}]
QUANTITIES: list[Any] = [
    "1 XB", "-1 MB", "1e400 B", "0 B", "1 GB/s", "", "  ", 1, 0.5, "1e30 B", "1e31 B", 10**40, "nan MB",
    "1 MB MB", "10 TFLOPS", "1 KiB", 2**70, True, [1], "1e-9 GB",
]  # fmt: skip
INPUT_SHAPES: list[Any] = [
    [1, 1, 1], [1, 224, 3], [3, 3], [224, 224, 3, 1], [0, 224, 3], [10**6, 10**6, 3], [512, 512, 3],
    "224x224x3", [224, 224, 3.5], [2**63, 2**63, 2**63], [7, 7, 1000],
]  # fmt: skip
LAYER_FIELDS = [
    "kernel", "stride", "padding", "filters", "units", "size", "groups", "multiplier", "rate", "eps",
    "dilation", "ceil_mode", "factor", "mode", "pads", "min", "max",
]  # fmt: skip
LAYER_VALUES: list[Any] = [
    *EXTREMES, "same", "valid", "full", "reflect", "bilinear", [3, 3], [3], [0, 3], [3, 3, 3], [10**6, 1], [1, 2, 3, 4],
]  # fmt: skip
OPS = ["conv", "dwconv", "dense", "relu", "maxpool", "gelu", "add", "mul", "batchnorm", "softmax", "pad", "upsample"]


@dataclass(frozen=True)
class Case:
    """One input to run: what was mutated, and the two files as text."""

    index: int
    mutation: str
    network: str
    hardware: str
    policy: str


# ---- where things are in a document ------------------------------------------------------------------------------

Path_ = tuple[Any, ...]


def _paths(data: Any, at: Path_ = ()) -> Iterator[Path_]:
    """Every node's path, the root excluded."""
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        yield (*at, key)
        yield from _paths(value, (*at, key))


def _get(data: Any, path: Path_) -> Any:
    for key in path:
        data = data[key]
    return data


def _set(data: Any, path: Path_, value: Any) -> None:
    _get(data, path[:-1])[path[-1]] = value


def _layers(network: dict) -> list[dict]:
    """Every layer entry, top level and in blocks."""
    entries = list(network.get("layers") or [])
    for block in (network.get("blocks") or {}).values():
        entries += list(block.get("layers") or []) if isinstance(block, dict) else []
    return [entry for entry in entries if isinstance(entry, dict)]


def _names(network: dict) -> list[str]:
    return [entry["name"] for entry in _layers(network) if isinstance(entry.get("name"), str)] or ["stem"]


# ---- mutations: each changes a network or a profile in place ----------------------------------------------------


def delete_field(rng: random.Random, network: dict, hardware: dict) -> None:
    target = rng.choice([network, hardware])
    keys = [p for p in _paths(target) if isinstance(_get(target, p[:-1]), dict)]
    path = rng.choice(keys)
    del _get(target, path[:-1])[path[-1]]


def swap_type(rng: random.Random, network: dict, hardware: dict) -> None:
    target = rng.choice([network, hardware])
    path = rng.choice(list(_paths(target)))
    current = type(_get(target, path))
    _set(target, path, rng.choice([v for v in OTHER_TYPES if type(v) is not current]))


def extreme_number(rng: random.Random, network: dict, hardware: dict) -> None:
    target = rng.choice([network, hardware])
    numbers = [p for p in _paths(target) if isinstance(_get(target, p), (int, float, str))]
    _set(target, rng.choice(numbers), rng.choice(EXTREMES))


def unknown_key(rng: random.Random, network: dict, hardware: dict) -> None:
    target = rng.choice([network, hardware])
    mappings = [(), *(p for p in _paths(target) if isinstance(_get(target, p), dict))]
    _get(target, rng.choice(mappings))[rng.choice(["bogus", "op", "use", "name", "inputs", "args"])] = 1


def odd_name(rng: random.Random, network: dict, hardware: dict) -> None:
    entry = rng.choice([*_layers(network), network, hardware])
    entry["name"] = rng.choice([*ODD_NAMES, "a\nb", rng.choice(_names(network))])


def inputs_and_cycles(rng: random.Random, network: dict, hardware: dict) -> None:
    layers = network["layers"]
    index = rng.randrange(len(layers))
    names = _names(network)
    own = layers[index].get("name", "self")
    later = layers[-1].get("name", "softmax") if isinstance(layers[-1], dict) else "softmax"
    layers[index]["inputs"] = rng.choice(
        [[own], [later], ["input"], [], ["nowhere"], [rng.choice(names), later], ["input", "input"], "input"]
    )


def blocks(rng: random.Random, network: dict, hardware: dict) -> None:
    depth = rng.choice([2, 31, 33, 500])
    kind = rng.choice(["self", "mutual", "chain", "unknown", "repeat", "args", "name"])
    chain = {f"b{i}": {"layers": [{"use": f"b{i + 1}"} if i < depth - 1 else {"op": "relu"}]} for i in range(depth)}
    network["blocks"] = {
        "self": {"loop": {"layers": [{"use": "loop"}]}},
        "mutual": {"a": {"layers": [{"use": "b"}]}, "b": {"layers": [{"use": "a"}]}},
        "chain": chain,
    }.get(
        kind,
        {
            "cb": {"args": ["filters"], "layers": [{"op": "conv", "kernel": 1, "filters": "$filters", "name": "c"}]},
            "other": {"layers": [{"op": "relu", "name": "r"}]},
        },
    )
    use: dict[str, Any] = {
        "self": {"use": "loop"},
        "mutual": {"use": "a"},
        "chain": {"use": "b0"},
        "unknown": {"use": "nowhere"},
        "repeat": {"use": "cb", "filters": 8, "repeat": rng.choice(EXTREMES)},
        "args": {"use": "cb", rng.choice(["width", "name", "repeat"]): 8},
        "name": {"use": "cb", "filters": 8, "repeat": 2, "name": rng.choice(["s", "s", "s", *ODD_NAMES])},
    }[kind]
    at = rng.randrange(len(network["layers"]) + 1)
    network["layers"][at:at] = [use, {"use": "other", "name": "s.block1"}] if kind == "name" else [use]


def shape(rng: random.Random, network: dict, hardware: dict) -> None:
    network["input"] = copy.deepcopy(rng.choice(INPUT_SHAPES))


def layer_field(rng: random.Random, network: dict, hardware: dict) -> None:
    entry = rng.choice(_layers(network))
    if rng.random() < 0.2:
        entry["op"] = rng.choice(OPS)
    else:
        entry[rng.choice(LAYER_FIELDS)] = copy.deepcopy(rng.choice(LAYER_VALUES))


def units(rng: random.Random, network: dict, hardware: dict) -> None:
    places = [
        ("memory", "internal", "capacity"),
        ("memory", "external", "bandwidth"),
        ("memory", "external", "capacity"),
    ]
    places += [("compute", unit, "throughput") for unit in hardware["compute"]]
    path = rng.choice(places)
    _get(hardware, path[:-1])[path[-1]] = copy.deepcopy(rng.choice(QUANTITIES))


def op_unit_map(rng: random.Random, network: dict, hardware: dict) -> None:
    compute = hardware["compute"]
    unit = rng.choice(list(compute))
    kind = rng.randrange(6)
    if kind == 0:
        compute[unit]["ops"] = [*compute[unit].get("ops", []), rng.choice(["gelu", "conv", "input", 3])]
    elif kind == 1:  # the same op under two units
        for name in compute:
            compute[name]["ops"] = ["relu"]
    elif kind == 2:
        del compute[unit]
    elif kind == 3:
        hardware["compute"] = {}
    elif kind == 4:
        compute[unit]["ops"] = "conv"
    else:
        compute[f"{unit}2"] = compute.pop(unit)


MUTATIONS: list[Callable[[random.Random, dict, dict], None]] = [
    delete_field,
    swap_type,
    extreme_number,
    unknown_key,
    odd_name,
    inputs_and_cycles,
    blocks,
    shape,
    layer_field,
    units,
    op_unit_map,
]


# ---- mutations of the text ---------------------------------------------------------------------------------------


def _text(rng: random.Random, text: str) -> str:
    """Usually the text as is; sometimes truncated, tagged, with a line doubled, or nested without end."""
    lines = text.splitlines(keepends=True)
    kind = rng.randrange(10)
    if kind == 0:
        return text[: rng.randrange(len(text) + 1)]
    if kind == 1:
        index = rng.randrange(len(lines))
        tag = rng.choice(["!!binary ", "!!python/object:os.system ", "!custom ", "!!set ", "&a ", "*a "])
        lines[index] = lines[index].replace(": ", f": {tag}", 1)
    elif kind == 2:
        index = rng.randrange(len(lines))
        lines.insert(index, lines[index])
    elif kind == 3:
        lines.append("deep: " + "[" * 1000 + "]" * 1000 + "\n")
    return "".join(lines)


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**6)


def cases(seed: int, count: int, policies: tuple[str, ...] = ("paper",)) -> Iterator[Case]:
    """``count`` cases, the same for the same ``seed``."""
    rng = random.Random(seed)
    for index in range(count):
        network = copy.deepcopy(NETWORKS[rng.choice(sorted(NETWORKS))])
        hardware = copy.deepcopy(HARDWARE[rng.choice(sorted(HARDWARE))])
        mutation = rng.choice(MUTATIONS)
        mutation(rng, network, hardware)
        network_text, hardware_text = _dump(network), _dump(hardware)
        if rng.random() < 0.3:
            if rng.random() < 0.5:
                network_text = _text(rng, network_text)
            else:
                hardware_text = _text(rng, hardware_text)
        yield Case(index, mutation.__name__, network_text, hardware_text, rng.choice(policies))


# ---- running a case, and what must hold -------------------------------------------------------------------------


class CaseTimeout(Exception):
    """A case ran past :data:`CASE_SECONDS`."""


@dataclass(frozen=True)
class Outcome:
    case: Case
    exit_code: int | None
    seconds: float
    problem: str | None
    """What broke the promise, or None."""


@contextlib.contextmanager
def bounded_memory(extra: int = CASE_MEMORY_BYTES) -> Iterator[None]:
    """Cap the process's address space at what it holds now plus ``extra``: a runaway allocation fails."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    held = _address_space()
    resource.setrlimit(
        resource.RLIMIT_AS, (held + extra if hard == resource.RLIM_INFINITY else min(hard, held + extra), hard)
    )
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _address_space() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout(f"past {CASE_SECONDS:g} s")


def run_case(case: Case, folder: Path, runner: CliRunner | None = None) -> Outcome:
    """Run ``hwsim estimate`` on ``case`` in ``folder`` (emptied first) and judge the result."""
    for stale in folder.iterdir():
        stale.unlink()
    net, hw, out = folder / "net.yaml", folder / "hw.yaml", folder / "out.json"
    net.write_text(case.network)
    hw.write_text(case.hardware)
    args = ["estimate", str(net), "--hw", str(hw), "--policy", case.policy, "-o", str(out)]
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    started = time.perf_counter()
    try:
        result = (runner or CliRunner()).invoke(main, args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    seconds = time.perf_counter() - started
    return Outcome(case, result.exit_code, seconds, _problem(result, folder, out))


def _problem(result: Any, folder: Path, out: Path) -> str | None:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return f"{type(result.exception).__name__}: {str(result.exception)[:200]}"
    if "Traceback" in result.output:
        return "a traceback in the output"
    left = sorted(p.name for p in folder.iterdir())
    if result.exit_code == 0:
        try:
            json.loads(out.read_text())
        except (OSError, ValueError) as err:
            return f"exit 0 without a whole output file ({err})"
        return None if left == ["hw.yaml", "net.yaml", "out.json"] else f"files left: {left}"
    if result.exit_code != 2:
        return f"exit {result.exit_code}"
    stderr = result.stderr
    if stderr.count("\n") != 1 or not stderr.startswith("error: "):
        return f"not one 'error:' line: {stderr[:300]!r}"
    if len(stderr) > 1000:
        return f"an error line of {len(stderr):,} characters"
    return None if left == ["hw.yaml", "net.yaml"] else f"files left after an error: {left}"
