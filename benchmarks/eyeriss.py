"""Eyeriss v1 beside hwsim layer by layer: DRAM traffic under three loop orders, energy by level, power against work,
and the row-stationary mapping (eyeriss-v1-rs) against the published mapping, PEs, processing times and buffer traffic.

The figures docs/accelerators.md and docs/energy.md quote for Eyeriss come from here. Eyeriss's own figures are from
Chen et al., IEEE JSSC 52(1), 2017, Tables III, V and VI, as transcribed by FODLAM (github.com/cucapra/fodlam,
raw/eyeriss-table*.txt and data/eyeriss-*.csv). Run from the repository root:

    python benchmarks/eyeriss.py
"""

from __future__ import annotations

import math

from eyeriss_tables import ACTIVE_PES, TABLE_III, TABLE_V, TABLE_VI, VGG_ZEROS_AND_DRAM  # beside this script

from hwsim import api
from hwsim.cost.coding import coded_ratio
from hwsim.cost.cycles import layer_cycles
from hwsim.cost.inference import LayerCost, graph_costs
from hwsim.cost.rowstationary import (
    ConvShape,
    Mapping,
    conv_shape,
    costed_mappings,
    layer_mapping,
    mapping_rank,
)
from hwsim.estimate import Estimate
from hwsim.spec.energy import energy_table
from hwsim.spec.hardware import ComputeUnit
from hwsim.studies.validation import load_cases, published_rows

BATCH = 4
VGG_BATCH = 3
VALUE = 2  # bytes: 16-bit fixed point
MB = 1e6
MATCH = 0.10
"""How close a mapping's buffer traffic must come to Table VI's to count as one the table allows."""

# Table III, AlexNet's mapping: M filters, m of them per pass (their partial sums held in the global buffer),
# n images per pass (their filters loaded once for them), e output rows per pass.
MAPPING = {
    "conv1": {"m": 96, "n": 1, "e": 7},
    "conv2": {"m": 64, "n": 1, "e": 27},
    "conv3": {"m": 64, "n": 4, "e": 13},
    "conv4": {"m": 64, "n": 4, "e": 13},
    "conv5": {"m": 64, "n": 4, "e": 13},
}


def rlc(zeros: float) -> float:
    """Bytes after Eyeriss's run-length coding per byte before it (hwsim.cost.coding)."""
    return coded_ratio(zeros, VALUE)


def case_run(case: str) -> tuple[Estimate, Estimate]:
    """`hwsim validate`'s run of an Eyeriss case: its maps raw, and coded at the zero fractions the case gives."""
    found = next(c for c in load_cases() if c.case == case)
    network, hw = found.graph(), api.load_hardware(found.hardware)
    raw = api.estimate(network, hw, found.policy, batch=found.batch)
    return raw, api.estimate(network, hw, found.policy, batch=found.batch, map_zeros=found.map_zeros)


def schedule_dram(run: Estimate, layer: str) -> float:
    """Bytes the schedule moves over DRAM for ``layer``'s steps."""
    return sum(t.bytes for s in run.schedule.steps if layer in s.layers for t in s.transfers)


def dram_orders(run: Estimate, coded_run: Estimate) -> list[tuple[str, float, float, float, float, float, float]]:
    """Per conv layer (MB for the batch): hwsim's schedule, that schedule with its feature maps run-length coded at
    Table V's zero fractions (the `hwsim validate` case's), every tensor once, Table III's loop order, that order
    coded alike (an output at its next layer's input's zeros), published."""
    layers = [c for c in run.costs if c.layer.op.value == "conv"]
    rows = []
    for i, c in enumerate(layers):
        mapping, (_, _, _, zeros, _, published) = MAPPING[c.name], TABLE_V[c.name]
        next_zeros = TABLE_V[layers[i + 1].name][3] if i + 1 < len(layers) else 0.0
        loop = loop_order_bytes(c, mapping["e"], mapping["n"], mapping["m"], BATCH, 0.0, 0.0)
        coded = loop_order_bytes(c, mapping["e"], mapping["n"], mapping["m"], BATCH, zeros, next_zeros)
        moved, ours = schedule_dram(run, c.name), schedule_dram(coded_run, c.name)
        once = sum(c.input_bytes) + c.weight_bytes + c.output_bytes
        rows.append((c.name, moved / MB, ours / MB, once / MB, loop / MB, coded / MB, published))
    return rows


