"""The Coral Edge TPU's MobileNet latencies taken apart with what is published, and the fit the profile adopted.

Before the fit, hwsim predicted MobileNet v1 and v2 on `coral-edge-tpu` at about a fifth of the 2.4 and 2.6 ms
coral.ai measures. This script puts beside those figures what public sources say about where an inference's time
goes, so that docs/accelerators.md ("The Edge TPU") can quote it: the figures are transcribed (third-party captures
and Google's compiled models, not specifications), and the candidate mappings are hwsim's SCALE-Sim count on
geometries read off Google's driver. Its last section is the fit `coral-edge-tpu` adopted (marked `fitted` there):
the depthwise unit's rate, bisected until hwsim gives MobileNet v1 its measured latency, MobileNet v2 held out.
Run from the repository root:

    python benchmarks/coral.py
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from hwsim import api
from hwsim.cost.cycles import MatrixView, matrix_view, view_cycles
from hwsim.ops import Op
from hwsim.spec.hardware import Dataflow, HardwareSpec
from hwsim.studies.validation import load_cases

CLOCK = 500e6  # Hz at the "Max" performance level (libedgetpu, driver/beagle/beagle_top_level_handler.cc)
TILES = 16  # 4 x 4 (libedgetpu, driver/config/beagle/beagle_chip_structures.h: number_x_tiles, number_y_tiles)
MACS_PER_CYCLE = 4096  # 4 TOPS at 500 MHz is 4,000 MACs a cycle; 16 tiles of 16 x 16 and one 64 x 64 array are 4,096
MS = 1e3

# A usbmon capture of Google's mobilenet_v1_1.0_224_quant_edgetpu.tflite on a USB Accelerator, USB 3.0, Jetson Nano
# host at 10 W, 2019: github.com/iwatake2222/EdgeTPU_Analysis at 1f5fbce,
# Ops/log_wireshark/detail_mobilenet_v1_1.0_224_quant_edgetpu.txt (the setup: its author's
# qiita.com/iwatake2222/items/922f02893355b30dab2e).
# Every inference sends a header and 82,768 bytes tagged 0 (instructions), a header and the 150,528-byte image
# tagged 1, and reads 1,008 bytes of scores and a 16-byte status. Times from the first header's submission, mean of
# the four inferences after the model load (each within 0.03 ms of it).
CAPTURE_INSTRUCTION_BYTES = 82_768
CAPTURE_IMAGE_BYTES = 150_528
CAPTURE_IMAGE_SENT_S = 0.826e-3  # the image's transfer completes (the instructions' at 0.437 ms)
CAPTURE_SCORES_AFTER_IMAGE_S = 1.517e-3  # from the image's completion to the scores' (1.512 to 1.522 ms)
CAPTURE_SCORES_S = 2.343e-3  # the scores' completion: the inference as the host sees it, less the status read
# The model load in the same capture sends 4,415,744 bytes of parameters in 1 MiB transfers; three of them complete
# 7.468 ms apart in all: the link's sustained rate, 84 % of USB 3.0's 500 MB/s.
CAPTURE_LINK_RATE = 3 * 2**20 / 7.468e-3


@dataclass(frozen=True)
class Compiled:
    """What a compiled model says of one inference: instruction bytes sent, and the compiler's cycle estimate."""

    file: str
    instruction_bytes: int
    estimated_cycles: int
    with_classifier: bool  # whether the estimate covers the network's last dense layer


# What Google's compiler put in its compiled models (github.com/google-coral/edgetpu at 5020de9, test_data/; read with
# libedgetpu's executable/executable.fbs): the instruction bytes the execution-only executable sends every inference,
# and its estimated_cycles_64bit. MobileNet v1's compiled model is over the size this study could fetch; its
# embedding extractor (the same network without the classifier) stands in for the estimate.
COMPILED = {
    "mobilenet-v1": Compiled("mobilenet_v1_1.0_224_quant_embedding_extractor_edgetpu.tflite", 66_544, 685_376, False),
    "mobilenet-v2": Compiled("mobilenet_v2_1.0_224_quant_edgetpu.tflite", 129_632, 458_040, True),
}
# The instruction bytes each inference sends: MobileNet v1's whole model's from the capture.
INSTRUCTION_BYTES = {
    "mobilenet-v1": CAPTURE_INSTRUCTION_BYTES,
    "mobilenet-v2": COMPILED["mobilenet-v2"].instruction_bytes,
}

