"""A stronger lower bound: cut the run at a layer whose every output needs every input (a barrier).

:func:`hwsim.cost.bound.lower_bound` lets the bus and every unit work the whole run at once. A barrier
splits the run into two phases that cannot overlap, so their times add. The argument, step by step.

**Premises** (the model every hwsim schedule is validated against, and the old bound's):

1. The bus moves one byte at a time at the attainable bandwidth (loads and stores alike); each compute
   unit executes its layers' ops at its rate (on an array, at the rate its cycles give). Fixed costs
   (dispatch, setup) are left out, as in the old bound.
2. Every weight not kept on chip in steady state crosses the bus at least once per batch, every image
   is loaded and every output stored; nothing is on chip when the run starts but the kept weights, and
   the internal memory never holds more than its capacity.
3. The work on an output element of a layer begins no earlier than the first of the (non-constant) input
   elements it reads is computed, and uses the weights of its output channel on chip. An accumulation
   may add its inputs one by one as they arrive (a dense layer, a running sum), so a layer's work may
   begin before all of its input exists, never before any of it.

**The barrier.** A layer ``c`` is *whole-input* when each of its output elements reads every element of
its input (the ``whole_input`` trait: dense; also a conv with one group over a 1x1 map). Call a layer
*needed* when every element of its output is read, through a chain of reads, by every output element
of ``c``: ``c``'s producers are, and a producer of a needed layer ``R`` is needed if ``R`` *covers* it
(every element of that input is read by some output element of ``R``: not a slice, not a window whose
stride skips rows, not bilinear upsampling, which is not claimed). Call a layer *reading* ``c`` when
every element of its output reads, through a chain, some output element of ``c`` (not a constant
border, whose zeros read nothing, nor a concat with another input, whose channels copy that input), and
*after* ``c`` when, besides, every input it reads is ``c`` or reading ``c``, or it adds or multiplies two
maps (its one op per element reads both); an add of two earlier maps and a later one could add the
earlier two ahead.

**Step 1.** Let ``t`` be the moment the first output element of ``c`` (of any image) is complete. Every
element of every needed layer of that image was computed before ``t``, with its weights on chip: all
the needed layers' work for that image ran before ``t``, and all their weights and (if the image is read
by a needed layer) that image crossed the bus before ``t``.

**Step 2.** Every element an *after* layer reads is computed at or after ``t``, so by 3 all of its work
runs after ``t``, on every image (an accumulation too: its first addend is one), with its weights on
chip after ``t``; the network's output, if it is ``c`` or reading ``c``, is complete and stored after
``t``.

**Step 3 (what may be loaded early).** Let ``P`` be the bytes of after weights on chip at ``t``, at most
``min(capacity, after weights)`` by 2. Every other after weight byte, and the output, cross the bus after
``t``. The rest of the compulsory bytes (the barrier's own weights, the layers in neither set) may cross
at either time: call them flexible, and ``f`` the part that crosses before ``t``.

**Step 4.** The run ends at ``T = t + (T - t)``; before ``t`` the bus and each unit are each busy at
least their share, after ``t`` likewise, and no resource serves both phases at the same moment. With
``p = P + f``:

    T >= min over p of  max(needed ops(u) / rate(u) for u, (needed bytes + p) / bw)
                      + max(after ops(u) / rate(u) for u,  (after bytes + flexible - p) / bw)

over ``0 <= p <= min(capacity, after weights) + flexible``. The right side is convex in ``p`` (a sum
of maxima of linear terms), so its minimum lies at an end of the range or where a term changes slope;
those are the only points evaluated. The bus terms add up to every compulsory byte, so the cut is never
below the plain bound's traffic term.

**Batches.** Images may interleave: another image's needed work may run after ``t``. So the cut gives
two bounds, both valid: at the *first* image's barrier (``t`` as above: one image's needed work and
image bytes, every weight before; every image's after work, every output after) and at the *last*
image's (``t'`` the latest of the images' first barrier elements: every image's needed work before
``t'``; the after work of that last image, with every after weight, after it). One image's share of a
unit's time is taken at its peak (its ops at the throughput, on an array its MACs at one per PE a cycle):
a smaller sub-batch may fill an array's folds better than the whole batch, so the batch's time over B
would not hold.

**Variants.** A policy may fold batch norms into their convs (:mod:`hwsim.cost.fold`): the bound is the
smaller of the folded and unfolded networks' (each the best over its barriers), and never below
:func:`hwsim.cost.bound.lower_bound`.

**Not built: capacity-forced traffic.** Communication lower bounds for one layer whose operands exceed
the memory (Hong & Kung 1981; Irony, Toledo & Tiskin 2004; Demmel & Dinh 2018) bound the work of each
segment of a run by the operands it can hold: the capacity plus what the segment loads. Here a map
produced and consumed on chip (a fused chain) never crosses the bus, and a producer's output may be
consumed in pieces as it is made, so that premise holds for the weights and the image alone, not for the
maps. They are left out: the bound above counts only compulsory traffic, split in time
(docs/schedulers.md).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from hwsim.cost.bound import compulsory_bytes, image_bytes, lower_bound, unit_seconds
from hwsim.cost.coding import link_bytes
from hwsim.cost.fold import fold_batchnorm
from hwsim.cost.inference import LayerCost
from hwsim.model.graph import INPUT, Layer, consumers_of
from hwsim.ops import TRAITS, ConvAttrs, ConvTransposeAttrs, Op, PadAttrs, Rows, UpsampleAttrs, Window
from hwsim.spec.hardware import HardwareSpec


@dataclass(frozen=True)
class Phase:
    """What must happen on one side of a barrier: seconds per unit, and bytes over the bus."""

    compute_s: dict[str, float]
    traffic_bytes: float
    """Weights, and the image (before) or the output (after), that must cross the bus in this phase."""
    weight_bytes: float
    """Of ``traffic_bytes``, the weights (after: what may be loaded early, up to the capacity)."""


@dataclass(frozen=True)
class CutBound:
    """The stronger bound: the best barrier's two phases, or the plain bound where no barrier beats it."""

    total_s: float
    layer: str | None
    """The barrier that sets it (None: no barrier beats :func:`hwsim.cost.bound.lower_bound`)."""


