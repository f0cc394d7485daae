"""The Python API that the CLI wraps: load, estimate, summarise. Anything the CLI does, a notebook can.

This module only gathers what users call; each piece lives in the stage it belongs to.
"""

from __future__ import annotations

from hwsim.estimate import Estimate, cost_run, counting_named, estimate, external_footprint_bytes
from hwsim.model.expand import bundled_network, load_network, onnx_to_yaml
from hwsim.spec.hardware import bundled_hardware, load_hardware

__all__ = [
    "Estimate",
    "bundled_hardware",
    "bundled_network",
    "cost_run",
    "counting_named",
    "estimate",
    "external_footprint_bytes",
    "load_hardware",
    "load_network",
    "onnx_to_yaml",
]