def loop_order_bytes(c: LayerCost, e: int, n: int, m: int, batch: int, zeros: float, next_zeros: float) -> float:
    """A conv layer's DRAM bytes under Eyeriss's loop order (Timeloop's constraints, docs/accelerators.md) for a
    mapping's ``e`` output rows, ``n`` images and ``m`` filters a pass: the filters once per ``n`` images (strips
    share them), the ifmap once per group of ``m`` filters (rows two strips share, again), the ofmap once; the
    maps run-length coded at ``zeros`` (the ifmap) and ``next_zeros`` (the ofmap, as the next layer reads it)."""
    ho, hi = c.layer.output_shape[0], c.layer.input_shape[0]
    stride = c.layer.attrs.stride[0]  # type: ignore[union-attr]
    kernel = c.layer.attrs.kernel[0]  # type: ignore[union-attr]
    bands = math.ceil(ho / e)
    halo = bands * ((e - 1) * stride + kernel) / hi if bands > 1 else 1.0
    groups = math.ceil(c.layer.output_shape[2] / m)
    ifmap = sum(c.input_bytes) * halo * groups * (rlc(zeros) if zeros else 1.0)
    ofmap = c.output_bytes * (rlc(next_zeros) if next_zeros else 1.0)
    return c.weight_bytes * batch / n + ifmap + ofmap


def energy_levels(run: Estimate) -> dict[str, dict[str, float]]:
    """Per conv layer, joules at each level for the batch: MACs, PE registers, links between PEs, global buffer as the
    dataflow reads it (hwsim.cost.accesses; the schedule's own loads and stores aside)."""
    table = energy_table(run.hardware, run.schedule.precision)
    result = {}
    for c in run.costs:
        if c.layer.op.value != "conv":
            continue
        a = run.layer_accesses[c.name]
        result[c.name] = {
            "MAC": c.macs * table.mac_j[c.unit],
            "register": a.register * table.register_j[c.unit],
            "inter-PE": a.inter_pe * table.inter_pe_j[c.unit],
            "buffer": (a.sram_reads + a.output_writes) * VALUE * table.internal_read_j_per_byte,
        }
    return result


def row_stationary(run: Estimate) -> list[tuple[str, tuple[int, ...], int, float, float]]:
    """Per conv layer under eyeriss-v1-rs: its mapping (e, p, q, r, t, n, m), active PEs, processing time (ms) and
    global-buffer traffic (MB: ifmap and partial-sum reads, partial-sum writes, as Table V counts the buffer)."""
    unit = run.hardware.compute["matrix"]
    assert unit.array is not None and unit.row_stationary is not None and unit.clock is not None
    rows = []
    for c in run.costs:
        if c.layer.op.value != "conv":
            continue
        mp = layer_mapping(c.layer, c.batch, unit.array, unit.row_stationary, VALUE)
        assert mp is not None
        mv = mp.movement
        buffer_mb = (mv.ifmap_reads + mv.psum_reads + mv.output_writes) * VALUE / MB
        params = (mp.e, mp.p, mp.q, mp.r, mp.t, mp.n, mp.m)
        rows.append((c.name.split(".")[0], params, mp.active_pes, mp.cycles / unit.clock * 1e3, buffer_mb))
    return rows


def buffer_mb(mapping: Mapping) -> float:
    """A mapping's buffer traffic as Tables V and VI count it: ifmap and partial-sum reads, partial-sum writes."""
    mv = mapping.movement
    return (mv.ifmap_reads + mv.psum_reads + mv.output_writes) * VALUE / MB


