"""Open an ONNX model without reading its weights: the graph, the initializers' names and dims, nothing more.

A model's weights are nearly all of its bytes (ResNet-18: 46.8 MB of 46.8 MB), and counting parameters
needs only their dims. :func:`read_model` maps the file and walks its protobuf wire format, keeping every
field of the model and its graph except the data of large initializers, which it steps over by their
length; what it keeps is parsed by ``onnx`` as a small model whose large initializers are graph inputs of
the same type and dims (valid ONNX, so shape inference runs on it in a fraction of a millisecond). Small
initializers (at most :data:`SMALL_INITIALIZER_BYTES`) keep their data, read from the external data file where
they lie outside the model: they are operands (a Reshape's shape, Clip's bounds, Resize's scales, a layer
scale's factors) and batch norm's vectors.

Every failure is one line: the ``onnx`` extra missing, a file that is not ONNX or is truncated, raw data
that does not match its dims, a model beyond protobuf's 2 GiB, external data outside the model's folder,
missing or shorter than the tensor it holds.
"""

from __future__ import annotations

import functools
import mmap
import os
import stat
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from hwsim import files
from hwsim.errors import InputError

if TYPE_CHECKING:
    import onnx

MAX_MODEL_BYTES = 2**31 - 1
"""protobuf cannot hold a message of 2 GiB or more; larger models keep their weights as external data."""
SMALL_INITIALIZER_BYTES = 16 * 1024
"""Initializers stored in at most this many bytes keep their data: operands such as shapes, bounds and scales
(and batch norm's vectors, which cost less to keep than to step over)."""
EXTRA = "pip install 'hwsim[onnx]'"

_LENGTH_DELIMITED, _VARINT, _FIXED64, _FIXED32 = 2, 0, 1, 5
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER, _GRAPH_INPUT = 5, 11
_TENSOR_DIMS, _TENSOR_DATA_TYPE, _TENSOR_NAME, _TENSOR_RAW_DATA = 1, 2, 8, 9
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 13, 14
_EXTERNAL = 1


def is_onnx(path: Path | str) -> bool:
    """ONNX models are recognised by their suffix, whatever the case."""
    return Path(path).suffix.lower() == ".onnx"


def require_onnx(path: Path | str) -> Any:
    """The ``onnx`` package, or one line naming the extra that installs it."""
    try:
        import onnx
    except ImportError:
        raise InputError(f"reading ONNX models needs the onnx extra: {EXTRA}", str(path)) from None
    return onnx


class Initializer(NamedTuple):
    """A weight tensor as the file declares it; its data is never read here."""

    name: str
    dims: tuple[int, ...]
    data_type: int
    size: int
    """Elements: the product of ``dims``."""


@dataclass(frozen=True)
class LightModel:
    """The model without the data of its large initializers (see the module docstring)."""

    model: onnx.ModelProto
    """Small initializers keep their data; large ones, and any whose data lies outside the file, are graph
    inputs of their type and dims (a small one outside is an initializer with its data as well)."""
    initializers: dict[str, Initializer]
    """Every initializer of the graph, small and large, by name."""
    path: Path


class _Corrupt(Exception):
    """The wire format broke off or makes no sense: reported as a truncated or corrupt file."""


def _varint(data: memoryview | bytes, pos: int, end: int) -> tuple[int, int]:
    if pos < end and data[pos] < 0x80:
        return data[pos], pos + 1
    result = shift = 0
    while True:
        if pos >= end:
            raise _Corrupt("a number runs past the end of its message")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Corrupt("a number longer than 10 bytes")


