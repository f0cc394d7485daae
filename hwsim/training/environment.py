"""What produced a number: the Python, NumPy and BLAS a training run used, recorded beside its results.

Training results depend on the BLAS library and on which of its kernels runs on this CPU: OpenBLAS
picks AVX2 or AVX-512 matrix kernels at run time, and their different summation orders move a
training loss in its fourth digit after one step, which a high learning rate then amplifies
(docs/experiments.md). So every experiment output names them.
"""

from __future__ import annotations

import platform

import numpy as np
from threadpoolctl import threadpool_info

from hwsim.training.train import single_threaded_blas


def blas_description(info: list[dict]) -> str:
    """``openblas 0.3.31 (SkylakeX kernels), 1 thread`` from threadpoolctl's description of the loaded BLAS."""
    blas = [entry for entry in info if entry.get("user_api") == "blas"]
    if not blas:
        return "no BLAS found by threadpoolctl"
    parts = []
    for entry in blas:
        kernels = f" ({entry['architecture']} kernels)" if entry.get("architecture") else ""
        threads = entry.get("num_threads", 0)
        parts.append(
            f"{entry.get('internal_api', 'blas')} {entry.get('version') or '?'}{kernels}, "
            f"{threads} thread{'s' if threads != 1 else ''}"
        )
    return "; ".join(parts)


def versions() -> dict[str, str]:
    """Python, NumPy and the BLAS as training uses it (one thread: :func:`single_threaded_blas`)."""
    with single_threaded_blas():
        blas = blas_description(threadpool_info())
    return {"python": platform.python_version(), "numpy": np.__version__, "blas": blas}


def describe(recorded: dict[str, str]) -> str:
    """One line: ``Python 3.11.7, NumPy 2.4.6, openblas 0.3.31 (SkylakeX kernels), 1 thread``."""
    return f"Python {recorded['python']}, NumPy {recorded['numpy']}, {recorded['blas']}"
