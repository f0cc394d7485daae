"""Reading an ONNX model against reading the same network as YAML, and `hwsim estimate model.onnx` end to end.

The issue's targets: reading a model of up to 50 MB no more than 2x slower than reading the same network's
YAML (the weights are never read to count them), and `hwsim estimate resnet18.onnx` under a second. The
model is torchvision's ResNet-18 with random weights (46.8 MB), built with onnx.helper, once with every
tensor's shape in its value_info (as the dynamo exporter and onnxsim write it: hwsim reads those) and once
without (as the TorchScript exporter does: ONNX shape inference runs, 0.3 ms more); its YAML is what
`hwsim import` writes for it. Reading is timed in-process, best of many, the reads taking turns (modules
imported once, as the CLI imports them once); the command is timed whole, median of 5, beside `hwsim
estimate` of that YAML.
Run: python benchmarks/bench_onnx.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hwsim import api  # noqa: E402
from tests.onnx_models import resnet18  # noqa: E402

READS = 300
RUNS = 5


def best_of(reads: list[Callable[[], object]], repeats: int = READS) -> list[float]:
    """The fastest of ``repeats`` calls of each read, in seconds, the reads taking turns so that both see the
    same machine: the fastest is the least disturbed by the other processes on it."""
    best = [float("inf")] * len(reads)
    for _ in range(repeats + 1):
        for index, read in enumerate(reads):
            start = time.perf_counter()
            read()
            best[index] = min(best[index], time.perf_counter() - start)
    return best


def wall_time(command: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        plain, shaped = Path(folder) / "resnet18.onnx", Path(folder) / "resnet18-shaped.onnx"
        onnx.save(resnet18(zeros=False), str(plain))
        onnx.save(resnet18(zeros=False, value_info=True), str(shaped))
        yaml_path = Path(folder) / "resnet18.yaml"
        yaml_path.write_text(api.onnx_to_yaml(plain))
        from_yaml, from_plain, from_shaped = best_of(
            [lambda p=p: api.load_network(p) for p in (yaml_path, plain, shaped)]
        )
        print(f"ResNet-18, {plain.stat().st_size / 1e6:.1f} MB of ONNX; reading, best of {READS}:")
        print(f"  resnet18.yaml (hwsim import's)            {from_yaml * 1e3:6.2f} ms")
        for label, seconds, written_by in (
            ("every shape in value_info", from_shaped, "the dynamo exporter, onnxsim"),
            ("shapes inferred by ONNX  ", from_plain, "the TorchScript exporter"),
        ):
            ratio = seconds / from_yaml
            print(f"  resnet18.onnx, {label}  {seconds * 1e3:6.2f} ms  ({ratio:.2f}x; as {written_by} write it)")
        hwsim = [sys.executable, "-m", "hwsim", "estimate"]
        onnx_command, yaml_command = wall_time([*hwsim, str(plain)]), wall_time([*hwsim, str(yaml_path)])
        start_up = wall_time([sys.executable, "-c", "pass"])
        print(f"hwsim estimate, median of {RUNS} (python -c pass: {start_up * 1e3:.0f} ms):")
        print(f"  resnet18.yaml                             {yaml_command * 1e3:6.0f} ms")
        print(f"  resnet18.onnx                             {onnx_command * 1e3:6.0f} ms")


if __name__ == "__main__":
    main()