def matching_table_vi(name: str, mappings: list[Mapping]) -> list[Mapping]:
    """Of a VGG-16 layer's legal mappings, those with Table VI's active PEs and buffer traffic within MATCH of Table
    VI's, in the search's order. Not Eyeriss's mapping (Table VI does not give it): the mappings its figures allow."""
    _, _, _, pes, published_mb = TABLE_VI[name]
    found = [mp for mp in mappings if mp.active_pes == pes and abs(buffer_mb(mp) / published_mb - 1) <= MATCH]
    return sorted(found, key=mapping_rank)


def print_vgg_layer_by_layer() -> None:
    """Table VI's processing time per layer beside eyeriss-v1 (is), eyeriss-v1-rs (its own search), and the rs cost of
    the mappings Table VI's active PEs and buffer traffic allow; and the buffer traffic Table VI measured a second."""
    unit_is = api.load_hardware("eyeriss-v1").compute["matrix"]
    hw = api.load_hardware("eyeriss-v1-rs")
    unit = hw.compute["matrix"]
    assert unit.array is not None and unit.row_stationary is not None and unit.clock is not None
    ms = 1e3 / unit.clock
    print(
        f"\nVGG-16, batch {VGG_BATCH}, processing ms per layer: Table VI; its buffer traffic (GB/s); eyeriss-v1 (is);"
        f" eyeriss-v1-rs (search); rs with the mappings Table VI's active PEs and buffer MB (within {MATCH:.0%})"
        " allow: how many, their range, the first in the search's order (e p q r t n m), its buffer MB"
    )
    totals = [0.0] * 4
    vgg = graph_costs(api.load_network("vgg16"), hw, batch=VGG_BATCH)
    costs = {c.name.split(".")[0]: c for c in vgg if c.layer.op.value == "conv"}
    for name, (_, mappings) in all_mappings("vgg16", VGG_BATCH, unit).items():
        _, _, pub_ms, _, pub_mb = TABLE_VI[name]
        is_ms = layer_cycles(costs[name], unit_is) * ms
        rs_ms = min(mappings, key=mapping_rank).cycles * ms
        allowed = matching_table_vi(name, mappings)
        first = allowed[0]
        span = [mp.cycles * ms for mp in allowed]
        params = " ".join(f"{v:3d}" for v in (first.e, first.p, first.q, first.r, first.t, first.n, first.m))
        print(
            f"{name:8} {pub_ms:6.1f} {pub_mb / pub_ms:5.2f}  is {is_ms:6.1f} {is_ms / pub_ms - 1:+5.0%}"
            f"  rs {rs_ms:6.1f} {rs_ms / pub_ms - 1:+5.0%}"
            f"  allowed {len(allowed):3d} {min(span):6.1f}..{max(span):6.1f}"
            f"  first {params} {span[0]:6.1f} {span[0] / pub_ms - 1:+5.0%} {buffer_mb(first):7.1f} ({pub_mb:6.1f})"
        )
        totals = [t + v for t, v in zip(totals, (pub_ms, is_ms, rs_ms, span[0]))]
    print(
        f"{'total':8} {totals[0]:6.1f}        is {totals[1]:6.1f} {totals[1] / totals[0] - 1:+5.0%}"
        f"  rs {totals[2]:6.1f} {totals[2] / totals[0] - 1:+5.0%}  {'':25} first {'':27} {totals[3]:6.1f}"
        f" {totals[3] / totals[0] - 1:+5.0%}"
    )


def chosen_within(shape: ConvShape, mappings: list[Mapping], limit: int | None) -> Mapping:
    """A hypothesis, read off Table VI and not from the chip's description: the search kept to passes whose channels
    times ifmap row width (q x r x input columns) is at most ``limit`` values, unless the pass has one channel."""

    def within(mp: Mapping) -> bool:
        return limit is None or mp.q * mp.r == 1 or mp.q * mp.r * shape.width_in <= limit

    return min(filter(within, mappings), key=mapping_rank)