# The same author's timings of the two networks on that host (Result.xlsx, sheet Ops_etc; mean of 10 inferences).
HOST_MS = {"mobilenet-v1": 2.411, "mobilenet-v2": 2.526}

# A second workload from the same author and host (Result.xlsx, sheet Ops_conv; Ops/model_generator_conv.py): a
# 2x2x3 input padded to 128x128x3, then N layers of 32 filters of 7x7 ('same', ReLU); mean of 10 inferences. Its
# input and output are a few bytes, so the time is the chip's. Its compiled models (Ops/model_conv/, compiler 1.0)
# carry the compiler's estimate. Each layer past the first is this matrix product:
CONV_STACK_MS = {10: 7.817, 50: 40.732}
CONV_STACK_ESTIMATED_CYCLES = {10: 7_325_712, 50: 39_438_352}
CONV_STACK_LAYER = MatrixView(groups=1, pixels=128 * 128, window=7 * 7 * 32, filters=32)

GEOMETRIES = [("64x64", 1, 64), ("16x16 tiles", TILES, 16)]  # one array, or one per tile
MATRIX_DATAFLOWS = [Dataflow.OS, Dataflow.WS, Dataflow.IS]


def matrix_layers(network: str, classifier: bool) -> list[MatrixView]:
    """The network's convolutions (and its classifier if asked) as matrix views, batch 1."""
    net = api.load_network(network)
    views = [(layer.op, matrix_view(layer, 1)) for layer in net.layers]
    return [v for op, v in views if v is not None and (classifier or op is not Op.DENSE)]


def split_over_tiles(view: MatrixView, tiles: int, by_pixels: bool = False) -> MatrixView:
    """One tile's share of a layer split evenly: a grouped or depthwise one by groups (channels), others by filters
    (or by output pixels)."""
    if view.groups > 1:
        return replace(view, groups=math.ceil(view.groups / tiles))
    if by_pixels:
        return replace(view, pixels=math.ceil(view.pixels / tiles))
    return replace(view, filters=math.ceil(view.filters / tiles))


def network_cycles(views: list[MatrixView], tiles: int, side: int, dataflow: Dataflow, by_pixels: bool = False) -> int:
    """Cycles of the layers one after another, each split over ``tiles`` arrays of ``side x side`` working at once."""
    return sum(view_cycles(split_over_tiles(v, tiles, by_pixels), side, side, dataflow) for v in views)


def fixed_and_rest() -> tuple[float, float]:
    """What the capture leaves once MobileNet v1's bytes at the link's rate and its compiler estimate are taken out:
    the time before the image is in that is not bytes, and the time after it that is not the estimated cycles."""
    bytes_in = CAPTURE_INSTRUCTION_BYTES + CAPTURE_IMAGE_BYTES
    fixed = CAPTURE_IMAGE_SENT_S - bytes_in / CAPTURE_LINK_RATE
    rest = CAPTURE_SCORES_AFTER_IMAGE_S - COMPILED["mobilenet-v1"].estimated_cycles / CLOCK
    return fixed, rest


