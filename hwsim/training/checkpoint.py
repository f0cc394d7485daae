"""Save a training :class:`~hwsim.training.train.Run` as ``.npz`` and restore it, refusing a mismatched network.

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
import math
import re
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from hwsim import files
from hwsim.errors import InputError
from hwsim.model.graph import Graph
from hwsim.reference import SGD, Adam, Model
from hwsim.training.train import EpochMetrics, Normalization, Run, TrainSettings

FORMAT_VERSION = 1
_SLOTS = {Adam: ("m", "v"), SGD: ("velocity",)}
NORMALIZATION = ("mean", "std")


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
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds like allow_pickle
    files.write_atomically(path, buffer.getvalue())


MAX_ADAM_STEPS = 10**15
"""Adam's step count: beyond any run (a million steps a second for 30 years), and safely a float exponent."""


class _Meta(BaseModel):
    """The ``meta`` entry, field by field; what numpy must accept (the RNG states) is checked when set."""

    model_config = ConfigDict(extra="forbid")

    format: Literal[1]
    network: StrictStr
    settings: TrainSettings
    epoch: StrictInt = Field(ge=0)
    adam_t: StrictInt | None = Field(ge=0, le=MAX_ADAM_STEPS)
    rng: dict[str, Any]
    model_rng: dict[str, Any]
    history: list[EpochMetrics]


def load_checkpoint(path: Path, graph: Graph) -> Run:
    """The run saved at ``path``, continuing on ``graph``; an :class:`InputError` if it does not fit.

    Every part is checked before it is used: the metadata field by field, and every array's shape
    against the model, optimizer or normalization it feeds, so a damaged file fails here, in one
    line, and not with a traceback in the middle of training or prediction.
    """
    arrays, meta = _read(path, graph)
    if meta.network != graph.name:
        raise InputError(
            f"checkpoint of network {meta.network!r}, "
            f"not {graph.name!r}: resume or predict with the network it was trained on",
            str(path),
        )
    settings = meta.settings
    _check_history(meta, path)
    groups = _groups(arrays, path)
    try:
        model = Model(graph, seed=settings.seed, params=groups["params"], state=groups["state"])
    except ValueError as err:  # same name, other layers or shapes: the file was edited since
        raise InputError(f"checkpoint does not fit network {graph.name!r} as it is now: {err}", str(path)) from None
    _set_rng_state(model.rng, meta.model_rng, "model_rng", path)  # dropout masks continue where they stopped
    optimizer = settings.optimizer.build()
    stray = [
        slot
        for slots in _SLOTS.values()
        for slot in slots
        if slot not in _SLOTS[type(optimizer)] and groups[f"optimizer/{slot}"]
    ]
    if stray:
        raise _corrupt(f"optimizer/{stray[0]} entries in a {settings.optimizer.name} run", path)
    for slot in _SLOTS[type(optimizer)]:
        setattr(optimizer, slot, _optimizer_slot(groups[f"optimizer/{slot}"], slot, model, path))
    if isinstance(optimizer, Adam):
        if meta.adam_t is None:
            raise _corrupt("adam_t: missing for an Adam run", path)
        if set(optimizer.m) != set(optimizer.v):
            raise _corrupt("optimizer/m and optimizer/v cover different parameters", path)
        optimizer.t = meta.adam_t
    elif meta.adam_t is not None:
        raise _corrupt(f"adam_t: {meta.adam_t} for a {settings.optimizer.name} run (only Adam has one)", path)
    rng = np.random.default_rng()
    _set_rng_state(rng, meta.rng, "rng", path)
    channels = graph.input_shape[-1]
    for name in ("mean", "std"):
        if groups["normalization"][name].shape != (channels,):
            raise _corrupt(
                f"normalization/{name} has shape {groups['normalization'][name].shape}, "
                f"the network's {channels}-channel input needs ({channels},)",
                path,
            )
    if not (groups["normalization"]["std"] > 0).all():
        raise _corrupt("normalization/std: a standard deviation of 0 or less (inputs would divide by it)", path)
    normalization = Normalization(groups["normalization"]["mean"], groups["normalization"]["std"])
    return Run(graph, settings, model, optimizer, rng, normalization, meta.epoch, list(meta.history))


def _corrupt(what: str, path: Path) -> InputError:
    return InputError(f"corrupt checkpoint: {what}", str(path))