def all_mappings(network: str, batch: int, unit: ComputeUnit) -> dict[str, tuple[ConvShape, list[Mapping]]]:
    """Every conv layer's legal mappings (named as Tables III, V and VI name the layers)."""
    assert unit.array is not None and unit.row_stationary is not None
    found = {}
    for c in graph_costs(api.load_network(network), api.load_hardware("eyeriss-v1-rs"), batch=batch):
        shape = conv_shape(c.layer, batch, unit.array[0], unit.row_stationary)
        if c.layer.op.value == "conv" and shape is not None:
            found[c.name.split(".")[0]] = (shape, list(costed_mappings(shape, *unit.array, unit.row_stationary, VALUE)))
    return found


def print_channels_by_width_hypothesis() -> None:
    """:func:`chosen_within` over a range of limits: AlexNet's mappings against Table III, and both networks'
    processing against Tables V and VI."""
    unit = api.load_hardware("eyeriss-v1-rs").compute["matrix"]
    assert unit.clock is not None
    alexnet, vgg = all_mappings("alexnet", BATCH, unit), all_mappings("vgg16", VGG_BATCH, unit)
    pub_alex = sum(v[2] for v in TABLE_V.values())
    pub_ms, pub_mb = sum(v[2] for v in TABLE_VI.values()), sum(v[4] for v in TABLE_VI.values())
    print("\nHypothesis (read off Table VI, not modelled): a pass's channels x ifmap row width <= LIMIT, unless one")
    print(f"LIMIT   AlexNet as Table III, ms ({pub_alex:.1f})   VGG-16 ms ({pub_ms:.1f}), buffer MB ({pub_mb:.1f})")
    for limit in (112, 119, 120, 173, 174, 228, None):
        picks = {name: chosen_within(*found, limit) for name, found in alexnet.items()}
        same = sum((mp.e, mp.p, mp.q, mp.r, mp.t, mp.n, mp.m) == TABLE_III[name] for name, mp in picks.items())
        alex_ms = sum(mp.cycles for mp in picks.values()) / unit.clock * 1e3
        vgg_picks = [chosen_within(*found, limit) for found in vgg.values()]
        vgg_ms = sum(mp.cycles for mp in vgg_picks) / unit.clock * 1e3
        vgg_mb = sum(buffer_mb(mp) for mp in vgg_picks)
        print(
            f"{'none' if limit is None else limit:>5}   {same} of 5, {alex_ms:5.1f} {alex_ms / pub_alex - 1:+4.0%}"
            f"          {vgg_ms:7.1f} {vgg_ms / pub_ms - 1:+5.0%}, {vgg_mb:8.1f} {vgg_mb / pub_mb - 1:+5.0%}"
        )


def print_architecture_costs() -> None:
    """Costs the published architecture might add that the model leaves out, on the search's own mappings (processing
    ms of the conv layers): a 64-bit bus bounding the partial sums written back too; all buffer traffic over the two
    64-bit partial-sum buses (8 values a cycle); the filters loaded into the pads with the array idle."""
    unit = api.load_hardware("eyeriss-v1-rs").compute["matrix"]
    assert unit.clock is not None and unit.row_stationary is not None
    bus = unit.row_stationary.psum_bus
    print(
        "\nOn the search's mappings, ms: as modelled, + write-back bus, all buffer traffic / 8, filters not overlapped"
    )
    for network, batch, published in (("alexnet", BATCH, TABLE_V), ("vgg16", VGG_BATCH, TABLE_VI)):
        totals = [0.0] * 4
        for _, mappings in all_mappings(network, batch, unit).values():
            mp = min(mappings, key=mapping_rank)
            mv = mp.movement
            buffer = mv.ifmap_reads + mv.psum_reads + mv.output_writes
            variants = (
                mp.cycles,
                max(mp.cycles, math.ceil(mv.output_writes / bus)),
                max(mp.compute_cycles, math.ceil(buffer / (2 * bus)), math.ceil(mv.filter_reads / bus)),
                mp.cycles + math.ceil(mv.filter_reads / unit.row_stationary.filter_bus),
            )
            totals = [t + v / unit.clock * 1e3 for t, v in zip(totals, variants)]
        pub = sum(row[2] for row in published.values())
        print(f"{network:8} " + " ".join(f"{v:7.1f}" for v in totals) + f"   published {pub:7.1f}")