@dataclass(frozen=True)
class Reach:
    """How a window op's windows meet its input, along both axes."""

    covered: bool
    """Every input row and column is read by some window."""
    touching: bool
    """Every window reads some input row and some input column (none lies wholly in the padding)."""


@functools.lru_cache(maxsize=4096)
def _reach(layer: Layer, slot: int) -> Reach | None:
    """Where ``layer``'s windows fall on input ``slot`` (None: not a window op); cached, as every barrier asks."""
    if TRAITS[layer.op].rows is Rows.TRANSPOSED:
        t = layer.attrs
        assert isinstance(t, ConvTransposeAttrs)
        sides = (t.padding.top, t.padding.left)
        axes = [
            transposed_axis_reach(
                layer.input_shape[axis],
                layer.output_shape[axis],
                t.kernel[axis],
                t.stride[axis],
                t.dilation[axis],
                sides[axis],
            )
            for axis in (0, 1)
        ]
        return Reach(all(covered for covered, _ in axes), all(touching for _, touching in axes))
    if TRAITS[layer.op].rows is not Rows.WINDOW:
        return None
    window = layer.attrs
    assert isinstance(window, Window)
    axes = [
        axis_reach(
            layer.input_shapes[slot][axis],
            layer.output_shape[axis],
            window.kernel[axis],
            window.stride[axis],
            window.dilation[axis],
            before,
        )
        for axis, before in enumerate((window.padding.top, window.padding.left))
    ]
    return Reach(all(covered for covered, _ in axes), all(touching for _, touching in axes))


def axis_reach(size: int, windows: int, kernel: int, stride: int, dilation: int, before: int) -> tuple[bool, bool]:
    """(covered, touching) of :class:`Reach` along one axis of ``size`` input rows, read by ``windows`` windows
    of ``kernel`` taps ``dilation`` apart, one every ``stride`` rows from row ``-before`` (in the padding)."""
    reads = [
        [tap for tap in range(start, start + kernel * dilation, dilation) if 0 <= tap < size]
        for start in range(-before, windows * stride - before, stride)
    ]
    return len({tap for taps in reads for tap in taps}) == size, all(reads)