def _check_history(meta: _Meta, path: Path) -> None:
    """One row per epoch trained, numbered 1, 2, ...: what :func:`hwsim.training.train.train` appends."""
    if len(meta.history) != meta.epoch:
        raise _corrupt(f"history has {len(meta.history)} rows for epoch {meta.epoch}", path)
    for index, row in enumerate(meta.history):
        if row.epoch != index + 1:
            raise _corrupt(f"history[{index}].epoch: {row.epoch}, expected {index + 1}", path)
        for name, value in asdict(row).items():
            if name == "epoch":
                continue
            low, high = (0.0, 1.0) if name.endswith("accuracy") else (0.0, math.inf)
            if not low <= value <= high or (value == math.inf and name == "seconds"):
                raise _corrupt(f"history[{index}].{name}: {value}, expected a number in [{low:g}, {high:g}]", path)


def _groups(arrays: dict[str, np.ndarray], path: Path) -> dict[str, dict[str, np.ndarray]]:
    """The archive's arrays by group (``params``, ``state``, ``optimizer/<slot>``, ``normalization``);
    unknown entries refused."""
    groups: dict[str, dict[str, np.ndarray]] = {"params": {}, "state": {}, "normalization": {}}
    groups.update({f"optimizer/{slot}": {} for slots in _SLOTS.values() for slot in slots})
    for key, value in arrays.items():
        prefix, _, name = key.rpartition("/") if key.startswith("optimizer/") else key.partition("/")
        if prefix not in groups or not name:
            raise _corrupt(f"unexpected entry {key!r}", path)
        groups[prefix][name] = value
    missing = sorted(set(NORMALIZATION) - set(groups["normalization"]))
    extra = sorted(set(groups["normalization"]) - set(NORMALIZATION))
    if missing or extra:
        raise _corrupt(f"normalization/{(missing or extra)[0]} is {'missing' if missing else 'unexpected'}", path)
    return groups


def _optimizer_slot(arrays: dict[str, np.ndarray], slot: str, model: Model, path: Path) -> dict[str, np.ndarray]:
    """Optimizer state for some of the model's parameters (it is created at their first step), each of its
    parameter's shape."""
    for key, value in arrays.items():
        if key not in model.params:
            raise _corrupt(f"optimizer/{slot}/{key}: no such parameter in the network", path)
        if value.shape != model.params[key].shape:
            raise _corrupt(
                f"optimizer/{slot}/{key} has shape {value.shape}, its parameter {model.params[key].shape}", path
            )
    return {key: value.astype(model.params[key].dtype) for key, value in arrays.items()}


def _set_rng_state(rng: np.random.Generator, state: dict[str, Any], field: str, path: Path) -> None:
    """Restore a generator's state; numpy is the judge of what a valid state is."""
    try:
        rng.bit_generator.state = state
    except (ValueError, TypeError, KeyError, OverflowError) as err:
        raise _corrupt(f"{field}: not a state numpy can restore ({err})", path) from None


MAX_META_BYTES = 10_000_000
"""The ``meta`` entry's largest size: its history grows by about 200 bytes an epoch."""
MAX_META_DEPTH = 16
"""JSON nesting the ``meta`` entry may have; its own is 3 (settings.optimizer.name), numpy's RNG states 3."""
_HEADER_ALLOWANCE = 4096
"""Bytes per archive member besides its values: the .npy header (about 128) and the zip's records of its name."""
_NPY_MAGIC = b"\x93NUMPY"


def archive_bound(graph: Graph) -> int:
    """The most bytes a checkpoint of ``graph`` can hold, uncompressed: float32 parameters, state, at most two
    optimizer slots per parameter, the normalization, the metadata, and a header per member."""
    values = 4 * (3 * graph.params + sum(layer.state for layer in graph.layers) + 2 * graph.input_shape[-1])
    return values + MAX_META_BYTES + _HEADER_ALLOWANCE * _max_members(graph)


def _max_members(graph: Graph) -> int:
    """Two parameter arrays a layer (weight and bias), each with two optimizer slots, two of state, plus meta
    and the normalization's two."""
    return 8 * len(graph.layers) + 3