def _fields(data: memoryview, start: int, end: int) -> list[tuple[int, int, int, int, int]]:
    """(field number, wire type, field start, value start, value end) of every field in ``data[start:end]``.

    Keys and lengths are decoded inline (this loop walks every node and initializer of a model)."""
    found = []
    pos = start
    while pos < end:
        field_start = pos
        key = data[pos]
        key, pos = (key, pos + 1) if key < 0x80 else _varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if wire == _LENGTH_DELIMITED:
            if pos >= end:
                raise _Corrupt("a length runs past the end of its message")
            length, shift = 0, 0
            while True:
                byte = data[pos]
                pos += 1
                length |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
                if shift > 63 or pos >= end:
                    raise _Corrupt("a length runs past the end of its message")
            value_end = pos + length
        elif wire == _VARINT:
            _, value_end = _varint(data, pos, end)
        elif wire == _FIXED64:
            value_end = pos + 8
        elif wire == _FIXED32:
            value_end = pos + 4
        else:
            raise _Corrupt(f"field {number} has wire type {wire}, which ONNX never writes")
        if number == 0 or value_end > end:
            raise _Corrupt("a field runs past the end of its message" if number else "a field numbered 0")
        found.append((number, wire, field_start, pos, value_end))
        pos = value_end
    return found


def _packed_ints(data: memoryview, start: int, end: int) -> list[int]:
    values = []
    while start < end:
        value, start = _varint(data, start, end)
        values.append(value)
    return values


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


_ONE_BYTE = [bytes((value,)) for value in range(0x80)]


def _encode_varint(value: int) -> bytes:
    if value < 0x80:
        return _ONE_BYTE[value]
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class _Tensor(NamedTuple):
    """What the scan learns of one initializer."""

    name: str
    dims: tuple[int, ...]
    data_type: int
    raw_bytes: int | None = None
    """The length of its raw data, where it has some."""
    external: dict[str, str] | None = None
    """Where its data lies outside the file (location, offset, length)."""


def _scan_tensor(data: memoryview, start: int, end: int) -> _Tensor:
    name, dims, data_type, raw_bytes = "", [], 0, None
    entries: dict[str, str] = {}
    outside = False
    for number, wire, _, value_start, value_end in _fields(data, start, end):
        if number == _TENSOR_DIMS:
            if wire == _LENGTH_DELIMITED:
                dims += [_int64(v) for v in _packed_ints(data, value_start, value_end)]
            else:
                dims.append(_int64(_varint(data, value_start, value_end)[0]))
        elif number == _TENSOR_DATA_TYPE and wire == _VARINT:
            data_type = _varint(data, value_start, value_end)[0]
        elif number == _TENSOR_NAME and wire == _LENGTH_DELIMITED:
            name = _text(data, value_start, value_end)
        elif number == _TENSOR_RAW_DATA:
            raw_bytes = value_end - value_start
        elif number == _TENSOR_EXTERNAL_DATA and wire == _LENGTH_DELIMITED:
            entry = {n: _text(data, s, e) for n, _, _, s, e in _fields(data, value_start, value_end)}
            entries[entry.get(1, "")] = entry.get(2, "")
        elif number == _TENSOR_DATA_LOCATION and wire == _VARINT:
            outside = _varint(data, value_start, value_end)[0] == _EXTERNAL
    return _Tensor(name, tuple(dims), data_type, raw_bytes, entries if outside else None)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | _LENGTH_DELIMITED) + _encode_varint(len(payload)) + payload


@functools.lru_cache(maxsize=4096)
def _dimension(size: int) -> bytes:
    """TensorShapeProto.dim (field 1) holding Dimension.dim_value (field 1) = ``size``: dims repeat, so cached."""
    return _length_delimited(1, b"\x08" + _encode_varint(size))


def _value_info(tensor: _Tensor) -> bytes:
    """A graph input (GraphProto field 11) of the tensor's type and dims, as ValueInfoProto bytes."""
    dims = b"".join(map(_dimension, tensor.dims))
    tensor_type = _encode_varint(1 << 3) + _encode_varint(tensor.data_type) + _length_delimited(2, dims)
    value = _length_delimited(1, tensor.name.encode()) + _length_delimited(2, _length_delimited(1, tensor_type))
    return _length_delimited(11, value)