def main() -> None:
    measured = {c.network: c.metrics[0].measured for c in load_cases() if c.hardware == "coral-edge-tpu"}

    print("MobileNet v1 on a USB Accelerator, one inference (iwatake2222's capture), ms from the first header")
    print(f"  image sent {CAPTURE_IMAGE_SENT_S * MS:.3f}, scores back {CAPTURE_SCORES_S * MS:.3f}")
    print(f"  image sent to scores back: {CAPTURE_SCORES_AFTER_IMAGE_S * MS:.3f}")
    print(f"  the author's timings on that host: {', '.join(f'{n} {t:.2f}' for n, t in HOST_MS.items())}")
    print(f"  link, 1 MiB transfers: {CAPTURE_LINK_RATE / 1e6:.1f} MB/s ({CAPTURE_LINK_RATE / 500e6:.1%} of 500 MB/s)")
    fixed, rest = fixed_and_rest()
    print(f"  before the image is in, not bytes: {fixed * MS:.3f}; after it, not estimated cycles: {rest * MS:.3f}")
    slow = CAPTURE_SCORES_S + COMPILED["mobilenet-v1"].estimated_cycles / CLOCK
    print(f"  the same with the chip at 250 MHz (its cycles twice as long, nothing else): {slow * MS:.3f}")

    links = {n: (INSTRUCTION_BYTES[n] + CAPTURE_IMAGE_BYTES) / CAPTURE_LINK_RATE for n in COMPILED}
    print("\nThe parts added up: fixed + (instructions + image) at the link's rate + chip, ms, against measured")
    for n in COMPILED:
        sent = INSTRUCTION_BYTES[n] + CAPTURE_IMAGE_BYTES
        print(f"  {n}: fixed {fixed * MS:.3f} + link {links[n] * MS:.3f} ({sent:,} B); measured {measured[n] * MS:.1f}")
    for n, c in COMPILED.items():
        print(f"  compiler: {n} from {c.file}: {c.estimated_cycles:,} cycles, {c.instruction_bytes:,} instruction B")
    print(f"{'chip model':22}" + "".join(f" {f'{n} chip':>18} {'vs compiler':>11} {'total':>17}" for n in COMPILED))
    chips = chip_times()
    for model, times in chips.items():
        cells = []
        for n in COMPILED:
            total = fixed + links[n] + times[n]
            versus = times[n] / chips["compiler"][n] - 1
            cells.append(
                f" {times[n] * MS:18.3f} {versus:+11.1%} {f'{total * MS:.3f} ({total / measured[n] - 1:+.1%})':>17}"
            )
        print(f"{model:22}" + "".join(cells))
    print("Chips at 500 MHz; v1's chip without its classifier, as the compiler's estimate. The scores' return after")
    print(f"the chip is left out: with the compiler's estimate, the capture leaves {rest * MS:.3f} ms for it and v1's")
    print("classifier.")
    conv_stack()
    depthwise_left_over(fixed, measured)
    fitted_profile(measured)


def conv_stack() -> None:
    """The conv stack's time per layer, measured and estimated, beside the candidates' cycles for one layer."""
    (n0, t0), (n1, t1) = CONV_STACK_MS.items()
    measured = (t1 - t0) / (n1 - n0) / MS
    estimate = (CONV_STACK_ESTIMATED_CYCLES[n1] - CONV_STACK_ESTIMATED_CYCLES[n0]) / (n1 - n0) / CLOCK
    print(f"\nA stack of 7x7 convolutions, 32 to 32 channels on 128x128 (iwatake2222), ms a layer, {n0} to {n1} layers")
    print(f"  measured {measured * MS:.3f} ({CONV_STACK_LAYER.macs / (measured * CLOCK):,.0f} MACs a cycle at 500 MHz)")
    print(f"  compiler's estimate {estimate * MS:.3f} ({estimate / measured - 1:+.1%})")
    peak = CONV_STACK_LAYER.macs / MACS_PER_CYCLE / CLOCK
    print(f"  peak {peak * MS:.3f} ({peak / measured - 1:+.1%})")
    for geometry, tiles, side, by_pixels in candidates():
        for dataflow in MATRIX_DATAFLOWS:
            chip = network_cycles([CONV_STACK_LAYER], tiles, side, dataflow, by_pixels) / CLOCK
            print(
                f"  {label(geometry, tiles, by_pixels)} {dataflow.value}: {chip * MS:.3f} ({chip / measured - 1:+.1%})"
            )


def depthwise_left_over(fixed: float, measured: dict[str, float]) -> None:
    """If the other layers ran as on one 64x64 array (as the conv stack does), the time the parts leave for the
    depthwise layers (and the scores' return), and the rate of depthwise MACs that makes: a consistency check."""
    print("\nThe other layers on one 64x64 array; what the measured totals leave for the depthwise ones, ms")
    for network in COMPILED:
        views = matrix_layers(network, classifier=True)
        depthwise = [v for v in views if v.groups > 1]
        others = [v for v in views if v.groups == 1]
        link = (INSTRUCTION_BYTES[network] + CAPTURE_IMAGE_BYTES) / CAPTURE_LINK_RATE
        for dataflow in (Dataflow.OS, Dataflow.WS):
            rest = network_cycles(others, 1, 64, dataflow) / CLOCK
            left = measured[network] - fixed - link - rest
            rate = sum(v.macs for v in depthwise) / left
            print(
                f"  {network} {dataflow.value}: other layers {rest * MS:.3f}, left {left * MS:.3f}:"
                f" depthwise MACs at {rate / 1e9:.1f} G/s ({rate / CLOCK:.0f} a cycle)"
            )