def _read(path: Path, graph: Graph) -> tuple[dict[str, np.ndarray], _Meta]:
    """Every array in the archive, and its checked ``meta``; bad files become one :class:`InputError` line.

    Nothing is decompressed before the zip's directory has shown that every member is a float32 array
    (the metadata: text) whose size agrees with its header, and that all of them together fit what a
    checkpoint of ``graph`` can hold (:func:`archive_bound`): a zip bomb is refused unopened.
    """
    bound = archive_bound(graph)
    if not files.exists(path):
        raise InputError("no such checkpoint file", str(path))
    with files.open_input(path, bound, f"checkpoint of {graph.name}") as handle:
        try:
            with zipfile.ZipFile(handle) as archive:
                members = _members(archive, bound, _max_members(graph), path)
                arrays = {name: _array(archive, info) for name, info in members.items()}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, NotImplementedError) as err:
            handle.seek(0)
            if handle.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
                raise InputError(
                    "not an .npz archive but a single array (.npy); not an hwsim checkpoint", str(path)
                ) from None
            raise InputError(f"not a readable .npz checkpoint ({type(err).__name__}: {err})", str(path)) from None
    for key, value in arrays.items():
        if key != "meta" and not np.isfinite(value).all():
            raise _corrupt(f"{key} holds non-finite values (nan or inf)", path)
    return arrays, _parse_meta(arrays.pop("meta"), path)


def _members(archive: zipfile.ZipFile, bound: int, most: int, path: Path) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by array name, checked from the zip directory and each .npy header alone."""
    infos = archive.infolist()
    names = {info.filename.removesuffix(".npy"): info for info in infos}
    if "meta" not in names:
        raise InputError("not an hwsim checkpoint: no 'meta' entry", str(path))
    total = sum(info.file_size for info in infos)
    if len(infos) > most or total > bound:
        raise _corrupt(
            f"{len(infos):,} entries holding {total:,} bytes, more than a checkpoint of this network can "
            f"({most:,} entries, {bound:,} bytes)",
            path,
        )
    for name, info in names.items():
        if not info.filename.endswith(".npy") or len(names) != len(infos):
            raise _corrupt(f"unexpected entry {info.filename!r}", path)
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"{name}: .npy format version {version}")
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(member)
            header = member.tell()
        expected = "a text" if name == "meta" else "float32"
        if (name == "meta") != (dtype.kind == "U") or (name != "meta" and dtype != np.float32):
            raise _corrupt(f"{name} holds {dtype} values, not {expected} ones", path)
        if name == "meta" and (shape != () or info.file_size > MAX_META_BYTES):
            raise _corrupt(
                f"meta: an array of {dtype} {shape} in {info.file_size:,} bytes, "
                f"not a text of at most {MAX_META_BYTES:,}",
                path,
            )
        if header + math.prod(shape) * dtype.itemsize != info.file_size:
            raise _corrupt(f"{name}: its header says {shape} {dtype}, its entry holds {info.file_size:,} bytes", path)
    return names


def _array(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with archive.open(info) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


def _parse_meta(text: np.ndarray, path: Path) -> _Meta:
    """The ``meta`` entry: JSON no deeper than :data:`MAX_META_DEPTH`, of the current format, field by field."""
    try:
        if _json_depth(str(text)) > MAX_META_DEPTH:
            raise ValueError(f"nested more than {MAX_META_DEPTH} levels deep")
        meta = json.loads(str(text))
    except ValueError as err:  # json.JSONDecodeError is one
        raise _corrupt(f"meta: {err}", path) from None
    if not isinstance(meta, dict):
        raise _corrupt(f"meta: a JSON {type(meta).__name__}, not an object", path)
    if meta.get("format") != FORMAT_VERSION:
        raise InputError(
            f"checkpoint format {_shown(meta.get('format'))}, this hwsim reads format {FORMAT_VERSION}", str(path)
        )
    try:
        return _Meta.model_validate(meta)
    except ValidationError as err:
        first = err.errors()[0]
        raise _corrupt(f"meta.{_dotted(first['loc'])}: {first['msg'][0].lower()}{first['msg'][1:]}", path) from None
    except InputError as err:  # a settings type's own check (a learning rate of 0, ...)
        raise _corrupt(f"meta.settings: {err.message}", path) from None


def _json_depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest, counted without parsing it (parsing recurses)."""
    codes = np.frombuffer(_JSON_STRING.sub('""', text).encode("utf-8"), dtype=np.uint8)
    steps = np.isin(codes, _OPENING).astype(np.int64) - np.isin(codes, _CLOSING)
    return int(np.cumsum(steps).max(initial=0))


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_OPENING, _CLOSING = np.frombuffer(b"[{", np.uint8), np.frombuffer(b"]}", np.uint8)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}..."


def _dotted(loc: tuple[str | int, ...]) -> str:
    """``('history', 0, 'epoch')`` as ``history[0].epoch``."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