def _light_graph(data: memoryview, start: int, end: int) -> tuple[bytes, list[_Tensor]]:
    """The graph's bytes with its large initializers made inputs, and those initializers (module docstring)."""
    kept = bytearray()
    large: list[_Tensor] = []
    inputs: set[str] = set()
    run = start  # fields are copied in runs, from one large initializer to the next
    for number, _, field_start, value_start, value_end in _fields(data, start, end):
        if number == _GRAPH_INITIALIZER and value_end - value_start > SMALL_INITIALIZER_BYTES:
            kept += data[run:field_start]
            run = value_end
            large.append(_scan_tensor(data, value_start, value_end))
        elif number == _GRAPH_INPUT:
            inputs.update(_text(data, s, e) for n, _, _, s, e in _fields(data, value_start, value_end) if n == 1)
    kept += data[run:end]
    for tensor in large:
        if tensor.name not in inputs:  # before IR version 4, initializers are inputs too
            kept += _value_info(tensor)
    return bytes(kept), large


def _text(data: memoryview, start: int, end: int) -> str:
    return bytes(data[start:end]).decode("utf-8", "replace")


ITEM_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2}
ITEM_BYTES.update({kind: 1 for kind in range(17, 21)})  # the 8-bit floats
"""Bytes per element of TensorProto.DataType; strings and packed 4-bit types have no fixed size."""


def _check_sizes(tensors: list[_Tensor], path: Path) -> None:
    """Data that cannot hold its tensor: raw bytes of the wrong length, external data missing or too short."""
    for tensor in tensors:
        if any(d < 0 for d in tensor.dims):
            raise InputError(f"initializer {tensor.name!r} has a negative dimension {list(tensor.dims)}", str(path))
        itemsize = ITEM_BYTES.get(tensor.data_type)
        if itemsize is None:
            continue
        needed = prod(tensor.dims) * itemsize
        if tensor.external is not None:
            _check_external(tensor, needed, path)
        elif tensor.raw_bytes is not None and tensor.raw_bytes != needed:
            raise InputError(
                f"initializer {tensor.name!r} {list(tensor.dims)} holds {tensor.raw_bytes:,} bytes of data, "
                f"not the {needed:,} its dims need: the file is corrupt",
                str(path),
            )


def _check_external(tensor: _Tensor, needed: int, path: Path) -> None:
    """The external file exists beside the model, inside its folder, and holds the tensor's bytes."""
    assert tensor.external is not None
    location = tensor.external.get("location", "")
    where = f"initializer {tensor.name!r} keeps its data in {location!r}"
    relative = Path(location)
    if not location or relative.is_absolute() or ".." in relative.parts:
        raise InputError(f"{where}: external data must be a file name inside the model's folder", str(path))
    data_path = path.parent / relative
    try:
        info = os.stat(data_path)
    except OSError:
        raise InputError(f"{where}, which does not exist beside the model (missing external data)", str(path)) from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{where}, which is not a regular file", str(path))
    try:
        offset = int(tensor.external.get("offset", "0"))
        length = int(tensor.external.get("length", str(needed)))
    except ValueError:
        raise InputError(f"{where} at an offset or length that is not a number", str(path)) from None
    if length != needed or offset < 0 or offset + length > info.st_size:
        raise InputError(
            f"{where}, bytes {offset:,}..{offset + length:,} of a {info.st_size:,}-byte file; "
            f"the tensor {list(tensor.dims)} needs {needed:,} (missing or truncated external data)",
            str(path),
        )