def print_vgg_dram() -> None:
    """VGG-16's DRAM traffic under `hwsim validate`'s case (eyeriss-v1, strict, batch 3): raw, and with its maps
    run-length coded at Table VI's zero fractions (workload data, not fitted), against Table VI's per layer."""
    run, coded_run = case_run("eyeriss-v1/vgg16")
    layers = [c for c in run.costs if c.layer.op.value == "conv"]
    mappings = all_mappings("vgg16", VGG_BATCH, api.load_hardware("eyeriss-v1-rs").compute["matrix"])
    print(
        "\nVGG-16 conv layers, batch 3: DRAM MB under strict, raw and run-length coded at Table VI's zeros; Eyeriss's"
        " loop order for the first mapping Table VI allows (e n m), coded; Table VI"
    )
    totals = [0.0] * 4
    for i, c in enumerate(layers):
        name = c.name.split(".")[0]
        zeros, published = VGG_ZEROS_AND_DRAM[name]
        next_zeros = VGG_ZEROS_AND_DRAM[layers[i + 1].name.split(".")[0]][0] if i + 1 < len(layers) else 0.0
        first = matching_table_vi(name, mappings[name][1])[0]
        loop = loop_order_bytes(c, first.e, first.n, first.m, VGG_BATCH, zeros, next_zeros)
        moved, coded = schedule_dram(run, c.name), schedule_dram(coded_run, c.name)
        values = (moved / MB, coded / MB, loop / MB, published)
        totals = [t + v for t, v in zip(totals, values)]
        print(
            f"{name:8} {moved / MB:8.2f} {coded / MB:8.2f}   {first.e:3d} {first.n} {first.m:3d} {loop / MB:8.2f}"
            f" {published:8.1f}"
        )
    macs = sum(c.macs for c in layers)
    per_mac = [mb * MB / VALUE / macs for mb in totals]
    print(f"{'total':8} {totals[0]:8.2f} {totals[1]:8.2f}   {'':9} {totals[2]:8.2f} {totals[3]:8.2f}")
    print(f"{'per MAC':8} {per_mac[0]:8.4f} {per_mac[1]:8.4f}   {'':9} {per_mac[2]:8.4f} {per_mac[3]:8.4f}")


def print_validation_under_rs() -> None:
    """`hwsim validate`'s Eyeriss rows with eyeriss-v1-rs in place of the bundled eyeriss-v1, side by side."""
    cases = [c for c in load_cases() if c.hardware == "eyeriss-v1"]
    as_is = published_rows(cases)
    as_rs = published_rows(cases, lambda name: api.load_hardware(f"{name}-rs"))
    print("\n`hwsim validate`'s Eyeriss rows: eyeriss-v1 (is) against eyeriss-v1-rs")
    for a, b in zip(as_is, as_rs):
        print(
            f"{a.case:20} {a.metric:24} {a.measured:9.4g} {a.predicted:9.4g} {a.rel_error:+7.1%}"
            f" {b.predicted:9.4g} {b.rel_error:+7.1%}"
        )


