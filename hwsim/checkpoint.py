"""Save a training :class:`~hwsim.train.Run` as ``.npz`` and restore it, refusing a mismatched network.

Layout of the archive (every entry a plain array; nothing needs pickle to load)::

    params/<layer>.<name>        weights, biases, batch norm gamma/beta
    state/<layer>.<name>         batch norm running mean/var
    optimizer/<slot>/<key>       Adam m and v, or SGD velocity (slot = m, v, velocity)
    normalization/mean, /std     per-channel input statistics of the training split, (C,)
    meta                         JSON text: network, settings, epoch, Adam t, shuffling RNG state, history
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from hwsim import report
from hwsim.errors import InputError
from hwsim.graph import Graph
from hwsim.reference import SGD, Adam, Model
from hwsim.train import EpochMetrics, Normalization, Run, TrainSettings

FORMAT_VERSION = 1
_SLOTS = {Adam: ("m", "v"), SGD: ("velocity",)}


def save_checkpoint(run: Run, path: Path) -> None:
    """Write ``run`` to ``path`` through a temporary file and a rename, so a crash never leaves half a checkpoint."""
    arrays = {f"params/{k}": v for k, v in run.model.params.items()}
    arrays.update({f"state/{k}": v for k, v in run.model.state.items()})
    for slot in _SLOTS[type(run.optimizer)]:
        arrays.update({f"optimizer/{slot}/{k}": v for k, v in getattr(run.optimizer, slot).items()})
    arrays["normalization/mean"] = run.normalization.mean
    arrays["normalization/std"] = run.normalization.std
    meta = {
        "format": FORMAT_VERSION,
        "network": run.graph.name,
        "settings": run.settings.to_dict(),
        "epoch": run.epoch,
        "adam_t": run.optimizer.t if isinstance(run.optimizer, Adam) else None,
        "rng": run.rng.bit_generator.state,
        "model_rng": run.model.rng.bit_generator.state,
        "history": [asdict(m) for m in run.history],
    }
    arrays["meta"] = np.array(json.dumps(meta))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    report.write_atomically(path, buffer.getvalue())


def load_checkpoint(path: Path, graph: Graph) -> Run:
    """The run saved at ``path``, continuing on ``graph``; an :class:`InputError` if it does not fit."""
    arrays, meta = _read(path)
    if meta["network"] != graph.name:
        raise InputError(f"checkpoint of network {meta['network']!r}, not {graph.name!r}: resume or predict with the network it was trained on", str(path))
    settings = TrainSettings.from_dict(meta["settings"])

    def group(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

    try:
        model = Model(graph, seed=settings.seed, params=group("params/"), state=group("state/"))
    except ValueError as err:  # same name, other layers or shapes: the file was edited since
        raise InputError(f"checkpoint does not fit network {graph.name!r} as it is now: {err}", str(path)) from None
    model.rng.bit_generator.state = meta["model_rng"]  # dropout masks continue where they stopped
    optimizer = settings.optimizer.build()
    for slot in _SLOTS[type(optimizer)]:
        setattr(optimizer, slot, group(f"optimizer/{slot}/"))
    if isinstance(optimizer, Adam):
        optimizer.t = meta["adam_t"]
    rng = np.random.default_rng()
    rng.bit_generator.state = meta["rng"]
    normalization = Normalization(arrays["normalization/mean"], arrays["normalization/std"])
    history = [EpochMetrics(**row) for row in meta["history"]]
    return Run(graph, settings, model, optimizer, rng, normalization, meta["epoch"], history)


def _read(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Every array in the archive, and its parsed ``meta``; bad files become one :class:`InputError` line."""
    if not path.is_file():
        raise InputError("no such checkpoint file", str(path))
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise InputError(f"not a readable .npz checkpoint ({type(err).__name__}: {err})", str(path)) from None
    if "meta" not in arrays:
        raise InputError("not an hwsim checkpoint: no 'meta' entry", str(path))
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as err:
        raise InputError(f"corrupt checkpoint metadata ({err})", str(path)) from None
    if meta.get("format") != FORMAT_VERSION:
        raise InputError(f"checkpoint format {meta.get('format')!r}, this hwsim reads format {FORMAT_VERSION}", str(path))
    return arrays, meta