def transposed_axis_reach(
    size: int, outputs: int, kernel: int, stride: int, dilation: int, before: int
) -> tuple[bool, bool]:
    """(covered, touching) of :class:`Reach` along one axis of a transposed convolution: input ``i`` adds to the
    ``kernel`` outputs ``i * stride - before + k * dilation`` that lie among the ``outputs`` (the rest cropped)."""
    reads = [
        [o for o in range(i * stride - before, i * stride - before + kernel * dilation, dilation) if 0 <= o < outputs]
        for i in range(size)
    ]
    return all(reads), len({o for taps in reads for o in taps}) == outputs


def reads_every_input(layer: Layer) -> bool:
    """Whether each output element of ``layer`` reads every element of its (only) input: a barrier."""
    if TRAITS[layer.op].whole_input:
        return True
    if layer.op not in (Op.CONV, Op.CONV_TRANSPOSE) or layer.input_shape[:2] != (1, 1):
        return False
    assert isinstance(layer.attrs, (ConvAttrs, ConvTransposeAttrs))
    reach = _reach(layer, 0)
    return layer.attrs.groups == 1 and reach is not None and reach.touching


def covers(layer: Layer, slot: int) -> bool:
    """Whether every element of input ``slot`` is read by some output element of ``layer``."""
    if layer.op is Op.SLICE:
        return False
    if layer.op is Op.UPSAMPLE:
        assert isinstance(layer.attrs, UpsampleAttrs)
        return layer.attrs.mode == "nearest"  # row h is row h * f's source; bilinear: not claimed
    reach = _reach(layer, slot)
    return reach is None or reach.covered


def reads_from(layer: Layer, slot: int) -> bool:
    """Whether every output element of ``layer`` reads some element of input ``slot``."""
    if layer.op is Op.CONCAT and len(layer.inputs) > 1:
        return False  # each output channel copies one input's
    if layer.op is Op.PAD:
        assert isinstance(layer.attrs, PadAttrs)
        a = layer.attrs
        return a.mode != "constant" or a.top == a.bottom == a.left == a.right == 0
    reach = _reach(layer, slot)
    return reach is None or reach.touching


def _position(layers: tuple[Layer, ...], name: str) -> int:
    return next(i for i, layer in enumerate(layers) if layer.name == name)


def needed_by(layers: tuple[Layer, ...], barrier: str) -> set[str]:
    """The layers (and :data:`INPUT`) whose every output element the barrier's every output element reads."""
    consumers = consumers_of(layers)
    needed = {barrier}

    def needs(reader: Layer, name: str) -> bool:
        return reader.name == barrier or (reader.name in needed and covers(reader, reader.inputs.index(name)))

    for layer in reversed(layers[: _position(layers, barrier)]):
        if any(needs(reader, layer.name) for reader in consumers.get(layer.name, ())):
            needed.add(layer.name)
    if any(needs(reader, INPUT) for reader in consumers.get(INPUT, ())):
        needed.add(INPUT)
    return needed - {barrier}


def reading(layers: tuple[Layer, ...], barrier: str) -> set[str]:
    """The layers whose every output element reads, through a chain, some output element of the barrier."""
    full = {barrier}
    for layer in layers[_position(layers, barrier) + 1 :]:
        slots = [name in full for name in layer.inputs]
        some = any(found and reads_from(layer, i) for i, found in enumerate(slots))
        if some or (layer.op is Op.CONCAT and all(slots)):
            full.add(layer.name)
    return full - {barrier}


def after(layers: tuple[Layer, ...], barrier: str) -> set[str]:
    """The layers reading the barrier whose every input is the barrier or reads it, or that add or multiply two
    maps (one op per element, reading both): all their work follows the barrier."""
    later = reading(layers, barrier)
    return {
        layer.name
        for layer in layers
        if layer.name in later
        and (set(layer.inputs) <= later | {barrier} or (layer.op in (Op.ADD, Op.MUL) and len(layer.inputs) == 2))
    }


