"""A network small enough to train in tests on the generated 32x32x3, 10-class images."""

from __future__ import annotations

from pathlib import Path

TINY_NETWORK = """\
name: tiny
input: [32, 32, 3]
layers:
  - {op: conv, kernel: 3, stride: 2, filters: 6, bias: false, name: stem}
  - {op: batchnorm, name: stem_bn}
  - {op: relu, name: stem_relu}
  - {op: maxpool, size: 2, name: pool}
  - {op: dwconv, kernel: 3, bias: false, name: dw}
  - {op: batchnorm, name: dw_bn}
  - {op: relu, name: dw_relu}
  - {op: conv, kernel: 1, filters: 10, bias: false, name: pw}
  - {op: batchnorm, name: pw_bn}
  - {op: relu, name: pw_relu}
  - {op: global_avg_pool, name: gap}
  - {op: softmax, name: softmax}
"""


def write_tiny_network(folder: Path, name: str = "tiny") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(TINY_NETWORK.replace("name: tiny", f"name: {name}"))
    return path