def print_row_stationary() -> None:
    hw = api.load_hardware("eyeriss-v1-rs")
    print("\nRow stationary (eyeriss-v1-rs): mapping (e p q r t n m), active PEs, processing ms, buffer MB; published")
    runs = (("alexnet", BATCH, {n: (ACTIVE_PES[n], v[2], v[4]) for n, v in TABLE_V.items()}),)
    runs += (("vgg16", 3, {n: (v[3], v[2], v[4]) for n, v in TABLE_VI.items()}),)
    for network, batch, published in runs:
        run = api.estimate(api.load_network(network), hw, "strict", batch=batch)
        totals = [0.0] * 4
        for name, params, pes, ms, mb in row_stationary(run):
            if name not in published:
                continue
            pub_pes, pub_ms, pub_mb = published[name]
            table_iii = "  Table III " + " ".join(map(str, TABLE_III[name])) if name in TABLE_III else ""
            print(
                f"{network:8} {name:8} {' '.join(f'{v:3d}' for v in params)}  {pes:4d} ({pub_pes:3d})"
                f"  {ms:7.1f} ({pub_ms:6.1f}) {ms / pub_ms - 1:+6.0%}"
                f"  {mb:7.1f} ({pub_mb:6.1f}) {mb / pub_mb - 1:+6.0%}" + table_iii
            )
            totals = [t + v for t, v in zip(totals, (ms, pub_ms, mb, pub_mb))]
        print(
            f"{network:8} {'listed':8} {'':27}  {'':10}"
            f"  {totals[0]:7.1f} ({totals[1]:6.1f}) {totals[0] / totals[1] - 1:+6.0%}"
            f"  {totals[2]:7.1f} ({totals[3]:6.1f}) {totals[2] / totals[3] - 1:+6.0%}"
        )


def main() -> None:
    alexnet, alexnet_coded = case_run("eyeriss-v1/alexnet")

    print(f"AlexNet conv layers, batch {BATCH}: DRAM MB by loop order")
    widths = (8, 8, 8, 10, 8, 10)
    print(f"{'layer':8} {'hwsim':>8} {'+ RLC':>8} {'once':>8} {'Table III':>10} {'+ RLC':>8} {'published':>10}")
    totals = [0.0] * len(widths)
    for name, *values in dram_orders(alexnet, alexnet_coded):
        totals = [t + v for t, v in zip(totals, values)]
        print(f"{name:8} " + " ".join(f"{v:{w}.2f}" for v, w in zip(values, widths)))
    print(f"{'total':8} " + " ".join(f"{v:{w}.2f}" for v, w in zip(totals, widths)))

    print("\nAlexNet conv layers: energy by level (mJ for the batch) and buffer accesses per MAC")
    levels = energy_levels(alexnet)
    print(
        f"{'layer':8} {'MAC':>6} {'register':>9} {'inter-PE':>9} {'buffer':>7} {'sum':>6} {'published':>10}"
        f" {'buffer/MAC':>11} {'published':>10}"
    )
    for name, parts in levels.items():
        power, total_ms, _, _, buffer_mb, _ = TABLE_V[name]
        a, macs = alexnet.layer_accesses[name], next(c.macs for c in alexnet.costs if c.name == name)
        print(
            f"{name:8} "
            + " ".join(f"{v * 1e3:{w}.2f}" for v, w in zip(parts.values(), (6, 9, 9, 7)))
            + f" {sum(parts.values()) * 1e3:6.2f} {power * total_ms / 1e3:10.2f}"
            + f" {(a.sram_reads + a.output_writes) / macs:11.3f} {buffer_mb * MB / VALUE / macs:10.3f}"
        )
    whole = {k: sum(p[k] for p in levels.values()) for k in next(iter(levels.values()))}
    print("shares: " + ", ".join(f"{k} {v / sum(whole.values()):.0%}" for k, v in whole.items()))

    print("\nPublished power against work: a layer's MAC rate (processing) and its chip power")
    rates = [
        (f"alexnet {n}", v[0], next(c.macs for c in alexnet.costs if c.name == n) / (v[2] / 1e3))
        for n, v in TABLE_V.items()
    ]
    rates += [(f"vgg16 {n}", v[0], v[1] * 1e9 / (v[2] / 1e3)) for n, v in TABLE_VI.items()]
    for name, power, rate in rates:
        print(f"{name:16} {rate / 1e9:6.2f} GMAC/s {power:5d} mW  {power / 1e3 / rate * 1e12:6.1f} pJ/MAC")

    print_row_stationary()
    print_vgg_layer_by_layer()
    print_channels_by_width_hypothesis()
    print_architecture_costs()
    print_vgg_dram()
    print_validation_under_rs()


if __name__ == "__main__":
    main()