def _one_image_seconds(costs: list[LayerCost], unit: str, hardware: HardwareSpec) -> float:
    """The least time ``unit`` spends on one image's share of its layers of ``costs``, however the images are
    batched: its ops at the peak throughput, or on an array its MACs at one per PE a cycle (an op without MACs
    at two), since a smaller sub-batch may fill an array's folds better than the whole batch does."""
    spec, mine = hardware.compute[unit], [c for c in costs if c.unit == unit]
    if spec.array is None:
        return sum(c.ops / c.batch for c in mine) / spec.throughput
    assert spec.clock is not None
    cycles = sum((c.macs if c.macs else c.ops / 2) / c.batch for c in mine) / spec.macs_per_cycle
    return cycles / spec.clock


def _phase(costs: list[LayerCost], hardware: HardwareSpec, one_image: bool, maps_bytes: float) -> Phase:
    """The layers' compute for one image or every image, their weights and ``maps_bytes``."""
    weights = sum(c.weight_bytes for c in costs if not c.weights_resident)
    units = {c.unit for c in costs}
    compute = {
        u: _one_image_seconds(costs, u, hardware) if one_image else unit_seconds(tuple(costs), u, hardware)
        for u in units
    }
    return Phase(compute, weights + maps_bytes, weights)


def split_time(ahead: Phase, behind: Phase, flexible: float, bandwidth: float, capacity: float) -> float:
    """Step 4: the least ``T`` over the bytes ``p`` loaded before the barrier for use after it: at most the
    capacity of the after weights, and any of the ``flexible`` bytes (module docstring)."""
    first = max(ahead.compute_s.values(), default=0.0)
    second = max(behind.compute_s.values(), default=0.0)
    late = behind.traffic_bytes + flexible
    most = min(capacity, behind.weight_bytes) + flexible

    def total(p: float) -> float:
        return max(first, (ahead.traffic_bytes + p) / bandwidth) + max(second, (late - p) / bandwidth)

    kinks = (first * bandwidth - ahead.traffic_bytes, late - second * bandwidth)
    return min(total(p) for p in (0.0, most, *(min(max(k, 0.0), most) for k in kinks)))


def _barrier_time(
    costs: tuple[LayerCost, ...], barrier: str, hardware: HardwareSpec, io: bool, capacity: float
) -> float:
    """The larger of the first and the last image's cut at ``barrier`` (module docstring, Batches)."""
    layers = tuple(c.layer for c in costs)
    needed, later, behind = needed_by(layers, barrier), reading(layers, barrier), after(layers, barrier)
    image = image_bytes(costs) if io and INPUT in needed else 0
    output = (
        link_bytes(costs[-1].output_bytes, costs[-1].output_link) if io and costs[-1].name in later | {barrier} else 0
    )
    batch, total = costs[0].batch, compulsory_bytes(costs, io)
    first = [c for c in costs if c.name in needed]
    last = [c for c in costs if c.name in behind]
    bandwidth = hardware.memory.external.effective_bandwidth
    times = []
    for ahead, ending in (
        (_phase(first, hardware, True, image / batch), _phase(last, hardware, False, output)),
        (_phase(first, hardware, False, image), _phase(last, hardware, True, output / batch)),
    ):
        flexible = total - ahead.traffic_bytes - ending.traffic_bytes
        times.append(split_time(ahead, ending, flexible, bandwidth, capacity))
    return max(times)


def _best_barrier(
    costs: tuple[LayerCost, ...], hardware: HardwareSpec, io: bool, capacity: float
) -> tuple[float, str | None]:
    barriers = [c.name for c in costs if reads_every_input(c.layer)]
    found = [(_barrier_time(costs, barrier, hardware, io, capacity), barrier) for barrier in barriers]
    return max(found, default=(0.0, None))


def cut_bound(costs: tuple[LayerCost, ...], hardware: HardwareSpec, io: bool = True) -> CutBound:
    """The stronger bound for ``costs`` (a whole network, in order) on ``hardware``.

    ``io=False`` drops the image and the output from the traffic and lifts the capacity, for a schedule that
    assumes the image on chip, leaves the scores there and ignores capacity (the ``paper`` policy)."""
    capacity = hardware.memory.internal.capacity if io else math.inf
    variants = (costs, fold_batchnorm(costs, hardware)[0])
    time, layer = min((_best_barrier(v, hardware, io, capacity) for v in variants), key=lambda found: found[0])
    plain = lower_bound(costs, hardware, io).total_s
    return CutBound(time, layer) if time > plain else CutBound(plain, None)
