"""``hwsim verify --runtime onnxruntime``: a network's output in ONNX Runtime against the NumPy reference's.

An ONNX model runs as it is, with its own weights read into the reference's layout, which checks every
convention the import converts (layout, padding, flatten order, batch norm, LRN). A YAML network is
exported with varied random weights (:func:`hwsim.interchange.runtime.varied_weights`), which checks the
export's conventions the same way.
"""

from __future__ import annotations

from pathlib import Path

from hwsim import bundled
from hwsim.interchange.export import export_onnx
from hwsim.interchange.runtime import Agreement, agreement, require_onnxruntime, varied_weights
from hwsim.interchange.weights import onnx_weights
from hwsim.model.expand import load_network, onnx_graph
from hwsim.spec.onnx_file import is_onnx, load_full
from hwsim.spec.onnx_reader import read_onnx


def runtime_agreement(
    network: str | Path, input_shape: tuple[int, ...] | None = None, batch: int = 2, seed: int = 0
) -> Agreement:
    """The reference and ONNX Runtime on one seeded input of ``batch`` images (see the module docstring)."""
    require_onnxruntime()
    path = bundled.resolve("networks", network)
    if is_onnx(path):
        imported = read_onnx(path, input_shape)
        graph = onnx_graph(imported)
        params, state = onnx_weights(imported, graph, load_full(path))
        return agreement(graph, params, state, str(path), batch, seed)
    graph = load_network(path, input_shape)
    params, state = varied_weights(graph, seed)
    return agreement(graph, params, state, export_onnx(graph, params, state).SerializeToString(), batch, seed)
