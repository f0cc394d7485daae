"""``hwsim verify --runtime onnxruntime``: a network's output in ONNX Runtime against the NumPy reference's.

An ONNX model runs as it is, with its own weights read into the reference's layout, which checks every
convention the import converts (layout, padding, flatten order, batch norm, LRN). A YAML network is
exported with varied random weights (:func:`hwsim.interchange.runtime.varied_weights`), which checks the
export's conventions the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hwsim import bundled
from hwsim.errors import InputError
from hwsim.interchange.export import export_onnx
from hwsim.interchange.runtime import Agreement, agreement, require_onnxruntime, varied_weights
from hwsim.interchange.weights import onnx_weights
from hwsim.model.expand import load_network, onnx_graph
from hwsim.model.graph import Graph
from hwsim.reference.memory import check_budget, memory_limit, step_bytes
from hwsim.spec.onnx_file import is_onnx, load_full
from hwsim.spec.onnx_reader import read_onnx


def runtime_agreement(
    network: str | Path,
    input_shape: tuple[int, ...] | None = None,
    batch: int = 1,
    seed: int = 0,
    max_memory: str | None = None,
) -> Agreement:
    """The reference and ONNX Runtime on one seeded input of ``batch`` images (see the module docstring).

    Refused before anything runs if the reference's inference would take more than ``max_memory``."""
    require_onnxruntime()
    path = bundled.resolve("networks", network)
    if is_onnx(path):
        imported = read_onnx(path, input_shape)
        graph = onnx_graph(imported)
        _check_memory(graph, batch, max_memory)
        model = load_full(path)
        _check_float32(model, path)
        params, state = onnx_weights(imported, graph, model)
        tensors = {name: layer.tensor for name, layer in imported.layers.items()}
        return agreement(graph, params, state, model, batch, seed, tensors.__getitem__, imported.nhwc)
    graph = load_network(path, input_shape)
    _check_memory(graph, batch, max_memory)
    params, state = varied_weights(graph, seed)
    return agreement(graph, params, state, export_onnx(graph, params, state), batch, seed)


def _check_float32(model: Any, path: Path) -> None:
    """The check compares float32 outputs to 1e-4: a model that computes in another type is refused before it runs
    (its structure, and so ``hwsim estimate``, reads the same; ``--precision`` sets the bytes)."""
    from onnx import TensorProto

    weights = {tensor.name for tensor in model.graph.initializer}
    element = next(v for v in model.graph.input if v.name not in weights).type.tensor_type.elem_type
    if element != TensorProto.FLOAT:
        raise InputError(
            f"the model computes in {TensorProto.DataType.Name(element)}; the ONNX Runtime check compares float32 "
            "models (export the model in float32)",
            str(path),
        )


def _check_memory(graph: Graph, batch: int, max_memory: str | None) -> None:
    needed = step_bytes(graph, batch, None)
    check_budget(f"the onnxruntime check of {graph.name} at batch {batch}", needed, memory_limit(max_memory))