def _mapped(path: Path) -> mmap.mmap:
    """The file, mapped (so the weights it holds are never read): a regular file of at most 2 GiB, not empty."""
    with files.open_input(path, MAX_MODEL_BYTES, "model file") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            raise InputError("empty file, not an ONNX model", str(path))
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def read_model(path: Path) -> LightModel:
    """The model at ``path`` without the data of its large initializers (module docstring)."""
    onnx = require_onnx(path)
    mapped = _mapped(path)
    try:
        data = memoryview(mapped)
        try:
            light, large = _light_model(data, len(mapped))
        finally:
            data.release()
    except _Corrupt as err:
        raise InputError(f"not a readable ONNX model, truncated or corrupt: {err}", str(path)) from None
    finally:
        mapped.close()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(light)
    except Exception as err:  # protobuf's DecodeError, and whatever else a damaged message raises
        raise InputError(f"not a readable ONNX model, truncated or corrupt: {err}", str(path)) from None
    kept = _kept_initializers(model, onnx)
    _check_sizes(kept + large, path)
    _read_small_external(model, kept, path, onnx)
    initializers = {t.name: Initializer(t.name, t.dims, t.data_type, prod(t.dims)) for t in kept + large}
    return LightModel(model, initializers, path)


def _light_model(data: memoryview, size: int) -> tuple[bytes, list[_Tensor]]:
    """The model's bytes with its graph made light (:func:`_light_graph`), and the large initializers."""
    light = bytearray()
    large: list[_Tensor] = []
    graphs = 0
    for number, _, field_start, value_start, value_end in _fields(data, 0, size):
        if number != _MODEL_GRAPH:
            light += data[field_start:value_end]
            continue
        graphs += 1
        graph, large = _light_graph(data, value_start, value_end)
        light += _length_delimited(_MODEL_GRAPH, graph)
    if graphs != 1:
        raise _Corrupt("no graph" if not graphs else f"{graphs} graphs")
    return bytes(light), large


def _kept_initializers(model: onnx.ModelProto, onnx: Any) -> list[_Tensor]:
    """The initializers the light model kept; a small one whose data lies outside the file becomes an input too."""
    kept = []
    outside = []
    for proto in model.graph.initializer:
        if proto.data_location == _EXTERNAL:
            external = {entry.key: entry.value for entry in proto.external_data}
            kept.append(_Tensor(proto.name, tuple(proto.dims), proto.data_type, None, external))
            outside.append(proto)
        else:
            raw = len(proto.raw_data) if proto.raw_data else None
            kept.append(_Tensor(proto.name, tuple(proto.dims), proto.data_type, raw))
    if outside:
        names = {proto.name for proto in outside}
        staying = [proto for proto in model.graph.initializer if proto.name not in names]
        del model.graph.initializer[:]
        model.graph.initializer.extend(staying)
        inputs = {value.name for value in model.graph.input}
        model.graph.input.extend(
            onnx.helper.make_tensor_value_info(p.name, p.data_type, list(p.dims))
            for p in outside
            if p.name not in inputs
        )
    return kept


def _read_small_external(model: onnx.ModelProto, kept: list[_Tensor], path: Path, onnx: Any) -> None:
    """The data of small initializers kept outside the file (checked by :func:`_check_external`), read into the
    light model: they are operands too (a layer scale's factors, a Gather's indices), wherever an exporter put
    them (PyTorch's dynamo exporter writes every initializer outside by default)."""
    for tensor in kept:
        itemsize = ITEM_BYTES.get(tensor.data_type)
        if tensor.external is None or itemsize is None or prod(tensor.dims) * itemsize > SMALL_INITIALIZER_BYTES:
            continue
        offset, length = int(tensor.external.get("offset", "0")), prod(tensor.dims) * itemsize
        with open(path.parent / tensor.external["location"], "rb") as handle:
            handle.seek(offset)
            raw = handle.read(length)
        proto = onnx.TensorProto(name=tensor.name, dims=tensor.dims, data_type=tensor.data_type, raw_data=raw)
        model.graph.initializer.append(proto)


def load_full(path: Path) -> onnx.ModelProto:
    """The whole model with every weight (external data included), for running it or reading its weights."""
    onnx = require_onnx(path)
    read_model(path)  # the same checks, in the same words, before onnx reads anything
    try:
        return onnx.load(str(path), load_external_data=True)
    except Exception as err:  # onnx raises protobuf, OS and its own errors
        raise InputError(f"cannot load the model's weights: {str(err).splitlines()[0]}", str(path)) from None