def profile_with(dataflow: Dataflow, depthwise_rate: float) -> HardwareSpec:
    """``coral-edge-tpu`` with its array's dataflow and its depthwise unit's rate (ops/s) replaced."""
    profile = api.load_hardware("coral-edge-tpu").model_dump()
    compute = profile["compute"]
    compute["matrix"] = {**compute["matrix"], "dataflow": dataflow.value}
    compute["depthwise"] = {**compute["depthwise"], "throughput": depthwise_rate}
    return HardwareSpec.model_validate(profile)


def latency(network: str, profile: HardwareSpec) -> float:
    """hwsim's latency of one image, as `hwsim validate` runs the Edge TPU cases."""
    return float(api.estimate(api.load_network(network), profile, "optimized").summary()["total_time_s"])


def fit_depthwise_rate(dataflow: Dataflow, measured: float, tolerance: float = 1e-4) -> float:
    """The depthwise rate (ops/s) at which hwsim gives MobileNet v1 its ``measured`` latency with the array under
    ``dataflow``: a bisection on the rate's logarithm (v1's latency falls as the rate rises), to ``tolerance``."""
    low, high = 1e9, 1e12
    while high / low > 1 + tolerance:
        rate = math.sqrt(low * high)
        low, high = (rate, high) if latency("mobilenet-v1", profile_with(dataflow, rate)) > measured else (low, rate)
    return math.sqrt(low * high)


def fitted_profile(measured: dict[str, float]) -> None:
    """The profile's depthwise rate refitted on MobileNet v1 (ws, the profile's array), and MobileNet v2 held out;
    the same fit with the array output stationary, for comparison."""
    profile = api.load_hardware("coral-edge-tpu")
    given = profile.compute["depthwise"].throughput
    print("\ncoral-edge-tpu: one 64x64 array at 500 MHz, and its depthwise unit fitted on MobileNet v1 (v2 held out)")
    for dataflow in (Dataflow.WS, Dataflow.OS):
        rate = fit_depthwise_rate(dataflow, measured["mobilenet-v1"])
        fitted = profile_with(dataflow, rate)
        v1, v2 = (latency(n, fitted) for n in COMPILED)
        print(
            f"  {dataflow.value}: depthwise at {rate / 1e9:.2f} G ops/s; v1 {v1 * MS:.3f} (fitted),"
            f" v2 {v2 * MS:.3f} ms ({v2 / measured['mobilenet-v2'] - 1:+.1%})"
        )
    v1, v2 = (latency(n, profile) for n in COMPILED)
    print(
        f"  the profile as written (depthwise at {given / 1e9:.2f} G ops/s):"
        f" v1 {v1 * MS:.3f} ms ({v1 / measured['mobilenet-v1'] - 1:+.2%}), v2 {v2 * MS:.3f} ms"
        f" ({v2 / measured['mobilenet-v2'] - 1:+.1%})"
    )


def chip_times() -> dict[str, dict[str, float]]:
    """Seconds each chip model gives each network's matrix layers: the peak, the compiler's estimate, the candidates."""
    views = {n: matrix_layers(n, c.with_classifier) for n, c in COMPILED.items()}
    times = {
        "peak": {n: sum(v.macs for v in views[n]) / MACS_PER_CYCLE / CLOCK for n in COMPILED},
        "compiler": {n: c.estimated_cycles / CLOCK for n, c in COMPILED.items()},
    }
    for geometry, tiles, side, by_pixels in candidates():
        for dataflow in MATRIX_DATAFLOWS:
            times[f"{label(geometry, tiles, by_pixels)} {dataflow.value}"] = {
                n: network_cycles(views[n], tiles, side, dataflow, by_pixels) / CLOCK for n in COMPILED
            }
    return times


def candidates() -> list[tuple[str, int, int, bool]]:
    """(geometry, tiles, side, split by pixels): one array, and the tiles with either split of a non-depthwise layer."""
    return [(g, t, s, p) for g, t, s in GEOMETRIES for p in ((False, True) if t > 1 else (False,))]


def label(geometry: str, tiles: int, by_pixels: bool) -> str:
    return geometry + ((" pixels" if by_pixels else " filters") if tiles > 1 else "")


if __name__ == "__main__":
    main()
